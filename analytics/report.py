"""The federal SLDS grant annual report package, built from one frozen release.

:func:`build_report` writes three files next to each other:

- ``<stem>.xlsx``: a workbook with a Contents sheet, one sheet per report table,
  a Methodology sheet and a Data dictionary sheet. Numbers stay numbers (rates
  as fractions with a percent format) so analysts can compute with them.
- ``<stem>.zip``: one UTF-8 CSV per report table, ``data_dictionary.csv``,
  ``methodology.txt`` and the release's ``manifest.json``, with fixed member
  timestamps (the release's created time): the same release gives the same bytes.
- ``<stem>.pdf``: a summary with a title page, key charts with error bars and
  the statewide linkage table.

Every figure comes from the release only (post-processing: nothing is spent).
Every text cell of the workbook and the CSV files passes through
:func:`neutralise` (OWASP CSV-injection guidance) and is capped at
:data:`MAX_CELL_TEXT` characters. Text in the PDF is drawn as plain text:
matplotlib's mathtext is off (a name such as ``$x^{$`` is not parsed), control
characters are dropped and characters the font lacks become ``?``. The package
is written all or nothing: every file goes to a temporary file in the target
folder first, and only when all of them are complete are they renamed into
place, so a failure (or a kill) never leaves a partial package.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
import textwrap
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from analytics import privacy
from analytics.metrics import cohort as cohort_metrics
from analytics.metrics import subgroups as subgroup_metrics
from analytics.metrics import workforce as workforce_metrics
from analytics.release import Release
from analytics.views import label

#: The formats :func:`build_report` can write, in the order it writes them.
FORMATS: tuple[str, ...] = ("xlsx", "zip", "pdf")
REPORT_TITLE = "Statewide Longitudinal Data System: grant annual report"

#: Okabe-Ito colours (colour-blind safe).
BLUE, VERMILLION, GREEN, GREY = "#0072B2", "#D55E00", "#009E73", "#999999"

_DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
# C0 control characters an XLSX file cannot hold (tab, newline and carriage return are allowed).
_ILLEGAL_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: Longest text cell written to the workbook and the CSV files (longer ones end in "…").
MAX_CELL_TEXT = 1000
_FLAG_WORDS = {"reliable": "Reliable", "rough": "Rough", "unreliable": "Unreliable"}
_SUFFIXES = {".xlsx", ".zip", ".pdf", ".csv"}

_EXCEL_FORMATS = {
    "rate": "0.0%",
    "count": "#,##0",
    "usd": '"$"#,##0',
    "year": "0",
    "int": "0",
    "epsilon": "0.00##",
}
_DEFAULT_UNITS = {
    "text": "text",
    "rate": "share between 0 and 1 (the workbook shows it as a percentage)",
    "count": "students or families (noisy count)",
    "usd": "US dollars of 2024 per year (CPI-U)",
    "year": "school year, named by its spring year (2015 = 2014-15)",
    "int": "years",
}


def neutralise(value: Any) -> Any:
    """Make a text cell safe for spreadsheets; anything that is not text is returned unchanged.

    Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    could be run as a formula by a spreadsheet (CSV or formula injection), so it
    gets a leading single quote (OWASP guidance). Control characters that a
    workbook cannot hold are dropped first, so they cannot hide a dangerous
    first character. Numbers, negative ones included, stay numbers.

    >>> neutralise('=HYPERLINK("http://x","y")')
    '\\'=HYPERLINK("http://x","y")'
    >>> neutralise("-2"), neutralise(-2), neutralise("Aster Bluff RSU")
    ("'-2", -2, 'Aster Bluff RSU')
    """
    if not isinstance(value, str):
        return value
    text = _ILLEGAL_CONTROL.sub("", str(value))
    return "'" + text if text.startswith(_DANGEROUS_FIRST) else text


# ---------------------------------------------------------------------------
# Report tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a report table, as the data dictionary describes it.

    ``kind`` sets the number format: text, rate, count, usd, year or int.
    """

    header: str
    kind: str
    meaning: str
    unit: str = ""
    ceds: str = ""

    @property
    def unit_words(self) -> str:
        return self.unit or _DEFAULT_UNITS.get(self.kind, "")


@dataclass(frozen=True)
class ReportTable:
    """One table of the report: a frame whose columns are the headers of ``columns``."""

    key: str
    sheet: str
    title: str
    description: str
    sources: tuple[str, ...]
    columns: tuple[Column, ...]
    frame: pd.DataFrame

    @property
    def csv_name(self) -> str:
        return f"{self.key}.csv"


_CEDS_DISTRICT = "Local Education Agency Identifier (000827)"
_CEDS_NAME = "Name of Institution (000191)"
_CEDS_COHORT = "Cohort Year (000046)"
_CEDS_GRAD = "Exit or Withdrawal Type (000110): graduated with a regular diploma"
_CEDS_EMPLOYED = "Employed After Exit (000988)"
_CEDS_SUBGROUP = (
    "Sex (000255); Hispanic or Latino Ethnicity (000144) and Race (001943); Economic Disadvantage Status "
    "(000086); English Learner Status (000180); IDEA Indicator (000151)"
)
_MOE_MEANING = (
    "Half-width of the 95% interval of the privacy noise around the value, in the value's unit; "
    "it covers the noise only, not sampling or clamping bias."
)
_REL_MEANING = "Reliable; Rough (fewer than about 30 students); Unreliable (margin of error too wide to compare)."

DISTRICT_ID = Column("District ID", "text", "State district identifier.", ceds=_CEDS_DISTRICT)
DISTRICT = Column("District", "text", "Public name of the district.", ceds=_CEDS_NAME)
COUNTY = Column("County", "text", "Maine county of the district's office.", ceds="County ANSI Code (001509), by name")
LOCALE = Column("Locale", "text", "NCES locale family of the district (City, Suburb, Town, Rural).")
COHORT = Column(
    "Cohort",
    "year",
    "Grade-9 cohort: the spring school year of the students' first grade-9 enrolment.",
    ceds=_CEDS_COHORT,
)
CLASS_OF = Column("Class of", "year", "Expected graduation year of the cohort (cohort + 3).")
YEARS_OUT = Column(
    "Years after expected graduation",
    "int",
    "k: wages of calendar year cohort + 3 + k (k = 1, 3 or 5; cohorts pooled unless a cohort column is present).",
)
FAMILY = Column(
    "Subgroup family",
    "text",
    "The subgroup family: sex, race/ethnicity, economically disadvantaged, English learner, disability (IDEA).",
    ceds=_CEDS_SUBGROUP,
)
SUBGROUP = Column(
    "Subgroup", "text", "The group within its family (a student is in one group of each family).", ceds=_CEDS_SUBGROUP
)
MEASURE = Column("Measure", "text", "What the value measures, in words.")
MEASURE_CODE = Column("Measure code", "text", "The measure's name in the release tables and docs/metrics.md.")
REASON = Column("Reason", "text", "Why the value is flagged, in words; empty when reliable.")


