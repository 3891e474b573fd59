"""Empirical-Bayes value-added: the spread of school effects, shrinkage and margins, on seeded simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.metrics.assessment import shrink_value_added

SIGMA = 10.0  # residual standard deviation, scale points


def _schools(rng: np.random.Generator, m: int, spread_sd: float) -> tuple[pd.DataFrame, np.ndarray]:
    """m schools with true effects ~ N(0, spread_sd^2), noisy means with known sampling and noise variances."""
    n = rng.integers(20, 200, m)
    noise_sd = rng.uniform(2.0, 6.0, m)
    theta = rng.normal(0.0, spread_sd, m)
    value = theta + rng.normal(0.0, SIGMA / np.sqrt(n)) + rng.normal(0.0, noise_sd)
    return pd.DataFrame({"value": value, "value_moe95": 1.96 * noise_sd, "n_students": n}), theta


def test_recovers_the_spread_and_its_intervals_cover_the_truth() -> None:
    spread, m, reps = 5.0, 400, 25
    estimates, covered = [], []
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        means, theta = _schools(rng, m, spread)
        out = shrink_value_added(means, SIGMA)
        d = SIGMA**2 / means["n_students"] + (means["value_moe95"] / 1.96) ** 2
        lam = out["shrinkage"].to_numpy()
        estimates.append(float(np.median(lam / (1 - lam) * d)))  # A = lambda D / (1 - lambda), same for every school
        covered.append(np.abs(out["value_eb"] - theta) <= out["value_eb_moe95"])
    # A's moment estimate has s.d. sqrt(2 sum (A + D)^2) / m, about 2.6 here: the mean of 25 is within 4 s.e.
    assert abs(np.mean(estimates) - spread**2) < 4 * 2.6 / np.sqrt(reps)
    coverage = float(np.mean(np.concatenate(covered)))
    assert 0.93 <= coverage <= 0.97  # 10,000 intervals: binomial s.e. 0.2 points


def test_without_a_spread_every_school_is_pulled_to_the_state_average_with_a_margin() -> None:
    rng = np.random.default_rng(7)
    means, theta = _schools(rng, 400, 0.0)
    out = shrink_value_added(means, SIGMA)
    assert float(out["shrinkage"].max()) < 0.5  # noise only: most of every figure is discounted
    assert (out["value_eb"].abs() < means["value"].abs() + 1e-12).all()
    assert (out["value_eb_moe95"] > 0).all()  # never "0.0 ± 0.0": the spread itself is uncertain
    assert (
        out["value_eb_moe95"]
        <= 1.96 * np.sqrt(SIGMA**2 / means["n_students"] + (means["value_moe95"] / 1.96) ** 2) + 1e-9
    ).all()
    assert (np.abs(out["value_eb"] - theta) <= out["value_eb_moe95"]).mean() >= 0.95


def test_schools_without_an_estimate_stay_without_one() -> None:
    means = pd.DataFrame({"value": [3.0, np.nan, -2.0], "value_moe95": [2.0, 50.0, 2.0], "n_students": [50, 0, 50]})
    out = shrink_value_added(means, SIGMA)
    assert out.loc[1, ["shrinkage", "value_eb", "value_eb_moe95"]].isna().all()
    assert out.loc[[0, 2], "value_eb_moe95"].notna().all()
    with pytest.raises(ValueError, match="residual_sd"):
        shrink_value_added(means, 0.0)
