"""The DuckDB floor: the release's exact aggregates in a few DuckDB queries, then numpy noise.

    python -m benchmarks.floor DATA_DIR [--tables all|four] [--memory-limit 3GB] [--export DIR]

What a release must at least do, done about as cheaply as a single machine can: it reads the
contract tables of a dataset folder (``<table>.parquet`` or ``.csv``, as written by
``python -m analytics generate``) straight from disk, computes every exact histogram, count and
sum the release's noisy tables are read from (the same cells over the same public keys, with the
same contribution bounds), and adds numpy noise to each cell. It is the denominator of the
"release CPU <= 2x the floor" target of ``python -m benchmarks.scale``.

The definitions are those of ``analytics.metrics`` and ``analytics.catalog`` (one definition each,
written here as SQL; ``tests/test_floor.py`` checks the cells against the generator's planted truth):

- **cohort students** (one row per student of an adjusted 4- or 5-year cohort): the cohort, the
  ACGR category and the attributed school and district (the last record of the window, same order
  as ``metrics.cohort``), the SSN linkage category, the postsecondary path and, for graduates whose
  16-month window is over, the college category (first term, level, place, persistence);
- from them, in one grouped query: ``graduation_measurements`` (school x cohort, district x cohort,
  district pooled, state x cohort; 4- and 5-year), ``graduation_by_subgroup``,
  ``match_by_district_cohort``, ``college_by_cohort/_district/_subgroup``;
- **workforce rows** (cohort student x 1, 3, 5 years out, within the last wage year), in one
  grouped query: ``workforce_by_cohort/_district/_subgroup/_path``, ``earnings_by_*`` ($5,000
  bins of 2024 dollars, open top bin at $100,000) and ``industry_by_years_out``;
- **tests** (attributed to the school of the year), bounded to 18 per student by a per-student
  rank on a hash of the row, in one grouped query: ``proficiency_by_year/_grade/_district/
  _school/_subgroup``; **score pairs** (grade g-1 to g, g in 4-8) ranked the same way: the
  ``growth_model`` statistics (10 pairs per student), then, after the noisy model is fitted, the
  growth percentile bins and clamped residual sums of ``growth_by_school/_district`` (2 pairs);
- ``ssn_collection_by_district/_district_year/_by_year`` from one grouped count.

Contribution bounds that hold by construction are not re-applied: one row per cohort student
(the cohort query returns one), one SSN row per student (the contract's primary key), three
workforce rows per student (one per years out). Left out: the graduation tables derived from
``graduation_measurements`` (post-processing, no microdata), and the release's other
post-processing (rates, bootstrap margins, percentiles, consistency, small-area models, files).
The noise is numpy's (two-sided geometric counts, Gaussian graduation levels, Laplace sums) at
the scale each table's share of the default budget gives; it is a cost reference, not a safe
mechanism (floating-point Laplace and Gaussian). Tables the release publishes and this floor
computes are listed in :data:`TABLES`.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analytics import config, schema

# ---------------------------------------------------------------------------
# Public lists and constants (mirroring analytics.catalog and analytics.metrics)
# ---------------------------------------------------------------------------
COHORTS: tuple[int, ...] = tuple(range(2011, 2022))
SSN_YEARS: tuple[int, ...] = tuple(range(schema.FIRST_SSN_SCHOOL_YEAR, 2026))
PROFICIENCY_YEARS: tuple[int, ...] = tuple(range(2005, 2026))
YEARS_OUT: tuple[int, ...] = (1, 3, 5)
GROWTH_GRADES: tuple[int, ...] = (4, 5, 6, 7, 8)
TESTS_PER_STUDENT = len(schema.SUBJECTS) * (len(schema.ASSESSED_GRADES) + 2)
MODEL_PAIRS_PER_STUDENT = 10
GROWTH_PAIRS_PER_STUDENT = 2
SUBGROUP_FAMILIES = 5
N_BANDS = 10
GAIN_BOUND_SHARE = 0.12
SGP_BINS = 20  # growth percentiles 1-99 in bins of 5 (edges 0, 5, ..., 100)
EARNINGS_BIN_USD = 5_000.0
EARNINGS_BINS = 21  # $0-$100,000 in $5,000 steps, then the open top bin
EMPLOYMENT_THRESHOLD_USD = 3_000.0
CPI_BASE_YEAR = 2024
DEFAULT_DELTA = 1e-10
ACGR_CATEGORIES = (
    "grad4",
    "grad5",
    "removed5",
    "not_graduated",
    "returned_grad5",
    "returned_not_graduated",
    "grad4_open",
    "in4_open",
)
#: measure -> (numerator, denominator categories, years after the cohort its window needs).
ACGR: dict[str, tuple[tuple[str, ...], tuple[str, ...], int]] = {
    "acgr_4yr": (
        ("grad4", "grad4_open"),
        ("grad4", "grad5", "removed5", "not_graduated", "grad4_open", "in4_open"),
        3,
    ),
    "acgr_5yr": (
        ("grad4", "grad5", "returned_grad5"),
        ("grad4", "grad5", "not_graduated", "returned_grad5", "returned_not_graduated"),
        4,
    ),
}
GRADUATE_CATEGORIES = ("grad4", "grad5", "returned_grad5", "grad4_open")
COLLEGE_CATEGORIES: tuple[str, ...] = (
    "none",
    *(
        f"{t}|{lv}|{p}|{s}"
        for t in ("fall", "later")
        for lv in ("2-year", "4-year")
        for p in ("in_state", "out_of_state")
        for s in ("persisted", "left", "open")
    ),
)
MATCH_CATEGORIES = ("not_provided", "provided_not_found", "provided_found")
WORKFORCE_CATEGORIES = ("unmatched", "no_wages", "some_wages", "qualifying_part", "qualifying_full")
EMPLOYED = ("qualifying_part", "qualifying_full")
PATHS = ("none", "2-year", "4-year")
SECTORS: tuple[str, ...] = tuple(dict.fromkeys(schema.NAICS_SECTORS.values()))
FAMILY_COLUMNS = ("sex", "race_ethnicity", "economically_disadvantaged", "english_learner", "disability")
FAMILY_LABELS = {
    "sex": "Sex",
    "race_ethnicity": "Race/ethnicity",
    "economically_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "disability": "Disability (IDEA)",
}
SUBGROUPS: tuple[str, ...] = (
    *(f"Sex: {s}" for s in schema.SEXES),
    *(f"Race/ethnicity: {r}" for r in schema.RACE_ETHNICITY),
    *(f"{FAMILY_LABELS[c]}: {v}" for c in FAMILY_COLUMNS[2:] for v in ("yes", "no")),
)

#: Every noisy table of the release the floor computes: name -> (relative share of the budget, L1 bound).
TABLES: dict[str, tuple[float, int]] = {
    "ssn_collection_by_district": (0.25, 1),
    "ssn_collection_by_district_year": (0.15, 1),
    "ssn_collection_by_year": (0.1, 1),
    "match_by_district_cohort": (0.3, 1),
    "graduation_measurements": (1.1, 1),
    "graduation_by_subgroup": (0.2, SUBGROUP_FAMILIES),
    "proficiency_by_year": (0.15, TESTS_PER_STUDENT),
    "proficiency_by_grade": (0.1, TESTS_PER_STUDENT),
    "proficiency_by_district": (0.3, TESTS_PER_STUDENT),
    "proficiency_by_school": (0.2, TESTS_PER_STUDENT),
    "proficiency_by_subgroup": (0.1, TESTS_PER_STUDENT * SUBGROUP_FAMILIES),
    "growth_model": (0.4, MODEL_PAIRS_PER_STUDENT),
    "growth_by_school": (0.4, GROWTH_PAIRS_PER_STUDENT),
    "growth_by_district": (0.3, GROWTH_PAIRS_PER_STUDENT),
    "college_by_cohort": (0.1, 1),
    "college_by_district": (0.3, 1),
    "college_by_subgroup": (0.2, SUBGROUP_FAMILIES),
    "workforce_by_cohort": (0.2, 3),
    "workforce_by_district": (0.4, 3),
    "workforce_by_subgroup": (0.3, 3 * SUBGROUP_FAMILIES),
    "workforce_by_path": (0.1, 3),
    "earnings_by_cohort": (0.2, 3),
    "earnings_by_district": (0.3, 3),
    "earnings_by_subgroup": (0.2, 3 * SUBGROUP_FAMILIES),
    "earnings_by_path": (0.1, 3),
    "industry_by_years_out": (0.1, 3),
}
#: The four tables the issue's peer comparison uses (graduation, workforce and earnings by district, opt-out).
FOUR_TABLES: tuple[str, ...] = (
    "graduation_by_district",
    "workforce_by_district",
    "earnings_by_district",
    "ssn_collection_by_district_year",
)
DEFAULT_TOTAL_EPSILON = 6.55

_SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"}


# ---------------------------------------------------------------------------
# Loading: views straight over the files
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Years:
    """The extract's last school, wage and postsecondary years."""

    school: int
    wage: int
    post: int


