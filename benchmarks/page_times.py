"""Time each dashboard page's script, cold (first load of the release) and warm (cached), with AppTest.

    python -m benchmarks.page_times

Uses $ANALYTICS_HOME if it holds a release, else builds one of the bundled sample in a temporary home.
Target: every page's script finishes in under 300 ms warm.
"""

from __future__ import annotations

import os
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


def main() -> None:
    home = Path(os.environ.get("ANALYTICS_HOME", ""))
    if not os.environ.get("ANALYTICS_HOME") or not list_releases(home / "releases"):
        home = Path(tempfile.mkdtemp())
        build_sample_release(home / "releases", ledger=Ledger(home / "ledger.sqlite3"))
        os.environ["ANALYTICS_HOME"] = str(home)
    from streamlit.testing.v1 import AppTest

    print("| page | cold (ms) | warm, median of 5 (ms) |")
    print("|---|---|---|")
    for page in PAGES:
        at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(page)
        import streamlit as st

        st.cache_data.clear()
        t = time.perf_counter()
        at.run()
        cold = (time.perf_counter() - t) * 1000
        warm = []
        for _ in range(5):
            t = time.perf_counter()
            at.run()
            warm.append((time.perf_counter() - t) * 1000)
        warm.sort()
        print(f"| {page} | {cold:.0f} | {warm[2]:.0f} |")


if __name__ == "__main__":
    main()
