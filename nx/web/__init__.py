"""``nx serve``: the neuron viewer, a local web app over the warehouse (read-only).

- ``create_app(warehouse, ...)``: the Starlette app (``app.py``): neuron pages, home with
  search and layer statistics, run comparison, named queries and a SQL box, each with a
  JSON twin (the same URL with ``.json``, or under ``/api/``);
- ``serve(warehouse, host, port, ...)``: runs it with uvicorn (what ``nx serve`` calls).

Pages are server-rendered (Jinja2) with a little JavaScript; pictures use Plotly's
JavaScript served from the installed ``plotly`` package (no CDN, no Node build).
"""
from __future__ import annotations

import ipaddress
import sys

LOOPBACK_HOSTS = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(warehouse=None, **options):
    """The viewer's ASGI app (see ``nx.web.app.create_app``)."""
    from nx.web.app import create_app as build  # starlette and jinja2 load only when serving

    return build(warehouse, **options)


def serve(warehouse=None, host: str = "127.0.0.1", port: int = 8000, *, workers: int = 4,
          query_timeout: float = 10.0, open_browser: bool = False, log=None) -> None:
    """Serve the viewer until interrupted. Binding to a non-loopback ``host`` exposes the
    warehouse to the network: ``log`` (stderr by default) gets a warning saying so."""
    import uvicorn

    say = log or (lambda message: print(message, file=sys.stderr))
    app = create_app(warehouse, workers=workers, query_timeout=query_timeout)
    if not is_loopback(host):
        say(f"warning: serving on {host}: anyone who can reach this machine on port {port} can read the "
            "warehouse through the viewer (read-only). Use the default 127.0.0.1 to keep it local.")
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    say(f"nx viewer of {app.state.warehouse.url} at {url} (Ctrl-C to stop)")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (url,)).start()
    # limit_concurrency: past it uvicorn answers 503 at once instead of holding sockets and memory.
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=200, timeout_keep_alive=5,
                access_log=False)


__all__ = ["create_app", "serve", "is_loopback"]
