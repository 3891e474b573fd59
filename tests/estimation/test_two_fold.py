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


#: Area sizes s_i, distributed as the bundled sample's schools per district (150 districts).
SCHOOLS = np.repeat(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 21, 23], [20, 38, 39, 16, 2, 10, 3, 2, 3, 3, 5, 1, 1, 3, 2, 2]
)


def _hetero_world(rng: np.random.Generator, a0: float, a1: float, b: float = 0.0003, k: int = 6):
    """Areas whose effect has variance a0 + a1 / s_i, s_i from SCHOOLS; subarea noise sd about 14 points."""
    m = len(SCHOOLS)
    x = np.stack([np.ones((m, k)), np.repeat((rng.random(m) < 0.4)[:, None], k, 1).astype(float)], -1)
    v = rng.normal(0, np.sqrt(a0 + a1 / SCHOOLS))[:, None]
    theta = x @ np.array([0.85, -0.03]) + v + rng.normal(0, np.sqrt(b), (m, k))
    d = np.exp(rng.normal(np.log(0.02), 0.5, (m, 1))) * rng.uniform(0.5, 2, (m, k))
    return x, theta, d[:, :, None] * np.eye(k)[None], theta + rng.normal(0, np.sqrt(d))


@pytest.mark.slow
def test_heteroscedastic_area_variance_is_recovered_and_its_intervals_cover_in_every_school_band() -> None:
    """Planted Var(v_i) = A0 + A1 / s_i: adjusted REML recovers (A0, B, A1), pooled intervals cover 93-97% by band.

    Each estimate's mean over the replications lies within 3 standard errors of that mean
    (the stated standard error, from the inverse information, over sqrt(reps)) of the planted
    value; the stated standard error agrees with the estimates' spread to within the sampling
    error of a standard deviation from ``reps`` values (about 1 / sqrt(2 reps), so a factor
    of 0.6-1.5 is over 3 of those). With one A for all areas the districts of one school,
    whose effect varies most, cover under 93%.
    """
    rng = np.random.default_rng(31)
    reps, a0, a1, b = 30, 0.0005, 0.008, 0.0003
    k = 6
    estimates, errors = [], []
    bands = {"1": SCHOOLS == 1, "2-3": (SCHOOLS >= 2) & (SCHOOLS <= 3), "4+": SCHOOLS >= 4}
    hits = {(kind, band): 0 for kind in ("hetero", "one A") for band in bands}
    for _ in range(reps):
        x, theta, cov, y = _hetero_world(rng, a0, a1, b, k)
        fit = two_fold_fay_herriot(y, cov, x, area_scale=1.0 / SCHOOLS)
        estimates.append(fit.psi)
        errors.append(np.sqrt(np.diag(fit.cov_psi)))
        for kind, f in (("hetero", fit), ("one A", two_fold_fay_herriot(y, cov, x))):
            pred = f.predict(np.full(y.shape, 1 / k))
            hit = (pred["lower"] <= theta.mean(axis=1)) & (theta.mean(axis=1) <= pred["upper"])
            for band, sel in bands.items():
                hits[(kind, band)] += int(hit[sel].sum())
    est, se = np.array(estimates), np.array(errors).mean(axis=0)
    planted = np.array([a0, b, a1])
    assert np.all(np.abs(est.mean(axis=0) - planted) <= 3 * se / np.sqrt(reps))
    assert np.all((0.6 * se <= est.std(axis=0)) & (est.std(axis=0) <= 1.5 * se))
    for band, sel in bands.items():
        n = reps * int(sel.sum())
        tol = 3 * np.sqrt(0.95 * 0.05 / n)  # 3 binomial standard errors around the 93-97% band
        assert 0.93 - tol <= hits[("hetero", band)] / n <= 0.97 + tol, band
    assert hits[("one A", "1")] / (reps * int(bands["1"].sum())) < 0.93


def test_area_scale_that_is_constant_negative_or_collinear_is_refused() -> None:
    rng = np.random.default_rng(32)
    x, _theta, cov, y = _hetero_world(rng, 0.0005, 0.008)
    with pytest.raises(ValueError, match="vary"):
        two_fold_fay_herriot(y, cov, x, area_scale=np.ones(len(SCHOOLS)))
    with pytest.raises(ValueError, match="not negative"):
        two_fold_fay_herriot(y, cov, x, area_scale=-1.0 / SCHOOLS)
    with pytest.raises(ValueError, match="positive value"):
        two_fold_fay_herriot(y, cov, x, area_scale=np.column_stack([1.0 / SCHOOLS, np.zeros(len(SCHOOLS))]))
    with pytest.raises(ValueError, match="apart from the others"):  # 2 h_1 - 1 is h_1 again, with the constant
        two_fold_fay_herriot(y, cov, x, area_scale=np.column_stack([1.0 / SCHOOLS, 2.0 / SCHOOLS + 1.0]))


def test_one_school_count_for_all_areas_gives_the_homoscedastic_fit() -> None:
    """Var(v_i) = A0 + A1 h_i with h_i constant is not identified: area_scale None is the one-A model."""
    rng = np.random.default_rng(33)
    x, _theta, cov, y = _hetero_world(rng, 0.0005, 0.008)
    fit = two_fold_fay_herriot(y, cov, x)
    assert fit.area_slopes == () and fit.area_scale is None and fit.cov_psi.shape == (2, 2)
    assert np.allclose(fit.area_variances(), fit.area_variance)


def test_one_scale_column_is_the_one_dimensional_area_scale() -> None:
    """area_scale (m,) and (m, 1) are one model: the same psi, Cov(psi) and predictions."""
    rng = np.random.default_rng(34)
    x, _theta, cov, y = _hetero_world(rng, 0.0005, 0.008)
    flat = two_fold_fay_herriot(y, cov, x, area_scale=1.0 / SCHOOLS)
    column = two_fold_fay_herriot(y, cov, x, area_scale=(1.0 / SCHOOLS)[:, None])
    np.testing.assert_allclose(column.psi, flat.psi, rtol=1e-12)
    np.testing.assert_allclose(column.cov_psi, flat.cov_psi, rtol=1e-9)
    w = np.full(y.shape, 1.0 / y.shape[1])
    np.testing.assert_allclose(column.predict(w)["moe"], flat.predict(w)["moe"], rtol=1e-9)
