"""Fay-Herriot small-area estimates from noisy direct estimates, with Prasad-Rao margins.

The model (Fay & Herriot 1979, "Estimates of Income for Small Places", JASA 74; the method
behind the Census Bureau's SAIPE county estimates): for areas i = 1..m,

    direct_i = theta_i + e_i,      e_i ~ (0, D_i) with D_i known,
    theta_i  = x_i' beta + v_i,    v_i ~ (0, A) independent of e,

where theta_i is the area's true value, x_i public covariates (or other published, already
noisy, figures), and D_i the direct estimate's variance: here DP noise plus, when the target
is a rate's underlying probability, the sampling variance p(1 - p) / n. The empirical best
linear unbiased predictor (EBLUP) shrinks the direct estimate toward the regression:

    theta_hat_i = gamma_i direct_i + (1 - gamma_i) x_i' beta_hat,   gamma_i = A_hat / (A_hat + D_i),

with beta_hat the GLS estimate under weights 1 / (A_hat + D_i). Small or noisy areas (large
D_i) borrow most from the regression; as D_i -> 0 the EBLUP is the direct estimate. An area
with no direct estimate (D_i infinite) gets the regression (synthetic) estimate.

Model variance A, three estimators:

- ``"adjusted-reml"`` (default): Li & Lahiri's (2010, J. Multivariate Anal. 101) adjusted
  REML, maximising A * L_R(A); always positive. Plain REML and Prasad-Rao estimate A = 0 in
  a sizeable share of samples when A is small, which sets g1 = 0 and gives intervals that
  cover far below 95% (measured in the tests: 45-75% coverage in those samples). With the
  adjusted estimate the intervals below are slightly conservative when A is small.
- ``"reml"``: the restricted log-likelihood maximised on [0, A_max] directly (Cressie 1992;
  Datta & Lahiri 2000).
- ``"prasad-rao"``: the moment estimator A_PR = max(0, (RSS - sum D_i (1 - h_ii)) / (m - p)),
  h_ii the OLS leverages (Prasad & Rao 1990).

Mean squared error (Prasad & Rao 1990, "The Estimation of the Mean Squared Error of
Small-Area Estimators", JASA 85; Datta & Lahiri 2000 for REML):

    mse_i = g1 + g2 + 2 g3,
    g1 = A D_i / (A + D_i),
    g2 = (D_i / (A + D_i))^2 x_i' (X' V^-1 X)^-1 x_i,
    g3 = D_i^2 / (A + D_i)^3 * Var(A_hat),   Var(A_hat) = 2 / sum (A + D_j)^-2 (both REMLs)
                                                       or 2 m^-2 sum (A + D_j)^2 (Prasad-Rao).

Intervals are theta_hat_i +/- z sqrt(mse_i): they account for the noise (through D_i), the
model (through A and beta) and the estimation of both. All of this is post-processing of
published values: it costs no privacy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.stats import norm

__all__ = ["FayHerriotFit", "covariate_matrix", "fay_herriot", "sampling_variance"]

METHODS = ("adjusted-reml", "reml", "prasad-rao")


@dataclass(frozen=True)
class FayHerriotFit:
    """A fitted Fay-Herriot model. Arrays have one entry per area (m,), ``beta`` one per covariate (p,).

    ``estimate`` EBLUP; ``mse`` Prasad-Rao MSE; ``moe`` its z-multiple at ``confidence``;
    ``lower``/``upper`` the interval; ``shrinkage`` gamma_i (1 = direct, 0 = regression);
    ``synthetic`` x_i' beta_hat; ``model_variance`` A_hat; ``method`` one of :data:`METHODS`.
    """

    estimate: np.ndarray
    mse: np.ndarray
    moe: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    shrinkage: np.ndarray
    synthetic: np.ndarray
    beta: np.ndarray
    model_variance: float
    method: str
    confidence: float

    def frame(self) -> pd.DataFrame:
        """The per-area arrays as columns of a DataFrame (one row per area)."""
        return pd.DataFrame(
            {
                "estimate": self.estimate,
                "moe": self.moe,
                "lower": self.lower,
                "upper": self.upper,
                "mse": self.mse,
                "shrinkage": self.shrinkage,
                "synthetic": self.synthetic,
            }
        )


def sampling_variance(p: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Binomial sampling variance of a rate, p(1 - p) / n; infinite where n <= 0.

    Use a smoothed p (for example the regression estimate or a pooled rate), not the cell's
    own noisy rate, which can be 0 or 1 and would claim no sampling error.

    >>> sampling_variance(0.9, 100.0).round(6).tolist()
    0.0009
    """
    p_arr = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n_arr = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(n_arr > 0, p_arr * (1 - p_arr) / np.where(n_arr > 0, n_arr, 1.0), np.inf)
    return out


