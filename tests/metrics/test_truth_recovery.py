"""The published metrics recover the truth the generator planted (large N, high epsilon).

Tolerances come from the stated margins of error: each 95% interval should
cover its true value, so across many districts at least 85% must (a binomial
tail far below 1e-3 for 40+ districts at 95% coverage). Truth is read from the
generator's truth/ folder, which the product never reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from analytics.metrics import workforce
from analytics.release import Release, load_release
from analytics.synth import generate
from tests.accounting import build_test_release

pytestmark = pytest.mark.slow
N_STUDENTS = 60_000
EPSILON = 60.0  # ten times the default split


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Path]:
    root = tmp_path_factory.mktemp("recovery")
    data = root / "data"
    generate(data, N_STUDENTS, seed=5)
    build_test_release(data, root / "releases", epsilon=EPSILON, seed=17)
    return load_release(root / "releases"), data / "truth"


def _coverage(estimate: pd.Series, truth: pd.Series, moe: pd.Series) -> float:
    return float(np.mean(np.abs(estimate.to_numpy() - truth.to_numpy()) <= moe.to_numpy() + 1e-12))


def test_district_graduation_rates(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    schools = release.table("schools")[["school_id", "district_id"]]
    kept = truth[truth["cohort"].notna() & ~truth["removed_from_cohort"].astype(bool)]
    kept = kept.merge(schools, left_on="acgr_school_id", right_on="school_id")
    true_rate = kept.groupby(["district_id", "cohort"])["graduated_4yr"].agg(["mean", "size"]).reset_index()
    table = release.table("graduation_by_district")
    got = table[table.measure == "acgr_4yr"].merge(true_rate, on=["district_id", "cohort"])
    got = got[got["size"] >= 100]
    assert len(got) >= 40
    assert _coverage(got["value"], got["mean"], got["value_moe95"]) >= 0.85


def test_district_optout_rates(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "districts.parquet")
    got = release.table("ssn_collection_by_district").merge(truth, on="district_id", suffixes=("", "_true"))
    got = got[got["n_asked"] >= 100]
    assert len(got) >= 40
    assert _coverage(got["optout_rate"], got["realised_optout_rate"], got["optout_rate_moe95"]) >= 0.85
    # and the planted propensities are recovered in rank
    assert spearmanr(got["optout_rate"], got["optout_propensity"])[0] > 0.8


def test_school_growth_ranking(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    planted = pd.read_parquet(truth_dir / "schools.parquet")
    growth = release.table("growth_by_school")
    for measure in ("median_growth_percentile", "value_added_points_eb"):
        per_school = growth[(growth.measure == measure) & (growth.n_students >= 50)]
        per_school = per_school.groupby("school_id")["value"].mean().reset_index().merge(planted, on="school_id")
        rho = spearmanr(per_school["value"], per_school["growth_effect"])[0]
        assert rho > 0.7, f"{measure}: rank correlation with the planted school effect is {rho:.2f}"


def test_statewide_employment_and_bounds(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    table = release.table("workforce_by_cohort")
    ssn = pd.read_parquet(truth_dir.parent / "ssn_collection.parquet")
    provided = set(ssn.loc[ssn.status == "provided", "student_key"])
    kept = truth[truth["cohort"].notna() & ~truth["removed_from_cohort"].astype(bool)]
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


def test_median_earnings(released: tuple[Release, Path]) -> None:
    release, truth_dir = released
    truth = pd.read_parquet(truth_dir / "students.parquet")
    ssn = pd.read_parquet(truth_dir.parent / "ssn_collection.parquet")
    provided = set(ssn.loc[ssn.status == "provided", "student_key"])
    table = release.table("earnings_by_cohort")
    factors = workforce.cpi_factors()
    for cohort_year, k in ((2014, 1), (2014, 5), (2018, 3)):
        cell = truth[
            (truth.cohort == cohort_year)
            & ~truth["removed_from_cohort"].astype(bool)
            & truth[f"employed_y{k}"].fillna(False).astype(bool)
            & truth.student_key.isin(provided)
        ]
        true_median = float(np.median(cell[f"earnings_y{k}"] * factors[cohort_year + 3 + k]))
        row = table[(table.cohort == cohort_year) & (table.years_out == k) & (table.measure == "p50")].iloc[0]
        width = workforce.EARNINGS_BINS.edges[1] - workforce.EARNINGS_BINS.edges[0]
        # the histogram reads a median within one bin of the exact one, plus the noise margin
        assert abs(row["value"] - true_median) <= row["value_moe95"] + width