def connect(
    dataset_dir: Path, memory_limit: str | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per contract table over its file in ``dataset_dir``.

    Raises FileNotFoundError naming the table when a table has no ``.parquet`` or ``.csv`` file.
    """
    con = duckdb.connect(":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    for name in schema.TABLE_NAMES:
        parquet, csv = dataset_dir / f"{name}.parquet", dataset_dir / f"{name}.csv"
        if parquet.is_file():
            source = f"read_parquet('{_path(parquet)}')"
        elif csv.is_file():
            spec = schema.table(name)
            types = ", ".join(f"'{c.name}': '{_SQL_TYPES[c.dtype]}'" for c in spec.columns)
            source = f"read_csv('{_path(csv)}', header = true, columns = {{{types}}})"
        else:
            raise FileNotFoundError(f"{name}: no {name}.parquet or {name}.csv in {dataset_dir}")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    if "institution_id" not in {r[0] for r in con.execute("DESCRIBE postsecondary").fetchall()}:
        con.execute(
            "CREATE OR REPLACE VIEW postsecondary AS SELECT *, NULL::VARCHAR AS institution_id FROM " + _ps(dataset_dir)
        )
    return con


def _ps(dataset_dir: Path) -> str:
    parquet = dataset_dir / "postsecondary.parquet"
    if parquet.is_file():
        return f"read_parquet('{_path(parquet)}')"
    spec = schema.table("postsecondary")
    types = ", ".join(f"'{c.name}': '{_SQL_TYPES[c.dtype]}'" for c in spec.columns if c.name != "institution_id")
    return f"read_csv('{_path(dataset_dir / 'postsecondary.csv')}', header = true, columns = {{{types}}})"


def _path(p: Path) -> str:
    return str(p.resolve()).replace("'", "''")


def end_years(con: duckdb.DuckDBPyConnection, dataset_dir: Path) -> Years:
    """The end years declared in ``extract.json``, else derived from the data as ``analytics.extract`` does."""
    declared: dict[str, int] = {}
    path = dataset_dir / "extract.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        declared = {k: int(v) for k, v in data.items() if k.startswith("last_") and v is not None}

    def scalar(query: str) -> int:
        return int(con.execute(query).fetchone()[0])  # type: ignore[index]

    school = declared.get("last_school_year") or scalar("SELECT max(school_year) FROM enrollments")
    wage = declared.get("last_wage_year")
    if wage is None:
        found = con.execute("SELECT max(year) FROM wages WHERE quarter = 4").fetchone()
        wage = int(found[0]) if found and found[0] is not None else scalar("SELECT max(year) FROM wages") - 1
    post = declared.get("last_postsecondary_year") or scalar("SELECT year(max(term_start)) FROM postsecondary")
    return Years(int(school), int(wage), int(post))


def score_scales(dataset_dir: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """(subject, grade) -> (low, high) reporting range from ``extract.json`` (default 200-700)."""
    scales = {(s, g): (200.0, 700.0) for s in schema.SUBJECTS for g in schema.ASSESSED_GRADES}
    path = dataset_dir / "extract.json"
    raw = json.loads(path.read_text(encoding="utf-8")).get("score_scales", {}) if path.is_file() else {}
    for subject, spec in raw.items():
        if isinstance(spec, dict):
            for grade, rng in spec.items():
                scales[(subject, int(grade))] = (float(rng[0]), float(rng[1]))
        else:
            for grade in schema.ASSESSED_GRADES:
                scales[(subject, grade)] = (float(spec[0]), float(spec[1]))
    return scales


# ---------------------------------------------------------------------------
# The exact work
# ---------------------------------------------------------------------------
def _cohort_students(con: duckdb.DuckDBPyConnection, years: Years) -> None:
    """Temp table ``cs``: one row per adjusted-cohort student with every per-student category."""
    removing = ", ".join(f"'{e}'" for e in schema.COHORT_REMOVING_EXITS)
    last, last_post = years.school, years.post
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE cs AS
        WITH per_student AS (
            SELECT student_key,
                   arg_min(school_year - (grade - 9), school_year * 100 + grade)
                       FILTER (WHERE grade BETWEEN 9 AND 12) AS cohort,
                   min(school_year) FILTER (WHERE exit_type = 'graduated') AS grad_year
            FROM enrollments GROUP BY student_key
        ),
        next_year AS (SELECT student_key, school_year - 1 AS school_year, school_id FROM enrollments),
        ranked AS (
            SELECT h.student_key, h.school_year, h.school_id, s.district_id, h.exit_type, p.cohort,
                   CASE WHEN h.exit_type = 'graduated' THEN 5
                        WHEN n.student_key IS NOT NULL THEN 4
                        WHEN h.exit_type IN ('dropped_out', 'other') THEN 3
                        WHEN h.exit_type IN ({removing}) THEN 2
                        ELSE 1 END AS year_rank
            FROM enrollments h
            JOIN schools s USING (school_id)
            JOIN per_student p USING (student_key)
            LEFT JOIN next_year n USING (student_key, school_year, school_id)
            WHERE h.grade BETWEEN 9 AND 12 AND h.school_year <= p.cohort + 4
        ),
        last_records AS (
            SELECT student_key, any_value(cohort) AS cohort,
                   arg_min({{'s': school_id, 'd': district_id, 'e': exit_type}},
                           {{'y': -school_year, 'r': -year_rank, 's': school_id}})
                       FILTER (WHERE school_year <= cohort + 3) AS l4,
                   arg_min({{'s': school_id, 'd': district_id, 'e': exit_type}},
                           {{'y': -school_year, 'r': -year_rank, 's': school_id}}) AS l5
            FROM ranked GROUP BY student_key
        ),
        joined AS (
            SELECT l.student_key, l.cohort, p.grad_year,
                   l.l4.e IN ({removing}) AND coalesce(p.grad_year > l.cohort + 3, TRUE) AS removed_4yr,
                   l.l5.e IN ({removing}) AS removed_5yr,
                   l.l4.s AS school4, l.l4.d AS district4, l.l5.s AS school5, l.l5.d AS district5
            FROM last_records l JOIN per_student p USING (student_key)
            WHERE l.l4 IS NOT NULL
        ),
        outcomes AS (
            SELECT student_key, cohort, grad_year,
                   CASE
                     WHEN cohort + 3 > {last} THEN NULL
                     WHEN grad_year <= cohort + 3 THEN CASE WHEN cohort + 4 > {last} THEN 'grad4_open' ELSE 'grad4' END
                     WHEN removed_4yr THEN CASE
                         WHEN cohort + 4 > {last} OR removed_5yr THEN NULL
                         WHEN grad_year = cohort + 4 THEN 'returned_grad5'
                         ELSE 'returned_not_graduated' END
                     WHEN cohort + 4 > {last} THEN 'in4_open'
                     WHEN grad_year = cohort + 4 THEN 'grad5'
                     WHEN removed_5yr THEN 'removed5'
                     ELSE 'not_graduated'
                   END AS acgr_category,
                   CASE WHEN removed_4yr THEN school5 ELSE school4 END AS school_id,
                   CASE WHEN removed_4yr THEN district5 ELSE district4 END AS district_id
            FROM joined
        ),
        kept AS (SELECT * FROM outcomes WHERE acgr_category IS NOT NULL),
        linked AS (
            SELECT s.student_key, s.status = 'provided' AS provided FROM ssn_collection s
        ),
        found AS (SELECT DISTINCT student_key FROM wy WHERE quarters > 0),
        terms AS (
            SELECT k.student_key,
                   bool_or(p.term_start BETWEEN make_date(k.cohort + 3, 7, 1) AND make_date(k.cohort + 4, 10, 31))
                       AS path_any,
                   bool_or(p.institution_level = '4-year'
                           AND p.term_start BETWEEN make_date(k.cohort + 3, 7, 1) AND make_date(k.cohort + 4, 10, 31))
                       AS path_four,
                   arg_min({{'t': p.term_start, 'l': p.institution_level, 'i': p.in_state}},
                           {{'t': p.term_start, 'l': p.institution_level <> '4-year', 'i': NOT p.in_state,
                             'c': p.control <> 'public', 'n': p.institution_id}})
                       FILTER (WHERE p.term_start BETWEEN make_date(k.grad_year, 7, 1)
                                                      AND make_date(k.grad_year + 1, 10, 31)) AS first_term,
                   list(DISTINCT year(p.term_start - INTERVAL 6 MONTH)) AS academic_years
            FROM kept k JOIN postsecondary p USING (student_key)
            GROUP BY k.student_key
        )
        SELECT k.student_key, k.cohort, k.acgr_category, k.school_id, k.district_id,
               st.sex, st.race_ethnicity,
               CASE WHEN st.economically_disadvantaged THEN 'yes' ELSE 'no' END AS economically_disadvantaged,
               CASE WHEN st.english_learner THEN 'yes' ELSE 'no' END AS english_learner,
               CASE WHEN st.disability THEN 'yes' ELSE 'no' END AS disability,
               CASE WHEN NOT coalesce(l.provided, FALSE) THEN 'not_provided'
                    WHEN f.student_key IS NOT NULL THEN 'provided_found'
                    ELSE 'provided_not_found' END AS match_category,
               coalesce(l.provided, FALSE) AS matched,
               CASE WHEN t.path_four THEN '4-year' WHEN t.path_any THEN '2-year' ELSE 'none' END AS path,
               CASE
                 WHEN k.acgr_category NOT IN ({", ".join(f"'{c}'" for c in GRADUATE_CATEGORIES)})
                      OR k.cohort + 5 > {last_post} THEN NULL
                 WHEN t.first_term IS NULL THEN 'none'
                 ELSE concat_ws('|',
                     CASE WHEN t.first_term.t <= make_date(k.grad_year, 10, 31) THEN 'fall' ELSE 'later' END,
                     t.first_term.l,
                     CASE WHEN t.first_term.i THEN 'in_state' ELSE 'out_of_state' END,
                     CASE WHEN list_contains(t.academic_years, year(t.first_term.t - INTERVAL 6 MONTH) + 1)
                          THEN 'persisted'
                          WHEN year(t.first_term.t - INTERVAL 6 MONTH) + 2 > {last_post} THEN 'open'
                          ELSE 'left' END)
               END AS college_category
        FROM kept k
        LEFT JOIN students st USING (student_key)
        LEFT JOIN linked l USING (student_key)
        LEFT JOIN found f USING (student_key)
        LEFT JOIN terms t USING (student_key)
        """
    )


