"""Tree WLS: exact additivity, agreement with GLS, unbiasedness and variance by simulation, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from analytics import noise
from analytics.estimation.consistency import Hierarchy, LevelMeasurement, gls, tree_wls


def _tree(n_counties: int = 3, districts_per: int = 3, schools_per: int = 2) -> pd.DataFrame:
    rows = []
    for c in range(n_counties):
        for d in range(districts_per):
            for s in range(schools_per + (d % 2)):  # uneven families
                rows.append({"state": "ME", "county": f"C{c}", "district": f"C{c}D{d}", "school": f"C{c}D{d}S{s}"})
    return pd.DataFrame(rows)


LEVELS = ["state", "county", "district", "school"]


def _design(h: Hierarchy, k: int, variances: dict[str, float], pooled_var: float | None):
    """Dense GLS design over leaves x k cohorts, for comparison."""
    n_leaves = len(h.keys[-1])
    blocks, var = [], []
    for level, v in variances.items():
        leaf_map = h.leaf_map(level)
        blocks.append(sp.kron(leaf_map, sp.eye(k)))
        var += [v] * (leaf_map.shape[0] * k)
    if pooled_var is not None:
        blocks.append(sp.kron(h.leaf_map("district"), np.ones((1, k))))
        var += [pooled_var] * h.size("district")
    return sp.vstack(blocks).tocsr(), np.array(var), n_leaves


def _measure(h, truth_leaf, k, variances, pooled_var, rng):
    meas, values = [], []
    for level, v in variances.items():
        true = h.leaf_map(level) @ truth_leaf
        y = true + rng.normal(0, np.sqrt(v), true.shape)
        meas.append(LevelMeasurement(level, y, v))
        values.append(y.ravel())
    if pooled_var is not None:
        true = (h.leaf_map("district") @ truth_leaf).sum(1, keepdims=True)
        y = true + rng.normal(0, np.sqrt(pooled_var), true.shape)
        meas.append(LevelMeasurement("district", y, pooled_var, np.ones((1, k))))
        values.append(y.ravel())
    return meas, np.concatenate(values)


def test_estimates_add_up_exactly_at_every_level() -> None:
    h = Hierarchy.from_frame(_tree(), LEVELS)
    k, rng = 3, np.random.default_rng(1)
    truth = rng.integers(0, 30, (len(h.keys[-1]), k)).astype(float)
    variances = {"school": 4.0, "district": 2.0, "county": 9.0, "state": 1.0}
    meas, _ = _measure(h, truth, k, variances, 3.0, rng)
    est = tree_wls(h, meas, k=k)
    for i in range(1, len(LEVELS)):
        sums = np.zeros_like(est.estimate[i - 1])
        np.add.at(sums, h.parent[i], est.estimate[i])
        assert np.allclose(sums, est.estimate[i - 1], atol=1e-9)
    pooled, _ = est.combined("district", np.ones(k))
    assert np.allclose(pooled, est.values("district").sum(1))


def test_tree_wls_equals_gls_including_pooled_measurements() -> None:
    h = Hierarchy.from_frame(_tree(), LEVELS)
    k, rng = 4, np.random.default_rng(2)
    truth = rng.integers(0, 30, (len(h.keys[-1]), k)).astype(float)
    variances = {"school": 4.0, "district": 2.5, "county": 9.0, "state": 1.5}
    meas, y = _measure(h, truth, k, variances, 3.0, rng)
    est = tree_wls(h, meas, k=k)
    design, var, _n_leaves = _design(h, k, variances, 3.0)
    for level in LEVELS:
        agg = sp.kron(h.leaf_map(level), sp.eye(k))
        g_est, g_cov = gls(design, y, var, agg)
        assert np.allclose(est.values(level).ravel(), g_est, atol=1e-8)
        n = h.size(level)
        blocks = np.array([g_cov[j * k : (j + 1) * k, j * k : (j + 1) * k] for j in range(n)])
        assert np.allclose(est.covariance[h.index(level)], blocks, atol=1e-8)


@pytest.mark.slow
def test_unbiased_with_the_stated_variance_and_better_than_direct_by_simulation() -> None:
    h = Hierarchy.from_frame(_tree(2, 3, 2), LEVELS)
    k, reps = 2, 3000
    truth = np.random.default_rng(0).integers(0, 20, (len(h.keys[-1]), k))
    sigma = {"school": 2.0, "district": 2.0, "county": 3.0, "state": 3.0}
    rng = noise.TestRng(7)
    est_d, est_s = [], []
    for _ in range(reps):
        meas = []
        for level, s in sigma.items():
            true = (h.leaf_map(level) @ truth).astype(np.int64)
            noisy = noise.add_discrete_gaussian(true, s, rng)
            meas.append(LevelMeasurement(level, noisy.astype(float), noise.discrete_gaussian_variance(s)))
        fit = tree_wls(h, meas, k=k)
        est_d.append(fit.values("district"))
        est_s.append(fit.values("state"))
        stated_d, stated_s = fit.variances("district"), fit.variances("state")
    est_d, est_s = np.array(est_d), np.array(est_s)
    true_d = h.leaf_map("district") @ truth
    # mean error within 4 standard errors of the mean (stated variance / reps)
    assert np.all(np.abs(est_d.mean(0) - true_d) < 4 * np.sqrt(stated_d / reps))
    assert np.all(np.abs(est_s.mean(0) - truth.sum(0)) < 4 * np.sqrt(stated_s / reps))
    # empirical variance matches the stated one: chi-square with reps-1 d.f., 5 s.d. = 5 sqrt(2/reps)
    ratio = est_d.var(0) / stated_d
    assert np.all(np.abs(ratio - 1) < 5 * np.sqrt(2 / reps))
    # and the district estimate beats the district's own measurement
    assert np.all(stated_d < noise.discrete_gaussian_variance(sigma["district"]))


def test_large_hierarchy_is_fast() -> None:
    """660 schools x 11 cohorts x 4 outcomes over 150 districts and 16 counties."""
    rng = np.random.default_rng(3)
    schools = pd.DataFrame({"school": [f"S{i:04d}" for i in range(660)]})
    schools["district"] = [f"D{i % 150:03d}" for i in range(660)]
    schools["county"] = [f"C{int(d[1:]) % 16:02d}" for d in schools["district"]]
    schools["state"] = "ME"
    h = Hierarchy.from_frame(schools, LEVELS)
    start = time.perf_counter()
    for _ in range(4):
        meas = [
            LevelMeasurement(level, rng.normal(10, 3, (h.size(level), 11)), 9.0)
            for level in ("school", "district", "county", "state")
        ]
        meas.append(LevelMeasurement("district", rng.normal(100, 3, (150, 1)), 9.0, np.ones((1, 11))))
        tree_wls(h, meas, k=11)
    assert time.perf_counter() - start < 10.0


def test_bad_inputs_are_refused() -> None:
    h = Hierarchy.from_frame(_tree(1, 2, 1), LEVELS)
    with pytest.raises(ValueError, match="not identified"):
        tree_wls(h, [LevelMeasurement("district", np.ones((2, 1)), 1.0)])
    with pytest.raises(ValueError, match="shape"):
        tree_wls(h, [LevelMeasurement("school", np.ones((2, 1)), 1.0)])
    with pytest.raises(ValueError, match="positive"):
        tree_wls(h, [LevelMeasurement("school", np.ones((h.size("school"), 1)), 0.0)])
    with pytest.raises(ValueError, match="two parents"):
        Hierarchy.from_frame(pd.DataFrame({"a": ["x", "y"], "b": ["u", "u"], "c": ["s1", "s2"]}), ["a", "b", "c"])
    with pytest.raises(ValueError, match="no level"):
        h.index("nation")
    with pytest.raises(ValueError, match="not identified"):
        gls(np.array([[1.0, 1.0]]), np.array([3.0]), 1.0, np.eye(2))
