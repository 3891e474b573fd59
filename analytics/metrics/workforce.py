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

import numpy as np
import pandas as pd

from analytics import config, extract, schema
from analytics.io import DataSource
from analytics.metrics.cohort import adjusted_cohort
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


def workforce_rows(source: DataSource) -> pd.DataFrame:
    """One row per (adjusted-cohort student, years out) whose year is within the extract's last wage year.

    Columns: student_key, cohort, years_out, year, acgr_district_id, subgroup
    columns, path, matched (bool), quarters (with wages), wages_nominal,
    earnings_2024 (annual, 2024 dollars), category (see module doc), sector
    (of the employer paying most in the year, for the qualifying employed).
    """
    last_wage_year = extract.of(source).require_years()[1]
    students = adjusted_cohort(source)
    path = postsecondary_path(source)
    students = students.merge(path, on="student_key", how="left")
    students["path"] = students["path"].fillna("none")
    matched = source.sql("SELECT student_key FROM ssn_collection WHERE status = 'provided'")["student_key"]
    annual = source.sql(
        """
        SELECT student_key, year, count(*) FILTER (WHERE wages > 0) AS quarters, sum(wages) AS wages_nominal,
               arg_max(naics2, [wages, quarter]) AS naics2
        FROM wages GROUP BY student_key, year
        """
    )
    frames = []
    for k in YEARS_OUT:
        f = students.assign(years_out=k, year=students["cohort"] + 3 + k)
        frames.append(f[f["year"] <= last_wage_year])
    rows = pd.concat(frames, ignore_index=True).merge(annual, on=["student_key", "year"], how="left")
    rows["matched"] = rows["student_key"].isin(set(matched))
    rows["quarters"] = rows["quarters"].fillna(0).astype(int)
    rows["wages_nominal"] = rows["wages_nominal"].fillna(0.0)
    qualifying = (rows["quarters"] >= 2) & (rows["wages_nominal"] >= EMPLOYMENT_THRESHOLD_USD)
    rows["category"] = np.select(
        [~rows["matched"], rows["quarters"] == 0, ~qualifying, rows["quarters"] < 4],
        ["unmatched", "no_wages", "some_wages", "qualifying_part"],
        default="qualifying_full",
    )
    factors = cpi_factors()
    rows["earnings_2024"] = rows["wages_nominal"] * rows["year"].map(factors).astype(float)
    rows["sector"] = rows["naics2"].map(schema.NAICS_SECTORS)
    rows.loc[~qualifying | ~rows["matched"], "sector"] = None
    return rows.drop(columns=["naics2"])


def postsecondary_path(source: DataSource) -> pd.DataFrame:
    """Each cohort student's path: '4-year' or '2-year' enrolment within 16 months after expected graduation.

    The window runs from July 1 of the expected graduation year to October 31 of
    the next year. A student with both levels counts as '4-year'. Columns:
    student_key, path (students with no enrolment are absent).
    """
    return source.sql(
        """
        WITH c AS (
            SELECT DISTINCT student_key, cohort + 3 AS grad_year FROM (
                SELECT student_key, arg_min(school_year - (grade - 9), school_year * 100 + grade) AS cohort
                FROM enrollments WHERE grade BETWEEN 9 AND 12 GROUP BY student_key)
        )
        SELECT p.student_key,
               CASE WHEN bool_or(p.institution_level = '4-year') THEN '4-year' ELSE '2-year' END AS path
        FROM postsecondary p JOIN c USING (student_key)
        WHERE p.term_start >= make_date(c.grad_year, 7, 1) AND p.term_start <= make_date(c.grad_year + 1, 10, 31)
        GROUP BY p.student_key
        """
    )
