"""The real app in a real browser: every page renders, charts draw, no student-level value appears.

Starts ``streamlit run app.py`` headless on a free port against a release of the
bundled sample, drives Debian's Chromium with Playwright (system executable, no
browser download), and saves a screenshot of every page under test-artifacts/.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from analytics import config
from tests.live_app import running_app

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = config.REPO_ROOT / "test-artifacts"
PAGES = {  # url path -> does the page draw charts?
    "": True,
    "families": False,
    "suppression": True,
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


#: Every drawn trace as plain JSON (typed arrays made plain): type, mode, meta, points, markers, error bars.
_TRACES_JS = """
() => {
  const plain = (v) => (v && ArrayBuffer.isView(v)) ? Array.from(v) : v;
  const out = [];
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (g._fullData || [])) {
      const err = (e) => e && e.visible ? {array: plain(e.array) || [],
                                            arrayminus: plain(e.arrayminus) || plain(e.array) || []} : null;
      out.push({type: t.type, mode: t.mode || '', fill: t.fill || '', meta: t.meta || null,
                x: plain(t.x) || [], y: plain(t.y) || [], symbol: t.marker ? plain(t.marker.symbol) : null,
                error_x: err(t.error_x), error_y: err(t.error_y), locations: plain(t.locations) || []});
    }
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def app_url(sample_home: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with running_app(sample_home) as address:
        yield f"http://{address}"


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
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        for path, has_charts in PAGES.items():
            requests.clear()
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
                "traces": page.evaluate(_TRACES_JS),
                "requests": list(requests),
                "families_links": page.locator("a[href$='/families']").count(),
                "deploy": page.get_by_text("Deploy", exact=True).count(),
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


def _symbol(trace: dict[str, Any], i: int) -> str:
    symbol = trace["symbol"]
    return str(symbol[i] if isinstance(symbol, list) else symbol)


def test_no_unreliable_point_is_solid_or_joined_by_a_line(browser_pages: dict[str, dict[str, object]]) -> None:
    checked = 0
    for path, seen in browser_pages.items():
        for trace in seen["traces"]:  # type: ignore[attr-defined]
            meta = trace["meta"] or {}
            if trace["type"] == "scatter" and "lines" in trace["mode"] and trace["fill"] != "toself":
                assert meta.get("role") == "line", f"/{path}: a line drawn without saying which points it may join"
                for y, flag in zip(trace["y"], meta["flags"], strict=True):
                    assert y is None or flag == "reliable", f"/{path}: a line passes through an unsure or missing point"
                    checked += 1
            if "flags" not in meta:
                continue
            if trace["type"] == "scatter" and "markers" in trace["mode"]:
                for i, flag in enumerate(meta["flags"]):
                    if flag != "reliable":
                        assert _symbol(trace, i).endswith("-open"), f"/{path}: a {flag} point is drawn solid"
                        checked += 1
            if trace["type"] in ("choroplethmap", "choropleth") and "unreliable" in meta["flags"]:
                assert meta.get("hollow"), f"/{path}: an unreliable county is coloured on the scale"
    assert checked > 100  # the sample has hundreds of unreliable figures; the check must have seen them


def test_no_interval_leaves_the_possible_range(browser_pages: dict[str, dict[str, object]]) -> None:
    checked = 0
    for path, seen in browser_pages.items():
        for trace in seen["traces"]:  # type: ignore[attr-defined]
            meta = trace["meta"] or {}
            if "lower" not in meta:
                continue
            lower = -math.inf if meta["lower"] is None else meta["lower"] - 1e-6
            upper = math.inf if meta["upper"] is None else meta["upper"] + 1e-6
            if trace["fill"] == "toself":
                assert all(lower <= y <= upper for y in trace["y"] if y is not None), (
                    f"/{path}: a band leaves the range"
                )
                continue
            for axis in ("x", "y"):
                err = trace[f"error_{axis}"]
                if not err:
                    continue
                for v, up, down in zip(trace[axis], err["array"], err["arrayminus"], strict=False):
                    if v is None or math.isnan(v):  # no figure: nothing is drawn
                        continue
                    assert lower <= v - down and v + up <= upper, f"/{path}: an interval leaves [{lower}, {upper}]"
                    checked += 1
    assert checked > 100


def test_every_page_links_to_the_families_page(browser_pages: dict[str, dict[str, object]]) -> None:
    for path, seen in browser_pages.items():
        assert int(seen["families_links"]) >= 1, f"/{path} has no link to the families page"  # type: ignore[call-overload]
    text = str(browser_pages["families"]["text"])
    assert "Giving the Social Security number is your choice" in text and "20 U.S.C. 9871" in text


def test_no_request_leaves_localhost(browser_pages: dict[str, dict[str, object]], app_url: str) -> None:
    for path, seen in browser_pages.items():
        for url in seen["requests"]:  # type: ignore[attr-defined]
            host = urlsplit(url).hostname
            assert url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"), f"/{path} fetched {url}"


def test_no_deploy_button(browser_pages: dict[str, dict[str, object]]) -> None:
    for path, seen in browser_pages.items():
        assert seen["deploy"] == 0, f"/{path} shows a Deploy button"


def test_downloads_read_back_as_numbers(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 1600}, accept_downloads=True)
        page.goto(f"{app_url}/ssn-collection")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        # the page stays inert while its script still runs (a cold, busy server): wait for it to settle
        page.get_by_text("Table view and download (every district)").click(timeout=180_000)
        files = {}
        for label, name in (("Download this table (CSV)", "csv"), ("Same table as Parquet", "parquet")):
            with page.expect_download(timeout=180_000) as info:
                page.get_by_role("button", name=label).first.click(timeout=180_000)
            files[name] = tmp_path / info.value.suggested_filename
            info.value.save_as(files[name])
        page.goto(f"{app_url}/grant-report")
        with page.expect_download(timeout=120_000) as info:
            page.get_by_role("button", name="Download the Excel workbook").click(timeout=120_000)
        files["xlsx"] = tmp_path / "report.xlsx"
        info.value.save_as(files["xlsx"])
        browser.close()
    raw = files["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, so spreadsheets read "±" right
    for frame in (pd.read_csv(files["csv"], encoding="utf-8-sig"), pd.read_parquet(files["parquet"])):
        assert {"District id", "District", "Value (%)", "Margin of error (95%, ± points)"} <= set(frame.columns)
        assert pd.api.types.is_float_dtype(frame["Value (%)"])
        assert pd.api.types.is_float_dtype(frame["Margin of error (95%, ± points)"])
        assert frame["District id"].str.match(r"^D\d+$").all()
    import openpyxl

    ws = openpyxl.load_workbook(files["xlsx"])["Performance measures"]
    header = [c.value for c in ws[1]]
    actual = [row[header.index("Actual")] for row in ws.iter_rows(min_row=2, values_only=True) if row[0]]
    # numbers, not text ("1.0" comes back from the spreadsheet as the integer 1, which is still a number)
    assert actual and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in actual)