def _wage_years(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``wy``: one row per (student, calendar year) with wages: quarters with wages, total, main sector."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE wy AS
        SELECT student_key, year, count(*) FILTER (WHERE wages > 0) AS quarters, sum(wages) AS wages_nominal,
               arg_max(naics2, [wages, quarter]) AS naics2
        FROM wages GROUP BY student_key, year
        """
    )


def _grouped(
    con: duckdb.DuckDBPyConnection, relation: str, sets: dict[str, Sequence[str]], aggregates: str
) -> dict[str, pd.DataFrame]:
    """One GROUP BY GROUPING SETS query over ``relation``; the result split by set, NULL-key groups kept."""
    columns = list(dict.fromkeys(c for cols in sets.values() for c in cols))
    grouping = ", ".join("(" + ", ".join(cols) + ")" for cols in sets.values())
    df = con.execute(
        f"SELECT GROUPING_ID({', '.join(columns)}) AS _gid, {', '.join(columns)}, {aggregates} "
        f"FROM {relation} GROUP BY GROUPING SETS ({grouping})"
    ).df()
    out = {}
    for name, cols in sets.items():
        gid = sum(1 << (len(columns) - 1 - i) for i, c in enumerate(columns) if c not in cols)
        part = df[df["_gid"] == gid]
        out[name] = part[[*cols, *[c for c in df.columns if c not in columns and c != "_gid"]]].reset_index(drop=True)
    return out


def _domain(frame: pd.DataFrame, domains: dict[str, Sequence[object]], value: str = "n") -> pd.DataFrame:
    """Sum ``value`` over the full public domain (keys outside it dropped, empty cells 0)."""
    keys = list(domains)
    index = pd.MultiIndex.from_product([list(v) for v in domains.values()], names=keys)
    if frame.empty:
        return index.to_frame(index=False).assign(**{value: 0})
    summed = frame.groupby(keys, dropna=False)[value].sum()
    out = summed.reindex(index, fill_value=0).reset_index()
    return out


def _family_long(parts: dict[str, pd.DataFrame], extra: Sequence[str], value: str = "n") -> pd.DataFrame:
    """Stack the five subgroup-family groupings into one frame with a ``subgroup`` label."""
    frames = []
    for col in FAMILY_COLUMNS:
        part = parts[col]
        frames.append(
            pd.DataFrame({"subgroup": FAMILY_LABELS[col] + ": " + part[col].astype(str)})
            .join(part[list(extra)])
            .assign(**{value: part[value]})
        )
    return pd.concat(frames, ignore_index=True)


def _public_lists(con: duckdb.DuckDBPyConnection) -> dict[str, list[object]]:
    schools = con.execute("SELECT school_id, district_id, school_level FROM schools ORDER BY school_id").df()
    districts = con.execute("SELECT district_id FROM districts ORDER BY district_id").df()["district_id"].tolist()
    high = schools[schools["school_level"].isin(["High", "Combined"])]
    growth = schools[schools["school_level"].isin(["Elementary", "Middle", "Combined"])]
    return {
        "districts": districts,
        "schools": schools["school_id"].tolist(),
        "high_schools": high["school_id"].tolist(),
        "high_school_districts": sorted(high["district_id"].unique().tolist()),
        "growth_schools": growth["school_id"].tolist(),
    }


def _cohort_tables(
    con: duckdb.DuckDBPyConnection, lists: dict[str, list[object]], years: Years
) -> dict[str, pd.DataFrame]:
    per_cell = ("cohort", "acgr_category", "college_category")
    sets: dict[str, Sequence[str]] = {
        "cells": ("school_id", "district_id", "cohort", "acgr_category", "match_category", "college_category"),
        **{col: (col, *per_cell) for col in FAMILY_COLUMNS},
    }
    g = _grouped(con, "cs", sets, "count(*) AS n")
    cells = g["cells"]
    out: dict[str, pd.DataFrame] = {}
    out["match_by_district_cohort"] = _domain(
        cells.rename(columns={"match_category": "category"}),
        {"district_id": lists["districts"], "cohort": COHORTS, "category": MATCH_CATEGORIES},
    )
    levels = []
    for measure, (num, den, window) in ACGR.items():
        cohorts = [c for c in COHORTS if c + window <= years.school]
        rows = cells[cells["acgr_category"].isin(den) & cells["cohort"].isin(cohorts)]
        rows = rows.assign(outcome=np.where(rows["acgr_category"].isin(num), "yes", "no"))
        for level, domains in {
            "school": {"school_id": lists["high_schools"], "cohort": cohorts},
            "district": {"district_id": lists["high_school_districts"], "cohort": cohorts},
            "district_pooled": {"district_id": lists["high_school_districts"]},
            "state": {"cohort": cohorts},
        }.items():
            levels.append(_domain(rows, {**domains, "outcome": ("yes", "no")}).assign(measure=measure, level=level))
    out["graduation_measurements"] = pd.concat(levels, ignore_index=True)
    fam = _family_long({c: g[c] for c in FAMILY_COLUMNS}, ("cohort", "acgr_category", "college_category"))
    out["graduation_by_subgroup"] = _domain(
        fam.rename(columns={"acgr_category": "category"}),
        {"subgroup": SUBGROUPS, "cohort": COHORTS, "category": ACGR_CATEGORIES},
    )
    college = cells.rename(columns={"college_category": "category"})
    out["college_by_cohort"] = _domain(college, {"cohort": COHORTS, "category": COLLEGE_CATEGORIES})
    out["college_by_district"] = _domain(college, {"district_id": lists["districts"], "category": COLLEGE_CATEGORIES})
    out["college_by_subgroup"] = _domain(
        fam.rename(columns={"college_category": "category"}),
        {"subgroup": SUBGROUPS, "category": COLLEGE_CATEGORIES},
    )
    return out


def _cpi_values() -> str:
    cpi = pd.read_csv(config.REFERENCE_DIR / "cpi_u_annual.csv")
    base = float(cpi.loc[cpi["year"] == CPI_BASE_YEAR, "cpi_u_annual_avg"].iloc[0])
    return ", ".join(
        f"({int(y)}, {base / float(v)!r})" for y, v in zip(cpi["year"], cpi["cpi_u_annual_avg"], strict=True)
    )


def _workforce_tables(
    con: duckdb.DuckDBPyConnection, lists: dict[str, list[object]], years: Years
) -> dict[str, pd.DataFrame]:
    sectors = ", ".join(f"('{_esc(code)}', '{_esc(name)}')" for code, name in schema.NAICS_SECTORS.items())
    relation = f"""(
        WITH wf AS (
            SELECT c.*, k.years_out, c.cohort + 3 + k.years_out AS year
            FROM cs c CROSS JOIN (VALUES (1), (3), (5)) k(years_out)
            WHERE c.cohort + 3 + k.years_out <= {years.wage}
        ),
        rows AS (
            SELECT wf.*, coalesce(w.quarters, 0) AS quarters, coalesce(w.wages_nominal, 0.0) AS wages_nominal,
                   w.naics2, cpi.factor
            FROM wf LEFT JOIN wy w USING (student_key, year)
            LEFT JOIN (VALUES {_cpi_values()}) cpi(year, factor) USING (year)
        ),
        categorised AS (
            SELECT *,
                   CASE WHEN NOT matched THEN 'unmatched'
                        WHEN quarters = 0 THEN 'no_wages'
                        WHEN quarters < 2 OR wages_nominal < {EMPLOYMENT_THRESHOLD_USD} THEN 'some_wages'
                        WHEN quarters < 4 THEN 'qualifying_part'
                        ELSE 'qualifying_full' END AS category
            FROM rows
        )
        SELECT c.*,
               CASE WHEN c.category IN ('qualifying_part', 'qualifying_full')
                    THEN least(greatest(floor(c.wages_nominal * c.factor / {EARNINGS_BIN_USD}), 0), {EARNINGS_BINS - 1})
               END::INTEGER AS earnings_bin,
               CASE WHEN c.category IN ('qualifying_part', 'qualifying_full') THEN s.sector END AS sector
        FROM categorised c LEFT JOIN (VALUES {sectors}) s(naics2, sector) USING (naics2)
    )"""
    per_cell = ("years_out", "category", "earnings_bin")
    sets: dict[str, Sequence[str]] = {
        "cohort": ("cohort", *per_cell),
        "district": ("district_id", *per_cell),
        "path": ("path", *per_cell),
        "sector": ("years_out", "sector"),
        **{col: (col, *per_cell) for col in FAMILY_COLUMNS},
    }
    g = _grouped(con, relation, sets, "count(*) AS n")
    fam = _family_long({c: g[c] for c in FAMILY_COLUMNS}, per_cell)
    keys: dict[str, tuple[str, Sequence[object], pd.DataFrame]] = {
        "cohort": ("cohort", COHORTS, g["cohort"]),
        "district": ("district_id", lists["districts"], g["district"]),
        "subgroup": ("subgroup", SUBGROUPS, fam),
        "path": ("path", PATHS, g["path"]),
    }
    out: dict[str, pd.DataFrame] = {}
    for name, (col, domain, frame) in keys.items():
        out[f"workforce_by_{name}"] = _domain(
            frame, {col: domain, "years_out": YEARS_OUT, "category": WORKFORCE_CATEGORIES}
        )
        employed = frame[frame["category"].isin(EMPLOYED)]
        out[f"earnings_by_{name}"] = _domain(
            employed, {col: domain, "years_out": YEARS_OUT, "earnings_bin": range(EARNINGS_BINS)}
        )
    out["industry_by_years_out"] = _domain(g["sector"], {"years_out": YEARS_OUT, "sector": SECTORS})
    return out


def _tests(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``tests``: attributed tests with a per-student rank on a hash of the row (bounding order)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE tests AS
        WITH next_year AS (SELECT student_key, school_year - 1 AS school_year, school_id FROM enrollments),
        enrol AS (
            SELECT e.student_key, e.school_year,
                   arg_min(e.school_id, {{'n': n.student_key IS NULL, 's': e.school_id}}) AS school_id
            FROM enrollments e LEFT JOIN next_year n USING (student_key, school_year, school_id)
            GROUP BY e.student_key, e.school_year
        )
        SELECT a.student_key, a.school_year, a.grade, a.subject, a.scale_score,
               a.achievement_level >= {schema.PROFICIENT_LEVEL} AS proficient, e.school_id, s.district_id,
               row_number() OVER (PARTITION BY a.student_key
                                  ORDER BY hash(a.school_year, a.grade, a.subject, a.scale_score)) AS pos
        FROM assessments a
        JOIN enrol e USING (student_key, school_year)
        JOIN schools s USING (school_id)
        """
    )


