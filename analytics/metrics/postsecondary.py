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

import pandas as pd

from analytics import extract
from analytics.io import DataSource
from analytics.metrics.cohort import GRADUATE_CATEGORIES, cohort_outcomes

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


def college_rows(source: DataSource) -> pd.DataFrame:
    """One row per observable graduate: student_key, cohort, grad_year, acgr_district_id, acgr_school_id, category."""
    cfg = extract.of(source)
    last_post = int(cfg.require_years()[2])
    grads = cohort_outcomes(source)
    grads = grads[grads["acgr_category"].isin(GRADUATE_CATEGORIES)]
    grads = grads[grads["cohort"] + COLLEGE_WINDOW_YEARS <= last_post]
    first = source.sql(
        f"""
        WITH g AS (SELECT student_key, min(school_year) AS grad_year FROM enrollments
                   WHERE exit_type = 'graduated' GROUP BY student_key),
        window_terms AS (
            SELECT p.*, g.grad_year,
                   row_number() OVER (PARTITION BY p.student_key ORDER BY p.term_start,
                       (p.institution_level = '4-year') DESC, p.in_state DESC, (p.control = 'public') DESC,
                       p.institution_id NULLS LAST) AS pos
            FROM postsecondary p JOIN g USING (student_key)
            WHERE p.term_start >= make_date(g.grad_year, 7, 1)
              AND p.term_start <= make_date(g.grad_year + 1, 10, 31)
        ),
        firsts AS (
            SELECT student_key, term_start AS first_term, institution_level AS level, in_state, grad_year,
                   year(term_start - INTERVAL 6 MONTH) AS academic_year
            FROM window_terms WHERE pos = 1
        )
        SELECT f.student_key, f.level, f.in_state,
               f.first_term <= make_date(f.grad_year, 10, 31) AS by_oct31,
               CASE WHEN EXISTS (
                   SELECT 1 FROM postsecondary q WHERE q.student_key = f.student_key
                   AND q.term_start >= make_date(f.academic_year + 1, 7, 1)
                   AND q.term_start < make_date(f.academic_year + 2, 7, 1)
               ) THEN 'persisted' WHEN f.academic_year + 2 > {last_post} THEN 'open' ELSE 'left' END AS persisted
        FROM firsts f
        """
    )
    rows = grads.merge(first, on="student_key", how="left")
    enrolled = rows["level"].notna()
    category = (
        rows["by_oct31"].map({True: "fall", False: "later"}).astype(object)
        + "|"
        + rows["level"].astype(object)
        + "|"
        + rows["in_state"].map({True: "in_state", False: "out_of_state"}).astype(object)
        + "|"
        + rows["persisted"].astype(object)
    )
    rows["category"] = category.where(enrolled, "none")
    return rows[["student_key", "cohort", "grad_year", "acgr_district_id", "acgr_school_id", "category"]].reset_index(
        drop=True
    )
