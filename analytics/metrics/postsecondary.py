"""College-going of high-school graduates: enrolment by October 31 and within 16 months, and persistence.

Population: students of a grade-9 cohort who earned a regular diploma within
5 years (:data:`analytics.metrics.cohort.GRADUATE_CATEGORIES`); their graduation
is taken as June of the diploma's school year.

- **Enrolled by October 31** (Education-to-Workforce framework): a term starting
  between July 1 and October 31 of the graduation year. The 16-month window
  starts on July 1 of the graduation year.
- **Enrolled within 16 months** (EDFacts): a term starting by October 31 of the
  following year.
- **Co-enrolment** (Clearinghouse detail files: one row per student x college x
  term): the **first enrolment** in the window sets level and place; among terms
  starting on the same first day, a 4-year college wins over a 2-year one, then
  an in-state over an out-of-state one, then public over private, then the
  smallest institution_id. Every enrolment of the student counts for persistence.
- **Persistence**: enrolled again (anywhere) in a term starting in the academic
  year (July 1 to June 30) after the first term's. Where that academic year runs
  past the extract's last postsecondary year and no such term is seen, it is not
  yet observable and the graduate is left out of the persistence denominator.
- **Not yet observable**: a cohort's graduates count once the 16-month window of
  its 5th-year graduates is over: ``cohort + 5 <= last_postsecondary_year``.

Enrolment records cover about 94% of US undergraduates (National Student
Clearinghouse), so rates are lower bounds. Each graduate falls in exactly one
category: ``none`` or ``<timing>|<level>|<in/out>|<persisted>``, so one noisy
histogram gives every rate below at one epsilon.
"""

from __future__ import annotations

import itertools
from typing import Any

import ibis.expr.types as ir

from analytics import extract
from analytics.engine import engine_of
from analytics.metrics.cohort import GRADUATE_CATEGORIES, SUBGROUP_COLUMNS, cohort_source

TIMINGS = ("fall", "later")
LEVELS = ("2-year", "4-year")
PLACES = ("in_state", "out_of_state")
PERSIST = ("persisted", "left", "open")
COLLEGE_CATEGORIES: tuple[str, ...] = (
    "none",
    *("|".join(c) for c in itertools.product(TIMINGS, LEVELS, PLACES, PERSIST)),
)


def _cats(**fixed: str) -> tuple[str, ...]:
    out = []
    for c in COLLEGE_CATEGORIES[1:]:
        timing, level, place, persist = c.split("|")
        parts = {"timing": timing, "level": level, "place": place, "persist": persist}
        if all(parts[k] == v for k, v in fixed.items()):
            out.append(c)
    return tuple(out)


_ENROLLED = COLLEGE_CATEGORIES[1:]
_GRADS = COLLEGE_CATEGORIES
COLLEGE_MEASURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "enrolled_by_oct31": (_cats(timing="fall"), _GRADS),
    "enrolled_within_16_months": (_ENROLLED, _GRADS),
    "enrolled_4year_by_oct31": (_cats(timing="fall", level="4-year"), _GRADS),
    "enrolled_2year_by_oct31": (_cats(timing="fall", level="2-year"), _GRADS),
    "enrolled_in_state_by_oct31": (_cats(timing="fall", place="in_state"), _GRADS),
    "enrolled_out_of_state_by_oct31": (_cats(timing="fall", place="out_of_state"), _GRADS),
    "persistence": (_cats(persist="persisted"), _cats(persist="persisted") + _cats(persist="left")),
}


#: Years after the cohort year by which its graduates' windows are over (5th-year graduates + 16 months).
COLLEGE_WINDOW_YEARS = 5


def college_sql(last_school_year: int, last_postsecondary_year: int, cohort_table: str | None = None) -> str:
    """The SQL (DuckDB dialect) of :func:`college_rows`."""
    graduates = ", ".join(f"'{c}'" for c in GRADUATE_CATEGORIES)
    last_post = int(last_postsecondary_year)
    return f"""
        WITH col_grads AS (
            SELECT * FROM {cohort_source(last_school_year, cohort_table)} c
            WHERE c.acgr_category IN ({graduates}) AND c.cohort + {COLLEGE_WINDOW_YEARS} <= {last_post}
        ),
        col_diplomas AS (SELECT student_key, min(school_year) AS grad_year FROM enrollments
              WHERE exit_type = 'graduated' GROUP BY student_key),
        col_window_terms AS (
            SELECT p.*, d.grad_year,
                   row_number() OVER (PARTITION BY p.student_key ORDER BY p.term_start ASC,
                       (p.institution_level = '4-year') DESC NULLS LAST, p.in_state DESC NULLS LAST,
                       (p.control = 'public') DESC NULLS LAST, p.institution_id ASC NULLS LAST) AS pos
            FROM postsecondary p JOIN col_diplomas d ON d.student_key = p.student_key
            WHERE p.term_start >= make_date(d.grad_year, 7, 1)
              AND p.term_start <= make_date(d.grad_year + 1, 10, 31)
        ),
        col_firsts AS (
            SELECT student_key, term_start AS first_term, institution_level AS level, in_state, grad_year,
                   year(term_start) - CASE WHEN month(term_start) < 7 THEN 1 ELSE 0 END AS academic_year
            FROM col_window_terms WHERE pos = 1
        ),
        col_persisted AS (
            SELECT f.student_key,
                   max(CASE WHEN q.term_start >= make_date(f.academic_year + 1, 7, 1)
                             AND q.term_start < make_date(f.academic_year + 2, 7, 1) THEN 1 ELSE 0 END) AS next_year
            FROM col_firsts f JOIN postsecondary q ON q.student_key = f.student_key
            GROUP BY f.student_key
        ),
        col_first_terms AS (
            SELECT f.student_key, f.level, f.in_state, f.first_term <= make_date(f.grad_year, 10, 31) AS by_oct31,
                   CASE WHEN p.next_year = 1 THEN 'persisted'
                        WHEN f.academic_year + 2 > {last_post} THEN 'open' ELSE 'left' END AS persisted
            FROM col_firsts f LEFT JOIN col_persisted p ON p.student_key = f.student_key
        )
        SELECT gr.student_key, gr.cohort, gr.grad_year, gr.acgr_district_id, gr.acgr_school_id,
               {", ".join(f"gr.{c}" for c in SUBGROUP_COLUMNS)},
               CASE WHEN t.level IS NULL THEN 'none'
                    ELSE (CASE WHEN t.by_oct31 THEN 'fall' ELSE 'later' END) || '|' || t.level || '|'
                         || (CASE WHEN t.in_state THEN 'in_state' ELSE 'out_of_state' END) || '|' || t.persisted
               END AS category
        FROM col_grads gr LEFT JOIN col_first_terms t ON t.student_key = gr.student_key
        """


def college_rows(source: Any, cohort_table: str | None = None) -> ir.Table:
    """One row per observable graduate, a relation: student_key, cohort, grad_year, acgr_district_id,
    acgr_school_id, the subgroup columns, category (see :data:`COLLEGE_CATEGORIES`)."""
    last_school, _, last_post = extract.of(source).require_years()
    return engine_of(source).relation(college_sql(int(last_school), int(last_post), cohort_table))