def _reliability(header: str = "Reliability") -> Column:
    return Column(header, "text", _REL_MEANING)


def _moe(header: str, kind: str) -> Column:
    return Column(header, kind, _MOE_MEANING)


def _flag_words(flags: pd.Series) -> pd.Series:
    return flags.map(lambda f: _FLAG_WORDS.get(str(f), str(f).capitalize()) if isinstance(f, str) else "")


def _reasons(reasons: pd.Series) -> pd.Series:
    return reasons.map(lambda r: r if isinstance(r, str) else "")


def _as_float(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _as_int(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("Int64")


def _table_epsilon(release: Release, name: str) -> float:
    return float(release.manifest.get("tables", {}).get(name, {}).get("epsilon", math.nan))


def _rows_per_student(release: Release, name: str) -> int:
    """The contribution bound of a table, read from its manifest entry ("3 rows per student ...")."""
    words = str(release.manifest.get("tables", {}).get(name, {}).get("contribution_bound", ""))
    found = re.match(r"\s*(\d+)\s+(?:rows?|tests?|score pairs?)\s+per student", words)
    return int(found.group(1)) if found else 1


def _count_moe95(release: Release, name: str, cells: int) -> float:
    """95% margin of error of a published count that sums ``cells`` noisy bins of table ``name``."""
    eps = _table_epsilon(release, name)
    if not eps > 0:
        return math.nan
    return float(privacy.summed_count_moe95(eps, _rows_per_student(release, name), cells=cells))


def _districts(release: Release) -> pd.DataFrame:
    d = release.table("districts")
    cols = [c for c in ("district_id", "district_name", "county", "locale") if c in d.columns]
    return d[cols].drop_duplicates("district_id")


def _with_districts(df: pd.DataFrame, release: Release) -> pd.DataFrame:
    out = df.merge(_districts(release), on="district_id", how="left", validate="many_to_one")
    missing = "(not in the public district list)"
    out["district_name"] = out["district_name"].astype(object).where(out["district_name"].notna(), missing)
    for col in ("county", "locale"):
        if col not in out.columns:
            out[col] = ""
        out[col] = out[col].astype(object).where(out[col].notna(), "")
    return out


def _subgroup_order(values: pd.Series) -> pd.Series:
    order = {s: i for i, s in enumerate(subgroup_metrics.SUBGROUPS)}
    return values.map(lambda s: order.get(s, len(order)))


def _split_subgroup(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    parts = values.astype(str).str.split(": ", n=1, expand=True)
    family = parts[0]
    group = parts[1] if parts.shape[1] > 1 else pd.Series([""] * len(values), index=values.index)
    return family, group.fillna("")


def _long_outcome(
    release: Release,
    name: str,
    *,
    key: str,
    sheet: str,
    title: str,
    measures: Sequence[str],
    value_meaning: str,
    value_ceds: str = "",
    amount: bool = False,
    denominator_meaning: str = "",
) -> ReportTable:
    """A long outcome table (group columns, measure, value, margin, flag) with human headers."""
    src = release.table(name)
    df = src[src["measure"].isin(list(measures))].copy()
    order = {m: i for i, m in enumerate(measures)}
    df["_m"] = df["measure"].map(order)
    sort: list[str] = []
    cols: list[Column] = []
    data: dict[str, pd.Series] = {}
    if "district_id" in df.columns:
        df = _with_districts(df, release)
        sort.append("district_id")
    if "subgroup" in df.columns:
        df["_s"] = _subgroup_order(df["subgroup"])
        sort.append("_s")
    sort += [c for c in ("cohort", "years_out") if c in df.columns] + ["_m"]
    df = df.sort_values(sort, kind="stable").reset_index(drop=True)
    if "district_id" in df.columns:
        cols += [DISTRICT_ID, DISTRICT, COUNTY]
        data.update(
            {
                DISTRICT_ID.header: df["district_id"].astype(object),
                DISTRICT.header: df["district_name"],
                COUNTY.header: df["county"],
            }
        )
    if "subgroup" in df.columns:
        family, group = _split_subgroup(df["subgroup"])
        cols += [FAMILY, SUBGROUP]
        data.update({FAMILY.header: family.astype(object), SUBGROUP.header: group.astype(object)})
    if "cohort" in df.columns:
        cols += [COHORT, CLASS_OF]
        data.update({COHORT.header: _as_int(df["cohort"]), CLASS_OF.header: _as_int(df["cohort"]) + 3})
    if "years_out" in df.columns:
        cols.append(YEARS_OUT)
        data[YEARS_OUT.header] = _as_int(df["years_out"])
    kind = "usd" if amount else "rate"
    value = Column("Value", kind, value_meaning, ceds=value_ceds)
    moe = _moe("Margin of error (95%)", kind)
    cols += [MEASURE, MEASURE_CODE, value, moe, _reliability(), REASON]
    data.update(
        {
            MEASURE.header: df["measure"].map(lambda m: label(str(m))).astype(object),
            MEASURE_CODE.header: df["measure"].astype(object),
            value.header: _as_float(df["value"]),
            moe.header: _as_float(df["value_moe95"]),
            "Reliability": _flag_words(df["flag"]),
            REASON.header: _reasons(df["flag_reason"]),
        }
    )
    if amount:
        n = Column("Employed students (noisy count)", "count", "Employed matched students whose earnings were counted.")
        cols.append(n)
        data[n.header] = _as_int(df["n_students"])
    else:
        num = Column("Numerator (noisy count)", "count", "Students counted in the rate's numerator.")
        den = Column("Denominator (noisy count)", "count", denominator_meaning or "Students in the rate's denominator.")
        cols += [num, den]
        data.update({num.header: _as_int(df["numerator"]), den.header: _as_int(df["denominator"])})
    spec = release.manifest.get("tables", {}).get(name, {})
    return ReportTable(
        key=key,
        sheet=sheet,
        title=title,
        description=str(spec.get("title", name)) + ". " + str(spec.get("description", "")),
        sources=(name,),
        columns=tuple(cols),
        frame=pd.DataFrame(data)[[c.header for c in cols]],
    )


_RATE_FIELDS = ("value", "value_moe95", "flag", "flag_reason", "numerator", "denominator")


def _rate_cells(df: pd.DataFrame, measure: str, keys: list[str], prefix: str) -> pd.DataFrame:
    rows = df[df["measure"] == measure]
    return rows[[*keys, *_RATE_FIELDS]].rename(columns={c: f"{prefix}_{c}" for c in _RATE_FIELDS})


def linkage_table(release: Release) -> ReportTable:
    """Statewide linkage by cohort: K-12 cohort and graduation, college enrolment, wage-record coverage."""
    grad = _rate_cells(release.table("graduation_by_cohort"), "acgr_4yr", ["cohort"], "g")
    college = _rate_cells(release.table("college_by_cohort"), "enrolled_within_16_months", ["cohort"], "c")
    work = release.table("workforce_by_cohort")
    cover = _rate_cells(work[work["years_out"] == 1], "coverage", ["cohort"], "w")
    df = grad.merge(college, on="cohort", how="outer").merge(cover, on="cohort", how="outer")
    df = df.sort_values("cohort", kind="stable").reset_index(drop=True)

    def stage(prefix: str, words: str, ceds: str = "") -> list[tuple[Column, pd.Series]]:
        return [
            (Column(words, "rate", f"{words} (share).", ceds=ceds), _as_float(df[f"{prefix}_value"])),
            (_moe(f"{words}, margin of error (95%)", "rate"), _as_float(df[f"{prefix}_value_moe95"])),
            (_reliability(f"{words}, reliability"), _flag_words(df[f"{prefix}_flag"])),
            (Column(f"{words}, reason", "text", REASON.meaning), _reasons(df[f"{prefix}_flag_reason"])),
        ]

    pairs: list[tuple[Column, pd.Series]] = [
        (COHORT, _as_int(df["cohort"])),
        (CLASS_OF, _as_int(df["cohort"]) + 3),
        (
            Column(
                "Adjusted cohort (noisy count)",
                "count",
                "K-12: students in the adjusted 4-year cohort (first-time grade 9 plus transfers in, minus "
                "documented transfers out, emigrants and deaths); the denominator of the 4-year graduation rate.",
                ceds=_CEDS_COHORT,
            ),
            _as_int(df["g_denominator"]),
        ),
        *stage("g", "4-year graduation rate", _CEDS_GRAD),
        (
            Column(
                "Graduates within 5 years (noisy count)",
                "count",
                "Postsecondary: cohort graduates with a regular diploma within 5 years, followed in college "
                "enrolment records; the denominator of college enrolment.",
            ),
            _as_int(df["c_denominator"]),
        ),
        *stage("c", "Enrolled in college within 16 months"),
        (
            Column(
                "Cohort members followed 1 year out (noisy count)",
                "count",
                "Workforce: adjusted-cohort members followed in wage records 1 year after expected graduation; "
                "the denominator of the SSN-provided share.",
            ),
            _as_int(df["w_denominator"]),
        ),
        *stage("w", "SSN provided (linkable to wage records)", ""),
    ]
    cols = tuple(c for c, _ in pairs)
    frame = pd.DataFrame({c.header: s for c, s in pairs})
    return ReportTable(
        key="01_linkage_and_match_rates",
        sheet="Linkage and match rates",
        title="Linkage and match rates, K-12 to postsecondary to workforce, by cohort",
        description=(
            "Statewide, by grade-9 cohort: the adjusted cohort and its 4-year graduation rate (graduation_by_cohort), "
            "graduates enrolled in college within 16 months (college_by_cohort), and the share of cohort members "
            "whose SSN was provided and who can therefore be found in wage records, 1 year out "
            "(workforce_by_cohort, coverage)."
        ),
        sources=("graduation_by_cohort", "college_by_cohort", "workforce_by_cohort"),
        columns=cols,
        frame=frame,
    )


def record_counts_table(release: Release) -> ReportTable:
    """Noisy record counts by source and year: families asked, graduates, employed matched students."""
    parts: list[pd.DataFrame] = []
    ssn = release.table("ssn_collection_by_year").sort_values("school_year", kind="stable")
    moe = _as_float(ssn["n_asked_moe95"]) if "n_asked_moe95" in ssn.columns else pd.Series(math.nan, index=ssn.index)
    parts.append(
        pd.DataFrame(
            {
                "source": "SSN collection (school records)",
                "what": "Families asked for the student's SSN",
                "year_type": "School year of asking",
                "year": _as_int(ssn["school_year"]),
                "years_out": pd.array([pd.NA] * len(ssn), dtype="Int64"),
                "count": _as_int(ssn["n_asked"]),
                "moe": moe,
                "note": "Noisy count (differential privacy): each family is counted once, in the year it was asked.",
            }
        )
    )
    grad = release.table("graduation_by_cohort")
    grad = grad[grad["measure"] == "acgr_5yr"].sort_values("cohort", kind="stable")
    grad_moe = _count_moe95(release, "graduation_by_cohort", len(cohort_metrics.ACGR5[0]))
    parts.append(
        pd.DataFrame(
            {
                "source": "K-12 enrolment records",
                "what": "Graduates with a regular diploma within 5 years",
                "year_type": "Grade-9 cohort",
                "year": _as_int(grad["cohort"]),
                "years_out": pd.array([pd.NA] * len(grad), dtype="Int64"),
                "count": _as_int(grad["numerator"]),
                "moe": grad_moe,
                "note": "Noisy count (differential privacy): the numerator of the 5-year graduation rate.",
            }
        )
    )
    work = release.table("workforce_by_cohort")
    work = work[work["measure"] == "employment_rate"].sort_values(["cohort", "years_out"], kind="stable")
    employed_bins = len(workforce_metrics.WORKFORCE_MEASURES["employment_rate"][0])
    work_moe = _count_moe95(release, "workforce_by_cohort", employed_bins)
    parts.append(
        pd.DataFrame(
            {
                "source": "UI wage records (matched by SSN)",
                "what": "Employed matched students (2+ quarters, $3,000+ in the year)",
                "year_type": "Grade-9 cohort",
                "year": _as_int(work["cohort"]),
                "years_out": _as_int(work["years_out"]),
                "count": _as_int(work["numerator"]),
                "moe": work_moe,
                "note": "Noisy count (differential privacy): the numerator of the employment rate; "
                "students whose SSN was not provided cannot be found and are not counted.",
            }
        )
    )
    df = pd.concat(parts, ignore_index=True)
    counts = df["count"].astype(float).to_numpy()
    flags, reasons = privacy.reliability(counts, df["moe"].to_numpy(dtype=float), counts, "count")
    count_col = Column("Count (noisy)", "count", "The noisy number of records of the row's kind.")
    moe_col = _moe("Margin of error (95%)", "count")
    cols = (
        Column("Source", "text", "The linked data source the records come from."),
        Column("Records counted", "text", "What is counted."),
        Column("Year type", "text", "Whether Year is a school year of asking or a grade-9 cohort."),
        Column(
            "Year",
            "year",
            "School year of asking (SSN collection) or grade-9 cohort (graduates, employed).",
            ceds=f"School Year (000243) or {_CEDS_COHORT}",
        ),
        YEARS_OUT,
        count_col,
        moe_col,
        _reliability(),
        REASON,
        Column("Note", "text", "How to read the count."),
    )
    frame = pd.DataFrame(
        {
            "Source": df["source"],
            "Records counted": df["what"],
            "Year type": df["year_type"],
            "Year": df["year"],
            YEARS_OUT.header: df["years_out"],
            count_col.header: df["count"],
            moe_col.header: df["moe"].astype(float),
            "Reliability": _flag_words(pd.Series(flags)),
            REASON.header: pd.Series(reasons, dtype=object),
            "Note": df["note"],
        }
    )
    return ReportTable(
        key="02_record_counts_by_source_and_year",
        sheet="Record counts by source & year",
        title="Record counts by source and year (noisy counts)",
        description=(
            "Noisy counts published in the release: families asked for the SSN by school year "
            "(ssn_collection_by_year), graduates by cohort (graduation_by_cohort, acgr_5yr numerator) and "
            "employed matched students by cohort and years out (workforce_by_cohort, employment_rate numerator). "
            "Each table is its own noisy answer, so counts from different tables need not add up."
        ),
        sources=("ssn_collection_by_year", "graduation_by_cohort", "workforce_by_cohort"),
        columns=cols,
        frame=frame,
    )


def optout_table(release: Release) -> ReportTable:
    """SSN collection and opt-out by district, with district names and counties."""
    name = "ssn_collection_by_district"
    df = _with_districts(release.table(name), release).sort_values("district_id", kind="stable")
    df = df.reset_index(drop=True)
    declined_moe = _count_moe95(release, name, 1)
    asked_moe = _as_float(df["n_asked_moe95"]) if "n_asked_moe95" in df.columns else _count_moe95(release, name, 2)
    pairs: list[tuple[Column, Any]] = [
        (DISTRICT_ID, df["district_id"].astype(object)),
        (DISTRICT, df["district_name"]),
        (COUNTY, df["county"]),
        (LOCALE, df["locale"]),
        (
            Column(
                "Families asked (noisy count)",
                "count",
                "Families the district asked for the student's SSN, all school years since 2010-11.",
            ),
            _as_int(df["n_asked"]),
        ),
        (_moe("Families asked, margin of error (95%)", "count"), asked_moe),
        (
            Column("Families declined (noisy count)", "count", "Families who declined to provide the SSN."),
            _as_int(df["n_declined"]),
        ),
        (_moe("Families declined, margin of error (95%)", "count"), declined_moe),
        (Column("Opt-out rate", "rate", "Families declined / families asked."), _as_float(df["optout_rate"])),
        (_moe("Margin of error (95%)", "rate"), _as_float(df["optout_rate_moe95"])),
        (_reliability(), _flag_words(df["flag"])),
        (REASON, _reasons(df["flag_reason"])),
    ]
    frame = pd.DataFrame({c.header: s for c, s in pairs}, index=df.index)
    return ReportTable(
        key="03_ssn_collection_and_optout_by_district",
        sheet="SSN opt-out by district",
        title="SSN collection and opt-out by district",
        description=(
            "Families asked for the student's SSN and those who declined, by the district that asked, all school "
            "years (ssn_collection_by_district), joined to the public districts list. The reliability flag refers "
            "to the opt-out rate."
        ),
        sources=(name, "districts"),
        columns=tuple(c for c, _ in pairs),
        frame=frame,
    )


_GRAD_MEANING = "Adjusted cohort graduation rate: regular diplomas within 4 (or 5) years / adjusted cohort."
_COLLEGE_MEANING = "Share of graduates enrolled in college (see the measure); persistence is of those enrolled."
_WORK_MEANING = (
    "employment_rate: share of matched students employed (2+ quarters with wages, $3,000+ in the year); "
    "coverage: share of cohort members whose SSN was provided (matched)."
)
_EARN_MEANING = "Annual earnings of the employed at the measure's percentile (P25, median, P75), 2024 dollars."
_EARN_CEDS = "Cohort Median Earnings (001938) for the median"
_COLLEGE_MEASURES = (
    "enrolled_by_oct31",
    "enrolled_within_16_months",
    "enrolled_4year_by_oct31",
    "enrolled_2year_by_oct31",
    "enrolled_in_state_by_oct31",
    "enrolled_out_of_state_by_oct31",
    "persistence",
)


def outcome_tables(release: Release) -> list[ReportTable]:
    """Graduation, college-going, employment and earnings by district and by subgroup."""
    grad_den = "Adjusted cohort (4-year) or extended adjusted cohort (5-year)."
    college_den = "Graduates within 5 years (for persistence: those enrolled within 16 months)."
    work_den = "employment_rate: matched students; coverage: all cohort members in the cell."
    specs: list[dict[str, Any]] = [
        dict(
            name="graduation_by_district_pooled",
            key="04_graduation_by_district",
            sheet="Graduation by district",
            title="Graduation by district, cohorts pooled",
            measures=("acgr_4yr", "acgr_5yr"),
            value_meaning=_GRAD_MEANING,
            value_ceds=_CEDS_GRAD,
            denominator_meaning=grad_den,
        ),
        dict(
            name="graduation_by_subgroup",
            key="05_graduation_by_subgroup",
            sheet="Graduation by subgroup",
            title="Graduation by subgroup and cohort",
            measures=("acgr_4yr", "acgr_5yr"),
            value_meaning=_GRAD_MEANING,
            value_ceds=_CEDS_GRAD,
            denominator_meaning=grad_den,
        ),
        dict(
            name="college_by_district",
            key="06_college_going_by_district",
            sheet="College-going by district",
            title="College-going by district, cohorts pooled",
            measures=_COLLEGE_MEASURES,
            value_meaning=_COLLEGE_MEANING,
            denominator_meaning=college_den,
        ),
        dict(
            name="college_by_subgroup",
            key="07_college_going_by_subgroup",
            sheet="College-going by subgroup",
            title="College-going by subgroup, cohorts pooled",
            measures=_COLLEGE_MEASURES,
            value_meaning=_COLLEGE_MEANING,
            denominator_meaning=college_den,
        ),
        dict(
            name="workforce_by_district",
            key="08_employment_by_district",
            sheet="Employment by district",
            title="Employment and coverage by district and years out, cohorts pooled",
            measures=("employment_rate", "coverage"),
            value_meaning=_WORK_MEANING,
            value_ceds=_CEDS_EMPLOYED,
            denominator_meaning=work_den,
        ),
        dict(
            name="workforce_by_subgroup",
            key="09_employment_by_subgroup",
            sheet="Employment by subgroup",
            title="Employment and coverage by subgroup and years out, cohorts pooled",
            measures=("employment_rate", "coverage"),
            value_meaning=_WORK_MEANING,
            value_ceds=_CEDS_EMPLOYED,
            denominator_meaning=work_den,
        ),
        dict(
            name="earnings_by_district",
            key="10_earnings_by_district",
            sheet="Earnings by district",
            title="Earnings of the employed by district and years out (P25, median, P75)",
            measures=("p25", "p50", "p75"),
            value_meaning=_EARN_MEANING,
            value_ceds=_EARN_CEDS,
            amount=True,
        ),
        dict(
            name="earnings_by_subgroup",
            key="11_earnings_by_subgroup",
            sheet="Earnings by subgroup",
            title="Earnings of the employed by subgroup and years out (P25, median, P75)",
            measures=("p25", "p50", "p75"),
            value_meaning=_EARN_MEANING,
            value_ceds=_EARN_CEDS,
            amount=True,
        ),
    ]
    return [_long_outcome(release, **spec) for spec in specs]


def report_tables(release: Release) -> list[ReportTable]:
    """Every table of the report, in order, each a DataFrame built from ``release`` only."""
    return [linkage_table(release), record_counts_table(release), optout_table(release), *outcome_tables(release)]


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
            "last attended within the 4-year window; district tables pool the cohorts 2011-2021.",
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
            f"{_fmt_eps(loss.get('epsilon'))}, under a cap of {_fmt_eps(loss.get('cap'))}: the losses of every "
            "extract, release and researcher query on the same students add up, and no spender can pass the cap.",
        ),
        (
            p,
            "Mechanisms",
            "Counts and rates: two-sided geometric noise on one disjoint histogram per table. "
            "Earnings: the PSEO method (noisy histogram over fixed bins read as a monotone CDF). See the table below "
            "for each table's epsilon, mechanism, contribution bound and bounds.",
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
    "Delta",
    "Mechanism",
    "Contribution bound",
    "Bounds",
    "Rows",
    "Used in this report",
)


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
                float(info.get("epsilon", math.nan)),
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
            f"* {info['Release table']}: epsilon {_fmt_eps(info['Epsilon'])}, delta {_fmt_eps(info['Delta'])}; "
            f"mechanism: {info['Mechanism']}; contribution bound: {info['Contribution bound'] or 'n/a'}; "
            f"bounds: {info['Bounds'] or 'none'}; rows {info['Rows']}; "
            f"used in this report: {info['Used in this report']}"
        )
    lines += ["", "Report tables", "-" * 13]
    lines += [f"* {t.csv_name} (sheet '{t.sheet}'): {t.title}. {t.description}" for t in tables]
    return "\n".join(lines) + "\n"


def _fmt_value(value: Any) -> str:
    return _fmt_eps(value) if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------
# Writing: atomic files and deterministic zips
# ---------------------------------------------------------------------------


def _file_mode() -> int:
    """Permissions of a newly created file under the process umask (mkstemp makes them 0600)."""
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        found = re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE)
        if found:
            umask = int(found.group(1), 8)
    return 0o666 & ~umask


