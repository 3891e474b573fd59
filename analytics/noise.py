"""Exact integer noise for counts: discrete Laplace (pure epsilon) and discrete Gaussian (zCDP).

Both samplers draw from OpenDP's exact samplers (``opendp.measurements.make_laplace`` and
``make_gaussian`` over vectors of 64-bit integers), which sample the discrete distributions
with exact rational arithmetic (Canonne, Kamath & Steinke 2020, "The Discrete Gaussian for
Differential Privacy", section 5), so no floating-point attack applies.

- **Discrete Laplace** (= two-sided geometric) of scale ``t``: P(X = x) is proportional to
  exp(-|x| / t). Added to a vector whose L1 sensitivity is ``D``, it is (D / t)-DP (pure).
- **Discrete Gaussian** of scale ``sigma``: P(X = x) is proportional to exp(-x^2 / (2 sigma^2)).
  Added to a vector whose L2 sensitivity is ``D``, it is D^2 / (2 sigma^2)-zCDP
  (Canonne, Kamath & Steinke 2020, Theorem 4; Bun & Steinke 2016 for zCDP).

OpenDP takes no seed: its noise comes from the operating system's secure source. For tests
only, passing a :class:`TestRng` switches to a separate numpy path (inverse-CDF sampling over
the exact probability mass function) that is reproducible and NOT private: numpy's generator
is predictable. Production code never passes one.

Margins of error here are exact: the half-width ``k`` of the smallest interval [-k, k] that
holds the noise with probability at least ``confidence``, from the distribution's own mass
function (not the continuous approximations b*ln(20) or 1.96*sigma).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "TestRng",
    "add_discrete_gaussian",
    "add_discrete_laplace",
    "discrete_gaussian_moe",
    "discrete_gaussian_pmf",
    "discrete_gaussian_scale",
    "discrete_gaussian_variance",
    "discrete_laplace_moe",
    "discrete_laplace_pmf",
    "discrete_laplace_scale",
    "discrete_laplace_variance",
]


@dataclass
class TestRng:
    """A seeded, NOT private, source of noise for reproducible tests only.

    Passing one to :func:`add_discrete_laplace` or :func:`add_discrete_gaussian` bypasses
    OpenDP and draws from numpy's PCG64 generator, which an observer can predict. Never pass
    one when publishing.
    """

    __test__ = False  # not a pytest test class

    seed: int
    generator: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.generator = np.random.default_rng(self.seed)


# ---------------------------------------------------------------------------
# Scales from privacy parameters
# ---------------------------------------------------------------------------


def discrete_laplace_scale(epsilon: float, l1_sensitivity: float = 1.0) -> float:
    """Scale ``t`` of the discrete Laplace that makes a query of L1 sensitivity ``D`` epsilon-DP: t = D / epsilon.

    Raises ValueError if epsilon or the sensitivity is not positive.

    >>> discrete_laplace_scale(0.4)
    2.5
    """
    _positive(epsilon=epsilon, l1_sensitivity=l1_sensitivity)
    return float(l1_sensitivity) / float(epsilon)


def discrete_gaussian_scale(rho: float, l2_sensitivity: float = 1.0) -> float:
    """Scale ``sigma`` of the discrete Gaussian that makes a query of L2 sensitivity ``D`` rho-zCDP.

    rho = D^2 / (2 sigma^2), so sigma = D / sqrt(2 rho) (Bun & Steinke 2016, Prop. 1.6;
    exact for the discrete Gaussian with integer D, Canonne, Kamath & Steinke 2020, Thm. 4).
    Raises ValueError if rho or the sensitivity is not positive.

    >>> discrete_gaussian_scale(0.125)
    2.0
    """
    _positive(rho=rho, l2_sensitivity=l2_sensitivity)
    return float(l2_sensitivity) / math.sqrt(2.0 * float(rho))


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"noise: {name} must be a positive finite number")


# ---------------------------------------------------------------------------
# Exact distributions
# ---------------------------------------------------------------------------


def discrete_laplace_pmf(x: np.ndarray | int, scale: float) -> np.ndarray:
    """P(X = x) for the discrete Laplace of scale ``t``: (1 - a) / (1 + a) * a^|x| with a = exp(-1/t).

    >>> round(float(discrete_laplace_pmf(0, 1.0)), 6)
    0.462117
    """
    _positive(scale=scale)
    a = math.exp(-1.0 / scale)
    return (1 - a) / (1 + a) * np.power(a, np.abs(np.asarray(x, dtype=float)))


def discrete_laplace_variance(scale: float) -> float:
    """Variance of the discrete Laplace of scale ``t``: 2a / (1 - a)^2 with a = exp(-1/t).

    >>> round(discrete_laplace_variance(2.5), 4)
    12.3347
    """
    _positive(scale=scale)
    a = math.exp(-1.0 / scale)
    return 2.0 * a / (1.0 - a) ** 2


def discrete_laplace_moe(scale: float, confidence: float = 0.95) -> float:
    """Smallest integer ``k`` with P(|X| <= k) >= confidence for the discrete Laplace of scale ``t``.

    P(|X| > k) = 2 a^(k+1) / (1 + a), so k = ceil(log((1 - c)(1 + a) / 2) / log(a) - 1).
    Raises ValueError unless 0 < confidence < 1.

    >>> discrete_laplace_moe(1.0)
    3.0
    >>> discrete_laplace_moe(2.5)
    7.0
    """
    _positive(scale=scale)
    _check_confidence(confidence)
    a = math.exp(-1.0 / scale)
    k = math.ceil(math.log((1 - confidence) * (1 + a) / 2) / math.log(a) - 1 - 1e-12)
    k = max(k, 0)
    # guard the ceiling against rounding: step until the exact tail condition holds
    while 2 * a ** (k + 1) / (1 + a) > 1 - confidence:
        k += 1
    while k > 0 and 2 * a**k / (1 + a) <= 1 - confidence:
        k -= 1
    return float(k)


@functools.lru_cache(maxsize=256)
def _gaussian_table(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and exact mass of the discrete Gaussian, truncated where the tail is below 1e-300."""
    half = math.ceil(40 * sigma) + 10
    x = np.arange(-half, half + 1)
    logw = -(x.astype(float) ** 2) / (2 * sigma * sigma)
    w = np.exp(logw - logw.max())
    p = w / w.sum()
    x.flags.writeable = False
    p.flags.writeable = False
    return x, p


