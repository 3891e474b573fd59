"""SSN collection and coverage: who was asked, who declined, and where.

Opt-out rate = declined / asked, by the district that asked and the school year
in which it asked. A family is asked once (the ``ssn_collection`` table has one
row per student), so each student sits in exactly one (district, year) cell.
"""

from __future__ import annotations

import pandas as pd

from analytics.io import DataSource


def ssn_collection_rows(source: DataSource) -> pd.DataFrame:
    """One row per asked student: student_key, district_id, school_year, declined (bool)."""
    return source.sql(
        """
        SELECT student_key, district_id, school_year, status = 'declined' AS declined
        FROM ssn_collection
        """
    )
