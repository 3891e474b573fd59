"""The benchmarks the README lists still run end to end (they print figures; here only that they finish).

Two of them stopped silently when accounting began to require a steward; this catches that kind of drift.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from analytics import config


def _run(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=config.REPO_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_moe_by_cell_size_prints_its_table() -> None:
    assert "| 0.1 |" in _run("benchmarks.moe_by_cell_size")


@pytest.mark.slow
def test_build_times_builds_as_a_steward() -> None:
    out = _run("benchmarks.build_times", "--students", "1500")
    assert "validate + release build, bundled sample (20,000 students)" in out
    assert "validate + release build, 1,500 students" in out


@pytest.mark.slow
def test_district_margins_prints_direct_and_model_based_graduation() -> None:
    out = _run("benchmarks.district_margins")
    assert "| graduation_by_district | acgr_4yr |" in out
    assert "| graduation_by_district, model-based | acgr_4yr |" in out


@pytest.mark.slow
def test_scale_alternates_release_and_floor_and_prints_the_median_ratio() -> None:
    out = _run(
        "benchmarks.scale", "--data", str(config.REPO_ROOT / "data" / "sample"), "--floor", "--skip-validate",
        "--repeat", "2", "--accounting", "zcdp",
    )  # fmt: skip
    steps = [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert steps == ["release", "floor", "release", "floor"], out
    summary = next(line for line in out.splitlines() if line.startswith("over 2 alternating release/floor pairs"))
    assert "median of the per-pair ratios" in summary and "target release CPU <= 2x floor" in summary