def _write_temp(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a complete temporary file next to ``path`` (flushed to disk) and return it; removed on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _atomic_write_all(files: dict[Path, Callable[[IO[bytes]], None]]) -> None:
    """Write every file to a temporary file first; rename them into place only when all are complete.

    If any writer fails, every temporary file is removed and no target is touched.
    """
    done: dict[Path, Path] = {}
    try:
        for path, write in files.items():
            done[path] = _write_temp(path, write)
    except BaseException:
        for tmp in done.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    try:
        for path, tmp in done.items():
            os.replace(tmp, path)
    finally:
        for tmp in done.values():
            with contextlib.suppress(OSError):
                tmp.unlink()  # only those not renamed are still there


class _FixedTimeZip(zipfile.ZipFile):
    """A zip writer whose members all carry one timestamp and fixed permissions (reproducible bytes)."""

    def __init__(self, file: IO[bytes], date_time: tuple[int, int, int, int, int, int]) -> None:
        super().__init__(file, "w", compression=zipfile.ZIP_DEFLATED)
        self._date_time = date_time

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        info.create_system = 3
        return info

    def writestr(
        self,
        zinfo_or_arcname: str | zipfile.ZipInfo,
        data: Any,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        info = zinfo_or_arcname if isinstance(zinfo_or_arcname, zipfile.ZipInfo) else self._info(zinfo_or_arcname)
        info.date_time = self._date_time
        super().writestr(info, data, compress_type, compresslevel)

    def write(
        self,
        filename: Any,
        arcname: Any = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        name = str(arcname) if arcname is not None else os.path.basename(str(filename))
        self.writestr(self._info(name), Path(filename).read_bytes(), compress_type, compresslevel)


def _plain(value: Any) -> Any:
    """A cell value as a plain Python object: None for missing, int/float for numbers, neutralised text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    text = str(value)
    return neutralise(text if len(text) <= MAX_CELL_TEXT else text[: MAX_CELL_TEXT - 1] + "…")


def _records(frame: pd.DataFrame) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False, name=None)]


def _csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in map(_plain, row)])
    return buf.getvalue().encode("utf-8")


def _write_zip(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    with _FixedTimeZip(fh, _zip_time(release)) as zf:
        for t in tables:
            zf.writestr(t.csv_name, _csv_bytes(list(t.frame.columns), _records(t.frame)))
        zf.writestr("data_dictionary.csv", _csv_bytes(_DICTIONARY_HEADERS, dictionary_rows(tables)))
        zf.writestr("methodology.txt", methodology_text(release, tables).encode("utf-8"))
        zf.writestr("manifest.json", (json.dumps(release.manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------


def _sheet_names(tables: Sequence[ReportTable]) -> list[str]:
    """Sheet names of the report tables: at most 31 characters, no []:*?/\\, unique (case-insensitive)."""
    taken = {"contents", "methodology", "data dictionary"}
    out = []
    for t in tables:
        base = re.sub(r"[\[\]:*?/\\]", "-", t.sheet).strip("'")[:31] or "Table"
        name, i = base, 2
        while name.lower() in taken:
            suffix = f" ({i})"
            name, i = base[: 31 - len(suffix)] + suffix, i + 1
        taken.add(name.lower())
        out.append(name)
    return out


def _write_sheet(
    ws: Any, headers: Sequence[str], rows: Sequence[Sequence[Any]], kinds: Sequence[str] = (), max_width: int = 60
) -> None:
    """Header row (bold, frozen, filtered), then rows; number formats by column kind; sensible widths."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws.append([neutralise(h) for h in headers])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="top", wrap_text=True)
    for row in rows:
        ws.append([_plain(v) for v in row])
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    for j, header in enumerate(headers):
        kind = kinds[j] if j < len(kinds) else "text"
        fmt = _EXCEL_FORMATS.get(kind)
        if fmt and rows:
            for (cell,) in ws.iter_rows(min_row=2, max_row=len(rows) + 1, min_col=j + 1, max_col=j + 1):
                if isinstance(cell.value, int | float):
                    cell.number_format = fmt
        longest = max([len(str(header)) * 0.8, *(len(_shown(r[j], kind)) for r in rows[:2000] if j < len(r))])
        ws.column_dimensions[get_column_letter(j + 1)].width = max(8.0, min(float(max_width), longest + 2))


def _shown(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if kind == "rate" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if kind in ("count", "usd") and isinstance(value, int | float):
        return f"${value:,.0f}" if kind == "usd" else f"{value:,.0f}"
    return str(value)


def _write_xlsx(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.writer.excel import ExcelWriter

    created = _created(release).replace(tzinfo=None)
    names = _sheet_names(tables)
    wb = Workbook()
    contents = wb.active
    contents.title = "Contents"
    facts = [[item, value, ""] for item, value in release_facts(release)]
    sheets = [
        [f"Sheet {i}", name, f"{t.title}. {t.description}"]
        for i, (name, t) in enumerate(zip(names, tables, strict=True), 2)
    ]
    sheets += [
        [f"Sheet {len(names) + 2}", "Methodology", "Definitions, privacy parameters, margins of error and flags."],
        [f"Sheet {len(names) + 3}", "Data dictionary", "Every column of every report sheet: meaning, unit, CEDS."],
    ]
    _write_sheet(contents, ["Item", "Value", "Notes"], [*facts, ["", "", ""], *sheets], max_width=90)
    for row in contents.iter_rows(min_row=len(facts) + 3, max_row=contents.max_row, min_col=2, max_col=2):
        for cell in row:
            cell.hyperlink = f"#'{cell.value}'!A1"
            cell.font = Font(color=BLUE.lstrip("#"), underline="single")
    for cell in contents["B"][1:]:
        if isinstance(cell.value, float):
            cell.number_format = "0.00##"

    for name, t in zip(names, tables, strict=True):
        ws = wb.create_sheet(name)
        _write_sheet(ws, [c.header for c in t.columns], _records(t.frame), [c.kind for c in t.columns])

    ws = wb.create_sheet("Methodology")
    notes = [list(n) for n in methodology_notes(release)]
    _write_sheet(ws, ["Section", "Topic", "Detail"], notes, max_width=100)
    ws.append([])
    start = ws.max_row + 1
    ws.append([neutralise(h) for h in ("Privacy parameters by release table", "", "")])
    ws.cell(row=start, column=1).font = Font(bold=True)
    ws.append([neutralise(h) for h in _PARAM_HEADERS])
    for cell in ws[start + 1]:
        cell.font = Font(bold=True)
    used = {s for t in tables for s in t.sources}
    for row in privacy_parameters(release, used):
        ws.append([_plain(v) for v in row])
        ws.cell(row=ws.max_row, column=4).number_format = "0.00##"
    for letter, width in zip("DEFGHIJ", (9, 7, 60, 30, 45, 8, 12), strict=True):
        ws.column_dimensions[letter].width = width
    for (cell,) in ws.iter_rows(min_row=2, max_row=len(notes) + 1, min_col=3, max_col=3):
        cell.alignment = Alignment(wrap_text=True, vertical="top")

    ws = wb.create_sheet("Data dictionary")
    _write_sheet(ws, _DICTIONARY_HEADERS, dictionary_rows(tables), max_width=70)

    wb.properties.created = created
    wb.properties.modified = created
    wb.properties.creator = "analytics.report"
    wb.properties.lastModifiedBy = "analytics.report"
    wb.properties.title = f"{REPORT_TITLE} (release {release.release_id})"
    # ExcelWriter directly: openpyxl's save_workbook would stamp "modified" with the current time.
    ExcelWriter(wb, _FixedTimeZip(fh, _zip_time(release))).save()


# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------

_PAGE = (11.0, 8.5)
_PROTECTION = (
    "How the figures are protected. Every number in this report was computed from student records and then had a "
    "small amount of random noise added before it was published (differential privacy). The noise is large enough "
    "that nobody can tell from the published figures whether any one student's records were used, and small "
    "enough that figures for large groups stay accurate. Each figure comes with a 95% margin of error that "
    "describes this noise only (not sampling or data-quality error). Figures whose margin is too wide to compare "
    "are flagged unreliable and drawn as hollow markers. The total privacy loss of the release is epsilon {eps}; "
    "smaller is more private. Counts from different tables are separate noisy answers and need not add up."
)


@lru_cache(maxsize=1)
def _font_codepoints() -> frozenset[int]:
    """Code points the default matplotlib font can draw."""
    from matplotlib import font_manager, ft2font

    font = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties()))
    return frozenset(font.get_charmap())


def pdf_text(value: Any, limit: int = 90) -> str:
    r"""Text from the data as the PDF draws it: one line, no control characters, at most ``limit``
    characters, and ``?`` for characters the font cannot draw (mathtext is off while the PDF is drawn).

    >>> pdf_text("Birch\u200bwater $x^{$ School\n")
    'Birchwater $x^{$ School'
    """
    text = "".join(ch for ch in str(value)[: 4 * limit] if unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    drawable = _font_codepoints()
    return "".join(ch if ch == " " or ord(ch) in drawable else "?" for ch in text)


def _pct(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value * 100:.1f}%"


def _clipped_err(value: np.ndarray, moe: np.ndarray) -> np.ndarray:
    """Error bars of rates, truncated at 0% and 100%."""
    return np.vstack([np.minimum(moe, value), np.minimum(moe, 1 - value)]).clip(min=0)


def _series(
    ax: Any,
    x: np.ndarray,
    rows: pd.DataFrame,
    color: str,
    name: str,
    horizontal: bool = False,
    linestyle: str = "-",
) -> None:
    """Points with error bars; unreliable points hollow."""
    value = rows["value"].to_numpy(float)
    moe = rows["value_moe95"].to_numpy(float)
    ok = np.isfinite(value)
    x, value, moe = x[ok], value[ok], np.nan_to_num(moe[ok])
    hollow = rows["flag"].to_numpy()[ok] == "unreliable"
    err = _clipped_err(value, moe)
    if not horizontal:
        ax.plot(x, value, color=color, linewidth=1.2, linestyle=linestyle, label=name)
    for mask, face in ((~hollow, color), (hollow, "white")):
        if not mask.any():
            continue
        kwargs = dict(fmt="o", color=color, markerfacecolor=face, markeredgecolor=color, capsize=3, markersize=6)
        if horizontal:
            ax.errorbar(value[mask], x[mask], xerr=err[:, mask], **kwargs)
        else:
            ax.errorbar(x[mask], value[mask], yerr=err[:, mask], **kwargs)


def _chart_page(title: str, caption: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    ax = fig.add_axes((0.1, 0.2, 0.85, 0.68))
    fig.text(0.1, 0.93, title, fontsize=15, fontweight="bold")
    fig.text(0.1, 0.04, textwrap.fill(caption, 130), fontsize=9, va="bottom")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))


def _legend(ax: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="", color="black", markerfacecolor="white"))
    labels.append("hollow: unreliable (do not compare)")
    for color, words in extra:
        handles.append(Line2D([], [], linewidth=8, color=color, alpha=0.35))
        labels.append(words)
    ax.legend(handles, labels, loc="best", fontsize=9, framealpha=0.9, edgecolor="#dddddd")


def _cohort_axis(ax: Any, cohorts: Sequence[int]) -> None:
    ax.set_xticks(list(cohorts))
    ax.set_xticklabels([str(c) for c in cohorts])
    ax.set_xlabel("Grade-9 cohort (spring year of first grade-9 enrolment; class of = cohort + 3)")


def _rate_by_cohort(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    return table[table["measure"] == measure].sort_values("cohort", kind="stable")


def _pdf_pages(release: Release, linkage: ReportTable) -> list[Any]:
    from matplotlib.figure import Figure

    eps = _fmt_eps(_epsilon_total(release))
    created = _created(release)
    figs: list[Any] = []

    title = Figure(figsize=_PAGE)
    title.text(0.08, 0.82, REPORT_TITLE, fontsize=20, fontweight="bold")
    subtitle = "Summary of the annual report package (the workbook and the CSV files hold every table)"
    title.text(0.08, 0.76, subtitle, fontsize=12)
    facts = [
        f"Release: {pdf_text(release.release_id, 60)}",
        f"Release created: {created.strftime('%Y-%m-%d %H:%M UTC')}",
        f"Dataset: {pdf_text(release.manifest.get('dataset_description', ''), 90)}",
        f"Code version: {pdf_text(release.manifest.get('code_version', ''), 60)}",
        f"Total privacy loss of the release: epsilon {eps}",
    ]
    for i, line in enumerate(facts):
        title.text(0.08, 0.66 - i * 0.045, line, fontsize=12)
    title.text(0.08, 0.40, textwrap.fill(_PROTECTION.format(eps=eps), 115), fontsize=11, va="top", linespacing=1.5)
    figs.append(title)

    grad = release.table("graduation_by_cohort")
    fig, ax = _chart_page(
        "Statewide graduation rate by cohort",
        "Adjusted cohort graduation rate, 4-year and extended 5-year (ESEA 8101(23), (25)), statewide. Error bars: 95% "
        "margin of error of the privacy noise. Source: graduation_by_cohort.",
    )
    g4, g5 = _rate_by_cohort(grad, "acgr_4yr"), _rate_by_cohort(grad, "acgr_5yr")
    _series(ax, g4["cohort"].to_numpy(float), g4, BLUE, "4-year graduation rate")
    _series(ax, g5["cohort"].to_numpy(float), g5, VERMILLION, "5-year graduation rate")
    _cohort_axis(ax, sorted(set(g4["cohort"]) | set(g5["cohort"])))
    ax.set_ylabel("Graduation rate (% of the adjusted cohort)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    figs.append(fig)

    college = release.table("college_by_cohort")
    fig, ax = _chart_page(
        "College-going of graduates by cohort",
        "Share of graduates (regular diploma within 5 years) enrolled in college by October 31 after graduation and "
        "within 16 months (EDFacts). Enrolment records cover about 94% of undergraduates: lower bounds. "
        "Source: college_by_cohort.",
    )
    c16, coct = _rate_by_cohort(college, "enrolled_within_16_months"), _rate_by_cohort(college, "enrolled_by_oct31")
    _series(ax, c16["cohort"].to_numpy(float), c16, BLUE, label("enrolled_within_16_months"))
    _series(ax, coct["cohort"].to_numpy(float), coct, GREEN, label("enrolled_by_oct31"))
    _cohort_axis(ax, sorted(set(c16["cohort"]) | set(coct["cohort"])))
    ax.set_ylabel("Graduates enrolled in college (% of graduates)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    figs.append(fig)

    work = release.table("workforce_by_cohort")
    work = work[work["years_out"] == 1]
    fig, ax = _chart_page(
        "Employment 1 year after expected graduation, with the opt-out bounds",
        "Blue: employed (2+ quarters with wages, $3,000+ in the year) among matched students, whose family provided "
        "the SSN. Grey band and points: the rate over all students if no unmatched student was employed (lower) or "
        "if every one was (upper); the band is wider where more families declined. Source: workforce_by_cohort.",
    )
    emp = _rate_by_cohort(work, "employment_rate")
    low, high = _rate_by_cohort(work, "employment_lower_bound"), _rate_by_cohort(work, "employment_upper_bound")
    band = low[["cohort", "value"]].merge(high[["cohort", "value"]], on="cohort", suffixes=("_lo", "_hi"))
    band = band[np.isfinite(band["value_lo"]) & np.isfinite(band["value_hi"])]
    ax.fill_between(
        band["cohort"].to_numpy(float),
        band["value_lo"].to_numpy(float),
        band["value_hi"].to_numpy(float),
        color=GREY,
        alpha=0.35,
        linewidth=0,
    )
    _series(ax, low["cohort"].to_numpy(float), low, GREY, "Bound: no unmatched student employed", linestyle="--")
    _series(ax, high["cohort"].to_numpy(float), high, GREY, "Bound: every unmatched student employed", linestyle=":")
    _series(ax, emp["cohort"].to_numpy(float), emp, BLUE, "Employed, of matched students")
    _cohort_axis(ax, sorted(set(emp["cohort"])))
    ax.set_ylabel("Employed 1 year out (% of students)")
    _percent_axis(ax.yaxis)
    _legend(ax, [(GREY, "between the bounds")])
    figs.append(fig)

    figs.append(_optout_by_district_page(release))
    figs.append(_optout_by_year_page(release))
    figs.append(_linkage_page(linkage))
    return figs


def _optout_by_district_page(release: Release, top: int = 25) -> Any:
    df = _with_districts(release.table("ssn_collection_by_district"), release)
    df = df[np.isfinite(df["optout_rate"].astype(float))]
    df = df.sort_values(["optout_rate", "district_id"], ascending=[False, True], kind="stable").head(top)
    df = df.iloc[::-1].reset_index(drop=True)  # highest at the top
    fig, ax = _chart_page(
        f"SSN opt-out rate by district: the {len(df)} highest",
        "Families who declined to provide the student's SSN / families asked, all school years, by the district that "
        "asked. Error bars: 95% margin of error, truncated at 0% and 100%. Small districts are noisy: most of the "
        "highest rates are flagged unreliable (hollow). Source: ssn_collection_by_district.",
    )
    ax.set_position((0.33, 0.2, 0.62, 0.68))
    rows = df.assign(value=df["optout_rate"], value_moe95=df["optout_rate_moe95"])
    y = np.arange(len(rows), dtype=float)
    _series(ax, y, rows, VERMILLION, "Opt-out rate", horizontal=True)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [
            f"{pdf_text(n, 50)} ({pdf_text(i, 16)})"
            for n, i in zip(rows["district_name"], rows["district_id"], strict=True)
        ],
        fontsize=7,
    )
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlim(0, 1)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Opt-out rate (% of families asked who declined to provide the SSN)")
    _percent_axis(ax.xaxis)
    _legend(ax)
    return fig


def _optout_by_year_page(release: Release) -> Any:
    df = release.table("ssn_collection_by_year").sort_values("school_year", kind="stable")
    fig, ax = _chart_page(
        "Statewide SSN opt-out rate by school year",
        "Families who declined / families asked, statewide, by school year of asking (2011 = 2010-11, the first "
        "year Maine asked). Its own noisy query, not a sum of district figures. Source: ssn_collection_by_year.",
    )
    rows = df.assign(value=df["optout_rate"], value_moe95=df["optout_rate_moe95"])
    _series(ax, df["school_year"].to_numpy(float), rows, VERMILLION, "Opt-out rate")
    years = [int(v) for v in df["school_year"]]
    ax.set_xticks(years)
    ax.set_xticklabels([f"{y - 1}-{str(y)[-2:]}" for y in years], fontsize=8)
    ax.set_xlabel("School year of asking")
    ax.set_ylabel("Opt-out rate (% of families asked)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    return fig


def _linkage_page(linkage: ReportTable) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    fig.text(0.05, 0.93, "Linkage and match rates by cohort (statewide)", fontsize=15, fontweight="bold")
    f = linkage.frame
    rates = (
        "4-year graduation rate",
        "Enrolled in college within 16 months",
        "SSN provided (linkable to wage records)",
    )
    headers = ["Cohort", "Adjusted cohort\n(noisy count)", *(textwrap.fill(r, 22) for r in rates)]
    cells = []
    for _, r in f.iterrows():
        row = [str(r["Cohort"]), _count_text(r["Adjusted cohort (noisy count)"])]
        for name in rates:
            value = float(r[name]) if pd.notna(r[name]) else math.nan
            moe = float(r[f"{name}, margin of error (95%)"]) if pd.notna(r[f"{name}, margin of error (95%)"]) else 0.0
            flag = str(r[f"{name}, reliability"])
            row.append(f"{_pct(value)} ± {moe * 100:.1f}" + ("" if flag == "Reliable" else f" ({flag.lower()})"))
        cells.append(row)
    ax = fig.add_axes((0.05, 0.18, 0.9, 0.7))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=headers, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.5)
    for (i, _j), cell in table.get_celld().items():
        if i == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#e8f1f8")
            cell.set_height(cell.get_height() * 2)
    caption = (
        "Rates in percent with the 95% margin of error of the privacy noise, in percentage points; figures not "
        "flagged reliable say so in brackets. The adjusted cohort is a noisy count. SSN provided: share of the "
        "cohort that can be linked to Maine wage records (1 year out). Sources: graduation_by_cohort, "
        "college_by_cohort, workforce_by_cohort."
    )
    fig.text(0.05, 0.04, textwrap.fill(caption, 140), fontsize=9, va="bottom")
    return fig


def _count_text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def _write_pdf(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    linkage = next(t for t in tables if t.key.endswith("linkage_and_match_rates"))
    import matplotlib

    metadata = {
        "Title": f"{REPORT_TITLE} (release {pdf_text(release.release_id, 60)})",
        "Subject": "Differentially private figures of a statewide longitudinal data system",
        "Creator": "analytics.report",
        "CreationDate": _created(release),
    }
    # Data-derived text is drawn literally: "$...$" in a name is not matplotlib mathtext.
    with matplotlib.rc_context({"text.parse_math": False}), PdfPages(fh, metadata=metadata) as pdf:
        for fig in _pdf_pages(release, linkage):
            pdf.savefig(fig)


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def report_paths(out: Path, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Where :func:`build_report` writes each format: ``<out stem>.<format>`` next to each other.

    >>> report_paths(Path("reports/annual.xlsx"), ["zip", "pdf"])
    {'zip': PosixPath('reports/annual.zip'), 'pdf': PosixPath('reports/annual.pdf')}
    """
    out = Path(out)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}")
    base = out.with_suffix("") if out.suffix.lower() in _SUFFIXES else out
    return {f: base.parent / f"{base.name}.{f}" for f in dict.fromkeys(formats)}


def build_report(release: Release, out: Path, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write the grant annual report package of ``release``.

    Args:
        release: a loaded release (:func:`analytics.release.load_release`); nothing else is read.
        out: the report's path, with or without a suffix; ``<stem>.xlsx``, ``<stem>.zip`` and
            ``<stem>.pdf`` are written next to each other (the folder is created).
        formats: any of "xlsx", "zip" (CSV files), "pdf".

    Returns:
        format -> path of the written file.

    Raises:
        ValueError: an unknown format, or a release without a created time.
        KeyError: the release lacks a table the report needs.

    All files are written to temporary files in the same folder and renamed into
    place only when every one is complete, so a failed or interrupted build leaves
    the complete package or none of it (any earlier package stays as it was).
    The same release gives the same workbook values, a byte-identical zip and
    the same PDF pages.
    """
    paths = report_paths(Path(out), formats)
    _created(release)  # fail before writing anything when the manifest has no created time
    tables = report_tables(release)
    writers = {"xlsx": _write_xlsx, "zip": _write_zip, "pdf": _write_pdf}
    if paths:
        next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)

    def writer(fmt: str) -> Callable[[IO[bytes]], None]:
        return lambda fh: writers[fmt](release, tables, fh)

    _atomic_write_all({path: writer(fmt) for fmt, path in paths.items()})
    return paths
