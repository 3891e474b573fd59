"""Fay-Herriot: coverage of planted truth, shrinkage, limits, and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.estimation.small_area import covariate_matrix, fay_herriot, sampling_variance


def _areas(rng: np.random.Generator, m: int, a: float):
    x = np.column_stack([np.ones(m), rng.normal(size=m)])
    theta = x @ np.array([1.0, 0.5]) + rng.normal(0, np.sqrt(a), m)
    d = rng.uniform(0.02, 1.0, m)
    return x, theta, d, theta + rng.normal(0, np.sqrt(d))


@pytest.mark.parametrize("a", [0.1, 0.5])
def test_intervals_cover_planted_truth_between_93_and_97_percent(a: float) -> None:
    rng = np.random.default_rng(11)
    reps, m = 200, 100
    hits = 0
    for _ in range(reps):
        x, theta, d, y = _areas(rng, m, a)
        fit = fay_herriot(y, d, x)
        hits += int(((fit.lower <= theta) & (theta <= fit.upper)).sum())
    coverage = hits / (reps * m)
    # 20,000 intervals: widen the 93-97% band by 3 binomial standard errors at 95%
    tol = 3 * np.sqrt(0.95 * 0.05 / (reps * m))
    assert 0.93 - tol <= coverage <= 0.97 + tol


def test_plain_reml_undercovers_when_it_estimates_no_model_variance() -> None:
    """Why the default is adjusted REML: with a small A, plain REML often says A = 0."""
    rng = np.random.default_rng(12)
    zero_cover = []
    for _ in range(150):
        x, theta, d, y = _areas(rng, 100, 0.05)
        fit = fay_herriot(y, d, x, method="reml")
        if fit.model_variance == 0.0:
            zero_cover.append(np.mean((fit.lower <= theta) & (theta <= fit.upper)))
        assert fay_herriot(y, d, x).model_variance > 0
    assert zero_cover and np.mean(zero_cover) < 0.9


def test_small_areas_are_shrunk_toward_the_regression() -> None:
    rng = np.random.default_rng(13)
    x, _theta, d, y = _areas(rng, 200, 0.1)
    d[:20] = 50.0  # very noisy areas
    d[20:40] = 1e-6  # nearly exact areas
    fit = fay_herriot(y, d, x)
    assert np.all(fit.shrinkage[:20] < 0.01)
    assert np.allclose(fit.estimate[:20], fit.synthetic[:20], atol=0.01 * np.abs(y[:20] - fit.synthetic[:20]).max())
    # as the variance goes to 0 the estimate is the direct one
    assert np.allclose(fit.estimate[20:40], y[20:40], atol=1e-4)
    assert np.all(fit.mse[20:40] < 1e-5)
    # noisy areas' MSE is about A + g2, well below their direct variance
    assert np.all(fit.mse[:20] < 1.0)


def test_areas_without_a_direct_estimate_get_the_regression() -> None:
    rng = np.random.default_rng(14)
    x, _theta, d, y = _areas(rng, 80, 0.2)
    y[:5], d[:5] = np.nan, np.inf
    fit = fay_herriot(y, d, x)
    assert np.allclose(fit.estimate[:5], x[:5] @ fit.beta)
    assert np.all(fit.shrinkage[:5] == 0)
    assert np.all(fit.mse[:5] >= fit.model_variance)


@pytest.mark.parametrize("method", ["reml", "prasad-rao", "adjusted-reml"])
def test_model_variance_is_recovered_on_many_areas(method: str) -> None:
    rng = np.random.default_rng(15)
    x, _theta, d, y = _areas(rng, 4000, 0.3)
    fit = fay_herriot(y, d, x, method=method)
    # sd of A_hat is about sqrt(2 / sum (A + D)^-2), ~0.03 here; allow 4 of them
    assert fit.model_variance == pytest.approx(0.3, abs=0.12)
    assert fit.beta == pytest.approx([1.0, 0.5], abs=0.1)


def test_helpers_and_refusals() -> None:
    assert sampling_variance(np.array([0.5, 0.5]), np.array([25.0, 0.0])).tolist() == [0.01, np.inf]
    frame = pd.DataFrame({"locale": ["Town", "City", "Rural"], "n": [1.0, 2.0, 3.0]})
    assert covariate_matrix(frame, ["locale"], ["n"]).shape == (3, 4)
    with pytest.raises(ValueError, match="missing"):
        covariate_matrix(frame.assign(n=[1.0, None, 3.0]), numeric=["n"])
    x = np.ones((3, 1))
    with pytest.raises(ValueError, match="method"):
        fay_herriot(np.ones(3), np.ones(3), x, method="ml")
    with pytest.raises(ValueError, match="more areas"):
        fay_herriot(np.array([1.0, np.nan, np.nan]), np.array([1.0, np.inf, np.inf]), x)
    with pytest.raises(ValueError, match="variances"):
        fay_herriot(np.ones(3), -np.ones(3), x)
