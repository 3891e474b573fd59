"""Shared fixtures: an isolated ANALYTICS_HOME with a release of the bundled sample."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keys and ledgers of tests never touch the real ones: one steward key per test session,
# outside every analytics home (set before anything loads the default key).
_KEY_DIR = Path(tempfile.mkdtemp(prefix="slds-test-key-"))
os.environ["ANALYTICS_KEY_FILE"] = str(_KEY_DIR / "steward.key")
os.environ.pop("ANALYTICS_LEDGER", None)

from analytics.ledger import Ledger  # noqa: E402
from analytics.release import build_sample_release  # noqa: E402


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ANALYTICS_HOME for the session's app tests, holding one release of the bundled sample."""
    home = tmp_path_factory.mktemp("analytics_home")
    old = os.environ.get("ANALYTICS_HOME")
    os.environ["ANALYTICS_HOME"] = str(home)
    build_sample_release(home / "releases", ledger=Ledger(home / "ledger.sqlite3"))
    yield home
    if old is None:
        os.environ.pop("ANALYTICS_HOME", None)
    else:
        os.environ["ANALYTICS_HOME"] = old


@pytest.fixture(autouse=True)
def _own_steward_key(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test gets its own steward key, as each installation has one, except tests of the shared sample home.

    One key knows which extract belongs to which ledger, so two test ledgers that both register the
    bundled sample need two keys (as two installations would).
    """
    if "sample_home" in request.fixturenames:
        yield
        return
    old = os.environ["ANALYTICS_KEY_FILE"]
    os.environ["ANALYTICS_KEY_FILE"] = str(tmp_path_factory.mktemp("key") / "steward.key")
    yield
    os.environ["ANALYTICS_KEY_FILE"] = old
