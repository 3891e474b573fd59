"""Rates from consistent noisy counts, without floor-then-divide bias, with delta-method margins.

Given unbiased estimates N and D of a rate's numerator and denominator (for example from
:func:`analytics.estimation.consistency.tree_wls`, which leaves them unrounded and possibly
negative), with variances v_N, v_D and covariance c:

- **Estimate.** The plain ratio N / D has bias (R v_D - c) / D^2 to second order (Cochran 1977,
  Sampling Techniques, section 6.8; the delta method). The default estimate removes it:
  R = N/D - (N/D * v_D - c) / D^2. Nothing is clamped before dividing: clamping noisy counts at
  zero first is what pulls small cells toward 50%.
- **Margin.** Var(R) = (v_N - 2 R c + R^2 v_D) / D^2 (first-order delta method); the 95% margin
  is 1.96 times its square root. When the numerator is one of the categories that make up the
  denominator with independent noise, c = v_N.
- **No estimate.** When the denominator's 95% margin reaches its estimate (D <= z sqrt(v_D)),
  the data cannot tell the cell from an empty one, the ratio is meaningless (an empty cell would
  come out near 50%), and no rate is published; ``reason`` says why in words. This is also the
  condition under which Fieller's (1954) exact interval for a ratio is unbounded.
- **Range.** The interval is always clipped to [0, 1]. The point estimate is left unclipped by
  default: with a true rate near 100% and a wide margin, clipping at 1 cuts off the high
  errors and biases the rate down (measured in the tests). ``clip=True`` clips it too, for
  display. Selection still biases small cells: a cell is published when its denominator came
  out high, and the numerator shares only part of that noise; :func:`bias_by_size_band`
  measures what remains, by cell-size band.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["NO_ESTIMATE_REASON", "bias_by_size_band", "decorrelated_size", "linearised_rates", "rate_estimates"]

#: Why a rate is withheld, in words.
NO_ESTIMATE_REASON = (
    "no estimate: the number of students in this cell cannot be told apart from zero "
    "(its 95% margin of error is as large as the count itself)"
)


#: Relative noise of the denominator under which the ratio N / D is used (see :func:`rate_estimates`).
PRECISE_DENOMINATOR = 0.10


def rate_estimates(
    numerator: np.ndarray,
    denominator: np.ndarray,
    var_numerator: np.ndarray,
    var_denominator: np.ndarray,
    cov: np.ndarray | None = None,
    confidence: float = 0.95,
    bias_correction: bool = True,
    clip: bool = False,
    reference_rate: np.ndarray | float | None = None,
) -> pd.DataFrame:
    """Rate, 95% margin and interval for every cell, or "no estimate" with its reason.

    Inputs are arrays of one shape (n,): unbiased estimates of numerator and denominator,
    their variances and covariance (default: ``var_numerator``, i.e. the numerator is a part
    of the denominator with independent noise). Returns a DataFrame with n rows and columns
    ``rate``, ``moe``, ``lower``, ``upper`` (NaN where withheld), ``published`` (bool) and
    ``reason`` ("" where published). Rates are shares; ``lower``/``upper`` lie in [0, 1], and
    ``rate`` too when ``clip``.

    ``reference_rate`` (a rate p close to the cell's, e.g. the statewide one) switches to the
    linearised estimate p + (N - p D) / S with the size statistic S = D + lambda (N - p D),
    lambda chosen so that S's noise is uncorrelated with the linearised noise L = N - p D
    (:func:`decorrelated_size`), variance Var(L) / S^2, published when S > z sd(S). Which
    cells are published, and the divisor, then do not depend on the noise of the rate's
    numerator L: small cells lose the selection bias that dividing by, and publishing on, D
    leaves (measured in the tests). What remains is (R - p)(n / S - 1), about -lambda (R - p)^2,
    small when the cell's rate R is near p; where the denominator's noise is under
    :data:`PRECISE_DENOMINATOR` of it, the (bias-corrected) ratio is used instead, which has
    neither problem there.
    Raises ValueError for arrays of unequal shapes, negative variances or a bad confidence.

    >>> out = rate_estimates(np.array([90.0, 2.0]), np.array([100.0, 3.0]), np.array([4.0, 4.0]),
    ...                      np.array([16.0, 16.0]))
    >>> out["published"].tolist(), round(float(out["rate"][0]), 4), round(float(out["moe"][0]), 4)
    ([True, False], 0.899, 0.0612)
    """
    n_hat = np.asarray(numerator, dtype=float)
    d_hat = np.asarray(denominator, dtype=float)
    v_n = np.asarray(var_numerator, dtype=float)
    v_d = np.asarray(var_denominator, dtype=float)
    c = v_n if cov is None else np.asarray(cov, dtype=float)
    shapes = {a.shape for a in (n_hat, d_hat, v_n, v_d, c)}
    if len(shapes) != 1 or n_hat.ndim != 1:
        raise ValueError("rate_estimates: numerator, denominator, variances and covariance must be 1-d of one length")
    if np.any(v_n < 0) or np.any(v_d < 0):
        raise ValueError("rate_estimates: variances must be >= 0")
    if not 0 < confidence < 1:
        raise ValueError("rate_estimates: confidence must be strictly between 0 and 1")
    z = float(norm.ppf(0.5 + confidence / 2))
    if reference_rate is None:
        published = d_hat > z * np.sqrt(v_d)
        safe_d = np.where(published, d_hat, 1.0)
        ratio = n_hat / safe_d
        rate = ratio - (ratio * v_d - c) / safe_d**2 if bias_correction else ratio
        var_rate = np.maximum(v_n - 2 * rate * c + rate**2 * v_d, 0.0) / safe_d**2
    else:
        p = np.broadcast_to(np.asarray(reference_rate, dtype=float), n_hat.shape)
        size, var_size = decorrelated_size(n_hat, d_hat, v_n, v_d, c, p)
        published = size > z * np.sqrt(var_size)
        safe_s = np.where(published, size, 1.0)
        linear = p + (n_hat - p * d_hat) / safe_s
        var_linear = np.maximum(v_n - 2 * p * c + p**2 * v_d, 0.0) / safe_s**2
        # where the denominator is precise the ratio has no selection or ratio bias to speak of, while the
        # linearised form keeps -lambda (R - p)^2 of it (S estimates n (1 + lambda (R - p))): use the ratio there
        precise = published & (np.sqrt(v_d) <= PRECISE_DENOMINATOR * np.abs(d_hat))
        safe_d = np.where(precise, d_hat, 1.0)
        ratio = n_hat / safe_d
        ratio = ratio - (ratio * v_d - c) / safe_d**2 if bias_correction else ratio
        var_ratio = np.maximum(v_n - 2 * ratio * c + ratio**2 * v_d, 0.0) / safe_d**2
        rate = np.where(precise, ratio, linear)
        var_rate = np.where(precise, var_ratio, var_linear)
    moe = z * np.sqrt(var_rate)
    lower, upper = np.clip(rate - moe, 0, 1), np.clip(rate + moe, 0, 1)
    if clip:
        rate = np.clip(rate, 0, 1)
    nan = np.full_like(rate, np.nan)
    return pd.DataFrame(
        {
            "rate": np.where(published, rate, nan),
            "moe": np.where(published, moe, nan),
            "lower": np.where(published, lower, nan),
            "upper": np.where(published, upper, nan),
            "published": published,
            "reason": np.where(published, "", NO_ESTIMATE_REASON),
        }
    )


def decorrelated_size(
    numerator: np.ndarray,
    denominator: np.ndarray,
    var_numerator: np.ndarray,
    var_denominator: np.ndarray,
    cov: np.ndarray,
    reference_rate: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """A size statistic whose noise is uncorrelated with the rate's: S = D + lambda (N - p D), and Var(S).

    With L = N - p D (the rate's noise, to first order, times D), Cov(D, L) = c - p v_D and
    Var(L) = v_N - 2 p c + p^2 v_D, so lambda = -(c - p v_D) / Var(L) makes Cov(S, L) = 0; for
    Gaussian noise S and L are then independent. E[S] = n (1 + lambda (R - p)), close to the
    cell's size n when its rate R is near p. Shapes (n,); returns (S, Var(S)).

    >>> s, v = decorrelated_size(np.array([87.0]), np.array([100.0]), np.array([1.0]), np.array([2.0]),
    ...                          np.array([1.0]), 0.87)
    >>> round(float(s[0]), 6), round(float(v[0]), 4)
    (100.0, 1.2923)
    """
    n_hat, d_hat = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    v_n, v_d, c = (np.asarray(a, dtype=float) for a in (var_numerator, var_denominator, cov))
    p = np.asarray(reference_rate, dtype=float)
    var_l = np.maximum(v_n - 2 * p * c + p**2 * v_d, 1e-300)
    cov_dl = c - p * v_d
    lam = -cov_dl / var_l
    size = d_hat + lam * (n_hat - p * d_hat)
    return size, np.maximum(v_d + 2 * lam * cov_dl + lam**2 * var_l, 0.0)


def linearised_rates(
    numerator: np.ndarray,
    denominator: np.ndarray,
    var_numerator: np.ndarray,
    var_denominator: np.ndarray,
    reference_rate: np.ndarray,
    reference_denominator: np.ndarray,
    cov: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linearised direct rates for small-area models: p_ref + (N - p_ref D) / D_ref, with their noise variance.

    For cells too small for :func:`rate_estimates`, dividing by the cell's own noisy
    denominator is both unstable and biased by selection (cells whose denominator came out
    high are the ones that get a rate). The first-order (Woodruff 1971) linearisation around
    a reference rate ``p_ref`` and a reference size ``D_ref`` taken from other published
    figures (e.g. the district's other cohorts) has noise of mean exactly 0 whatever the
    cell's own noise, and noise variance (v_N - 2 p_ref c + p_ref^2 v_D) / D_ref^2. Its only
    error besides noise is (N - p_ref D)(1/D_ref - 1/D), small when the reference is close.
    Shapes (n,); returns (rates, noise variances). Raises ValueError for D_ref <= 0.

    >>> r, v = linearised_rates(np.array([9.0]), np.array([10.0]), np.array([4.0]), np.array([16.0]),
    ...                         np.array([0.8]), np.array([10.0]))
    >>> round(float(r[0]), 6), round(float(v[0]), 4)
    (0.9, 0.0784)
    """
    n_hat = np.asarray(numerator, dtype=float)
    d_hat = np.asarray(denominator, dtype=float)
    v_n = np.asarray(var_numerator, dtype=float)
    v_d = np.asarray(var_denominator, dtype=float)
    p_ref = np.asarray(reference_rate, dtype=float)
    d_ref = np.asarray(reference_denominator, dtype=float)
    c = v_n if cov is None else np.asarray(cov, dtype=float)
    if np.any(d_ref <= 0) or not np.all(np.isfinite(d_ref)):
        raise ValueError("linearised_rates: reference denominators must be positive and finite")
    rate = p_ref + (n_hat - p_ref * d_hat) / d_ref
    var = np.maximum(v_n - 2 * p_ref * c + p_ref**2 * v_d, 0.0) / d_ref**2
    return rate, var


def bias_by_size_band(
    n_students: np.ndarray,
    truth: np.ndarray,
    estimate: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    bands: Sequence[int] = (1, 5, 10, 15, 60),
) -> pd.DataFrame:
    """Mean error (bias) and interval coverage of published rates by cell-size band, in points.

    ``n_students`` (true cell sizes, known only in simulations and developer tools),
    ``truth`` and ``estimate`` (NaN = withheld) have one shape (n,). Bands are [b_i, b_{i+1})
    with the last open-ended. Columns: band, cells, published, bias_points (mean of
    estimate - truth over published cells, x100), coverage (share of published intervals
    holding the truth, when bounds are given).

    >>> bias_by_size_band(np.array([3, 30]), np.array([0.5, 0.8]), np.array([0.6, np.nan]))[
    ...     ["band", "cells", "published", "bias_points"]].values.tolist()
    [['1-4', 1, 1, 9.99...], ['5-9', 0, 0, nan], ['10-14', 0, 0, nan], ['15-59', 1, 0, nan], ['60+', 0, 0, nan]]
    """
    n = np.asarray(n_students)
    t = np.asarray(truth, dtype=float)
    e = np.asarray(estimate, dtype=float)
    edges = [*bands, np.inf]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        label = f"{lo}+" if hi == np.inf else f"{lo}-{int(hi) - 1}"
        cell = (n >= lo) & (n < hi)
        pub = cell & np.isfinite(e)
        bias = float(np.mean(e[pub] - t[pub]) * 100) if pub.any() else np.nan
        row = {"band": label, "cells": int(cell.sum()), "published": int(pub.sum()), "bias_points": bias}
        if lower is not None and upper is not None:
            lo_b, hi_b = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
            covered = (lo_b[pub] <= t[pub]) & (t[pub] <= hi_b[pub])
            row["coverage"] = float(covered.mean()) if pub.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
