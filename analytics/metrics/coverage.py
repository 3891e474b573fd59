"""SSN collection and coverage: who was asked, who declined, and where.

Opt-out rate = declined / asked, by the district that asked and the school year
in which it asked. A family is asked once (the ``ssn_collection`` table has one
row per student), so each student sits in exactly one (district, year) cell.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

from analytics import extract
from analytics.engine import engine_of
from analytics.metrics import cohort

#: Linkage categories of an adjusted-cohort student: SSN not provided (declined or never asked),
#: provided but never found in Maine wage records, provided and found at least once.
MATCH_CATEGORIES: tuple[str, ...] = ("not_provided", "provided_not_found", "provided_found")
MATCH_MEASURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ssn_provided_share": (("provided_not_found", "provided_found"), MATCH_CATEGORIES),
    "wage_match_rate": (("provided_found",), MATCH_CATEGORIES),
    "found_among_provided": (("provided_found",), ("provided_not_found", "provided_found")),
}


def ssn_collection_rows(source: Any) -> ir.Table:
    """One row per asked student: student_key, district_id, school_year, declined (bool). A relation."""
    return engine_of(source).relation(
        """
        SELECT student_key, district_id, school_year, status = 'declined' AS declined
        FROM ssn_collection
        """
    )


def match_rows(source: Any, cohort_table: str | None = None) -> ir.Table:
    """One row per adjusted-cohort student: student_key, cohort, district_id, category (see MATCH_CATEGORIES)."""
    last = extract.of(source).require_years()[0]
    return engine_of(source).relation(
        f"""
        WITH cov_cohort AS (SELECT * FROM {cohort.cohort_source(last, cohort_table)} ac),
        cov_provided AS (SELECT DISTINCT student_key FROM ssn_collection WHERE status = 'provided'),
        cov_found AS (SELECT DISTINCT student_key FROM wages WHERE wages > 0)
        SELECT c.student_key, c.cohort, c.acgr_district_id AS district_id,
               CASE WHEN p.student_key IS NULL THEN 'not_provided'
                    WHEN f.student_key IS NULL THEN 'provided_not_found'
                    ELSE 'provided_found' END AS category
        FROM cov_cohort c
        LEFT JOIN cov_provided p ON p.student_key = c.student_key
        LEFT JOIN cov_found f ON f.student_key = c.student_key
        """
    )
