"""Grade-9 cohorts and their adjusted-cohort graduation outcomes (ESEA section 8101(23) and (25)).

Definitions (``docs/metrics.md`` has the long form):

- A student's **cohort** is the spring school year in which they first enrolled in
  grade 9. A student whose first high-school enrolment is in a later grade (a
  transfer in) joins the cohort of their grade-mates: ``year - (grade - 9)``.
- The **adjusted cohort** removes only students whose last enrolment within the
  window ended in a documented transfer out, emigration or death. Dropouts and
  undocumented leavers ('other') stay in the denominator.
- **Graduated in 4 years**: a 'graduated' exit (regular diploma) in school year
  ``cohort + 3`` or earlier; the **extended 5-year** rate counts ``cohort + 4``.
- **Attribution**: the school (and its district) of the student's last enrolment
  within the 4-year window; the 5-year rate uses the same school.

Each cohort student gets exactly one outcome category, so one noisy histogram
over (cell, category) gives both rates:

==============  =============================================  ===========  ===========
category        meaning                                        4-year ACGR  5-year ACGR
==============  =============================================  ===========  ===========
grad4           diploma within 4 years                         num, den     num, den
grad5           diploma in the 5th year                        den          num, den
removed5        documented exit in the 5th year                den          (removed)
not_graduated   no diploma within 5 years, not removed         den          den
==============  =============================================  ===========  ===========
"""

from __future__ import annotations

import pandas as pd

from analytics import schema
from analytics.io import DataSource

ACGR_CATEGORIES: tuple[str, ...] = ("grad4", "grad5", "removed5", "not_graduated")
ACGR4 = (("grad4",), ("grad4", "grad5", "removed5", "not_graduated"))
ACGR5 = (("grad4", "grad5"), ("grad4", "grad5", "not_graduated"))

_REMOVING = ", ".join(f"'{e}'" for e in schema.COHORT_REMOVING_EXITS)


def cohort_outcomes(source: DataSource) -> pd.DataFrame:
    """One row per cohort student, including those removed from the adjusted cohort.

    Columns: student_key, cohort, expected_grad_year (= cohort + 3),
    grad_year (school year of the diploma, or NA), removed_4yr (bool),
    acgr_category (one of :data:`ACGR_CATEGORIES`, or NA when removed within 4
    years), acgr_school_id, acgr_district_id.
    """
    return source.sql(
        f"""
        WITH hs AS (
            SELECT e.*, s.district_id
            FROM enrollments e JOIN schools s USING (school_id)
            WHERE e.grade BETWEEN 9 AND 12
        ),
        first_hs AS (
            SELECT student_key, arg_min(school_year - (grade - 9), school_year * 100 + grade) AS cohort
            FROM hs GROUP BY student_key
        ),
        ordered AS (
            -- within a year, a row that ends the enrolment comes after a 'continuing' one;
            -- between two 'continuing' rows, the school attended the next year comes last
            SELECT h.*, f.cohort,
                   EXISTS (SELECT 1 FROM enrollments n WHERE n.student_key = h.student_key
                           AND n.school_year = h.school_year + 1 AND n.school_id = h.school_id) AS stays
            FROM hs h JOIN first_hs f USING (student_key)
        ),
        last4 AS (
            SELECT student_key,
                   arg_max(exit_type, [school_year, (exit_type <> 'continuing')::INT, stays::INT]) AS exit4,
                   arg_max(school_id, [school_year, (exit_type <> 'continuing')::INT, stays::INT]) AS school4,
                   arg_max(district_id, [school_year, (exit_type <> 'continuing')::INT, stays::INT]) AS district4
            FROM ordered WHERE school_year <= cohort + 3 GROUP BY student_key
        ),
        last5 AS (
            SELECT student_key,
                   arg_max(exit_type, [school_year, (exit_type <> 'continuing')::INT, stays::INT]) AS exit5
            FROM ordered WHERE school_year <= cohort + 4 GROUP BY student_key
        ),
        grads AS (
            SELECT student_key, min(school_year) AS grad_year FROM enrollments
            WHERE exit_type = 'graduated' GROUP BY student_key
        )
        SELECT f.student_key, f.cohort, f.cohort + 3 AS expected_grad_year, g.grad_year,
               (l4.exit4 IN ({_REMOVING})) AS removed_4yr,
               CASE
                 WHEN l4.exit4 IN ({_REMOVING}) THEN NULL
                 WHEN g.grad_year <= f.cohort + 3 THEN 'grad4'
                 WHEN g.grad_year = f.cohort + 4 THEN 'grad5'
                 WHEN l5.exit5 IN ({_REMOVING}) THEN 'removed5'
                 ELSE 'not_graduated'
               END AS acgr_category,
               l4.school4 AS acgr_school_id, l4.district4 AS acgr_district_id
        FROM first_hs f
        JOIN last4 l4 USING (student_key)
        JOIN last5 l5 USING (student_key)
        LEFT JOIN grads g USING (student_key)
        ORDER BY f.student_key
        """
    )


def adjusted_cohort(source: DataSource) -> pd.DataFrame:
    """Cohort students who stay in the adjusted 4-year cohort, with their subgroups.

    Columns: those of :func:`cohort_outcomes` plus the students table's
    subgroup columns (sex, race_ethnicity, economically_disadvantaged,
    english_learner, disability).
    """
    outcomes = cohort_outcomes(source)
    students = source.sql("SELECT * FROM students")
    kept = outcomes[outcomes["acgr_category"].notna()]
    return kept.merge(students, on="student_key", how="left").reset_index(drop=True)