def _proficiency_tables(con: duckdb.DuckDBPyConnection, lists: dict[str, list[object]]) -> dict[str, pd.DataFrame]:
    relation = f"""(
        SELECT t.*, st.sex, st.race_ethnicity,
               CASE WHEN st.economically_disadvantaged THEN 'yes' ELSE 'no' END AS economically_disadvantaged,
               CASE WHEN st.english_learner THEN 'yes' ELSE 'no' END AS english_learner,
               CASE WHEN st.disability THEN 'yes' ELSE 'no' END AS disability
        FROM tests t LEFT JOIN students st USING (student_key)
        WHERE t.pos <= {TESTS_PER_STUDENT}
    )"""
    sets: dict[str, Sequence[str]] = {
        "year": ("school_year", "subject", "proficient"),
        "grade": ("grade", "subject", "proficient"),
        "district": ("district_id", "subject", "proficient"),
        "school": ("school_id", "subject", "proficient"),
        **{col: (col, "subject", "proficient") for col in FAMILY_COLUMNS},
    }
    g = _grouped(con, relation, sets, "count(*) AS n")
    fam = _family_long({c: g[c] for c in FAMILY_COLUMNS}, ("subject", "proficient"))
    cat = {"proficient": (True, False)}
    subjects = list(schema.SUBJECTS)
    return {
        "proficiency_by_year": _domain(g["year"], {"school_year": PROFICIENCY_YEARS, "subject": subjects, **cat}),
        "proficiency_by_grade": _domain(g["grade"], {"grade": schema.ASSESSED_GRADES, "subject": subjects, **cat}),
        "proficiency_by_district": _domain(
            g["district"], {"district_id": lists["districts"], "subject": subjects, **cat}
        ),
        "proficiency_by_school": _domain(g["school"], {"school_id": lists["schools"], "subject": subjects, **cat}),
        "proficiency_by_subgroup": _domain(fam, {"subgroup": SUBGROUPS, "subject": subjects, **cat}),
    }


