"""The playground tried as a reader would: served by Voilà, clicked in Chromium (Playwright).

    python .ci/browser_check.py [--out DIR] [--chromium /usr/bin/chromium] [--seconds 3]

Not part of ``.ci/run`` (it needs Voilà, Playwright and a Chromium, none of which the book needs):
run it by hand after changing ``egan_lib/widgets.py`` or ``egan_lib/playground.py``::

    pip install voila playwright   # and a Chromium: apt-get install chromium

It writes a one-cell notebook that shows ``playground.Playground()``, serves it with Voilà on a free
port, opens it in headless Chromium, takes a screenshot, clicks Start, takes three more screenshots
``--seconds`` apart, clicks Pause, and prints the playground's status line at each. It fails (exit 1)
unless every screenshot's figure differs from the one before: the fakes must move.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CELL = ["import torch\n", "torch.set_num_threads(1)\n", "from egan_lib import playground\n",
        "playground.Playground(members=4)"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def click_through(url: str, out: Path, chromium: str, seconds: float) -> list[str]:
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1300, "height": 1000})
        await page.goto(url, timeout=180_000)
        await page.wait_for_selector("button:has-text('Start')", timeout=180_000)
        await page.wait_for_timeout(1000)
        figure = page.locator("img").last
        sources = []
        for i in range(4):
            if i == 1:
                await page.click("button:has-text('Start')")
            if i > 0:
                await page.wait_for_timeout(1000 * seconds)
            await page.screenshot(path=str(out / f"playground_{i}.png"))
            sources.append(await figure.get_attribute("src"))
            status = await page.locator(".widget-html-content").last.inner_text()
            print(f"screenshot {i} ({'before Start' if i == 0 else f'{i * seconds:g} s after Start'}): {status}")
        await page.click("button:has-text('Pause')")
        await browser.close()
        return sources


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "egan_browser_check")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    nb = {"cells": [{"cell_type": "code", "id": "playground", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": CELL}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (work / "playground.ipynb").write_text(json.dumps(nb))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "voila", "playground.ipynb", "--no-browser", f"--port={port}",
                               "--Voila.ip=127.0.0.1"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(60):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        sources = asyncio.run(click_through(url, args.out, args.chromium, args.seconds))
    finally:
        server.terminate()
    moved = all(a != b for a, b in zip(sources, sources[1:]))
    print(f"screenshots in {args.out}; the figure changed between every two: {moved}")
    return 0 if moved else 1


if __name__ == "__main__":
    sys.exit(main())
