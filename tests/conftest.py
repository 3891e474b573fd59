"""Shared fixtures: an isolated ANALYTICS_HOME with a release of the bundled sample."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics import config
from analytics.ledger import Ledger
from analytics.release import build_release


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ANALYTICS_HOME for the session's app tests, holding one release of the bundled sample."""
    home = tmp_path_factory.mktemp("analytics_home")
    old = os.environ.get("ANALYTICS_HOME")
    os.environ["ANALYTICS_HOME"] = str(home)
    build_release(config.SAMPLE_DATA_DIR, home / "releases", ledger=Ledger(home / "ledger.sqlite3"))
    yield home
    if old is None:
        os.environ.pop("ANALYTICS_HOME", None)
    else:
        os.environ["ANALYTICS_HOME"] = old