def discrete_gaussian_pmf(x: np.ndarray | int, sigma: float) -> np.ndarray:
    """P(X = x) for the discrete Gaussian of scale ``sigma`` (normalising constant summed numerically).

    >>> round(float(discrete_gaussian_pmf(0, 1.0)), 6)
    0.398942
    """
    _positive(sigma=sigma)
    support, p = _gaussian_table(float(sigma))
    xs = np.asarray(x, dtype=np.int64)
    idx = xs + support[-1]
    inside = (idx >= 0) & (idx < len(support))
    return np.where(inside, p[np.clip(idx, 0, len(support) - 1)], 0.0)


def discrete_gaussian_variance(sigma: float) -> float:
    """Variance of the discrete Gaussian of scale ``sigma`` (slightly below sigma^2; CKS20 Cor. 9).

    >>> round(discrete_gaussian_variance(3.0), 6)
    9.0
    >>> round(discrete_gaussian_variance(0.3), 4)
    0.0077
    """
    _positive(sigma=sigma)
    support, p = _gaussian_table(float(sigma))
    return float(np.sum(support.astype(float) ** 2 * p))


def discrete_gaussian_moe(sigma: float, confidence: float = 0.95) -> float:
    """Smallest integer ``k`` with P(|X| <= k) >= confidence for the discrete Gaussian of scale ``sigma``.

    Raises ValueError unless 0 < confidence < 1.

    >>> discrete_gaussian_moe(1.0)
    2.0
    >>> discrete_gaussian_moe(10.0)
    20.0
    """
    _positive(sigma=sigma)
    _check_confidence(confidence)
    return _discrete_gaussian_moe(float(sigma), float(confidence))


