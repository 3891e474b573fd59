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
            "scale_score": [650.0, 620.5],
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


def paper_tables() -> dict[str, pd.DataFrame]:
    """A dozen students whose graduation, workforce and college outcomes are worked out on paper.

    Cohort 2011 unless noted; H1 is in district D01, H2 in D02.

    ===  =====================================================  ==============
    key  history                                                 ACGR category
    ===  =====================================================  ==============
    A    9-12 at H1 2011-14, graduated 2014                      grad4 (H1)
    B    9-12 at H1, grade 12 again in 2015, graduated 2015      grad5 (H1)
    C    transfer in: first enrolled grade 10 in 2012, grad 2014 grad4 (H1)
    D    documented transfer out in 2012                         removed
    E    undocumented leaver ('other') in 2012                   not_graduated (H1)
    F    dropped out in 2013                                     not_graduated (H1)
    G    H1 2011-12, H2 2013-14 (in-state move), graduated 2014  grad4 (H2)
    H    emigrated in 2013                                       removed
    I    transferred out 2012, back at H1 2013, graduated 2014   grad4 (H1)
    J    cohort 2012: 9-12 at H1 2012-15, graduated 2015         grad4 (H1, 2012)
    K    grade 9 twice (2011, 2012), graduated 2015              grad5 (H1)
    L    died in 2014                                            removed
    ===  =====================================================  ==============

    Cohort 2011: H1 has A B C E F I K: 4-year 3/7, 5-year 5/7; H2 has G: 1/1;
    statewide 4-year 4/8 = 0.5, 5-year 6/8 = 0.75.
    """
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
            "school_id": ["H1", "H2"],
            "school_name": ["Birchwater High School", "Loon Hollow High School"],
            "district_id": ["D01", "D02"],
            "school_level": ["High", "High"],
        }
    )
    keys = {c: f"KPAPER{c}{c}" for c in "ABCDEFGHIJKL"}
    rows: list[tuple[str, int, str, int, str]] = []

    def years(k: str, school: str, start: int, grades: list[int], last_exit: str) -> None:
        for i, g in enumerate(grades):
            rows.append((keys[k], start + i, school, g, last_exit if i == len(grades) - 1 else "continuing"))

    years("A", "H1", 2011, [9, 10, 11, 12], "graduated")
    years("B", "H1", 2011, [9, 10, 11, 12, 12], "graduated")
    years("C", "H1", 2012, [10, 11, 12], "graduated")
    years("D", "H1", 2011, [9, 10], "transferred_out")
    years("E", "H1", 2011, [9, 10], "other")
    years("F", "H1", 2011, [9, 10, 11], "dropped_out")
    years("G", "H1", 2011, [9, 10], "continuing")
    years("G", "H2", 2013, [11, 12], "graduated")
    years("H", "H1", 2011, [9, 10, 11], "emigrated")
    years("I", "H1", 2011, [9, 10], "transferred_out")
    years("I", "H1", 2013, [11, 12], "graduated")
    years("J", "H1", 2012, [9, 10, 11, 12], "graduated")
    years("K", "H1", 2011, [9, 9, 10, 11, 12], "graduated")
    years("L", "H1", 2011, [9, 10, 11, 12], "deceased")
    enrollments = pd.DataFrame(rows, columns=["student_key", "school_year", "school_id", "grade", "exit_type"])
    students = pd.DataFrame(
        {
            "student_key": list(keys.values()),
            "sex": ["F", "M"] * 6,
            "race_ethnicity": ["White"] * 12,
            "economically_disadvantaged": [False] * 12,
            "english_learner": [False] * 11 + [True],
            "disability": [False] * 12,
        }
    )
    status = {k: "provided" for k in keys}
    status["E"] = status["F"] = "declined"
    ssn = pd.DataFrame(
        {
            "student_key": list(keys.values()),
            "school_year": 2011,
            "district_id": "D01",
            "status": [status[k] for k in keys],
        }
    )
    ssn.loc[ssn["student_key"] == keys["J"], "school_year"] = 2012
    # Workforce, year 1 after expected graduation (2015) for cohort 2011:
    # A: 2 quarters, exactly $3,000 -> qualifying (part year); B: 1 quarter of $9,000 -> some wages;
    # C: 4 quarters, $12,000 -> qualifying full year; G: 3 quarters totalling $2,999.99 -> some wages;
    # I: no wages -> matched, no wages; E, F: declined -> unmatched (never "not employed").
    wage_rows = [
        (keys["A"], 2015, 1, 1500.0, "44"),
        (keys["A"], 2015, 3, 1500.0, "44"),
        (keys["B"], 2015, 2, 9000.0, "23"),
        *[(keys["C"], 2015, q, 3000.0, "62") for q in (1, 2, 3, 4)],
        (keys["G"], 2015, 1, 1000.0, "72"),
        (keys["G"], 2015, 2, 1000.0, "72"),
        (keys["G"], 2015, 3, 999.99, "72"),
    ]
    wages = pd.DataFrame(wage_rows, columns=["student_key", "year", "quarter", "wages", "naics2"])
    # College (graduates of 2014: A, C, G, I; of 2015: B, K, J):
    # A: 4-year in-state term 2014-10-31 (by Oct 31) and 2015-09-01 (persisted);
    # C: 2-year out-of-state term 2014-11-01 (after Oct 31, within 16 months), no second year;
    # G: term 2015-10-31 (last day of the 16-month window); I: term 2015-11-01 (outside) -> none;
    # B: term 2015-06-30, before graduation -> not counted, and nothing else -> none.
    postsecondary = pd.DataFrame(
        {
            "student_key": [keys["A"], keys["A"], keys["C"], keys["G"], keys["I"], keys["B"]],
            "term_start": [
                dt.date(2014, 10, 31),
                dt.date(2015, 9, 1),
                dt.date(2014, 11, 1),
                dt.date(2015, 10, 31),
                dt.date(2015, 11, 1),
                dt.date(2015, 6, 30),
            ],
            "institution_level": ["4-year", "4-year", "2-year", "4-year", "2-year", "4-year"],
            "control": ["public"] * 6,
            "in_state": [True, True, False, True, True, True],
        }
    )
    assessments = pd.DataFrame(
        {
            "student_key": [keys["A"]],
            "school_year": [2013],
            "grade": [11],
            "subject": ["math"],
            "scale_score": [510.0],
            "achievement_level": [3],
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
