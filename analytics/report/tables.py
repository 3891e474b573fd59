"""The tables of the grant report: columns with meanings and CEDS names, built from a release only."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def _count_moe95(release: Release, name: str, cells: int) -> float:
    """95% margin of error of a published count that sums ``cells`` noisy bins of table ``name`` (NaN without any)."""
    try:
        return float(privacy.summed_count_moe95(release.count_noise(name), cells=cells))
    except (KeyError, ValueError):  # no such table, or one computed from others
        return math.nan


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
    if "numerator_moe95" in grad.columns:
        grad_moe: float | pd.Series = _as_float(grad["numerator_moe95"])
    elif "value_moe95" in grad.columns and "derived_from" in release.manifest["tables"].get("graduation_by_cohort", {}):
        # Post-processed (consistent) counts: the rate's margin times its precise denominator.
        grad_moe = (_as_float(grad["value_moe95"]) * _as_float(grad["denominator"])).round(1)
    else:
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
