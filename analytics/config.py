"""Where the product keeps its state, and other process-wide settings."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the folder holding ``app.py``).
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = REPO_ROOT / "data" / "sample"
REFERENCE_DIR = REPO_ROOT / "data" / "reference"


def analytics_home() -> Path:
    """The folder holding the privacy ledger and the default releases.

    Set by the environment variable ``ANALYTICS_HOME``; by default
    ``.analytics_home`` in the repository (ignored by git). Created on first use.
    """
    raw = os.environ.get("ANALYTICS_HOME")
    home = Path(raw).expanduser() if raw else REPO_ROOT / ".analytics_home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_dir() -> Path:
    """The dataset the signed-in table builder queries: ``$ANALYTICS_DATA_DIR``, else the bundled sample."""
    raw = os.environ.get("ANALYTICS_DATA_DIR")
    return Path(raw).expanduser() if raw else SAMPLE_DATA_DIR


def ledger_path() -> Path:
    """The privacy ledger: ``$ANALYTICS_LEDGER``, else ``ledger.sqlite3`` in :func:`analytics_home`."""
    raw = os.environ.get("ANALYTICS_LEDGER")
    return Path(raw).expanduser() if raw else analytics_home() / "ledger.sqlite3"
