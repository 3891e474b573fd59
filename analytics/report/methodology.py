"""Release facts, methodology notes, privacy parameters and the data dictionary of the grant report."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from analytics import privacy
from analytics.release import Release
from analytics.report.tables import REPORT_TITLE, ReportTable
from analytics.views import cap_words

# ---------------------------------------------------------------------------
# Methodology and release facts
# ---------------------------------------------------------------------------


def _created(release: Release) -> datetime:
    """The release's created time, in UTC."""
    raw = release.manifest.get("created_at")
    if not raw:
        raise ValueError(f"release {release.release_id}: manifest.json has no created_at; rebuild the release")
    when = datetime.fromisoformat(str(raw))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _zip_time(release: Release) -> tuple[int, int, int, int, int, int]:
    t = max(_created(release), datetime(1980, 1, 1, tzinfo=UTC))
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


def _epsilon_total(release: Release) -> float:
    return round(float(release.manifest.get("epsilon_total", math.nan)), 6)


def _fmt_eps(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "not stated"


def release_facts(release: Release) -> list[tuple[str, Any]]:
    """(item, value) pairs that identify the release behind the report."""
    m = release.manifest
    loss = m.get("lineage_privacy_loss", {}) or {}
    extract = m.get("extract", {}) or {}
    return [
        ("Report", REPORT_TITLE),
        ("Release id", release.release_id),
        ("Student population (lineage)", m.get("lineage", "")),
        ("Population", m.get("dataset_description", "")),
        ("Extract", f"extract {extract.get('number', '?')} of the population: {extract.get('label', '')}"),
        ("Release created (UTC)", _created(release).isoformat(timespec="seconds")),
        ("Code version", m.get("code_version", "")),
        ("Total epsilon of this release", _epsilon_total(release)),
        ("Total delta of this release", float(m.get("delta_total", 0.0))),
        ("Cumulative epsilon borne by each student of the population", float(loss.get("epsilon", math.nan))),
        (f"Cap of the population ({loss.get('unit', 'epsilon')})", float(loss.get("cap", math.nan))),
        ("Unit of privacy", m.get("unit_of_privacy", "")),
        ("Ledger entry recording the release", (m.get("ledger", {}) or {}).get("entry_id", "")),
    ]


def _pooled_cohorts(release: Release) -> str:
    """The cohorts the pooled district graduation figures pool, per rate, read from the release itself."""
    try:
        table = release.table("graduation_by_cohort")
    except (KeyError, OSError, ValueError):
        return "the cohorts are listed in the graduation tables"
    spans = []
    for measure, words in (("acgr_4yr", "4-year rate"), ("acgr_5yr", "5-year rate")):
        cohorts = table.loc[(table["measure"] == measure) & table["value"].notna(), "cohort"]
        if len(cohorts):
            spans.append(f"{words}: cohorts {int(cohorts.min())}-{int(cohorts.max())}")
    return "; ".join(spans) or "no cohort is observable yet in this release"


def methodology_notes(release: Release) -> list[tuple[str, str, str]]:
    """(section, topic, text) rows summarising docs/metrics.md and docs/privacy.md for this release."""
    eps = _fmt_eps(_epsilon_total(release))
    loss = release.manifest.get("lineage_privacy_loss", {}) or {}
    small, rate_moe = privacy.SMALL_CELL_STUDENTS, privacy.UNRELIABLE_RATE_MOE * 100
    rel_count, rel_amount = privacy.UNRELIABLE_RELATIVE_MOE * 100, privacy.UNRELIABLE_RELATIVE_MOE_AMOUNT * 100
    d = "Definitions"
    p = "Privacy"
    return [
        (
            "About",
            "Source",
            f"Every figure comes from release {release.release_id} of "
            f"{release.manifest.get('dataset_description', 'the dataset')}; nothing here is computed from student "
            "records.",
        ),
        (
            d,
            "Cohort",
            "The spring school year of a student's first grade-9 enrolment (2011 = 2010-11); transfers in "
            "join the cohort of their grade-mates. Class of = cohort + 3.",
        ),
        (
            d,
            "Adjusted cohort",
            "Removes only students whose last enrolment in the window ended in a documented "
            "transfer out, emigration or death (ESEA 8101(23)); dropouts and undocumented leavers stay in.",
        ),
        (d, "4-year graduation rate (acgr_4yr)", "Regular diplomas by school year cohort + 3 / adjusted cohort."),
        (
            d,
            "5-year graduation rate (acgr_5yr)",
            "Regular diplomas by school year cohort + 4 / adjusted cohort "
            "(ESEA 8101(25)); a documented exit in the 5th year removes the student from this denominator only.",
        ),
        (
            d,
            "District attribution",
            "Graduation, college and workforce figures count for the district of the school "
            "last attended within the 4-year window. District tables give each cohort, rolling windows of three "
            f"cohorts, and every observable cohort pooled ({_pooled_cohorts(release)}).",
        ),
        (
            d,
            "College-going",
            "Among graduates within 5 years: a term starting July 1 - October 31 of the graduation "
            "year (enrolled_by_oct31) or by October 31 of the next year (enrolled_within_16_months, EDFacts). "
            "Enrolment records cover about 94% of undergraduates, so rates are lower bounds.",
        ),
        (d, "Persistence", "Among those enrolled within 16 months: enrolled again in the next academic year."),
        (
            d,
            "Matched, coverage",
            "A student is matched when the family provided the SSN, so wage records can be "
            "searched. Coverage = matched / all cohort members in the cell. Not matched is not 'not employed'.",
        ),
        (
            d,
            "Employment rate",
            "Among matched students: at least 2 quarters with wages and at least $3,000 in "
            "calendar year cohort + 3 + k, k = 1, 3, 5 years after expected graduation.",
        ),
        (
            d,
            "Employment bounds",
            "The rate over all students if no unmatched student was employed (lower bound) "
            "or if every unmatched student was (upper bound); the gap grows with the opt-out rate.",
        ),
        (
            d,
            "Earnings",
            "Annual wages of the employed in 2024 dollars (CPI-U), P25, median and P75, by the Census "
            "PSEO method on $5,000 bins up to $100,000 (higher earnings fall in the top bin).",
        ),
        (
            d,
            "Opt-out rate",
            "Families who declined to provide the SSN / families asked, by the district that asked; "
            "Maine began asking in fall 2010 (20-A MRSA 6005, 6001-C).",
        ),
        (
            d,
            "Subgroups",
            "Sex; the 7 federal race/ethnicity categories; economically disadvantaged; English learner; "
            "disability (IDEA). A student is in one group of each family.",
        ),
        (
            d,
            "Coverage of wage records",
            "Maine UI wage records miss self-employment, federal and military jobs and out-of-state work.",
        ),
        (
            p,
            "Differential privacy",
            "Every figure was computed from student records and then had random noise "
            "added (differential privacy). The unit of privacy is the student: all of a student's rows in every table.",
        ),
        (
            p,
            "Total epsilon of this release",
            f"{eps}: the worst-case privacy loss of any one student for the "
            "whole release (sequential composition over tables; cells within a table are disjoint).",
        ),
        (
            p,
            "Cumulative epsilon of the student population",
            f"{_fmt_eps(loss.get('epsilon'))}, under a cap of {cap_words(loss)}: the losses of every "
            "extract, release and researcher query on the same students add up, and no spender can pass the cap.",
        ),
        (
            p,
            "Mechanisms",
            "Counts and rates: one histogram per table with exact integer noise (OpenDP): discrete Gaussian "
            "calibrated to the table's L2 sensitivity on a zCDP population (the table's cost is its rho), "
            "two-sided geometric on a pure-epsilon one (its cost is its epsilon). "
            "Earnings: the PSEO method (noisy histogram over fixed bins read as a monotone CDF). See the table below "
            "for each table's epsilon or rho, mechanism, contribution bound and bounds.",
        ),
        (
            p,
            "Margin of error (95%)",
            "Half-width of the interval that holds the privacy noise with 95% probability, "
            "in the value's unit. It covers the privacy noise only: not sampling error, not data-quality error and not "
            "the bias of clamping values to their bounds.",
        ),
        (
            p,
            "Counts",
            "Every count is noisy. Each table is its own noisy answer, so tables at different levels "
            "(statewide, district, subgroup) need not add up.",
        ),
        (p, "Reliable", "The margin of error is small enough to compare the figure."),
        (p, "Rough", f"Fewer than about {small} students behind the figure: treat as rough."),
        (
            p,
            "Unreliable",
            f"Margin of error above {rate_moe:.0f} percentage points for a rate, {rel_count:.0f}% of "
            f"the value for a count or {rel_amount:.0f}% for an amount, or no estimate at all: do not compare. "
            "Nothing is hidden: small groups are published with noise and this flag.",
        ),
    ]


_PARAM_HEADERS = (
    "Release table",
    "Title",
    "Noisy",
    "Epsilon",
    "Rho (zCDP)",
    "Delta",
    "Mechanism",
    "Contribution bound",
    "Bounds",
    "Rows",
    "Used in this report",
)


def _table_epsilon_cell(info: dict[str, Any]) -> float | str:
    """A table's pure epsilon, or words where its cost is a rho (a Gaussian table charges no epsilon of its own)."""
    eps = float(info.get("epsilon", math.nan))
    if eps == 0.0 and float(info.get("rho") or 0.0) > 0:
        return "n/a (zCDP: see rho)"
    return eps


def privacy_parameters(release: Release, used: Iterable[str] = ()) -> list[list[Any]]:
    """One row per release table: the manifest's privacy parameters (see ``_PARAM_HEADERS``)."""
    used_set = set(used)
    rows: list[list[Any]] = []
    for name, info in release.manifest.get("tables", {}).items():
        bounds = info.get("bounds")
        rows.append(
            [
                name,
                info.get("title", ""),
                "yes" if info.get("noisy", True) else "no",
                _table_epsilon_cell(info),
                float(f"{float(info.get('rho') or 0.0):.6g}"),
                float(info.get("delta", 0.0)),
                info.get("mechanism", "none (public list)"),
                info.get("contribution_bound", ""),
                json.dumps(bounds, sort_keys=True) if bounds else "",
                int(info.get("rows", 0)),
                "yes" if name in used_set else "no",
            ]
        )
    return rows


def dictionary_rows(tables: Sequence[ReportTable]) -> list[list[str]]:
    """The data dictionary: one row per column of every report table."""
    return [[t.sheet, t.csv_name, c.header, c.meaning, c.unit_words, c.ceds] for t in tables for c in t.columns]


_DICTIONARY_HEADERS = ("Sheet", "CSV file", "Column", "Meaning", "Unit", "CEDS element")


def methodology_text(release: Release, tables: Sequence[ReportTable]) -> str:
    """The methodology as plain text (methodology.txt in the CSV package)."""
    lines = [REPORT_TITLE, "=" * len(REPORT_TITLE), ""]
    lines += [f"{item}: {_fmt_value(value)}" for item, value in release_facts(release)]
    section = ""
    for sec, topic, text in methodology_notes(release):
        if sec != section:
            lines += ["", sec, "-" * len(sec)]
            section = sec
        lines.append(f"* {topic}: {text}")
    lines += ["", "Privacy parameters by release table", "-" * 35]
    used = {s for t in tables for s in t.sources}
    for row in privacy_parameters(release, used):
        info = dict(zip(_PARAM_HEADERS, row, strict=True))
        lines.append(
            f"* {info['Release table']}: epsilon {_fmt_value(info['Epsilon'])}, rho {_fmt_eps(info['Rho (zCDP)'])}, "
            f"delta {_fmt_eps(info['Delta'])}; "
            f"mechanism: {info['Mechanism']}; contribution bound: {info['Contribution bound'] or 'n/a'}; "
            f"bounds: {info['Bounds'] or 'none'}; rows {info['Rows']}; "
            f"used in this report: {info['Used in this report']}"
        )
    lines += ["", "Report tables", "-" * 13]
    lines += [f"* {t.csv_name} (sheet '{t.sheet}'): {t.title}. {t.description}" for t in tables]
    return "\n".join(lines) + "\n"


def _fmt_value(value: Any) -> str:
    return _fmt_eps(value) if isinstance(value, float) else str(value)
