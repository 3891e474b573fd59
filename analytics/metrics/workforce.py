"""Workforce outcomes 1, 3 and 5 years after expected high-school graduation.

Population: the adjusted 4-year cohort, plus students who joined the 5-year
cohort by returning (see :mod:`analytics.metrics.cohort`); year k after expected
graduation is calendar year ``cohort + 3 + k``, published only where that year is
no later than the extract's last complete wage year (:mod:`analytics.extract`).
A quarter "with wages" has a wage row above $0 (a $0 row is not employment). The
sector of a year is that of the quarter paying most (ties: the later quarter).

A student can be found in wage records only if the family provided the SSN
("matched"). Unmatched students are never counted as not employed: every
employment rate is among matched students, each row states its coverage
(matched / all), and bounds show what the rate over all students would be if
every unmatched student were employed (upper) or not (lower).

Each student-year falls in exactly one category:

=================  ===========================================================
unmatched          SSN declined or never asked: cannot be found in wage records
no_wages           matched, no wages in the year
some_wages         matched, wages in 1 quarter, or under $3,000 in the year
qualifying_part    matched, wages in 2-3 quarters and at least $3,000
qualifying_full    matched, wages in all 4 quarters and at least $3,000
=================  ===========================================================

Employment (standard, Kentucky-style "qualifying employment"): at least 2
quarters with wages and at least $3,000 in the year (nominal). Variants: any
wages in the year; all four quarters. Earnings are annual wages among the
qualifying employed, in 2024 dollars (CPI-U annual averages, BLS CUUR0000SA0).
"""

from __future__ import annotations

import functools
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from analytics import config, extract, schema
from analytics.engine import engine_of
from analytics.metrics.cohort import SUBGROUP_COLUMNS, cohort_source
from analytics.privacy import Bins

YEARS_OUT: tuple[int, ...] = (1, 3, 5)
EMPLOYMENT_THRESHOLD_USD = 3_000.0
CPI_BASE_YEAR = 2024
WORKFORCE_CATEGORIES: tuple[str, ...] = ("unmatched", "no_wages", "some_wages", "qualifying_part", "qualifying_full")
_MATCHED = ("no_wages", "some_wages", "qualifying_part", "qualifying_full")
_ALL = WORKFORCE_CATEGORIES
_EMPLOYED = ("qualifying_part", "qualifying_full")

#: Measures read from one workforce histogram: name -> (numerator, denominator categories).
WORKFORCE_MEASURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "employment_rate": (_EMPLOYED, _MATCHED),
    "employment_rate_any_wages": (("some_wages", *_EMPLOYED), _MATCHED),
    "employment_rate_full_year": (("qualifying_full",), _MATCHED),
    "coverage": (_MATCHED, _ALL),
    "employment_lower_bound": (_EMPLOYED, _ALL),
    "employment_upper_bound": (("unmatched", *_EMPLOYED), _ALL),
}

#: Public earnings bins for the PSEO percentiles: $0 to $100,000 in $5,000 steps (2024 dollars), then an
#: open top bin of $100,000 and more. A percentile that lands there is top-coded: published as
#: ">= $100,000" (``top_coded`` True), never as a number inside the bin. Fewer, wider bins carry less
#: noise into the CDF than many narrow ones.
EARNINGS_BINS = Bins(tuple(float(x) for x in range(0, 105_000, 5_000)), open_top=True)
EARNINGS_TOP_USD = EARNINGS_BINS.edges[-1]
EARNINGS_QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75)

#: NAICS sectors as published: the two-digit codes merged into the sector names.
SECTORS: tuple[str, ...] = tuple(dict.fromkeys(schema.NAICS_SECTORS.values()))

#: Postsecondary path: the level of any enrolment within 16 months after expected graduation.
PATHS: tuple[str, ...] = ("none", "2-year", "4-year")


@functools.lru_cache(maxsize=1)
def cpi_factors() -> dict[int, float]:
    """Multiplier turning nominal dollars of each year into 2024 dollars.

    >>> round(cpi_factors()[2024], 3)
    1.0
    """
    cpi = pd.read_csv(config.REFERENCE_DIR / "cpi_u_annual.csv")
    base = float(cpi.loc[cpi["year"] == CPI_BASE_YEAR, "cpi_u_annual_avg"].iloc[0])
    return {int(y): base / float(v) for y, v in zip(cpi["year"], cpi["cpi_u_annual_avg"], strict=True)}


