"""SSN collection and coverage: who was asked, who declined, and where.

Opt-out rate = declined / asked, by the district that asked and the school year
in which it asked. A family is asked once (the ``ssn_collection`` table has one
row per student), so each student sits in exactly one (district, year) cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.io import DataSource

#: Linkage categories of an adjusted-cohort student: SSN not provided (declined or never asked),
#: provided but never found in Maine wage records, provided and found at least once.
MATCH_CATEGORIES: tuple[str, ...] = ("not_provided", "provided_not_found", "provided_found")
MATCH_MEASURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ssn_provided_share": (("provided_not_found", "provided_found"), MATCH_CATEGORIES),
    "wage_match_rate": (("provided_found",), MATCH_CATEGORIES),
    "found_among_provided": (("provided_found",), ("provided_not_found", "provided_found")),
}


def ssn_collection_rows(source: DataSource) -> pd.DataFrame:
    """One row per asked student: student_key, district_id, school_year, declined (bool)."""
    return source.sql(
        """
        SELECT student_key, district_id, school_year, status = 'declined' AS declined
        FROM ssn_collection
        """
    )


def match_rows(source: DataSource, adjusted_cohort: pd.DataFrame) -> pd.DataFrame:
    """One row per adjusted-cohort student: student_key, cohort, district_id, category (see MATCH_CATEGORIES)."""
    linked = source.sql(
        """
        SELECT s.student_key, s.status = 'provided' AS provided,
               EXISTS (SELECT 1 FROM wages w WHERE w.student_key = s.student_key AND w.wages > 0) AS found
        FROM ssn_collection s
        """
    )
    rows = adjusted_cohort[["student_key", "cohort", "acgr_district_id"]].merge(linked, on="student_key", how="left")
    provided = rows["provided"].fillna(False).astype(bool)
    found = rows["found"].fillna(False).astype(bool)
    category = np.where(~provided, "not_provided", np.where(found, "provided_found", "provided_not_found"))
    return pd.DataFrame(
        {
            "student_key": rows["student_key"],
            "cohort": rows["cohort"],
            "district_id": rows["acgr_district_id"],
            "category": category,
        }
    )
