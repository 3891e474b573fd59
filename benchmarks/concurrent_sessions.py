"""Many browser sessions against one dashboard server at once: how many pages render without an error.

Starts ``streamlit run app.py`` on a free loopback port with a fresh ``ANALYTICS_HOME``
(so the first start builds the sample release, as a new install does), waits for the
health check, then opens ``--sessions`` browser contexts in Debian's Chromium (Playwright,
system executable) at once. Each session visits ``--pages`` public pages in turn and counts
a page as failed when it shows a Streamlit exception, an error banner, or does not render
within the timeout. Prints one line per figure.

    python -m benchmarks.concurrent_sessions --sessions 20

Only loopback traffic: the server listens on 127.0.0.1, and the browser is started with
background networking off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from analytics import config

PAGES = ["", "district", "schools", "workforce", "ssn-collection", "privacy"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _session(browser: object, url: str, pages: list[str], timeout_ms: int) -> tuple[int, int, list[float]]:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page = await context.new_page()
    ok = failed = 0
    seconds: list[float] = []
    for path in pages:
        started = time.perf_counter()
        try:
            await page.goto(f"{url}/{path}", timeout=timeout_ms)
            await page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
            await page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
            )
            await page.wait_for_selector("h1", timeout=timeout_ms)
            broken = await page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
        except Exception:  # a timeout or a crash counts as a failed page
            broken = 1
        seconds.append(time.perf_counter() - started)
        ok, failed = (ok + 1, failed) if broken == 0 else (ok, failed + 1)
    await context.close()
    return ok, failed, seconds


async def _run(url: str, sessions: int, pages: list[str], timeout_ms: int) -> list[tuple[int, int, list[float]]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            return await asyncio.gather(*(_session(browser, url, pages, timeout_ms) for _ in range(sessions)))
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--pages", type=int, default=len(PAGES), help=f"pages per session (at most {len(PAGES)})")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a page may take")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is not installed (apt-get install chromium)")
    home = Path(tempfile.mkdtemp(prefix="slds-sessions-"))
    port = _free_port()
    env = {**os.environ, "ANALYTICS_HOME": str(home / "home"), "ANALYTICS_KEY_FILE": str(home / "key" / "k")}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(config.REPO_ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        # The first visit builds the sample release; time it apart from the concurrent load.
        started = time.perf_counter()
        first = asyncio.run(_run(url, 1, [""], int(args.timeout * 1000 * 3)))
        print(f"first start (release built on first visit): {time.perf_counter() - started:.1f} s, ok={first[0][0]}")
        started = time.perf_counter()
        results = asyncio.run(_run(url, args.sessions, PAGES[: args.pages], int(args.timeout * 1000)))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    times = sorted(t for r in results for t in r[2])
    print(f"sessions: {args.sessions} at once, {args.pages} pages each")
    print(f"pages rendered: {ok}; pages with an error or timeout: {failed}")
    print(f"page time: median {times[len(times) // 2]:.1f} s, slowest {times[-1]:.1f} s; wall {wall:.1f} s")


if __name__ == "__main__":
    main()