def _lit(value: object) -> str:
    """A SQL literal for a public constant (a year, a factor, a sector name)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value)) if isinstance(value, float) else str(int(value))  # type: ignore[call-overload]


def workforce_sql(last_school_year: int, last_wage_year: int, cohort_table: str | None = None) -> str:
    """The SQL (DuckDB dialect) of :func:`workforce_rows`."""
    years = " UNION ALL ".join(f"SELECT {k} AS years_out" for k in YEARS_OUT)
    cpi = " ".join(f"WHEN {y} THEN {_lit(f)}" for y, f in sorted(cpi_factors().items()))
    sectors = " ".join(f"WHEN {_lit(code)} THEN {_lit(name)}" for code, name in schema.NAICS_SECTORS.items())
    return f"""
        WITH wf_students AS (SELECT * FROM {cohort_source(last_school_year, cohort_table)} ac),
        wf_paths AS ({postsecondary_path_sql()}),
        wf_matched AS (SELECT DISTINCT student_key FROM ssn_collection WHERE status = 'provided'),
        wf_main_employer AS (
            SELECT student_key, year, naics2 FROM (
                SELECT student_key, year, naics2,
                       row_number() OVER (PARTITION BY student_key, year
                                          ORDER BY wages DESC, quarter DESC, naics2 ASC NULLS LAST) AS pos
                FROM wages) m
            WHERE pos = 1
        ),
        wf_annual AS (
            SELECT w.student_key, w.year,
                   sum(CASE WHEN w.wages > 0 THEN 1 ELSE 0 END) AS quarters, sum(w.wages) AS wages_nominal
            FROM wages w GROUP BY w.student_key, w.year
        ),
        wf_student_years AS (
            SELECT s.*, y.years_out, s.cohort + 3 + y.years_out AS year, coalesce(p.path, 'none') AS path,
                   m.student_key IS NOT NULL AS matched
            FROM wf_students s
            CROSS JOIN ({years}) y
            LEFT JOIN wf_paths p ON p.student_key = s.student_key
            LEFT JOIN wf_matched m ON m.student_key = s.student_key
            WHERE s.cohort + 3 + y.years_out <= {int(last_wage_year)}
        ),
        wf_joined AS (
            SELECT sy.*, coalesce(a.quarters, 0) AS quarters, coalesce(a.wages_nominal, 0.0) AS wages_nominal,
                   e.naics2
            FROM wf_student_years sy
            LEFT JOIN wf_annual a ON a.student_key = sy.student_key AND a.year = sy.year
            LEFT JOIN wf_main_employer e ON e.student_key = sy.student_key AND e.year = sy.year
        ),
        wf_classified AS (
            SELECT j.*,
                   j.matched AND j.quarters >= 2 AND j.wages_nominal >= {EMPLOYMENT_THRESHOLD_USD!r} AS qualifying
            FROM wf_joined j
        )
        SELECT student_key, cohort, years_out, year, acgr_district_id, acgr_school_id,
               {", ".join(SUBGROUP_COLUMNS)}, path, matched, quarters, wages_nominal,
               wages_nominal * (CASE year {cpi} ELSE NULL END) AS earnings_2024,
               CASE WHEN NOT matched THEN 'unmatched'
                    WHEN quarters = 0 THEN 'no_wages'
                    WHEN NOT qualifying THEN 'some_wages'
                    WHEN quarters < 4 THEN 'qualifying_part'
                    ELSE 'qualifying_full' END AS category,
               CASE WHEN qualifying THEN (CASE naics2 {sectors} ELSE NULL END) ELSE NULL END AS sector
        FROM wf_classified
        """


def workforce_rows(source: Any, cohort_table: str | None = None) -> ir.Table:
    """One row per (adjusted-cohort student, years out) whose year is within the extract's last wage year.

    A relation with the columns student_key, cohort, years_out, year,
    acgr_district_id, acgr_school_id, subgroup columns, path, matched (bool),
    quarters (with wages), wages_nominal, earnings_2024 (annual, 2024 dollars),
    category (see module doc), sector (of the employer paying most in the year,
    for the qualifying employed).
    """
    last_school, last_wage, _ = extract.of(source).require_years()
    return engine_of(source).relation(workforce_sql(int(last_school), int(last_wage), cohort_table))


def postsecondary_path(source: Any) -> ir.Table:
    """Each cohort student's path (see :func:`postsecondary_path_sql`), a relation: student_key, path."""
    return engine_of(source).relation(postsecondary_path_sql())


def postsecondary_path_sql() -> str:
    """Each cohort student's path: '4-year' or '2-year' enrolment within 16 months after expected graduation.

    The window runs from July 1 of the expected graduation year to October 31 of
    the next year. A student with both levels counts as '4-year'. Columns:
    student_key, path (students with no enrolment are absent). SQL in the DuckDB dialect.
    """
    return """
        WITH path_cohorts AS (
            SELECT DISTINCT student_key, cohort + 3 AS grad_year FROM (
                SELECT student_key, arg_min(school_year - (grade - 9), school_year * 100 + grade) AS cohort
                FROM enrollments WHERE grade BETWEEN 9 AND 12 GROUP BY student_key) f
        )
        SELECT p.student_key,
               CASE WHEN bool_or(p.institution_level = '4-year') THEN '4-year' ELSE '2-year' END AS path
        FROM postsecondary p JOIN path_cohorts c USING (student_key)
        WHERE p.term_start >= make_date(c.grad_year, 7, 1) AND p.term_start <= make_date(c.grad_year + 1, 10, 31)
        GROUP BY p.student_key
        """
