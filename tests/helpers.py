"""Hand-made datasets for tests: small enough to check on paper."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd


def tiny_tables() -> dict[str, pd.DataFrame]:
    """A minimal valid dataset: 2 districts, 3 schools, 4 students."""
    districts = pd.DataFrame(
        {
            "district_id": ["D01", "D02"],
            "district_name": ["Birchwater School Department", "Loon Hollow RSU"],
            "county": ["Cumberland", "Aroostook"],
            "locale": ["Suburb", "Rural"],
        }
    )
    schools = pd.DataFrame(
        {
            "school_id": ["S001", "S002", "S003"],
            "school_name": ["Birchwater High School", "Birchwater Elementary", "Loon Hollow Combined School"],
            "district_id": ["D01", "D01", "D02"],
            "school_level": ["High", "Elementary", "Combined"],
        }
    )
    keys = ["KAAAA0001", "KAAAA0002", "KAAAA0003", "KAAAA0004"]
    students = pd.DataFrame(
        {
            "student_key": keys,
            "sex": ["F", "M", "X", "F"],
            "race_ethnicity": ["White", "Asian", "Two or more races", "Hispanic/Latino"],
            "economically_disadvantaged": [True, False, False, True],
            "english_learner": [False, False, False, True],
            "disability": [False, True, False, False],
        }
    )
    enrollments = pd.DataFrame(
        {
            "student_key": [keys[0], keys[0], keys[1], keys[2], keys[3]],
            "school_year": [2014, 2015, 2015, 2015, 2015],
            "school_id": ["S001", "S001", "S001", "S003", "S003"],
            "grade": [11, 12, 12, 12, 12],
            "exit_type": ["continuing", "graduated", "graduated", "dropped_out", "graduated"],
        }
    )
    assessments = pd.DataFrame(
        {
            "student_key": [keys[0], keys[1]],
            "school_year": [2014, 2014],
            "grade": [11, 11],
            "subject": ["math", "ela"],
            "scale_score": [1150.0, 1120.5],
            "achievement_level": [3, 2],
        }
    )
    ssn = pd.DataFrame(
        {
            "student_key": keys,
            "school_year": [2011, 2011, 2012, 2012],
            "district_id": ["D01", "D01", "D02", "D02"],
            "status": ["provided", "provided", "declined", "declined"],
        }
    )
    postsecondary = pd.DataFrame(
        {
            "student_key": [keys[0]],
            "term_start": [dt.date(2015, 8, 29)],
            "institution_level": ["4-year"],
            "control": ["public"],
            "in_state": [True],
        }
    )
    wages = pd.DataFrame(
        {
            "student_key": [keys[0], keys[1]],
            "year": [2016, 2016],
            "quarter": [1, 2],
            "wages": [4200.0, 3100.25],
            "naics2": ["62", "44"],
        }
    )
    return {
        "districts": districts,
        "schools": schools,
        "students": students,
        "enrollments": enrollments,
        "assessments": assessments,
        "ssn_collection": ssn,
        "postsecondary": postsecondary,
        "wages": wages,
    }


def write_dataset(folder: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    """Write tables as ``<table>.<fmt>`` into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder
