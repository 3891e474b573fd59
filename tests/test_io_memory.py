"""DuckDB's memory limit: the steward's setting, or a default scaled to the extract's size."""

from __future__ import annotations

import os

import pytest

from analytics import io


def _bytes(size: str) -> int:
    assert size.endswith("MIB")
    return int(size[:-3]) * 2**20


def test_default_limit_scales_with_the_extract_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PHYS_PAGES": 6 * 2**20, "SC_PAGE_SIZE": 4096}[name])  # 24 GiB
    assert _bytes(io.default_memory_limit(0)) == io.DEFAULT_DUCKDB_MEMORY_MIN
    assert _bytes(io.default_memory_limit(33 * 10**6)) == io.DEFAULT_DUCKDB_MEMORY_MIN  # 200k students
    six_million = _bytes(io.default_memory_limit(970 * 10**6))
    assert 2.9e9 < six_million <= 3.1 * 970e6  # the measured need is about 3 GB
    assert _bytes(io.default_memory_limit(10**12)) == 12 * 2**30  # capped at half the machine


def test_small_machines_still_get_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PHYS_PAGES": 2**17, "SC_PAGE_SIZE": 4096}[name])  # 512 MiB
    assert _bytes(io.default_memory_limit(10**9)) == io.DEFAULT_DUCKDB_MEMORY_MIN


def test_the_steward_setting_wins_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_DUCKDB_MEMORY", "300MB")
    con = io.open_database(10**9)
    try:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("286")
    finally:
        con.close()
    monkeypatch.setenv("ANALYTICS_DUCKDB_MEMORY", "lots")
    with pytest.raises(ValueError, match="ANALYTICS_DUCKDB_MEMORY must be a size"):
        io.open_database(10)
    monkeypatch.delenv("ANALYTICS_DUCKDB_MEMORY")
    con = io.open_database(10)
    try:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("640")
    finally:
        con.close()
