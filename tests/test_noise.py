"""Exact integer noise: distributions, margins, the OpenDP samplers and an adversarial DP check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics import accounting, noise


def test_scales_follow_the_privacy_definitions() -> None:
    assert noise.discrete_laplace_scale(0.5, 2) == 4.0
    sigma = noise.discrete_gaussian_scale(0.02, 1.0)
    assert accounting.gaussian_rho(sigma) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="epsilon"):
        noise.discrete_laplace_scale(0.0)
    with pytest.raises(ValueError, match="rho"):
        noise.discrete_gaussian_scale(-1.0)


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5, 17.0])
def test_discrete_laplace_pmf_variance_and_margin_are_exact(scale: float) -> None:
    x = np.arange(-4000, 4001)
    p = noise.discrete_laplace_pmf(x, scale)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert noise.discrete_laplace_variance(scale) == pytest.approx(float((x**2 * p).sum()), rel=1e-9)
    k = int(noise.discrete_laplace_moe(scale))
    inside = p[np.abs(x) <= k].sum()
    assert inside >= 0.95
    assert k == 0 or p[np.abs(x) <= k - 1].sum() < 0.95


@pytest.mark.parametrize("sigma", [0.2, 1.0, 3.7, 25.0])
def test_discrete_gaussian_pmf_variance_and_margin_are_exact(sigma: float) -> None:
    x = np.arange(-2000, 2001)
    w = np.exp(-(x.astype(float) ** 2) / (2 * sigma**2))
    p = w / w.sum()
    assert np.allclose(noise.discrete_gaussian_pmf(x, sigma), p, atol=1e-15)
    assert noise.discrete_gaussian_variance(sigma) == pytest.approx(float((x**2 * p).sum()), rel=1e-9)
    assert noise.discrete_gaussian_variance(sigma) <= sigma**2 + 1e-9  # CKS20 Cor. 9
    k = int(noise.discrete_gaussian_moe(sigma))
    assert p[np.abs(x) <= k].sum() >= 0.95
    assert k == 0 or p[np.abs(x) <= k - 1].sum() < 0.95
    # close to, but not the same as, the continuous 1.96 sigma
    assert abs(k - 1.96 * sigma) <= 1.5


def test_margins_reject_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        noise.discrete_gaussian_moe(1.0, confidence=1.0)
    with pytest.raises(ValueError, match="confidence"):
        noise.discrete_laplace_moe(1.0, confidence=0.0)


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_opendp_samplers_keep_shape_and_have_the_stated_mean_and_variance(kind: str) -> None:
    counts = np.full((40, 250), 7, dtype=np.int64)
    if kind == "laplace":
        out = noise.add_discrete_laplace(counts, 2.0)
        var = noise.discrete_laplace_variance(2.0)
    else:
        out = noise.add_discrete_gaussian(counts, 2.0)
        var = noise.discrete_gaussian_variance(2.0)
    assert out.shape == counts.shape and out.dtype == np.int64
    err = (out - counts).ravel().astype(float)
    n = err.size
    # mean within 5 standard errors; variance within 5 s.e. of the sample variance (kurtosis <= 6)
    assert abs(err.mean()) < 5 * math.sqrt(var / n)
    assert abs(err.var() - var) < 5 * var * math.sqrt((2 + 6) / n)


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_test_rng_path_is_reproducible_and_follows_the_pmf(kind: str) -> None:
    add = noise.add_discrete_laplace if kind == "laplace" else noise.add_discrete_gaussian
    pmf = noise.discrete_laplace_pmf if kind == "laplace" else noise.discrete_gaussian_pmf
    zeros = np.zeros(40_000, dtype=np.int64)
    a = add(zeros, 1.5, rng=noise.TestRng(3))
    b = add(zeros, 1.5, rng=noise.TestRng(3))
    assert np.array_equal(a, b)
    values = np.arange(-6, 7)
    observed = np.array([(a == v).sum() for v in values])
    expected = pmf(values, 1.5) * len(a)
    # each bin within 5 binomial standard deviations
    assert np.all(np.abs(observed - expected) < 5 * np.sqrt(expected) + 1)


def test_counts_must_be_whole_numbers() -> None:
    with pytest.raises(ValueError, match="whole numbers"):
        noise.add_discrete_gaussian(np.array([1.5]), 1.0, rng=noise.TestRng(0))
    assert noise.add_discrete_gaussian(np.array([2.0]), 1.0, rng=noise.TestRng(0)).dtype == np.int64
    assert noise.add_discrete_laplace(np.array([], dtype=np.int64), 1.0).shape == (0,)


def _neighbour_check(draw_d, draw_d_prime, epsilon: float, delta: float, n: int) -> None:
    """P[out in bin | D] <= e^eps P[out in bin | D'] + delta + tolerance, both ways, on every bin."""
    a, b = draw_d(n), draw_d_prime(n)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    edges = np.arange(lo, hi + 2)
    pa = np.histogram(a, edges)[0] / n
    pb = np.histogram(b, edges)[0] / n
    # tolerance: 4 binomial standard errors of each estimated bin probability
    for p, q in ((pa, pb), (pb, pa)):
        tol = 4 * (np.sqrt(p * (1 - p) / n) + math.exp(epsilon) * np.sqrt(q * (1 - q) / n)) + 1e-12
        assert np.all(p <= math.exp(epsilon) * q + delta + tol)


@pytest.mark.slow
def test_opendp_discrete_laplace_is_epsilon_dp_on_neighbouring_counts() -> None:
    epsilon = 0.5
    scale = noise.discrete_laplace_scale(epsilon)
    _neighbour_check(
        lambda n: noise.add_discrete_laplace(np.full(n, 10), scale),
        lambda n: noise.add_discrete_laplace(np.full(n, 11), scale),
        epsilon,
        0.0,
        100_000,
    )


@pytest.mark.slow
def test_opendp_discrete_gaussian_meets_its_epsilon_delta_on_neighbouring_counts() -> None:
    rho, delta = 0.1, 1e-6
    sigma = noise.discrete_gaussian_scale(rho)
    epsilon = accounting.rho_to_epsilon(rho, delta)
    _neighbour_check(
        lambda n: noise.add_discrete_gaussian(np.full(n, 10), sigma),
        lambda n: noise.add_discrete_gaussian(np.full(n, 11), sigma),
        epsilon,
        delta,
        100_000,
    )


def test_neighbour_check_can_fail() -> None:
    """The adversarial check catches noise that is too small for the epsilon claimed."""
    rng = noise.TestRng(5)
    with pytest.raises(AssertionError):
        _neighbour_check(
            lambda n: noise.add_discrete_laplace(np.full(n, 10), 0.3, rng),
            lambda n: noise.add_discrete_laplace(np.full(n, 11), 0.3, rng),
            0.5,
            0.0,
            20_000,
        )


def test_opendp_samplers_take_read_only_counts() -> None:
    """Counts read from Arrow are read-only numpy arrays; the production samplers must accept them."""
    counts = np.arange(6, dtype=np.int64).reshape(2, 3)
    counts.flags.writeable = False
    for noisy in (noise.add_discrete_gaussian(counts, 2.0), noise.add_discrete_laplace(counts, 2.0)):
        assert noisy.shape == (2, 3) and noisy.dtype == np.int64