def _scales_values(scales: dict[tuple[str, int], tuple[float, float]]) -> str:
    rows = []
    for g in GROWTH_GRADES:
        for s in schema.SUBJECTS:
            lo, hi = scales[(s, g - 1)]
            clo, chi = scales[(s, g)]
            bound = GAIN_BOUND_SHARE * ((hi - lo) + (chi - clo)) / 2
            rows.append(f"({g}, '{s}', {lo!r}, {(hi - lo) / N_BANDS!r}, {bound!r})")
    return ", ".join(rows)


def _pairs(con: duckdb.DuckDBPyConnection, scales: dict[tuple[str, int], tuple[float, float]]) -> None:
    """Temp table ``pairs``: consecutive-year score pairs, their prior band, clamped gain and bounding rank."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        WITH p AS (
            SELECT c.student_key, c.grade, c.subject, c.school_id, c.district_id,
                   least(greatest(floor((least(greatest(r.scale_score, sc.lo), sc.lo + {N_BANDS} * sc.width) - sc.lo)
                                        / sc.width), 0), {N_BANDS - 1})::INTEGER AS band,
                   least(greatest(c.scale_score - r.scale_score, -sc.bound), sc.bound) AS gain, sc.bound,
                   c.school_year, c.scale_score, r.scale_score AS prior_score
            FROM tests c
            JOIN tests r ON r.student_key = c.student_key AND r.subject = c.subject
                        AND r.school_year = c.school_year - 1 AND r.grade = c.grade - 1
            JOIN (VALUES {_scales_values(scales)}) sc(grade, subject, lo, width, bound)
              ON sc.grade = c.grade AND sc.subject = c.subject
            WHERE c.grade BETWEEN {GROWTH_GRADES[0]} AND {GROWTH_GRADES[-1]}
        )
        SELECT *, row_number() OVER (PARTITION BY student_key
                                     ORDER BY hash(school_year, grade, subject, scale_score, prior_score)) AS pos
        FROM p
        """
    )


