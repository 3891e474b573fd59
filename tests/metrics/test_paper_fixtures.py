"""Metric definitions on a dozen hand-made students whose answers are worked out on paper (tests/helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analytics import catalog
from analytics.engine import execute
from analytics.metrics import cohort, postsecondary, workforce
from analytics.validate import Dataset, load_dataset
from tests.helpers import paper_tables, write_dataset

EXACT = 200.0  # epsilon so large that the geometric noise is 0: the tables show the exact values


#: The paper extract's end years: K-12 and wages through 2015, college terms through 2016.
PAPER_EXTRACT = {"last_school_year": 2015, "last_wage_year": 2015, "last_postsecondary_year": 2016}


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder = write_dataset(tmp_path_factory.mktemp("paper") / "d", paper_tables())
    (folder / "extract.json").write_text(json.dumps(PAPER_EXTRACT))
    return load_dataset(folder)


def _key(letter: str) -> str:
    return f"KPAPER{letter}{letter}"


def test_acgr_categories_follow_esea(paper: Dataset) -> None:
    out = execute(cohort.cohort_outcomes(paper.source)).set_index("student_key")
    expected = {
        "A": "grad4",
        "B": "grad5",
        "C": "grad4",
        "E": "not_graduated",
        "F": "not_graduated",
        "G": "grad4",
        "I": "grad4",
        "J": "grad4_open",  # cohort 2012: its 5th year (2016) is after the extract's last school year
        "K": "grad5",
    }
    for letter, category in expected.items():
        assert out.loc[_key(letter), "acgr_category"] == category, letter
    for letter in "DHL":
        assert out.loc[_key(letter), "removed_4yr"], letter
    assert out.loc[_key("C"), "cohort"] == 2011  # a transfer in joins the grade-mates' cohort
    assert out.loc[_key("K"), "cohort"] == 2011  # a repeated grade 9 does not start a new cohort
    assert out.loc[_key("J"), "cohort"] == 2012
    assert out.loc[_key("G"), "acgr_school_id"] == "H2" and out.loc[_key("G"), "acgr_district_id"] == "D02"


def _table(ds: Dataset, name: str) -> pd.DataFrame:
    ctx = catalog.BuildContext(ds.source)
    return catalog.TABLES_BY_NAME[name].build(ctx, EXACT, 1)


def _value(df: pd.DataFrame, measure: str, **cell: object) -> float:
    mask = df["measure"] == measure
    for k, v in cell.items():
        mask &= df[k] == v
    (value,) = df.loc[mask, "value"].tolist()
    return float(value)


def test_acgr_rates_by_state_school_and_district(paper: Dataset) -> None:
    state = _table(paper, "graduation_by_cohort")
    assert _value(state, "acgr_4yr", cohort=2011) == pytest.approx(4 / 8)
    assert _value(state, "acgr_5yr", cohort=2011) == pytest.approx(6 / 8)
    assert _value(state, "acgr_4yr", cohort=2012) == pytest.approx(1.0)
    school = _table(paper, "graduation_by_school")
    assert _value(school, "acgr_4yr", school_id="H1", cohort=2011) == pytest.approx(3 / 7)
    assert _value(school, "acgr_5yr", school_id="H1", cohort=2011) == pytest.approx(5 / 7)
    assert _value(school, "acgr_4yr", school_id="H2", cohort=2011) == pytest.approx(1.0)
    district = _table(paper, "graduation_by_district")
    assert _value(district, "acgr_4yr", district_id="D01", cohort=2011) == pytest.approx(3 / 7)
    h1 = school[(school.school_id == "H1") & (school.cohort == 2011) & (school.measure == "acgr_4yr")]
    assert int(h1["denominator"].iloc[0]) == 7 and int(h1["numerator"].iloc[0]) == 3


def test_employment_threshold_edges_and_unmatched_students(paper: Dataset) -> None:
    rows = execute(workforce.workforce_rows(paper.source))
    y1 = rows[(rows.years_out == 1) & (rows.cohort == 2011)].set_index("student_key")["category"]
    assert y1[_key("A")] == "qualifying_part"  # 2 quarters, exactly $3,000
    assert y1[_key("B")] == "some_wages"  # one quarter, however large
    assert y1[_key("C")] == "qualifying_full"
    assert y1[_key("G")] == "some_wages"  # $2,999.99
    assert y1[_key("I")] == "no_wages"
    assert y1[_key("E")] == "unmatched" and y1[_key("F")] == "unmatched"
    table = _table(paper, "workforce_by_cohort")
    cell = {"cohort": 2011, "years_out": 1}
    # matched: A B C G I K (6); employed A, C
    assert _value(table, "employment_rate", **cell) == pytest.approx(2 / 6)
    assert _value(table, "employment_rate_any_wages", **cell) == pytest.approx(4 / 6)
    assert _value(table, "employment_rate_full_year", **cell) == pytest.approx(1 / 6)
    assert _value(table, "coverage", **cell) == pytest.approx(6 / 8)
    assert _value(table, "employment_lower_bound", **cell) == pytest.approx(2 / 8)
    assert _value(table, "employment_upper_bound", **cell) == pytest.approx(4 / 8)


def test_earnings_are_in_2024_dollars() -> None:
    factor = workforce.cpi_factors()[2015]
    assert factor == pytest.approx(313.689 / 237.017)


def test_postsecondary_window_edges(paper: Dataset) -> None:
    rows = execute(postsecondary.college_rows(paper.source)).set_index("student_key")["category"]
    assert rows[_key("A")] == "fall|4-year|in_state|persisted"  # October 31 counts
    assert rows[_key("C")] == "later|2-year|out_of_state|left"  # November 1: within 16 months only
    # last day of the 16-month window; its next academic year (2016-17) is past the extract's end: not yet observable
    assert rows[_key("G")] == "later|4-year|in_state|open"
    assert rows[_key("I")] == "none"  # one day past it
    assert rows[_key("B")] == "none"  # a term before graduation does not count
    table = _table(paper, "college_by_cohort")
    # graduates of cohort 2011: A B C G I K -> by Oct 31: A; within 16 months: A C G
    assert _value(table, "enrolled_by_oct31", cohort=2011) == pytest.approx(1 / 6)
    assert _value(table, "enrolled_within_16_months", cohort=2011) == pytest.approx(3 / 6)
    assert _value(table, "persistence", cohort=2011) == pytest.approx(1 / 2)  # A of A, C (G not yet observable)


def test_match_rate_counts_provided_and_found(paper: Dataset) -> None:
    table = _table(paper, "match_by_district_cohort")
    # D01 cohort 2011 (attributed): A B C E F I K; provided: A B C I K; found in wages: A B C
    assert _value(table, "ssn_provided_share", district_id="D01", cohort=2011) == pytest.approx(5 / 7)
    assert _value(table, "wage_match_rate", district_id="D01", cohort=2011) == pytest.approx(3 / 7)


def test_empty_public_cells_are_published_and_unobservable_ones_are_not(paper: Dataset, tmp_path: Path) -> None:
    table = _table(paper, "graduation_by_district")
    four = table[table.measure == "acgr_4yr"]
    # every public district of every cohort whose 4 years are over (2011, 2012), empty ones included
    assert sorted(four["cohort"].unique()) == [2011, 2012]
    assert set(four["district_id"]) == {"D01", "D02"}
    assert sorted(table.loc[table.measure == "acgr_5yr", "cohort"].unique()) == [2011]
