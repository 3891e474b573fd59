"""The real app in a real browser: every page renders, charts draw, no student-level value appears.

Starts ``streamlit run app.py`` headless on a free port against a release of the
bundled sample, drives Debian's Chromium with Playwright (system executable, no
browser download), and saves a screenshot of every page under test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from analytics import config

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = config.REPO_ROOT / "test-artifacts"
PAGES = {  # url path -> does the page draw charts?
    "": True,
    "district": True,
    "schools": True,
    "workforce": True,
    "ssn-collection": True,
    "privacy": False,
    "data-contract": False,
    "grant-report": False,
    "builder": False,
    "steward": False,
}
SIGNED_IN_ONLY = ("builder", "steward")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(sample_home: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    port = _free_port()
    env = {**os.environ, "ANALYTICS_HOME": str(sample_home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(config.REPO_ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not become healthy within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser_pages(app_url: str) -> dict[str, dict[str, object]]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    seen: dict[str, dict[str, object]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 2400})
        for path, has_charts in PAGES.items():
            page.goto(f"{app_url}/{path}")
            page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
            page.wait_for_selector("h1, [data-testid='stForm']", timeout=60_000)
            if has_charts:
                page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            page.wait_for_timeout(2_500)
            page.screenshot(path=str(ARTIFACTS / f"page-{path or 'overview'}.png"))
            seen[path] = {
                "exceptions": page.locator("[data-testid='stException']").count(),
                "charts": page.locator(".js-plotly-plot").count(),
                "text": page.inner_text("body"),
                "html": page.content(),
            }
        browser.close()
    return seen


def test_every_page_renders_without_an_exception(browser_pages: dict[str, dict[str, object]]) -> None:
    for path, seen in browser_pages.items():
        assert seen["exceptions"] == 0, f"/{path} shows an exception"
        assert "Page not found" not in str(seen["text"]), f"/{path} is not a page"


def test_chart_pages_draw_charts(browser_pages: dict[str, dict[str, object]]) -> None:
    for path, has_charts in PAGES.items():
        if has_charts:
            assert int(browser_pages[path]["charts"]) >= 1, f"/{path} drew no chart"  # type: ignore[call-overload]


def test_no_student_key_appears_on_any_page(browser_pages: dict[str, dict[str, object]]) -> None:
    keys = set(pd.read_parquet(config.SAMPLE_DATA_DIR / "students.parquet")["student_key"])
    for path, seen in browser_pages.items():
        tokens = set(re.findall(r"K[A-Z0-9]{10}", str(seen["text"]) + str(seen["html"])))
        assert not tokens & keys, f"/{path} shows a student key"


def test_signed_in_pages_refuse_anonymous_visitors(browser_pages: dict[str, dict[str, object]]) -> None:
    for path in SIGNED_IN_ONLY:
        text = str(browser_pages[path]["text"])
        assert "needs sign-in" in text, f"/{path} did not ask for sign-in"
        assert "Run the query" not in text and "Full ledger" not in text, f"/{path} showed its content anonymously"
