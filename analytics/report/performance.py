"""The annual performance report's shape: performance measures with targets, actuals and a reporting period.

The federal grant annual performance report (ED 524B, Section A) lists each project
performance measure with its target and its actual performance for the reporting
period. Here every actual is a published, noisy figure with its 95% margin of error,
so the comparison with a target has three outcomes, not two: **met** (the whole
interval is at or above the target), **not met** (the whole interval is below it)
and **cannot tell** (the target lies inside the interval). Targets are the
grantee's own (from its application); none is invented here: a measure without a
target says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from analytics import views
from analytics.release import Release
from analytics.report.methodology import _created
from analytics.report.tables import Column, ReportTable


@dataclass(frozen=True)
class PerformanceMeasure:
    """One project performance measure: a rate read from one published table.

    Attributes:
        measure_id: short stable id (targets are keyed on it).
        name: the measure in words, as the report states it.
        table, measure: the release table and its ``measure`` value.
        cell: other columns fixing the cell (for example ``{"years_out": 1}``).
        ceds: the CEDS element, where one applies.
    """

    measure_id: str
    name: str
    table: str
    measure: str
    cell: tuple[tuple[str, object], ...] = ()
    ceds: str = ""


MEASURES: tuple[PerformanceMeasure, ...] = (
    PerformanceMeasure(
        "PM1",
        "Cohort students linkable to wage records (SSN provided), 1 year out",
        "workforce_by_cohort",
        "coverage",
        (("years_out", 1),),
    ),
    PerformanceMeasure(
        "PM2",
        "Cohort students found in Maine wage records, 1 year out",
        "workforce_by_cohort",
        "employment_rate_any_wages",
        (("years_out", 1),),
    ),
    PerformanceMeasure(
        "PM3",
        "4-year adjusted cohort graduation rate",
        "graduation_by_cohort",
        "acgr_4yr",
        ceds="Exit or Withdrawal Type (000110)",
    ),
    PerformanceMeasure(
        "PM4", "Graduates enrolled in college within 16 months", "college_by_cohort", "enrolled_within_16_months"
    ),
    PerformanceMeasure(
        "PM5",
        "Matched students employed (2+ quarters, $3,000+), 1 year out",
        "workforce_by_cohort",
        "employment_rate",
        (("years_out", 1),),
        ceds="Employed After Exit (000988)",
    ),
)


def reporting_period(release: Release, period: tuple[date, date] | None = None) -> tuple[date, date]:
    """The reporting period: ``period`` when given, else the last federal fiscal year (1 October to
    30 September) completed before the release was published.

    Raises:
        ValueError: ``period`` ends before it starts.
    """
    if period is not None:
        start, end = period
        if end < start:
            raise ValueError("the reporting period ends before it starts; give the start date first.")
        return start, end
    made = _created(release).date()
    year = made.year if made.month >= 10 else made.year - 1
    return date(year - 1, 10, 1), date(year, 9, 30)


def target_status(actual: float, moe95: float, target: float | None) -> str:
    """Whether an actual with its 95% margin meets a target.

    >>> target_status(0.80, 0.03, 0.75), target_status(0.70, 0.03, 0.75), target_status(0.76, 0.03, 0.75)
    ('met', 'not met', 'cannot tell: the target is within the margin of error')
    >>> target_status(0.8, 0.03, None), target_status(float("nan"), 0.03, 0.5)
    ('no target set', 'no reliable actual')
    """
    if target is None:
        return "no target set"
    if pd.isna(actual):
        return "no reliable actual"
    if actual - moe95 >= target:
        return "met"
    if actual + moe95 < target:
        return "not met"
    return "cannot tell: the target is within the margin of error"


def performance_table(
    release: Release,
    targets: Mapping[str, float] | None = None,
    period: tuple[date, date] | None = None,
) -> ReportTable:
    """Section A of the annual performance report: one row per measure of :data:`MEASURES`.

    The actual is the latest cohort's figure that is not flagged unreliable
    (:func:`analytics.views.latest`). ``targets`` maps a measure id to a target
    share in [0, 1].

    Raises:
        ValueError: a target for an unknown measure, or outside [0, 1].
    """
    targets = dict(targets or {})
    known = {m.measure_id for m in MEASURES}
    unknown = sorted(set(targets) - known)
    if unknown:
        raise ValueError(
            f"targets for unknown measures {', '.join(unknown)}; the measures are {', '.join(sorted(known))}"
        )
    bad = sorted(k for k, v in targets.items() if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0))
    if bad:
        raise ValueError(f"targets are shares between 0 and 1; check {', '.join(bad)}")
    start, end = reporting_period(release, period)
    rows = []
    for m in MEASURES:
        latest = views.latest(release.table(m.table), m.measure, "cohort", **dict(m.cell))
        last = latest.iloc[-1] if len(latest) else None
        actual = float(last["value"]) if last is not None else float("nan")
        moe = float(last["value_moe95"]) if last is not None else float("nan")
        target = targets.get(m.measure_id)
        rows.append(
            {
                "Measure id": m.measure_id,
                "Performance measure": m.name,
                "Measure type": "Project",
                "Reporting period start": start.isoformat(),
                "Reporting period end": end.isoformat(),
                "Cohort of the actual": int(last["cohort"]) if last is not None else pd.NA,
                "Target": float(target) if target is not None else float("nan"),
                "Actual": actual,
                "Actual, margin of error (95%)": moe,
                "Actual, reliability": {"reliable": "Reliable", "rough": "Rough"}.get(str(last["flag"]), "")
                if last is not None
                else "",
                "Target status": target_status(actual, moe, target),
                "Source table": m.table,
            }
        )
    columns = (
        Column("Measure id", "text", "Stable id of the performance measure (targets are keyed on it)."),
        Column("Performance measure", "text", "The project performance measure, in words."),
        Column("Measure type", "text", "ED 524B measure type: GPRA or Project."),
        Column("Reporting period start", "text", "First day of the reporting period (YYYY-MM-DD)."),
        Column("Reporting period end", "text", "Last day of the reporting period (YYYY-MM-DD)."),
        Column("Cohort of the actual", "year", "The grade-9 cohort whose figure is the actual (latest reliable)."),
        Column("Target", "rate", "The grantee's target for the measure (empty: no target set)."),
        Column("Actual", "rate", "The published figure (noisy) for the cohort of the actual."),
        Column("Actual, margin of error (95%)", "rate", "Half-width of the 95% interval of the actual (noise only)."),
        Column("Actual, reliability", "text", "Reliable or Rough; unreliable figures are never used as actuals."),
        Column(
            "Target status",
            "text",
            "met (interval at or above the target), not met (interval below it), cannot tell (target inside the "
            "interval), no target set, or no reliable actual.",
        ),
        Column("Source table", "text", "The release table the actual comes from."),
    )
    frame = pd.DataFrame(rows, columns=[c.header for c in columns])
    frame["Cohort of the actual"] = frame["Cohort of the actual"].astype("Int64")
    return ReportTable(
        key="00_performance_measures",
        sheet="Performance measures",
        title=f"Performance measures, reporting period {start.isoformat()} to {end.isoformat()}",
        description=(
            "Section A of the annual performance report (ED 524B): each project performance measure with its target "
            "and its actual performance. Actuals are noisy published figures; a target counts as met only when the "
            "whole 95% interval is at or above it."
        ),
        sources=tuple(dict.fromkeys(m.table for m in MEASURES)),
        columns=columns,
        frame=frame,
    )
