"""Screenshots of the viewer for the README, from the bundled sample: docs/neuron-page.png and
docs/home-page.png.

Ingests nx/sample into a temporary warehouse, starts ``nx serve`` on a free loopback port and
photographs two pages with Debian's chromium driven by playwright (no browser download). The
sample's explanations hold an emoji: without a colour emoji font (Debian: fonts-noto-color-emoji)
chromium draws it as an empty box, so the script says so before it starts.

    python scripts/screenshot.py [--neuron 0/2] [--out docs]
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neuron", default="0/2", help="LAYER/NEURON of the neuron page")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="directory for the PNGs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import httpx
    from playwright.sync_api import sync_playwright

    import nx.ingest

    fonts = subprocess.run(["fc-list"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if "emoji" not in fonts.lower():
        print("no colour emoji font: the sample's emoji will show as a box (apt-get install fonts-noto-color-emoji)",
              file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="nx-screenshot-"))
    server = None
    try:
        warehouse = work / "warehouse"
        nx.ingest.run(source=str(ROOT / "nx" / "sample"), warehouse=str(warehouse), workers=1)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "nx", "serve", "-w", str(warehouse), "--port", str(port)],
                                  cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/index.json", timeout=10).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(f"{base}/neuron/{args.neuron}")
            page.screenshot(path=str(out / "neuron-page.png"))
            page.goto(f"{base}/")
            page.wait_for_selector("#layer-plot .main-svg")
            page.set_viewport_size({"width": 1280, "height": 1300})
            page.screenshot(path=str(out / "home-page.png"), full_page=True)  # down to the Runs table
            browser.close()
        for name in ("neuron-page.png", "home-page.png"):
            print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KB")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