def _growth_model(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    df = con.execute(
        f"""
        SELECT grade, subject, band, count(*) AS n, sum(gain / bound) AS sum_gain,
               sum((gain / bound) ^ 2) AS sum_gain_sq
        FROM pairs WHERE pos <= {MODEL_PAIRS_PER_STUDENT} GROUP BY ALL
        """
    ).df()
    index = pd.MultiIndex.from_product(
        [GROWTH_GRADES, schema.SUBJECTS, range(N_BANDS)], names=["grade", "subject", "band"]
    )
    return df.set_index(["grade", "subject", "band"]).reindex(index, fill_value=0).reset_index()


def fit_growth(noisy: pd.DataFrame, epsilon: float, scales: dict[tuple[str, int], tuple[float, float]]) -> pd.DataFrame:
    """Expected gain per (grade, subject, band) and the pooled spread, from the noisy model (post-processing).

    A band's expected gain is its noisy mean when it holds at least 20 times the noise scale of its sums,
    else the transition's pooled mean (the rule of ``metrics.assessment.fit_models``). Columns: grade,
    subject, band, expected (scale points), sd (scale points).
    """
    min_pairs = 20 * MODEL_PAIRS_PER_STUDENT * 3 / epsilon
    out = []
    for (grade, subject), cell in noisy.groupby(["grade", "subject"], sort=True):
        lo, hi = scales[(subject, grade - 1)]
        clo, chi = scales[(subject, grade)]
        bound = GAIN_BOUND_SHARE * ((hi - lo) + (chi - clo)) / 2
        n = cell["n"].clip(lower=0).to_numpy(float)
        s, sq = cell["sum_gain"].to_numpy(float), cell["sum_gain_sq"].to_numpy(float)
        pooled = s.sum() / max(n.sum(), 1.0)
        own = n >= min_pairs
        mean = np.where(own, s / np.where(own, n, 1.0), pooled)
        within = np.where(own, np.maximum(sq - n * mean * mean, 0.0), 0.0).sum()
        used = n[own].sum()
        var = within / used if used > 0 else sq.sum() / max(n.sum(), 1.0) - pooled**2
        sd = math.sqrt(max(var, 1e-4)) * bound
        out.append(
            pd.DataFrame(
                {
                    "grade": grade,
                    "subject": subject,
                    "band": cell["band"],
                    "expected": np.clip(mean, -1, 1) * bound,
                    "sd": sd,
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def _growth_tables(
    con: duckdb.DuckDBPyConnection, lists: dict[str, list[object]], model: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """SGP bins and clamped residual sums by school and by district (2 pairs per student)."""
    sigma = float(model.groupby(["grade", "subject"])["sd"].first().mean())
    cuts = [statistics.NormalDist().inv_cdf((5 * j - 0.5) / 100) for j in range(1, SGP_BINS)]
    sgp_bin = " + ".join(f"(z >= {c!r})::INTEGER" for c in cuts)
    con.register("growth_fit", model)
    try:
        relation = f"""(
            SELECT *, {sgp_bin} AS sgp_bin,
                   least(greatest(residual, {-3 * sigma!r}), {3 * sigma!r}) AS clamped
            FROM (
                SELECT p.school_id, p.district_id, p.subject, p.gain - f.expected AS residual,
                       (p.gain - f.expected) / f.sd AS z
                FROM pairs p JOIN growth_fit f USING (grade, subject, band)
                WHERE p.pos <= {GROWTH_PAIRS_PER_STUDENT}
            )
        )"""
        g = _grouped(
            con,
            relation,
            {"school": ("school_id", "subject", "sgp_bin"), "district": ("district_id", "subject", "sgp_bin")},
            "count(*) AS n, sum(clamped) AS sum_residual",
        )
    finally:
        con.unregister("growth_fit")
    out = {}
    for level, col, ids in (
        ("school", "school_id", lists["growth_schools"]),
        ("district", "district_id", lists["districts"]),
    ):
        frame = g[level]
        bins = _domain(frame, {col: ids, "subject": list(schema.SUBJECTS), "sgp_bin": range(SGP_BINS)})
        sums = _domain(frame, {col: ids, "subject": list(schema.SUBJECTS)}, value="sum_residual")
        counts = _domain(frame, {col: ids, "subject": list(schema.SUBJECTS)})
        out[f"growth_by_{level}"] = bins
        out[f"growth_by_{level}:mean"] = counts.assign(sum_residual=sums["sum_residual"], bound=3 * sigma)
    return out


def _ssn_tables(con: duckdb.DuckDBPyConnection, lists: dict[str, list[object]]) -> dict[str, pd.DataFrame]:
    df = con.execute(
        "SELECT district_id, school_year, status = 'declined' AS declined, count(*) AS n "
        "FROM ssn_collection GROUP BY ALL"
    ).df()
    yes_no = {"declined": (True, False)}
    return {
        "ssn_collection_by_district": _domain(df, {"district_id": lists["districts"], **yes_no}),
        "ssn_collection_by_district_year": _domain(
            df, {"district_id": lists["districts"], "school_year": SSN_YEARS, **yes_no}
        ),
        "ssn_collection_by_year": _domain(df, {"school_year": SSN_YEARS, **yes_no}),
    }


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------
def table_epsilons(total: float = DEFAULT_TOTAL_EPSILON) -> dict[str, float]:
    """Each table's epsilon: ``total`` split by the relative shares of :data:`TABLES`."""
    weight = sum(share for share, _ in TABLES.values())
    return {name: total * share / weight for name, (share, _) in TABLES.items()}


def _geometric(rng: np.random.Generator, counts: np.ndarray, scale: float) -> np.ndarray:
    p = 1.0 - math.exp(-1.0 / scale)
    return counts + rng.geometric(p, counts.shape) - rng.geometric(p, counts.shape)


def add_noise(
    exact: dict[str, pd.DataFrame], rng: np.random.Generator, total_epsilon: float = DEFAULT_TOTAL_EPSILON
) -> dict[str, pd.DataFrame]:
    """Noisy copies of the exact tables: column ``noisy`` beside each count (and ``noisy_sum`` beside sums)."""
    eps = table_epsilons(total_epsilon)
    out = {}
    for name, frame in exact.items():
        base = name.split(":")[0]
        if base not in TABLES:
            continue
        bound = TABLES[base][1]
        e = eps[base]
        if base == "graduation_measurements":
            rho = e * e / 2 / 8  # eight levels, each a histogram of L2 sensitivity 1
            noisy = np.rint(frame["n"].to_numpy(float) + rng.normal(0.0, math.sqrt(1 / (2 * rho)), len(frame)))
            out[name] = frame.assign(noisy=noisy.astype(np.int64))
        elif base.startswith("growth_model"):
            scale = bound * 3 / e
            out[name] = frame.assign(
                noisy=_geometric(rng, frame["n"].to_numpy(np.int64), scale),
                noisy_sum_gain=frame["sum_gain"] + rng.laplace(0.0, scale, len(frame)),
                noisy_sum_gain_sq=frame["sum_gain_sq"] + rng.laplace(0.0, scale, len(frame)),
            )
        elif name.endswith(":mean"):
            scale = 2 * bound / e
            out[name] = frame.assign(
                noisy=_geometric(rng, frame["n"].to_numpy(np.int64), scale),
                noisy_sum=frame["sum_residual"] + rng.laplace(0.0, scale * frame["bound"], len(frame)),
            )
        else:
            scale = bound / e * (2 if base.startswith("growth_by") else 1)
            out[name] = frame.assign(noisy=_geometric(rng, frame["n"].to_numpy(np.int64), scale))
    return out


def _growth_epsilon(total: float) -> float:
    return table_epsilons(total)["growth_model"]


# ---------------------------------------------------------------------------
# The floor
# ---------------------------------------------------------------------------
@dataclass
class FloorResult:
    """Exact and noisy tables (name -> frame over the public domain) and the seconds each stage took."""

    exact: dict[str, pd.DataFrame]
    noisy: dict[str, pd.DataFrame]
    seconds: dict[str, float]

    @property
    def cells(self) -> int:
        return sum(len(f) for f in self.noisy.values())


def run_floor(
    dataset_dir: Path,
    tables: str = "all",
    memory_limit: str | None = None,
    seed: int | None = None,
    total_epsilon: float = DEFAULT_TOTAL_EPSILON,
    threads: int | None = None,
) -> FloorResult:
    """Compute every exact aggregate of a release (``tables='all'``) or of the four peer tables, then noise.

    Raises FileNotFoundError when a contract table has no file in ``dataset_dir``.
    """
    if tables not in ("all", "four"):
        raise ValueError(f"tables must be 'all' or 'four', not {tables!r}")
    dataset_dir = Path(dataset_dir)
    rng = np.random.default_rng(seed)
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = now - t
        t = now

    con = connect(dataset_dir, memory_limit, threads)
    years = end_years(con, dataset_dir)
    lists = _public_lists(con)
    exact: dict[str, pd.DataFrame] = {}
    exact.update(_ssn_tables(con, lists))
    lap("ssn")
    _wage_years(con)
    lap("wage years")
    _cohort_students(con, years)
    lap("cohort students")
    exact.update(_cohort_tables(con, lists, years))
    lap("cohort tables")
    exact.update(_workforce_tables(con, lists, years))
    con.execute("DROP TABLE wy")
    lap("workforce tables")
    if tables == "all":
        scales = score_scales(dataset_dir)
        _tests(con)
        lap("tests")
        exact.update(_proficiency_tables(con, lists))
        lap("proficiency tables")
        _pairs(con, scales)
        con.execute("DROP TABLE tests")
        exact["growth_model"] = _growth_model(con)
        lap("growth model")
        eps = _growth_epsilon(total_epsilon)
        noisy_model = add_noise({"growth_model": exact["growth_model"]}, rng, total_epsilon)["growth_model"]
        fitted = fit_growth(
            noisy_model.assign(
                n=noisy_model["noisy"],
                sum_gain=noisy_model["noisy_sum_gain"],
                sum_gain_sq=noisy_model["noisy_sum_gain_sq"],
            ),
            eps,
            scales,
        )
        exact.update(_growth_tables(con, lists, fitted))
        lap("growth tables")
    else:
        exact = _four(exact)
    con.close()
    noisy = add_noise(exact, rng, total_epsilon)
    lap("noise")
    return FloorResult(exact, noisy, seconds)


def _four(exact: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The four peer tables: graduation (4-year, district x cohort), workforce and earnings by district, opt-out."""
    grad = exact["graduation_measurements"]
    grad = grad[(grad["measure"] == "acgr_4yr") & (grad["level"] == "district")].reset_index(drop=True)
    return {
        "graduation_measurements": grad,
        "workforce_by_district": exact["workforce_by_district"],
        "earnings_by_district": exact["earnings_by_district"],
        "ssn_collection_by_district_year": exact["ssn_collection_by_district_year"],
    }


def export_peer_inputs(dataset_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write the per-student rows of the four peer tables as Parquet for another library to aggregate.

    Files: ``graduation.parquet`` (student_key, district_id, cohort, graduated; 4-year ACGR
    denominator, observable cohorts), ``workforce.parquet`` (student_key, district_id, years_out,
    category, earnings_bin; NULL bin unless employed), ``optout.parquet`` (student_key, district_id,
    school_year, declined). Returns rows per file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(Path(dataset_dir))
    years = end_years(con, Path(dataset_dir))
    _wage_years(con)
    _cohort_students(con, years)
    num, den, window = ACGR["acgr_4yr"]
    counts = {}
    queries = {
        "graduation": f"""SELECT student_key, district_id, cohort, acgr_category IN ({_in(num)}) AS graduated FROM cs
                          WHERE acgr_category IN ({_in(den)}) AND cohort + {window} <= {years.school}""",
        "optout": "SELECT student_key, district_id, school_year, status = 'declined' AS declined FROM ssn_collection",
    }
    for name, query in queries.items():
        con.execute(f"COPY ({query}) TO '{_path(out_dir / f'{name}.parquet')}' (FORMAT parquet)")
        counts[name] = int(
            con.execute(f"SELECT count(*) FROM read_parquet('{_path(out_dir / f'{name}.parquet')}')").fetchone()[0]
        )  # type: ignore[index]
    wf = f"""
        SELECT c.student_key, c.district_id, k.years_out,
               CASE WHEN NOT c.matched THEN 'unmatched' WHEN coalesce(w.quarters, 0) = 0 THEN 'no_wages'
                    WHEN w.quarters < 2 OR w.wages_nominal < {EMPLOYMENT_THRESHOLD_USD} THEN 'some_wages'
                    WHEN w.quarters < 4 THEN 'qualifying_part' ELSE 'qualifying_full' END AS category,
               CASE WHEN c.matched AND w.quarters >= 2 AND w.wages_nominal >= {EMPLOYMENT_THRESHOLD_USD}
                    THEN least(greatest(floor(w.wages_nominal * cpi.factor / {EARNINGS_BIN_USD}), 0),
                               {EARNINGS_BINS - 1})
               END::INTEGER AS earnings_bin
        FROM cs c CROSS JOIN (VALUES (1), (3), (5)) k(years_out)
        LEFT JOIN wy w ON w.student_key = c.student_key AND w.year = c.cohort + 3 + k.years_out
        LEFT JOIN (VALUES {_cpi_values()}) cpi(year, factor) ON cpi.year = c.cohort + 3 + k.years_out
        WHERE c.cohort + 3 + k.years_out <= {years.wage}
    """
    con.execute(f"COPY ({wf}) TO '{_path(out_dir / 'workforce.parquet')}' (FORMAT parquet)")
    counts["workforce"] = int(
        con.execute(f"SELECT count(*) FROM read_parquet('{_path(out_dir / 'workforce.parquet')}')").fetchone()[0]
    )  # type: ignore[index]
    lists = _public_lists(con)
    (out_dir / "public_lists.json").write_text(
        json.dumps({"districts": lists["districts"], "high_school_districts": lists["high_school_districts"],
                    "cohorts": [c for c in COHORTS if c + window <= years.school], "ssn_years": list(SSN_YEARS),
                    "years_out": list(YEARS_OUT), "earnings_bins": EARNINGS_BINS,
                    "workforce_categories": list(WORKFORCE_CATEGORIES)}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    con.close()
    return counts


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{_esc(v)}'" for v in values)


def _esc(text: str) -> str:
    return text.replace("'", "''")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="dataset folder (contract tables as .parquet or .csv)")
    parser.add_argument("--tables", choices=("all", "four"), default="all")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 3GB (spills beyond it)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--export", type=Path, default=None, help="write the four peer tables' input rows here and stop"
    )
    args = parser.parse_args(argv)
    if args.export is not None:
        counts = export_peer_inputs(args.data, args.export)
        print(json.dumps(counts))
        return 0
    t = time.perf_counter()
    result = run_floor(args.data, args.tables, args.memory_limit, args.seed, threads=args.threads)
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
    print(f"floor ({args.tables} tables): {len(result.noisy)} tables, {result.cells:,} noisy cells, wall {wall:.2f} s")
    print(f"  stages: {stages}")
    print(f"  cpu {usage.ru_utime + usage.ru_stime:.2f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
