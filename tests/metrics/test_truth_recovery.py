"""The metrics recover the truth the generator planted.

Two parts. Exact (fast): on generated extracts, one ending in 2025 and one cut after
2022, the metric code and the generator's truth agree student by student on every
planted case of issue 11 (cohort membership, removal, graduation, attribution to the
diploma school, 5-year returns, not-yet-observable windows, co-enrolment, every test
counted, top-coded earnings); and twice on fresh loads gives the same answer.

Noisy (slow; large N, high epsilon): the published tables cover the truth. Tolerances
come from the stated margins of error: each 95% interval should cover its true value,
so across many cells at least 85% must (a binomial tail far below 1e-3 for 40+ cells
at 95% coverage; 75% for the 20-odd statewide cohort cells, a tail below 1e-3 too).
Truth is read from the generator's truth/ folder, which the product never reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from analytics import extract
from analytics.engine import execute
from analytics.metrics import assessment, cohort, postsecondary, workforce
from analytics.release import Release, load_release
from analytics.synth import generate
from analytics.validate import Dataset, load_dataset
from tests.accounting import build_test_release

N_STUDENTS = 60_000
EPSILON = 60.0  # ten times the default split
EXACT_STUDENTS = 6_000
CUT_YEAR = 2022
CUT_STUDENTS = 20_000


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Path]:
    root = tmp_path_factory.mktemp("recovery")
    data = root / "data"
    generate(data, N_STUDENTS, seed=5)
    build_test_release(data, root / "releases", epsilon=EPSILON, seed=17)
    return load_release(root / "releases"), data / "truth"


@pytest.fixture(scope="module")
def released_cut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Path]:
    """A release of an extract that ends in 2022 (the same generator, cut early)."""
    root = tmp_path_factory.mktemp("recovery_cut")
    data = root / "data"
    generate(data, CUT_STUDENTS, seed=6, last_year=CUT_YEAR)
    build_test_release(data, root / "releases", epsilon=EPSILON, seed=18)
    return load_release(root / "releases"), data / "truth"


@pytest.fixture(scope="module", params=[2025, CUT_YEAR], ids=["ends-2025", "ends-2022"])
def exact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp(f"exact{request.param}") / "data"
    generate(folder, EXACT_STUDENTS, seed=5, last_year=request.param)
    return folder, pd.read_parquet(folder / "truth" / "students.parquet")


def _flag(truth: pd.DataFrame, name: str) -> pd.Series:
    return truth[name].fillna(False).astype(bool)


def _coverage(estimate: pd.Series, truth: pd.Series, moe: pd.Series) -> float:
    return float(np.mean(np.abs(estimate.to_numpy() - truth.to_numpy()) <= moe.to_numpy() + 1e-12))


# ---------------------------------------------------------------------------
# Exact: the metric code against the generator's truth, student by student
# ---------------------------------------------------------------------------
def _outcomes(folder: Path) -> tuple[Dataset, pd.DataFrame]:
    ds = load_dataset(folder)
    out = execute(cohort.cohort_outcomes(ds.source))
    return ds, out.sort_values("student_key", ignore_index=True)


def test_cohorts_categories_removal_and_attribution_match_the_truth(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    _, out = _outcomes(folder)
    members = truth[truth["cohort"].notna()]
    assert set(out["student_key"]) == set(members["student_key"])  # cohort membership
    m = members.merge(out, on="student_key", suffixes=("", "_metric"))
    assert (m["cohort"] == m["cohort_metric"]).all()
    assert (m["acgr_category"].fillna("-") == m["acgr_category_metric"].fillna("-")).all()
    done = m["removed_from_cohort"].notna()
    assert (m.loc[done, "removed_from_cohort"].astype(bool) == m.loc[done, "removed_4yr"].astype(bool)).all()
    counted = m["acgr_category"].notna()
    assert (m.loc[counted, "acgr_school_id"] == m.loc[counted, "acgr_school_id_metric"]).all()
    # the same answer on a fresh load
    _, again = _outcomes(folder)
    pd.testing.assert_frame_equal(out, again)


def test_each_planted_case_gets_the_rule(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    ds, out = _outcomes(folder)
    last = extract.of(ds.source).require_years()[0]
    m = truth.merge(out, on="student_key", suffixes=("", "_metric")).set_index("student_key")
    enr = ds.source.sql("SELECT * FROM enrollments")
    diploma_school = enr[enr["exit_type"] == "graduated"].set_index("student_key")["school_id"]

    # Incomplete cohorts: never non-graduates; in no rate until their 4 years are over, then open in the 5th.
    cont = m[_flag(m, "continuing")]
    assert len(cont) > 0
    assert cont.loc[cont["cohort"] + 3 > last, "acgr_category_metric"].isna().all()
    assert cont["acgr_category_metric"].dropna().eq("in4_open").all()
    # Same-year transfer and diploma: a graduate, credited to the diploma school.
    same = m[_flag(m, "same_year_transfer_diploma")]
    assert len(same) > 0
    assert same["acgr_category_metric"].isin(["grad4", "grad4_open"]).all()
    assert not same["removed_4yr"].astype(bool).any()
    assert (same["acgr_school_id_metric"] == diploma_school.reindex(same.index)).all()
    # Returns in year 5: removed from the 4-year cohort, graduates of the 5-year one, at the diploma school.
    five = m[_flag(m, "returned_in_year5")]
    assert len(five) > 0
    assert (five["acgr_category_metric"] == "returned_grad5").all() and five["removed_4yr"].astype(bool).all()
    assert (five["acgr_school_id_metric"] == diploma_school.reindex(five.index)).all()
    assert (five["cohort"] + 4 <= last).all()
    # Returns within 4 years: still in the 4-year cohort, graduates.
    four = m[_flag(m, "returned_within_4yrs")]
    assert len(four) > 0 and four["acgr_category_metric"].isin(["grad4", "grad4_open"]).all()
    # Windows not over: no category for cohorts whose 4 years run past the last year.
    assert m.loc[m["cohort"] + 3 > last, "acgr_category_metric"].isna().all()
    if last < 2025:  # a cut extract has cohorts with the 4 years over and the 5th open
        open5 = m.loc[m["cohort"] + 4 == last + 1, "acgr_category_metric"]
        assert set(open5.dropna()) == {"grad4_open", "in4_open"}


def test_rates_from_the_metric_equal_the_rates_from_the_truth(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    _, out = _outcomes(folder)
    num4, den4 = cohort.ACGR4
    num5, den5 = cohort.ACGR5
    m = truth.merge(out, on="student_key", suffixes=("", "_metric"))
    for (num, den), true_column in (((num4, den4), "graduated_4yr"), ((num5, den5), "graduated_5yr")):
        cell = m[m["acgr_category_metric"].isin(den)]
        metric = cell["acgr_category_metric"].isin(num).groupby(cell["cohort"]).mean()
        planted = cell[true_column].astype(bool).groupby(cell["cohort"]).mean()
        pd.testing.assert_series_equal(metric, planted, check_names=False)


def test_first_college_enrolment_of_co_enrolled_graduates(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    ds = load_dataset(folder)
    rows = execute(postsecondary.college_rows(ds.source)).merge(truth, on="student_key", suffixes=("", "_truth"))
    assert _flag(rows, "co_enrolled").sum() > 0
    enrolled = rows["category"] != "none"
    assert (enrolled == rows["college_level"].notna()).all()
    parts = rows.loc[enrolled, "category"].str.split("|", expand=True)
    assert (parts[1] == rows.loc[enrolled, "college_level"]).all()
    assert ((parts[0] == "fall") == rows.loc[enrolled, "college_by_oct31"].astype(bool)).all()
    post = ds.source.sql("SELECT * FROM postsecondary")
    assert post.duplicated(["student_key", "term_start"]).any()  # co-enrolment loads


def test_workforce_and_top_coded_earnings_match_the_truth(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    ds = load_dataset(folder)
    last_wage = extract.of(ds.source).require_years()[1]
    rows = execute(workforce.workforce_rows(ds.source))
    population = truth[truth["acgr_category"].notna()]
    assert set(rows["student_key"]) <= set(population["student_key"])
    assert (rows["year"] <= last_wage).all()
    top = set()
    for k in workforce.YEARS_OUT:
        cell = rows[rows["years_out"] == k].merge(truth, on="student_key")
        matched = cell[cell["matched"]]
        qualifying = matched["category"].isin(["qualifying_part", "qualifying_full"])
        assert (qualifying == matched[f"employed_y{k}"].astype(bool)).all()
        np.testing.assert_allclose(matched["wages_nominal"], matched[f"earnings_y{k}"], atol=0.02)
        top |= set(cell.loc[cell["earnings_2024"] >= workforce.EARNINGS_TOP_USD, "student_key"])
    flagged = set(population.loc[_flag(population, "top_coded"), "student_key"])
    matched_keys = set(rows.loc[rows["matched"], "student_key"])
    assert top and top == flagged & matched_keys
    # students who return to graduate in year 5 are followed into the workforce
    returned = set(population.loc[_flag(population, "returned_in_year5"), "student_key"])
    assert returned and returned <= set(rows["student_key"])


def test_every_test_counts(exact: tuple[Path, pd.DataFrame]) -> None:
    folder, truth = exact
    ds = load_dataset(folder)
    tests = execute(assessment.assessment_rows(ds.source))
    assert len(tests) == int(truth["n_tests"].sum())
    per_student = tests.groupby("student_key").size()
    assert per_student.max() <= assessment.MAX_TESTS_PER_STUDENT  # the bound drops no test
    repeated = truth[truth["repeated_grade"]].set_index("student_key")
    assert len(repeated) > 0
    assert (per_student.reindex(repeated.index) == repeated["n_tests"]).all()


# ---------------------------------------------------------------------------
# Noisy: the published tables cover the truth
# ---------------------------------------------------------------------------
def _acgr_truth(truth: pd.DataFrame, schools: pd.DataFrame, measure: str) -> pd.DataFrame:
    num, den = cohort.ACGR4 if measure == "acgr_4yr" else cohort.ACGR5
    kept = truth[truth["acgr_category"].isin(den)].merge(schools, left_on="acgr_school_id", right_on="school_id")
    return kept.assign(graduated=kept["acgr_category"].isin(num))


@pytest.mark.slow
def test_district_graduation_rates(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    schools = release.table("schools")[["school_id", "district_id"]]
    kept = _acgr_truth(truth, schools, "acgr_4yr")
    true_rate = kept.groupby(["district_id", "cohort"])["graduated"].agg(["mean", "size"]).reset_index()
    table = release.table("graduation_by_district")
    got = table[table.measure == "acgr_4yr"].merge(true_rate, on=["district_id", "cohort"])
    got = got[got["size"] >= 100]
    assert len(got) >= 40
    assert _coverage(got["value"], got["mean"], got["value_moe95"]) >= 0.85


@pytest.mark.slow
def test_statewide_4_and_5_year_rates_count_returns(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    assert _flag(truth, "returned_in_year5").sum() >= 100
    schools = release.table("schools")[["school_id", "district_id"]]
    table = release.table("graduation_by_cohort")
    est, true, moe = [], [], []
    for measure in ("acgr_4yr", "acgr_5yr"):
        rate = _acgr_truth(truth, schools, measure).groupby("cohort")["graduated"].mean().rename("true")
        got = table[table.measure == measure].merge(rate, left_on="cohort", right_index=True)
        assert len(got) == 11
        est += got["value"].tolist()
        true += got["true"].tolist()
        moe += got["value_moe95"].tolist()
    assert _coverage(pd.Series(est), pd.Series(true), pd.Series(moe)) >= 0.75


@pytest.mark.slow
def test_college_going_with_co_enrolment(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    grads = truth[truth["acgr_category"].isin(cohort.GRADUATE_CATEGORIES)]
    grads = grads[grads["cohort"] + postsecondary.COLLEGE_WINDOW_YEARS <= 2025]
    assert _flag(grads, "co_enrolled").sum() >= 200
    table = release.table("college_by_cohort")
    est, true, moe = [], [], []
    for measure, rule in (
        ("enrolled_within_16_months", grads["college_level"].notna()),
        ("enrolled_4year_by_oct31", (grads["college_level"] == "4-year") & _flag(grads, "college_by_oct31")),
    ):
        rate = rule.groupby(grads["cohort"]).mean().rename("true")
        got = table[table.measure == measure].merge(rate, left_on="cohort", right_index=True)
        assert len(got) >= 6
        est += got["value"].tolist()
        true += got["true"].tolist()
        moe += got["value_moe95"].tolist()
    assert _coverage(pd.Series(est), pd.Series(true), pd.Series(moe)) >= 0.75


@pytest.mark.slow
def test_district_optout_rates(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "districts.parquet")
    got = release.table("ssn_collection_by_district").merge(truth, on="district_id", suffixes=("", "_true"))
    got = got[got["n_asked"] >= 100]
    assert len(got) >= 40
    assert _coverage(got["optout_rate"], got["realised_optout_rate"], got["optout_rate_moe95"]) >= 0.85
    # and the planted propensities are recovered in rank
    assert spearmanr(got["optout_rate"], got["optout_propensity"])[0] > 0.8


@pytest.mark.slow
def test_school_growth_ranking(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    planted = pd.read_parquet(truth_dir / "schools.parquet")
    growth = release.table("growth_by_school")
    for measure in ("median_growth_percentile", "value_added_points_eb"):
        per_school = growth[(growth.measure == measure) & (growth.n_students >= 50)]
        per_school = per_school.groupby("school_id")["value"].mean().reset_index().merge(planted, on="school_id")
        rho = spearmanr(per_school["value"], per_school["growth_effect"])[0]
        assert rho > 0.7, f"{measure}: rank correlation with the planted school effect is {rho:.2f}"


@pytest.mark.slow
def test_statewide_employment_and_bounds(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    table = release.table("workforce_by_cohort")
    ssn = pd.read_parquet(truth_dir.parent / "ssn_collection.parquet")
    provided = set(ssn.loc[ssn.status == "provided", "student_key"])
    kept = truth[truth["acgr_category"].notna()]  # the adjusted 4-year cohort and the returns in year 5
    est, true, moe = [], [], []
    for cohort_year in range(2011, 2022):
        for k in (1, 3, 5):
            column = f"employed_y{k}"
            cell = kept[(kept.cohort == cohort_year) & kept[column].notna()]
            if cell.empty:
                continue
            matched = cell[cell.student_key.isin(provided)]
            row = table[(table.cohort == cohort_year) & (table.years_out == k)].set_index("measure")
            est.append(row.loc["employment_rate", "value"])
            true.append(matched[column].astype(float).mean())
            moe.append(row.loc["employment_rate", "value_moe95"])
            # the true rate over all students (matched or not) lies within the published bounds
            lo = row.loc["employment_lower_bound", "value"] - row.loc["employment_lower_bound", "value_moe95"]
            hi = row.loc["employment_upper_bound", "value"] + row.loc["employment_upper_bound", "value_moe95"]
            assert lo <= cell[column].astype(float).mean() <= hi
    assert len(est) >= 20
    assert _coverage(pd.Series(est), pd.Series(true), pd.Series(moe)) >= 0.8


@pytest.mark.slow
def test_median_earnings_and_top_coding(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    ssn = pd.read_parquet(truth_dir.parent / "ssn_collection.parquet")
    provided = set(ssn.loc[ssn.status == "provided", "student_key"])
    table = release.table("earnings_by_cohort")
    factors = workforce.cpi_factors()
    for cohort_year, k in ((2014, 1), (2014, 5), (2018, 3)):
        cell = truth[
            (truth.cohort == cohort_year)
            & truth["acgr_category"].notna()
            & truth[f"employed_y{k}"].fillna(False).astype(bool)
            & truth.student_key.isin(provided)
        ]
        true_median = float(np.median(cell[f"earnings_y{k}"] * factors[cohort_year + 3 + k]))
        row = table[(table.cohort == cohort_year) & (table.years_out == k) & (table.measure == "p50")].iloc[0]
        width = workforce.EARNINGS_BINS.edges[1] - workforce.EARNINGS_BINS.edges[0]
        # the histogram reads a median within one bin of the exact one, plus the noise margin
        assert abs(row["value"] - true_median) <= row["value_moe95"] + width
    # planted earners above the open top bin are in the data, and no figure is published inside that bin
    assert _flag(truth, "top_coded").sum() >= 100
    for name in ("earnings_by_cohort", "earnings_by_district", "earnings_by_subgroup", "earnings_by_path"):
        t = release.table(name)
        top = t["top_coded"].astype(bool)
        assert (t.loc[~top, "value"] < workforce.EARNINGS_TOP_USD).all(), name
        assert (t.loc[top, "value"] == workforce.EARNINGS_TOP_USD).all(), name


@pytest.mark.slow
def test_extract_ending_early_publishes_no_cell_whose_window_is_open(released_cut: tuple[Release, Path]) -> None:
    release, truth_dir = released_cut
    grad = release.table("graduation_by_cohort")
    assert grad.loc[grad.measure == "acgr_4yr", "cohort"].max() == CUT_YEAR - 3
    assert grad.loc[grad.measure == "acgr_5yr", "cohort"].max() == CUT_YEAR - 4
    college = release.table("college_by_cohort")
    assert college["cohort"].max() == CUT_YEAR - postsecondary.COLLEGE_WINDOW_YEARS
    for name in ("workforce_by_cohort", "earnings_by_cohort"):
        t = release.table(name)
        assert (t["cohort"] + 3 + t["years_out"] <= CUT_YEAR).all(), name
    # the last observable 4-year rate mixes 5th-year-open categories and still covers the truth
    truth = pd.read_parquet(truth_dir / "students.parquet")
    schools = release.table("schools")[["school_id", "district_id"]]
    rate = _acgr_truth(truth, schools, "acgr_4yr").groupby("cohort")["graduated"].mean()
    row = grad[(grad.measure == "acgr_4yr") & (grad.cohort == CUT_YEAR - 3)].iloc[0]
    assert abs(row["value"] - rate[CUT_YEAR - 3]) <= row["value_moe95"] + 1e-12
    assert truth.loc[truth["cohort"] == CUT_YEAR - 3, "acgr_category"].isin(["grad4_open", "in4_open"]).any()
