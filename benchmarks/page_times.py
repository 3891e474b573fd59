"""Time each dashboard page's script, cold (first load of the release) and warm (cached), with AppTest.

    python -m benchmarks.page_times [--runs N] [PAGE ...]

Uses $ANALYTICS_HOME if it holds a release, else builds one of the bundled sample in a temporary home
(with a temporary steward key, so the user's own ledger is left alone).
Cold is the first run after every Streamlit cache is emptied (the release is read again); warm is
the median of ``--runs`` reruns of the same page, as wall time and as this process's CPU time.
Target: every page's script finishes in under 300 ms warm. Other load on the machine inflates
wall times (not CPU times): compare figures taken side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from analytics import config
from analytics.ledger import Ledger
from analytics.release import build_sample_release, list_releases

PAGES = [
    "pages/overview.py",
    "pages/district_profile.py",
    "pages/schools.py",
    "pages/workforce.py",
    "pages/ssn_collection.py",
    "pages/families.py",
    "pages/suppression.py",
    "pages/privacy_methods.py",
    "pages/data_contract.py",
    "pages/grant_report.py",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="pages to time (default: every public page), e.g. pages/schools.py")
    parser.add_argument("--runs", type=int, default=5, help="warm reruns per page; the median is printed")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("ANALYTICS_HOME", ""))
    if not os.environ.get("ANALYTICS_HOME") or not list_releases(home / "releases"):
        home = Path(tempfile.mkdtemp())
        # a throw-away steward key too: the sample may already be attached to the user's own ledger
        os.environ["ANALYTICS_KEY_FILE"] = str(Path(tempfile.mkdtemp()) / "steward.key")
        build_sample_release(home / "releases", ledger=Ledger(home / "ledger.sqlite3"))
        os.environ["ANALYTICS_HOME"] = str(home)
    from streamlit.testing.v1 import AppTest

    print(f"| page | cold (ms) | warm, median of {args.runs} (ms) | warm CPU, median (ms) |")
    print("|---|---|---|---|")
    for page in args.pages or PAGES:
        at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(page)
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
        t = time.perf_counter()
        at.run()
        cold = (time.perf_counter() - t) * 1000
        if at.exception:
            raise SystemExit(f"{page} failed: {at.exception[0].message}")
        warm, cpu = [], []
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            at.run()
            warm.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)  # the page's own work, whatever else loads the machine
        print(f"| {page} | {cold:.0f} | {statistics.median(warm):.0f} | {statistics.median(cpu):.0f} |")


if __name__ == "__main__":
    main()
