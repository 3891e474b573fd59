"""Public group keys: the lists every published table is grouped by.

Keys come from the contract's categories, fixed year ranges, and the public
districts and schools tables, never from which values occur in student rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analytics import schema
from analytics.io import DataSource

#: School years for which SSN collection is reported (fall 2010 onward; 2025 = 2024-25).
SSN_SCHOOL_YEARS: tuple[int, ...] = tuple(range(schema.FIRST_SSN_SCHOOL_YEAR, 2026))
#: Grade-9 cohorts reported (cohort = spring year of first-time grade 9).
COHORTS: tuple[int, ...] = tuple(range(2011, 2022))
#: Last calendar year of wage records and last school year of the data.
LAST_DATA_YEAR = 2025


@dataclass(frozen=True)
class PublicLists:
    """Districts and schools from the public tables of a dataset."""

    districts: pd.DataFrame  # district_id, district_name, county, locale
    schools: pd.DataFrame  # school_id, school_name, district_id, school_level

    @property
    def district_ids(self) -> list[str]:
        return self.districts["district_id"].tolist()

    @property
    def school_ids(self) -> list[str]:
        return self.schools["school_id"].tolist()


def public_lists(source: DataSource) -> PublicLists:
    """Read the public districts and schools tables, sorted by id."""
    districts = source.sql("SELECT district_id, district_name, county, locale FROM districts ORDER BY district_id")
    schools = source.sql("SELECT school_id, school_name, district_id, school_level FROM schools ORDER BY school_id")
    return PublicLists(districts.reset_index(drop=True), schools.reset_index(drop=True))
