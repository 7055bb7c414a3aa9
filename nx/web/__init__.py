"""``nx serve``: the neuron viewer, a local web app over the warehouse (read-only).

- ``create_app(warehouse, ...)``: the Starlette app (``app.py``): neuron pages, home with
  search and layer statistics, run comparison, named queries and a SQL box, each with a
  JSON twin (the same URL with ``.json``, or under ``/api/``);
- ``serve(warehouse, host, port, ...)``: binds the port (``AddressInUse``, exit 3, when it
  cannot), says where the viewer is, and runs it with uvicorn (what ``nx serve`` calls).

Pages are server-rendered (Jinja2) with a little JavaScript; pictures use Plotly's
JavaScript served from the installed ``plotly`` package (no CDN, no Node build).
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from nx.errors import ExitCode, NxError, UsageError

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
    # hosts: a name given with --host (a machine name, say) is one the viewer answers to.
    app = create_app(warehouse, workers=workers, query_timeout=query_timeout, hosts=(host,))
    # Bound before the address is announced: a busy port is an error here, not a URL that
    # answers with another process's warehouse. Port 0 takes a free one, announced as it is.
    sock = listen_socket(host, port)
    port = sock.getsockname()[1]
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
    config = server_config(app, host, port)
    with sock:
        uvicorn.Server(config).run(sockets=[sock])


def server_config(app, host: str, port: int, *, limit_concurrency: int = 200,
                  header_timeout: float | None = None):
    """uvicorn's configuration of the viewer: past ``limit_concurrency`` connections uvicorn
    answers 503 at once instead of holding sockets and memory; a connection has
    ``header_timeout`` seconds (``connections.HEADER_TIMEOUT``) to send a request's head, so
    clients that connect and send nothing, or half a request, cannot hold those places."""
    import uvicorn

    from nx.web import connections

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", limit_concurrency=limit_concurrency,
                            timeout_keep_alive=5, access_log=False, http=connections.HeaderDeadline,
                            h11_max_incomplete_event_size=connections.MAX_HEAD_BYTES)
    config.header_timeout = connections.HEADER_TIMEOUT if header_timeout is None else header_timeout
    return config


class AddressInUse(NxError):
    """The viewer cannot listen on the address asked for (a busy port, a foreign address)."""

    exit_code = ExitCode.UNREACHABLE


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening, or AddressInUse saying why not, in one line."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0-65535 (0: a free one), not {port}")
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AddressInUse(f"cannot listen on {shown}: {host!r} is not an address of this machine ({exc.strerror})") \
            from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # What uvicorn sets: a restarted viewer need not wait for the last one's closed connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(f"port {port} of {host} is in use by another program (another nx serve?): stop it, "
                               "or choose another port with --port (--port 0 picks a free one)") from None
        raise AddressInUse(f"cannot listen on {shown}: {exc.strerror or exc}") from None
    # Listening from now on: a browser that follows the announced URL before uvicorn has
    # started waits in the backlog instead of being refused (seen on a busy machine).
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


__all__ = ["create_app", "serve", "server_config", "is_loopback", "listen_socket", "AddressInUse"]
