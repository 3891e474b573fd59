"""Two-fold Fay-Herriot: coverage of planted truth for subareas and pooled areas, limits, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.estimation.two_fold import two_fold_fay_herriot


def _world(rng: np.random.Generator, m: int = 60, k: int = 6, a: float = 0.003, b: float = 0.0005):
    x = np.stack([np.ones((m, k)), np.repeat((rng.random(m) < 0.4)[:, None], k, 1).astype(float)], -1)
    theta = x @ np.array([0.85, -0.03]) + rng.normal(0, np.sqrt(a), (m, 1)) + rng.normal(0, np.sqrt(b), (m, k))
    d = np.exp(rng.normal(np.log(0.01), 1.5, (m, 1))) * rng.uniform(0.5, 2, (m, k))
    cov = d[:, :, None] * np.eye(k)[None]
    return x, theta, cov, theta + rng.normal(0, np.sqrt(d))


def test_subarea_and_pooled_intervals_cover_planted_truth_between_93_and_97_percent() -> None:
    rng = np.random.default_rng(21)
    reps, m, k = 40, 60, 6
    single = pooled = 0
    for _ in range(reps):
        x, theta, cov, y = _world(rng, m, k)
        fit = two_fold_fay_herriot(y, cov, x)
        w = np.zeros((m, k))
        w[:, 0] = 1.0
        one = fit.predict(w)
        single += int(((one["lower"] <= theta[:, 0]) & (theta[:, 0] <= one["upper"])).sum())
        avg = fit.predict(np.full((m, k), 1 / k))
        truth = theta.mean(axis=1)
        pooled += int(((avg["lower"] <= truth) & (truth <= avg["upper"])).sum())
    tol = 3 * np.sqrt(0.95 * 0.05 / (reps * m))  # 3 binomial standard errors around the 93-97% band
    for hits in (single, pooled):
        assert 0.93 - tol <= hits / (reps * m) <= 0.97 + tol


def test_exact_subareas_keep_their_direct_value_and_unmeasured_ones_borrow() -> None:
    rng = np.random.default_rng(22)
    x, _theta, cov, y = _world(rng)
    cov[:10] *= 1e-8  # ten nearly exact areas
    y[10:20, 0] = np.nan  # cohort 0 unmeasured in ten areas
    fit = two_fold_fay_herriot(y, cov, x)
    w = np.zeros(y.shape)
    w[:, 0] = 1.0
    pred = fit.predict(w)
    assert np.allclose(pred["estimate"][:10], y[:10, 0], atol=1e-3)
    assert np.all(pred["mse"][:10] < 1e-5)
    # an unmeasured cohort gets the regression plus its area's shared effect, with at least B of error
    assert np.all(np.isfinite(pred["estimate"][10:20]))
    assert np.all(pred["mse"][10:20] >= fit.subarea_variance)


def test_refuses_bad_shapes_and_too_few_subareas() -> None:
    with pytest.raises(ValueError, match="must be"):
        two_fold_fay_herriot(np.zeros((3, 2)), np.zeros((3, 2, 3)), np.ones((3, 2, 1)))
    with pytest.raises(ValueError, match="p \\+ 2"):
        two_fold_fay_herriot(np.array([[0.5, np.nan]]), np.eye(2)[None] * 0.01, np.ones((1, 2, 1)))


def test_cohort_variance_is_not_inflated_when_its_information_is_weak() -> None:
    """Planted B near 0 under heavy noise (sd about 10 points per subarea): B-hat stays near it, intervals 93-97%.

    The standard error of the REML estimate of B is about se = sqrt(2 / sum_ij (B + d_ij)^-2)
    (inverse Fisher information of the variance of independent normal terms), and plain REML's
    median is about B; the median estimate must stay within one se of B. Li & Lahiri's factor B
    puts it where the likelihood's slope is -1/B, more than one se above (measured: 1.2 se here),
    and the single-cohort intervals then over-cover.
    """
    rng = np.random.default_rng(23)
    reps, m, k, b = 30, 60, 6, 1e-5
    single = 0
    estimates, se = [], []
    for _ in range(reps):
        x = np.stack([np.ones((m, k)), np.repeat((rng.random(m) < 0.4)[:, None], k, 1).astype(float)], -1)
        theta = x @ np.array([0.85, -0.03]) + rng.normal(0, np.sqrt(0.003), (m, 1)) + rng.normal(0, np.sqrt(b), (m, k))
        d = 0.01 * rng.uniform(0.5, 2, (m, k))
        fit = two_fold_fay_herriot(theta + rng.normal(0, np.sqrt(d)), d[:, :, None] * np.eye(k)[None], x)
        estimates.append(fit.subarea_variance)
        se.append(np.sqrt(2 / np.sum((b + d) ** -2.0)))
        w = np.zeros((m, k))
        w[:, 0] = 1.0
        one = fit.predict(w)
        single += int(((one["lower"] <= theta[:, 0]) & (theta[:, 0] <= one["upper"])).sum())
    assert np.median(estimates) <= b + np.median(se)
    tol = 3 * np.sqrt(0.95 * 0.05 / (reps * m))  # 3 binomial standard errors around the 93-97% band
    assert 0.93 - tol <= single / (reps * m) <= 0.97 + tol