def covariate_matrix(
    frame: pd.DataFrame, categorical: Sequence[str] = (), numeric: Sequence[str] = (), intercept: bool = True
) -> np.ndarray:
    """Design matrix (m, p) from public covariates: intercept, one-hot categories (first level dropped), numbers.

    Raises ValueError for a missing column or missing values.

    >>> covariate_matrix(pd.DataFrame({"locale": ["Rural", "City", "Rural"], "x": [1.0, 2, 3]}),
    ...                  ["locale"], ["x"]).tolist()
    [[1.0, 1.0, 1.0], [1.0, 0.0, 2.0], [1.0, 1.0, 3.0]]
    """
    parts: list[np.ndarray] = []
    if intercept:
        parts.append(np.ones((len(frame), 1)))
    for col in [*categorical, *numeric]:
        if col not in frame.columns:
            raise ValueError(f"covariate_matrix: no column {col!r}")
        if frame[col].isna().any():
            raise ValueError(f"covariate_matrix: column {col!r} has missing values")
    for col in categorical:
        levels = sorted(frame[col].unique())
        parts.extend((frame[col].to_numpy() == level).astype(float)[:, None] for level in levels[1:])
    for col in numeric:
        parts.append(frame[col].to_numpy(dtype=float)[:, None])
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def _gls(y: np.ndarray, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xw = x / v[:, None]
    info = x.T @ xw
    cov_beta = np.linalg.inv(info)
    return cov_beta @ (xw.T @ y), cov_beta


def _restricted_loglik(a: float, y: np.ndarray, x: np.ndarray, d: np.ndarray) -> float:
    v = a + d
    beta, cov_beta = _gls(y, x, v)
    r = y - x @ beta
    _sign, logdet_info = np.linalg.slogdet(np.linalg.inv(cov_beta))
    return float(-0.5 * (np.sum(np.log(v)) + logdet_info + np.sum(r * r / v)))


def _reml(y: np.ndarray, x: np.ndarray, d: np.ndarray, adjusted: bool) -> float:
    spread = float(np.var(y)) + float(np.max(d))
    upper = 10.0 * spread + 1e-12

    def neg(s: float) -> float:  # search on sqrt(A) so small variances get resolution
        penalty = 2.0 * np.log(s) if adjusted else 0.0  # Li-Lahiri: maximise A * L_R(A)
        return -_restricted_loglik(s * s, y, x, d) - penalty

    lower = 1e-9 * np.sqrt(upper) if adjusted else 0.0
    res = minimize_scalar(neg, bounds=(lower, np.sqrt(upper)), method="bounded", options={"xatol": 1e-9})
    best = float(res.x) ** 2
    if not adjusted and neg(0.0) <= neg(float(res.x)):
        return 0.0
    return best


def _prasad_rao(y: np.ndarray, x: np.ndarray, d: np.ndarray) -> float:
    m, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    rss = float(np.sum((y - x @ beta) ** 2))
    leverage = np.einsum("ij,jk,ik->i", x, np.linalg.inv(x.T @ x), x)
    return max(0.0, (rss - float(np.sum(d * (1 - leverage)))) / (m - p))


def fay_herriot(
    direct: np.ndarray,
    variance: np.ndarray,
    covariates: np.ndarray,
    method: str = "adjusted-reml",
    confidence: float = 0.95,
) -> FayHerriotFit:
    """Fit the Fay-Herriot model and return EBLUPs with Prasad-Rao MSEs and intervals.

    ``direct`` (m,) direct estimates (NaN where there is none), ``variance`` (m,) their known
    variances (inf where there is none), ``covariates`` (m, p) including an intercept column
    if wanted (see :func:`covariate_matrix`). Areas without a direct estimate get the
    regression estimate with MSE A_hat + g2. Raises ValueError for unequal lengths, negative
    variances, an unknown method, or fewer areas with a direct estimate than p + 1.

    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(50), rng.normal(size=50)])
    >>> theta = x @ [1.0, 0.5] + rng.normal(0, 0.3, 50)
    >>> fit = fay_herriot(theta + rng.normal(0, 0.5, 50), np.full(50, 0.25), x)
    >>> bool(np.all(fit.shrinkage < 1)), fit.estimate.shape
    (True, (50,))
    """
    if method not in METHODS:
        raise ValueError(f"fay_herriot: method must be one of {METHODS}")
    if not 0 < confidence < 1:
        raise ValueError("fay_herriot: confidence must be strictly between 0 and 1")
    y_all = np.asarray(direct, dtype=float)
    d_all = np.asarray(variance, dtype=float)
    x_all = np.asarray(covariates, dtype=float)
    if x_all.ndim != 2 or y_all.shape != d_all.shape or y_all.shape != (x_all.shape[0],):
        raise ValueError("fay_herriot: direct and variance must be (m,) and covariates (m, p)")
    if np.any(np.isnan(d_all)) or np.any(d_all < 0):
        raise ValueError("fay_herriot: variances must be >= 0 (inf where there is no direct estimate)")
    if not np.all(np.isfinite(x_all)):
        raise ValueError("fay_herriot: covariates must be finite")
    has = np.isfinite(y_all) & np.isfinite(d_all)
    y, d, x = y_all[has], d_all[has], x_all[has]
    m, p = x.shape
    if m <= p:
        raise ValueError("fay_herriot: need more areas with a direct estimate than covariates")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError("fay_herriot: covariates are collinear over the areas with a direct estimate")

    a_hat = _prasad_rao(y, x, d) if method == "prasad-rao" else _reml(y, x, d, adjusted=method == "adjusted-reml")
    if a_hat == 0.0 and np.any(d == 0):
        a_hat = 1e-12  # keep gamma defined where an area is known exactly
    beta, cov_beta = _gls(y, x, a_hat + d)
    prasad_rao_var = 2.0 * np.sum((a_hat + d) ** 2) / m**2
    var_a = prasad_rao_var if method == "prasad-rao" else 2.0 / np.sum((a_hat + d) ** -2.0)

    synthetic = x_all @ beta
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(has, a_hat / (a_hat + np.where(has, d_all, 1.0)), 0.0)
        tail = np.where(has, d_all, 0.0)
        g1 = np.where(has, gamma * tail, a_hat)
        g2 = (1 - gamma) ** 2 * np.einsum("ij,jk,ik->i", x_all, cov_beta, x_all)
        g3 = np.where(has, tail**2 / (a_hat + tail) ** 3 * var_a, 0.0)
    estimate = np.where(has, gamma * np.where(has, y_all, 0.0) + (1 - gamma) * synthetic, synthetic)
    mse = g1 + g2 + 2 * g3
    z = float(norm.ppf(0.5 + confidence / 2))
    moe = z * np.sqrt(mse)
    return FayHerriotFit(
        estimate=estimate,
        mse=mse,
        moe=moe,
        lower=estimate - moe,
        upper=estimate + moe,
        shrinkage=gamma,
        synthetic=synthetic,
        beta=beta,
        model_variance=float(a_hat),
        method=method,
        confidence=confidence,
    )