@functools.lru_cache(maxsize=1024)
def _discrete_gaussian_moe(sigma: float, confidence: float) -> float:
    support, p = _gaussian_table(sigma)
    zero = int(support[-1])
    # P(|X| <= k) for k = 0, 1, ...: p(0) + 2 * sum_{j=1..k} p(j)
    inner = p[zero] + 2 * np.concatenate([[0.0], np.cumsum(p[zero + 1 :])])
    k = int(np.searchsorted(inner, confidence - 1e-15))
    return float(k)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError("noise: confidence must be strictly between 0 and 1")


# ---------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _opendp_measurement(kind: str, scale: float) -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    atoms = dp.vector_domain(dp.atom_domain(T="i64"))
    if kind == "laplace":
        return dp.m.make_laplace(atoms, dp.l1_distance(T="i64"), scale=scale)
    return dp.m.make_gaussian(atoms, dp.l2_distance(T="i64"), scale=scale)


def _as_counts(counts: np.ndarray | list[int]) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.dtype.kind not in "iu":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("noise: counts must be whole numbers")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)


def add_discrete_laplace(counts: np.ndarray | list[int], scale: float, rng: TestRng | None = None) -> np.ndarray:
    """Add independent discrete Laplace noise of scale ``t`` to every integer in ``counts``.

    Shape in = shape out (int64). With ``rng=None`` (production) the noise comes from OpenDP's
    exact sampler; with a :class:`TestRng` it comes from numpy (tests only, not private).
    Raises ValueError for a non-positive scale or non-integer counts.

    >>> add_discrete_laplace(np.array([5, 7]), 2.5, rng=TestRng(1)).shape
    (2,)
    """
    _positive(scale=scale)
    arr = _as_counts(counts)
    if rng is not None:
        a = math.exp(-1.0 / scale)
        g = rng.generator
        # difference of two geometric counts of failures is two-sided geometric with ratio a
        noise = g.geometric(1 - a, size=arr.shape) - g.geometric(1 - a, size=arr.shape)
        return arr + noise.astype(np.int64)
    return _opendp_apply("laplace", float(scale), arr)


def add_discrete_gaussian(counts: np.ndarray | list[int], sigma: float, rng: TestRng | None = None) -> np.ndarray:
    """Add independent discrete Gaussian noise of scale ``sigma`` to every integer in ``counts``.

    Shape in = shape out (int64). With ``rng=None`` (production) the noise comes from OpenDP's
    exact sampler; with a :class:`TestRng` it is drawn by inverse CDF over the exact mass
    function with numpy (tests only, not private).
    Raises ValueError for a non-positive sigma or non-integer counts.

    >>> add_discrete_gaussian(np.array([[5, 7]]), 3.0, rng=TestRng(1)).shape
    (1, 2)
    """
    _positive(sigma=sigma)
    arr = _as_counts(counts)
    if rng is not None:
        support, p = _gaussian_table(float(sigma))
        cdf = np.cumsum(p)
        u = rng.generator.random(arr.shape)
        noise = support[np.minimum(np.searchsorted(cdf, u, side="right"), len(support) - 1)]
        return arr + noise
    return _opendp_apply("gaussian", float(sigma), arr)


def _opendp_apply(kind: str, scale: float, arr: np.ndarray) -> np.ndarray:
    if arr.size == 0:
        return arr.copy()
    measurement = _opendp_measurement(kind, scale)
    # a writable copy: OpenDP takes numpy without a per-value cast, but not a read-only (Arrow) array
    out = measurement(np.array(arr.ravel(), dtype=np.int64))
    return np.asarray(out, dtype=np.int64).reshape(arr.shape)
