"""Grade-9 cohorts and their adjusted-cohort graduation outcomes (ESEA section 8101(23) and (25)).

Definitions (``docs/metrics.md`` has the long form and the sources):

- A student's **cohort** is the spring school year in which they first enrolled in
  grade 9. A student whose first high-school enrolment is in a later grade (a
  transfer in) joins the cohort of their grade-mates: ``year - (grade - 9)``.
- The **last record** of a window is the student's enrolment row with the latest
  school year; within one school year the rows are ordered by :data:`SAME_YEAR_RANK`
  (a diploma wins; then a row at a school the student attends the next year;
  then an undocumented exit; then a documented exit; then a bare 'continuing'
  row), and a remaining tie goes to the smallest school_id. The order is total,
  so every run gives the same answer.
- The **adjusted 4-year cohort** removes only students whose last record within
  the 4 years ended in a documented transfer out, emigration or death. Dropouts and
  undocumented leavers ('other') stay. A student who returns is judged by the later
  record: a removed student who is enrolled again by the 5th year joins the
  **5-year cohort** (ESEA 8101(25): students who join the cohort are added).
- **Graduated in 4 years**: a 'graduated' exit (regular diploma) in school year
  ``cohort + 3`` or earlier; the **extended 5-year** rate counts ``cohort + 4``.
- **Not yet observable**: a cohort whose 4 (5) years run past the extract's last
  school year (:mod:`analytics.extract`) has no 4-year (5-year) rate; its students
  are never counted as non-graduates.
- **Attribution**: the school (and its district) of the last record within the 4-year
  window; for a student only in the 5-year cohort, of the last record within 5 years.

Each cohort student gets exactly one outcome category, so one noisy histogram
over (cell, category) gives both rates:

======================  ==================================================  ===========  ===========
category                meaning                                             4-year ACGR  5-year ACGR
======================  ==================================================  ===========  ===========
grad4                   diploma within 4 years                              num, den     num, den
grad5                   diploma in the 5th year                             den          num, den
removed5                documented exit in the 5th year                     den          (removed)
not_graduated           no diploma within 5 years, not removed              den          den
returned_grad5          removed within 4 years, back, diploma in year 5     (removed)    num, den
returned_not_graduated  removed within 4 years, back in year 5, no diploma  (removed)    den
grad4_open              diploma within 4 years, 5th year not yet observed   num, den     (open)
in4_open                no diploma in 4 years, 5th year not yet observed    den          (open)
======================  ==================================================  ===========  ===========
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import pandas as pd

from analytics import extract, schema
from analytics.engine import engine_of

ACGR_CATEGORIES: tuple[str, ...] = (
    "grad4",
    "grad5",
    "removed5",
    "not_graduated",
    "returned_grad5",
    "returned_not_graduated",
    "grad4_open",
    "in4_open",
)
ACGR4 = (("grad4", "grad4_open"), ("grad4", "grad5", "removed5", "not_graduated", "grad4_open", "in4_open"))
ACGR5 = (
    ("grad4", "grad5", "returned_grad5"),
    ("grad4", "grad5", "not_graduated", "returned_grad5", "returned_not_graduated"),
)
#: Categories of graduates (a regular diploma within the cohort's observed window).
GRADUATE_CATEGORIES: tuple[str, ...] = ("grad4", "grad5", "returned_grad5", "grad4_open")
#: Years after the cohort year the 4-year and 5-year rates need observed (cohort + 3, cohort + 4).
WINDOW_YEARS: dict[str, int] = {"acgr_4yr": 3, "acgr_5yr": 4}

#: Order of a student's rows within one school year (higher = later). See the module doc.
SAME_YEAR_RANK: tuple[tuple[str, int], ...] = (
    ("graduated", 5),
    ("<row at a school attended the next year>", 4),
    ("dropped_out", 3),
    ("other", 3),
    ("transferred_out", 2),
    ("emigrated", 2),
    ("deceased", 2),
    ("continuing", 1),
)

_REMOVING = ", ".join(f"'{e}'" for e in schema.COHORT_REMOVING_EXITS)


def cohort_outcomes(source: Any, last_school_year: int | None = None) -> ir.Table:
    """One row per cohort student, including those removed from the adjusted cohort (a relation on the engine).

    ``source`` is an :class:`analytics.engine.Engine` or a loaded data source;
    ``last_school_year`` defaults to the extract's (:func:`analytics.extract.of`).
    Columns: student_key, cohort, expected_grad_year (= cohort + 3),
    grad_year (school year of the first diploma, or NA), removed_4yr (bool),
    acgr_category (one of :data:`ACGR_CATEGORIES`, or NA when the student is in
    neither adjusted cohort or the cohort's 4 years are not over),
    acgr_school_id, acgr_district_id.
    """
    last = extract.of(source).require_years()[0] if last_school_year is None else int(last_school_year)
    return engine_of(source).relation(cohort_outcomes_sql(last))


def cohort_outcomes_sql(last: int) -> str:
    """The SQL (DuckDB dialect) of :func:`cohort_outcomes` for an extract whose last school year is ``last``."""
    return f"""
        WITH hs AS (
            SELECT e.*, s.district_id
            FROM enrollments e JOIN schools s USING (school_id)
            WHERE e.grade BETWEEN 9 AND 12
        ),
        first_hs AS (
            SELECT student_key, arg_min(school_year - (grade - 9), school_year * 100 + grade) AS cohort
            FROM hs GROUP BY student_key
        ),
        next_year AS (SELECT student_key, school_year - 1 AS school_year, school_id FROM enrollments),
        ranked AS (
            SELECT h.student_key, h.school_year, h.school_id, h.district_id, h.exit_type, f.cohort,
                   CASE WHEN h.exit_type = 'graduated' THEN 5
                        WHEN n.student_key IS NOT NULL THEN 4
                        WHEN h.exit_type IN ('dropped_out', 'other') THEN 3
                        WHEN h.exit_type IN ({_REMOVING}) THEN 2
                        ELSE 1 END AS year_rank
            FROM hs h JOIN first_hs f USING (student_key)
            LEFT JOIN next_year n USING (student_key, school_year, school_id)
        ),
        last4 AS (
            SELECT * FROM (
                SELECT *, row_number() OVER (PARTITION BY student_key
                          ORDER BY school_year DESC, year_rank DESC, school_id ASC) AS pos
                FROM ranked WHERE school_year <= cohort + 3) r4 WHERE pos = 1
        ),
        last5 AS (
            SELECT * FROM (
                SELECT *, row_number() OVER (PARTITION BY student_key
                          ORDER BY school_year DESC, year_rank DESC, school_id ASC) AS pos
                FROM ranked WHERE school_year <= cohort + 4) r5 WHERE pos = 1
        ),
        grads AS (
            SELECT student_key, min(school_year) AS grad_year FROM enrollments
            WHERE exit_type = 'graduated' GROUP BY student_key
        ),
        joined AS (
            SELECT f.student_key, f.cohort, g.grad_year,
                   l4.exit_type IN ({_REMOVING}) AND coalesce(g.grad_year > f.cohort + 3, TRUE) AS removed_4yr,
                   l5.exit_type IN ({_REMOVING}) AS removed_5yr,
                   l4.school_id AS school4, l4.district_id AS district4,
                   l5.school_id AS school5, l5.district_id AS district5
            FROM first_hs f
            JOIN last4 l4 USING (student_key)
            JOIN last5 l5 USING (student_key)
            LEFT JOIN grads g USING (student_key)
        )
        SELECT student_key, cohort, cohort + 3 AS expected_grad_year, grad_year, removed_4yr,
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
               CASE WHEN removed_4yr THEN school5 ELSE school4 END AS acgr_school_id,
               CASE WHEN removed_4yr THEN district5 ELSE district4 END AS acgr_district_id
        FROM joined
        """


def observable(table: pd.DataFrame, last_school_year: int) -> pd.DataFrame:
    """Drop cohort cells of ``acgr_4yr`` (``acgr_5yr``) rows whose 4 (5) years run past ``last_school_year``.

    Tables without a cohort column (cohorts pooled) are returned unchanged: their
    categories already leave out what is not yet observable.
    """
    if "cohort" not in table.columns or "measure" not in table.columns:
        return table
    need = table["measure"].map(WINDOW_YEARS).fillna(0).astype(int)
    return table[table["cohort"] + need <= last_school_year].reset_index(drop=True)


def adjusted_cohort(source: Any) -> ir.Table:
    """Cohort students in the adjusted 4-year or 5-year cohort (whose 4 years are over), with their subgroups.

    A relation with the columns of :func:`cohort_outcomes` plus the students
    table's subgroup columns (sex, race_ethnicity, economically_disadvantaged,
    english_learner, disability).
    """
    return engine_of(source).relation(adjusted_cohort_sql(extract.of(source).require_years()[0]))


def cohort_source(last: int, cohort_table: str | None = None) -> str:
    """What a query reads the adjusted cohort from: a materialised table's name, or its SQL as a subquery.

    ``cohort_table`` is the name of a relation the engine already holds with the rows of
    :func:`adjusted_cohort` (the release materialises it once); it must be an identifier.
    """
    if cohort_table is None:
        return f"({adjusted_cohort_sql(last)})"
    if not cohort_table.replace("_", "").isalnum():
        raise ValueError("cohort_table must be a plain table name")
    return cohort_table


def adjusted_cohort_sql(last: int) -> str:
    """The SQL (DuckDB dialect) of :func:`adjusted_cohort`."""
    columns = ", ".join(f"s.{c}" for c in SUBGROUP_COLUMNS)
    return f"""
        SELECT o.*, {columns}
        FROM ({cohort_outcomes_sql(last)}) o
        LEFT JOIN students s USING (student_key)
        WHERE o.acgr_category IS NOT NULL
        """


#: The students table's columns that define subgroups (CEDS element names).
SUBGROUP_COLUMNS: tuple[str, ...] = (
    "sex",
    "race_ethnicity",
    "economically_disadvantaged",
    "english_learner",
    "disability",
)
