"""The DuckDB floor (benchmarks/floor.py) computes the cells the release publishes.

Its cells are checked against the generator's planted truth (truth/, which the product never
reads), student by student summed into cells: graduation outcomes at every level, opt-out,
employment among matched students, college enrolment and every test counted. Two extracts:
one ending in 2025 and one cut after 2022 (windows not yet over). The noise is checked against
its stated scale.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analytics.synth import generate
from benchmarks import floor

N_STUDENTS = 4_000


@pytest.fixture(scope="module", params=[2025, 2022], ids=["ends-2025", "ends-2022"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, floor.FloorResult]:
    data = tmp_path_factory.mktemp(f"floor{request.param}") / "data"
    generate(data, N_STUDENTS, seed=5, last_year=request.param)
    return data, floor.run_floor(data, seed=3)


def _truth(data: Path) -> pd.DataFrame:
    truth = pq.read_table(data / "truth" / "students.parquet").to_pandas()
    schools = pq.read_table(data / "schools.parquet").to_pandas()[["school_id", "district_id"]]
    ssn = pq.read_table(data / "ssn_collection.parquet").to_pandas()[["student_key", "status"]]
    out = truth.merge(schools.rename(columns={"school_id": "acgr_school_id"}), on="acgr_school_id", how="left")
    return out.merge(ssn, on="student_key", how="left")


def _years(data: Path) -> floor.Years:
    con = floor.connect(data)
    try:
        return floor.end_years(con, data)
    finally:
        con.close()


def test_graduation_levels_match_the_truth(run: tuple[Path, floor.FloorResult]) -> None:
    data, result = run
    truth = _truth(data)
    years = _years(data)
    m = result.exact["graduation_measurements"]
    for measure, (num, den, window) in floor.ACGR.items():
        cohorts = [c for c in floor.COHORTS if c + window <= years.school]
        rows = truth[truth["acgr_category"].isin(den) & truth["cohort"].isin(cohorts)]
        yes = rows["acgr_category"].isin(num).map({True: "yes", False: "no"})
        levels = {"state": ["cohort"], "district": ["district_id", "cohort"], "school": ["acgr_school_id", "cohort"]}
        for level, keys in levels.items():
            want = rows.assign(outcome=yes).groupby([*keys, "outcome"]).size()
            got = m[(m["measure"] == measure) & (m["level"] == level)].rename(columns={"school_id": "acgr_school_id"})
            got = got.set_index([*keys, "outcome"])["n"]
            assert got.sum() == len(rows), (measure, level)
            assert (got.reindex(want.index) == want).all(), (measure, level)
    assert len(m[(m["level"] == "state") & (m["measure"] == "acgr_5yr")]) == 2 * len(
        [c for c in floor.COHORTS if c + 4 <= years.school]
    )


def test_optout_and_tests_match_the_truth(run: tuple[Path, floor.FloorResult]) -> None:
    data, result = run
    districts = pq.read_table(data / "truth" / "districts.parquet").to_pandas().set_index("district_id")
    by = result.exact["ssn_collection_by_district"].pivot(index="district_id", columns="declined", values="n")
    asked = by[True] + by[False]
    assert (asked == districts.loc[asked.index, "n_asked"]).all()
    rate = (by[True] / asked).where(asked > 0)
    np.testing.assert_allclose(rate.dropna(), districts.loc[rate.dropna().index, "realised_optout_rate"])
    assert result.exact["ssn_collection_by_year"]["n"].sum() == asked.sum()
    truth = _truth(data)
    tests = np.minimum(truth["n_tests"], floor.TESTS_PER_STUDENT).sum()
    for name in ("proficiency_by_grade", "proficiency_by_district", "proficiency_by_school"):
        assert result.exact[name]["n"].sum() == tests, name
    assert result.exact["proficiency_by_subgroup"]["n"].sum() == floor.SUBGROUP_FAMILIES * tests


def test_workforce_matches_the_truth(run: tuple[Path, floor.FloorResult]) -> None:
    """Qualifying employment of matched cohort students, by cohort and years out, as the truth counts it."""
    data, result = run
    truth = _truth(data)
    years = _years(data)
    w = result.exact["workforce_by_cohort"]
    cohort_students = truth[truth["acgr_category"].notna()]
    for k in floor.YEARS_OUT:
        rows = cohort_students[cohort_students["cohort"] + 3 + k <= years.wage]
        got = w[w["years_out"] == k].groupby("cohort")["n"].sum()
        assert got.sum() == len(rows), k
        employed = rows[(rows["status"] == "provided") & rows[f"employed_y{k}"].astype(bool)]
        want = employed.groupby("cohort").size()
        got_emp = w[(w["years_out"] == k) & w["category"].isin(floor.EMPLOYED)].groupby("cohort")["n"].sum()
        assert (got_emp.reindex(want.index) == want).all(), k
        unmatched = rows[rows["status"] != "provided"].groupby("cohort").size()
        got_un = w[(w["years_out"] == k) & (w["category"] == "unmatched")].groupby("cohort")["n"].sum()
        assert (got_un.reindex(unmatched.index) == unmatched).all(), k
    earn = result.exact["earnings_by_cohort"]["n"].sum()
    assert earn == w[w["category"].isin(floor.EMPLOYED)]["n"].sum()
    assert result.exact["industry_by_years_out"]["n"].sum() == earn


def test_college_matches_the_truth(run: tuple[Path, floor.FloorResult]) -> None:
    data, result = run
    truth = _truth(data)
    years = _years(data)
    grads = truth[truth["acgr_category"].isin(floor.GRADUATE_CATEGORIES) & (truth["cohort"] + 5 <= years.post)]
    c = result.exact["college_by_cohort"]
    assert c["n"].sum() == len(grads)
    level = c["category"].str.split("|").str[1]
    timing = c["category"].str.split("|").str[0]
    for lv in ("2-year", "4-year"):
        got = c[level == lv].groupby("cohort")["n"].sum()
        want = grads[grads["college_level"] == lv].groupby("cohort").size()
        assert (got.reindex(want.index) == want).all(), lv
    fall = c[timing == "fall"]["n"].sum()
    assert fall == int(grads["college_by_oct31"].fillna(False).astype(bool).sum())
    assert result.exact["college_by_district"]["n"].sum() == len(grads)


def test_growth_cells_bound_each_student(run: tuple[Path, floor.FloorResult]) -> None:
    _, result = run
    model = result.exact["growth_model"]
    assert (model["n"] >= 0).all() and model["n"].sum() > 0
    assert (model["sum_gain_sq"] <= model["n"] + 1e-9).all()  # gains are scaled to [-1, 1]
    school = result.exact["growth_by_school:mean"]
    assert (school["sum_residual"].abs() <= school["n"] * school["bound"] + 1e-6).all()
    assert result.exact["growth_by_school"]["n"].sum() == school["n"].sum() > 0


def test_noise_has_its_stated_scale(run: tuple[Path, floor.FloorResult]) -> None:
    """Two-sided geometric noise of scale b has variance 2 e^(-1/b) / (1 - e^(-1/b))^2.

    Over the 4,500 cells of the district x year opt-out table the sample variance of a
    Laplace-like variable (kurtosis 6) has relative standard error sqrt(5 / 4500) = 3.3%;
    a 20% band is six of them.
    """
    _, result = run
    t = result.noisy["ssn_collection_by_district_year"]
    b = 1 / floor.table_epsilons()["ssn_collection_by_district_year"]
    q = math.exp(-1 / b)
    want = 2 * q / (1 - q) ** 2
    got = float(np.var(t["noisy"] - t["n"]))
    assert abs(got / want - 1) < 0.2
    assert set(floor.TABLES) <= {name.split(":")[0] for name in result.noisy}  # every table gets noise
