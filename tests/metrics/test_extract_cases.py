"""The cases of real extracts (issue 11), each on a hand-made dataset with its right value worked out on paper.

Each case is computed twice on freshly loaded copies and must give the same answer both times.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import catalog, queries
from analytics.engine import as_relation, execute
from analytics.metrics import assessment, cohort, postsecondary, workforce
from analytics.validate import Dataset, load_dataset
from tests.helpers import paper_tables, write_dataset

EXACT = 200.0  # epsilon so large that the geometric noise is 0
PAPER_EXTRACT = {"last_school_year": 2015, "last_wage_year": 2015, "last_postsecondary_year": 2016}


def _load(folder: Path, tables: dict[str, pd.DataFrame], config: dict[str, object] | None) -> Dataset:
    write_dataset(folder, tables)
    if config is not None:
        (folder / "extract.json").write_text(json.dumps(config))
    return load_dataset(folder)


def _twice(tmp_path: Path, tables: dict[str, pd.DataFrame], config: dict[str, object] | None = PAPER_EXTRACT):
    return [_load(tmp_path / f"run{i}", tables, config) for i in (1, 2)]


def _table(ds: Dataset, name: str) -> pd.DataFrame:
    return catalog.TABLES_BY_NAME[name].build(catalog.BuildContext(ds.source), EXACT, 1)


def _value(df: pd.DataFrame, measure: str, **cell: object) -> float:
    mask = df["measure"] == measure
    for k, v in cell.items():
        mask &= df[k] == v
    (value,) = df.loc[mask, "value"].tolist()
    return float(value)


def _add_students(tables: dict[str, pd.DataFrame], keys: list[str]) -> None:
    extra = pd.DataFrame(
        {
            "student_key": keys,
            "sex": "F",
            "race_ethnicity": "White",
            "economically_disadvantaged": False,
            "english_learner": False,
            "disability": False,
        }
    )
    tables["students"] = pd.concat([tables["students"], extra], ignore_index=True)
    ssn = pd.DataFrame({"student_key": keys, "school_year": 2011, "district_id": "D01", "status": "provided"})
    tables["ssn_collection"] = pd.concat([tables["ssn_collection"], ssn], ignore_index=True)


def _enrol(tables: dict[str, pd.DataFrame], rows: list[tuple[str, int, str, int, str]]) -> None:
    extra = pd.DataFrame(rows, columns=["student_key", "school_year", "school_id", "grade", "exit_type"])
    tables["enrollments"] = pd.concat([tables["enrollments"], extra], ignore_index=True)


# --- case 1: cohorts not yet complete are not non-graduates ------------------------------------------------


def test_case1_incomplete_cohorts_leave_the_pooled_rate_alone(tmp_path: Path) -> None:
    # Paper: D01 pooled 4-year rate = cohort 2011 at H1 (A, C, I of A B C E F I K) + J (cohort 2012, graduated) = 4/8.
    base = _table(_twice(tmp_path / "base", paper_tables())[0], "graduation_by_district_pooled")
    assert _value(base, "acgr_4yr", district_id="D01") == pytest.approx(4 / 8)
    tables = paper_tables()
    keys = [f"KINCOMPLETE{i:03d}" for i in range(60)]
    _add_students(tables, keys)
    _enrol(tables, [(k, 2015, "H1", 9 + i % 3, "continuing") for i, k in enumerate(keys)])  # grades 9-11, last year
    for ds in _twice(tmp_path / "with60", tables):
        pooled = _table(ds, "graduation_by_district_pooled")
        assert _value(pooled, "acgr_4yr", district_id="D01") == pytest.approx(4 / 8)
        assert _value(pooled, "acgr_5yr", district_id="D01") == pytest.approx(5 / 7)
        by_cohort = _table(ds, "graduation_by_district")
        assert by_cohort["cohort"].max() == 2012  # cohorts 2013-2015 are not yet observable: not published


def test_case1_an_extract_that_ends_early_publishes_no_zero_cells(tmp_path: Path) -> None:
    early = {"last_school_year": 2014, "last_wage_year": 2014, "last_postsecondary_year": 2014}
    tables = paper_tables()
    tables["enrollments"] = tables["enrollments"][tables["enrollments"]["school_year"] <= 2014]
    tables["wages"] = tables["wages"].iloc[[0]].assign(year=2014)
    tables["postsecondary"] = tables["postsecondary"][tables["postsecondary"]["term_start"] < dt.date(2015, 1, 1)]
    for ds in _twice(tmp_path, tables, early):
        grad = _table(ds, "graduation_by_cohort")
        assert set(grad["measure"]) == {"acgr_4yr"} and grad["cohort"].tolist() == [2011]  # 5-year: not yet
        # cohort 2011 in 4 years: A C G I of A B C E F G I K (B, K still enrolled count as not graduated in 4 years)
        assert _value(grad, "acgr_4yr", cohort=2011) == pytest.approx(4 / 8)
        work = _table(ds, "workforce_by_cohort")
        assert work.empty  # year 1 after cohort 2011 is 2015, after the last wage year
        college = _table(ds, "college_by_cohort")
        assert college.empty  # no cohort's college window is over
        assert (_table(ds, "graduation_by_district_pooled")["flag"] != "").all()


# --- case 2: a diploma wins over a transfer in the same year -----------------------------------------------


def test_case2_same_year_transfer_and_diploma(tmp_path: Path) -> None:
    tables = paper_tables()
    keys = [f"KSAMEYEAR{i:03d}" for i in range(200)]
    _add_students(tables, keys)
    rows = []
    for k in keys:
        rows += [(k, 2011 + j, "H1", 9 + j, "continuing") for j in range(3)]
        rows += [(k, 2014, "H1", 12, "graduated"), (k, 2014, "H2", 12, "transferred_out")]
    _enrol(tables, rows)
    answers = []
    for ds in _twice(tmp_path, tables):
        out = execute(cohort.cohort_outcomes(ds.source)).set_index("student_key").loc[keys]
        assert (out["acgr_category"] == "grad4").all()  # 200 of 200 graduated
        assert (out["acgr_school_id"] == "H1").all()  # credited to the diploma school
        assert not out["removed_4yr"].any()
        school = _table(ds, "graduation_by_school")
        answers.append(_value(school, "acgr_4yr", school_id="H1", cohort=2011))
    # H1 cohort 2011: A C I + 200 of A B C E F I K + 200
    assert answers[0] == answers[1] == pytest.approx(203 / 207)


# --- case 3: a student who leaves and comes back ------------------------------------------------------------


def test_case3_return_in_year_five_joins_the_five_year_cohort(tmp_path: Path) -> None:
    tables = paper_tables()
    key = "KRETURN0001"
    _add_students(tables, [key])
    _enrol(
        tables,
        [
            (key, 2011, "H1", 9, "continuing"),
            (key, 2012, "H1", 10, "transferred_out"),
            (key, 2015, "H2", 12, "graduated"),
        ],
    )
    tables["postsecondary"] = pd.concat(
        [
            tables["postsecondary"],
            pd.DataFrame(
                {
                    "student_key": [key],
                    "term_start": [dt.date(2015, 9, 1)],
                    "institution_level": ["2-year"],
                    "control": ["public"],
                    "in_state": [True],
                }
            ),
        ],
        ignore_index=True,
    )
    for ds in _twice(tmp_path, tables):
        out = execute(cohort.cohort_outcomes(ds.source)).set_index("student_key").loc[key]
        assert out["acgr_category"] == "returned_grad5" and out["acgr_school_id"] == "H2"
        state = _table(ds, "graduation_by_cohort")
        # cohort 2011: 4-year unchanged at 4/8 (the student is not in it); 5-year: 6/8 -> 7/9
        assert _value(state, "acgr_4yr", cohort=2011) == pytest.approx(4 / 8)
        assert _value(state, "acgr_5yr", cohort=2011) == pytest.approx(7 / 9)
        college = execute(postsecondary.college_rows(ds.source)).set_index("student_key")
        assert college.loc[key, "category"] == "fall|2-year|in_state|open"
        work = execute(workforce.workforce_rows(ds.source))
        assert key in set(work["student_key"])  # in the workforce population, as unmatched-or-not


# --- case 4: co-enrolment ------------------------------------------------------------------------------------


def test_case4_co_enrolment_is_accepted_and_the_four_year_college_sets_the_level(tmp_path: Path) -> None:
    tables = paper_tables()
    a = "KPAPERAA"
    co = pd.DataFrame(
        {
            "student_key": [a, a],
            "term_start": [dt.date(2014, 10, 31), dt.date(2014, 10, 31)],
            "institution_level": ["2-year", "4-year"],
            "control": ["public", "private"],
            "in_state": [True, False],
        }
    )
    tables["postsecondary"] = pd.concat([tables["postsecondary"], co], ignore_index=True)
    for ds in _twice(tmp_path, tables):
        rows = execute(postsecondary.college_rows(ds.source)).set_index("student_key")
        # three rows on 2014-10-31: 4-year beats 2-year, then in-state beats out-of-state
        assert rows.loc[a, "category"] == "fall|4-year|in_state|persisted"


def test_case4_two_colleges_of_one_kind_need_institution_ids(tmp_path: Path) -> None:
    tables = paper_tables()
    p = tables["postsecondary"]
    twin = p.iloc[[0]].copy()
    tables["postsecondary"] = pd.concat([p, twin], ignore_index=True)
    from analytics.validate import validate_dataset

    report = validate_dataset(write_dataset(tmp_path / "noid", tables))
    assert any("one row per student x term x institution" in str(x) for x in report.problems)
    with_id = pd.concat([p, twin], ignore_index=True).assign(institution_id=["C1"] * len(p) + ["C2"])
    tables["postsecondary"] = with_id
    for ds in _twice(tmp_path / "id", tables):
        assert ds.source.sql("SELECT count(*) AS n FROM postsecondary")["n"].iloc[0] == len(p) + 1


# --- case 6: top-coded earnings ------------------------------------------------------------------------------


def test_case6_top_coded_earnings_are_published_as_at_least_the_top() -> None:
    rows = pd.DataFrame(
        {
            "student_key": [f"K{i:05d}" for i in range(100)],
            "cohort": 2015,
            "earnings": [40_000.0] * 40 + [150_000.0] * 60,
        }
    )
    answers = []
    for _ in range(2):
        wide = queries.noisy_percentiles(
            rows, {"cohort": [2015]}, "earnings", workforce.EARNINGS_BINS, (0.25, 0.5, 0.75), EXACT, seed=3
        )
        long = catalog._percentiles_long(wide, ["cohort"], (0.25, 0.5, 0.75)).set_index("measure")
        answers.append(long[["value", "top_coded"]].to_dict())
        # P25: 25th of 40 students in the $40,000-$45,000 bin: 40,000 + 25/40 * 5,000
        assert long.loc["p25", "value"] == pytest.approx(43_125.0) and not long.loc["p25", "top_coded"]
        for q in ("p50", "p75"):
            assert long.loc[q, "top_coded"] and long.loc[q, "value"] == workforce.EARNINGS_TOP_USD
            assert long.loc[q, "flag_reason"].startswith("top-coded: at least $100,000")
    assert answers[0] == answers[1]


# --- case 7: proficiency keeps repeated-grade tests ----------------------------------------------------------


def test_case7_a_student_who_repeats_grades_keeps_every_test() -> None:
    grades = [3, 4, 5, 5, 6, 7, 8, 8, 11]  # two repeated tested grades: 18 tests
    rows = pd.DataFrame(
        [
            {"student_key": "KREPEAT01", "subject": s, "grade": g, "category": True}
            for g in grades
            for s in ("math", "ela")
        ]
    )
    assert assessment.MAX_TESTS_PER_STUDENT == 18
    for _ in range(2):
        hist = queries.noisy_histogram(
            rows, {"subject": ["math", "ela"]}, "category", [True, False], EXACT, assessment.MAX_TESTS_PER_STUDENT, 1
        )
        assert hist.counts([True]).tolist() == [9, 9]  # every test counted, none dropped
    # the old bound of 14 tests dropped 4 of them
    old = queries.noisy_histogram(rows, {"subject": ["math", "ela"]}, "category", [True, False], EXACT, 14, 1)
    assert int(old.counts([True]).sum()) == 14


# --- case 5: score scales are public configuration -----------------------------------------------------------


def test_case5_declared_score_scales_set_the_growth_bands() -> None:
    from analytics import extract

    cfg, problems = extract.parse({"score_scales": {"math": [2000, 3000]}})
    assert not problems
    sc = assessment.transition_scales(cfg)
    assert sc[(5, "math")].band_edges[:2] == (2000.0, 2100.0) and sc[(5, "math")].gain_bound == pytest.approx(120.0)
    assert sc[(5, "ela")].band_edges[:2] == (200.0, 250.0)
    pairs = pd.DataFrame(
        {"grade": [5, 5], "subject": ["math", "math"], "prior_score": [2050.0, 2950.0], "scale_score": [2100.0, 2800.0]}
    )
    t = as_relation(pairs)
    got = execute(t.select(band=assessment._band(t, sc), bound=assessment._gain_bound(t, sc)))
    assert got["band"].tolist() == [0, 9] and np.allclose(got["bound"], 120.0)
