"""The annual performance report's shape: measures with targets, actuals with margins, a reporting period."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analytics.release import load_release
from analytics.report import MEASURES, build_report, performance_table
from analytics.report.performance import reporting_period


@pytest.fixture(scope="module")
def release(sample_home: Path):  # type: ignore[no-untyped-def]
    return load_release(sample_home / "releases")


def test_every_measure_has_an_actual_with_its_margin_and_the_default_period(release) -> None:  # type: ignore[no-untyped-def]
    table = performance_table(release)
    frame = table.frame
    assert frame["Measure id"].tolist() == [m.measure_id for m in MEASURES]
    assert frame["Actual"].between(0, 1).all() and (frame["Actual, margin of error (95%)"] > 0).all()
    assert set(frame["Target status"]) == {"no target set"}  # no target is invented
    start, end = reporting_period(release)
    assert (end - start).days == 364 and start.month == 10 and start.day == 1
    assert date.fromisoformat(release.manifest["created_at"][:10]) > end


def test_targets_are_judged_against_the_whole_interval(release) -> None:  # type: ignore[no-untyped-def]
    actual = performance_table(release).frame.set_index("Measure id")
    pm3, moe = float(actual.loc["PM3", "Actual"]), float(actual.loc["PM3", "Actual, margin of error (95%)"])
    judged = performance_table(release, {"PM3": max(pm3 - moe - 0.01, 0.0), "PM4": 1.0})
    status = judged.frame.set_index("Measure id")["Target status"]
    assert status["PM3"] == "met" and status["PM4"] == "not met"
    inside = performance_table(release, {"PM3": pm3}).frame.set_index("Measure id")["Target status"]
    assert inside["PM3"].startswith("cannot tell")


@pytest.mark.parametrize("targets", [{"PM9": 0.5}, {"PM1": 1.5}, {"PM1": -0.1}])
def test_impossible_targets_are_refused(release, targets) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="targets"):
        performance_table(release, targets)


def test_period_must_run_forward(release) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="ends before it starts"):
        performance_table(release, period=(date(2026, 9, 30), date(2025, 10, 1)))


def test_the_workbook_and_csv_carry_the_performance_sheet_as_numbers(release, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = build_report(release, tmp_path / "apr", formats=("xlsx", "zip"), targets={"PM1": 0.9})
    ws = openpyxl.load_workbook(paths["xlsx"])["Performance measures"]
    header = [c.value for c in ws[1]]
    first = {h: c.value for h, c in zip(header, ws[2], strict=True)}
    assert first["Measure id"] == "PM1" and first["Target"] == 0.9
    assert isinstance(first["Actual"], float) and isinstance(first["Actual, margin of error (95%)"], float)
    import zipfile

    with zipfile.ZipFile(paths["zip"]) as z, z.open("00_performance_measures.csv") as fh:
        csv = pd.read_csv(fh)
    assert pd.api.types.is_float_dtype(csv["Actual"]) and csv.loc[0, "Target"] == 0.9
