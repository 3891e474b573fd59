"""Two-fold (area and subarea) Fay-Herriot estimates: districts x cohorts, schools x cohorts.

The model (Torabi & Rao 2014, "Small area estimation under a two-fold nested error
regression model", J. Multivariate Anal. 127; the subarea-level form of Fay & Herriot 1979):
for area i (a district) and subarea j (one of its cohorts),

    y_ij     = theta_ij + e_ij,           e_i ~ (0, S_i), S_i (k x k) known,
    theta_ij = x_ij' beta + v_i + u_ij,   v_i ~ (0, A), u_ij ~ (0, B), all independent.

or, with a public area scale h_i > 0 (``area_scale``), a heteroscedastic area variance

    v_i ~ (0, A0 + A1 h_i),   A0, A1 > 0,

for districts h_i = 1 / s_i with s_i the district's schools per level in the public school list
(:func:`analytics.estimation.cohort_rates.schools_per_level`): a district's rate carries the
effects of the schools its students pass through, whole where there is one school per level,
averaged where there are many, so one A fitted mostly on large districts left small districts'
intervals too narrow (pooled coverage 90% for districts of 1-2 schools).
``theta_ij`` is the subarea's underlying value (here a cohort's underlying graduation rate),
``v_i`` what the area's subareas share (the district's schools), ``u_ij`` what moves from one
subarea to the next. The direct estimates' errors may be correlated within an area (``S_i``
full, e.g. the covariance that consistency leaves between a district's cohorts), never
between areas. A subarea borrows strength from its area's other subareas (through ``v_i``)
and from the regression on public covariates, each in proportion to how noisy it is.

With V_i = A_i 11' + B I + S_i (A_i = A, or A0 + A1 h_i) over the area's observed subareas, the best linear unbiased
predictor of any combination T_i = omega_i' theta_i (one subarea: a unit vector; the area's
pooled value: weights proportional to subarea sizes) and its error variance are

    T_hat = omega' X_i beta + lambda' (y_i - X_i beta),   lambda = V_i^-1 c,
    c     = Cov(y_i, T_i) = A_i (sum omega) 1 + B omega,
    g1    = A_i (sum omega)^2 + B sum omega^2 - c' lambda,
    g2    = d' Cov(beta_hat) d,   d = X_i' omega - X_i' lambda            (beta by GLS),
    g3    = sum_kl Cov(psi_hat)_kl (d lambda / d psi_k)' V_i (d lambda / d psi_l),

the last the Das, Jiang & Rao (2004, Ann. Statist. 32, Thm. 3.1) term for estimating
psi = (A, B) or (A0, B, A1), with Cov(psi_hat) the inverse observed information of the restricted
likelihood. The stated mean squared error is g1 + g2 + 2 g3 (Prasad & Rao 1990; Datta &
Lahiri 2000) and the interval T_hat +/- z sqrt(mse). Single-subarea and pooled figures come
from one fit, so they agree.

A and B are estimated by adjusted REML, maximising

    log L_R(A, B) + log A + (1/M) log arctan( sum_ij B / (B + S_ij,jj) )

over the M observed subareas, which keeps both strictly positive: plain REML sets a small
variance to 0 in a share of samples, and intervals then under-cover (see
:mod:`analytics.estimation.small_area`). For A the factor is Li & Lahiri's (2010) h(A) = A.
For B it is Yoshimori & Lahiri's (2014, J. Multivariate Anal. 124, "A new adjusted maximum
likelihood method for the Fay-Herriot small area model") h(B) = arctan(tr(I - shrinkage))^(1/M),
with the subareas' shrinkage toward their area, S_ij,jj / (B + S_ij,jj): it is positive for every
B > 0 and vanishes at 0, yet weighs 1/M as much as the likelihood. Li & Lahiri's log B does not
suit B, whose information is weak when most subareas are single small cohorts under heavy noise:
the estimate lands where the likelihood's slope in B is -1/B, far above the truth (measured:
a cohort-to-cohort standard deviation of 1.7-2.9 points estimated where 0.3 was planted),
and single-cohort intervals then covered 97-100%.

With h_i, the factor on the area variance is Li & Lahiri's on its mean over the areas,
A0 + A1 mean(h_i), times Yoshimori & Lahiri's on each part, arctan(sum_i A0 / (A_i + D_i))^(1/m)
and arctan(sum_i A1 h_i / (A_i + D_i))^(1/m), with D_i = (1' (B I + S_i)^-1 1)^-1 the error
variance of area i's mean and m the areas fitted: both parts stay strictly positive and the
mean area variance is kept off 0 as A was. The search starts from the one-A fit, A split
between the parts. Tested in ``tests/estimation/test_two_fold.py``: planted (A0, B, A1)
recovered within 3 standard errors of the mean estimate, pooled intervals covering 93-97% for
areas of 1, 2-3 and 4+ schools where one A covers under 93% for areas of one.

All of it is post-processing of published values and public covariates: it costs no privacy.

Shapes: m areas, k subarea slots per area (unused slots are NaN in ``direct``), p covariates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult, minimize
from scipy.stats import norm

__all__ = ["TwoFoldFit", "two_fold_fay_herriot"]


def _masked_v(a: np.ndarray, b: float, s: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """V_i over observed slots, ``a`` (m,) the areas' variances; unobserved slots get an identity row and column."""
    k = s.shape[-1]
    pair = obs[:, :, None] & obs[:, None, :]
    v = np.where(pair, np.asarray(a, dtype=float)[:, None, None] + s + b * np.eye(k), 0.0)
    return v + np.where(~obs[:, :, None] & np.eye(k, dtype=bool), 1.0, 0.0)


def _area_variances(psi: np.ndarray, scale: np.ndarray | None, m: int) -> tuple[np.ndarray, float]:
    """(Var(v_i) per area (m,), B) from psi = (A, B) or (A0, B, A1): A0 + A1 h_i with h_i = ``scale``."""
    a = np.full(m, float(psi[0]))
    if scale is not None:
        a = a + float(psi[2]) * scale
    return a, float(psi[1])


@dataclass(frozen=True)
class TwoFoldFit:
    """A fitted two-fold model; :meth:`predict` gives subareas or weighted combinations per area.

    ``y`` (m, k) direct estimates with 0 where unobserved; ``observed`` (m, k) bool; ``error_cov``
    (m, k, k); ``x`` (m, k, p); ``beta`` (p,); ``cov_beta`` (p, p); ``area_variance`` A (A0 when
    the area variance is heteroscedastic); ``subarea_variance`` B; ``area_slope`` A1 (0 when
    homoscedastic) and ``area_scale`` h (m,) or None, so that Var(v_i) = A0 + A1 h_i;
    ``cov_psi`` the estimated covariance of psi = (A, B), or (A0, B, A1): (2, 2) or (3, 3).
    """

    y: np.ndarray
    observed: np.ndarray
    error_cov: np.ndarray
    x: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    area_variance: float
    subarea_variance: float
    cov_psi: np.ndarray
    area_slope: float = 0.0
    area_scale: np.ndarray | None = None

    @property
    def psi(self) -> np.ndarray:
        """The variance parameters in the order of ``cov_psi``: (A, B) or (A0, B, A1)."""
        head = [self.area_variance, self.subarea_variance]
        return np.array(head if self.area_scale is None else [*head, self.area_slope])

    def area_variances(self) -> np.ndarray:
        """Var(v_i) per area, (m,): A, or A0 + A1 h_i."""
        return _area_variances(self.psi, self.area_scale, self.y.shape[0])[0]

    def _lambda(self, psi: np.ndarray, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = self.observed
        a, b = _area_variances(psi, self.area_scale, obs.shape[0])
        v = _masked_v(a, b, self.error_cov, obs)
        c = np.where(obs, a[:, None] * omega.sum(axis=1, keepdims=True) + b * omega, 0.0)
        return np.linalg.solve(v, c[..., None])[..., 0], c, v

    def predict(self, weights: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
        """Predict T_i = sum_j weights[i, j] theta_ij for every area i; ``weights`` (m, k).

        Returns arrays (m,) under ``estimate``, ``mse`` (g1 + g2 + 2 g3), ``moe`` (z sqrt(mse)),
        ``lower``, ``upper``, ``g1``, ``g2``, ``g3``. A row of zeros gives NaN.
        Raises ValueError for weights of the wrong shape.
        """
        omega = np.asarray(weights, dtype=float)
        if omega.shape != self.observed.shape:
            raise ValueError(f"two_fold: weights must have shape {self.observed.shape}")
        psi = self.psi
        a, b = _area_variances(psi, self.area_scale, omega.shape[0])
        lam, c, v = self._lambda(psi, omega)
        xo = np.where(self.observed[..., None], self.x, 0.0)
        resid = np.where(self.observed, self.y - self.x @ self.beta, 0.0)
        estimate = np.einsum("mk,mkp,p->m", omega, self.x, self.beta) + np.einsum("mk,mk->m", lam, resid)
        g1 = a * omega.sum(axis=1) ** 2 + b * (omega**2).sum(axis=1) - np.einsum("mk,mk->m", c, lam)
        d = np.einsum("mk,mkp->mp", omega, self.x) - np.einsum("mk,mkp->mp", lam, xo)
        g2 = np.einsum("mp,pq,mq->m", d, self.cov_beta, d)
        grads = []
        for i in range(len(psi)):
            step = np.eye(len(psi))[i] * max(psi[i] * 1e-4, 1e-12)
            grads.append((self._lambda(psi + step, omega)[0] - self._lambda(psi - step, omega)[0]) / (2 * step[i]))
        g3 = sum(
            self.cov_psi[i, j] * np.einsum("mk,mkl,ml->m", grads[i], v, grads[j])
            for i in range(len(psi))
            for j in range(len(psi))
        )
        g1, g3 = np.maximum(g1, 0.0), np.maximum(g3, 0.0)
        mse = g1 + g2 + 2 * g3
        empty = ~np.any(omega != 0, axis=1)
        estimate, mse = np.where(empty, np.nan, estimate), np.where(empty, np.nan, mse)
        moe = float(norm.ppf(0.5 + confidence / 2)) * np.sqrt(mse)
        return {
            "estimate": estimate, "mse": mse, "moe": moe, "lower": estimate - moe, "upper": estimate + moe,
            "g1": g1, "g2": g2, "g3": g3,
        }  # fmt: skip


def _restricted(
    a: np.ndarray, b: float, y: np.ndarray, obs: np.ndarray, s: np.ndarray, x: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Restricted log-likelihood at (Var(v_i) = ``a`` (m,), B), with the GLS beta and its covariance."""
    v = _masked_v(a, b, s, obs)
    # V_i is symmetric positive definite: its log-determinant from the Cholesky factor (half the
    # work of an LU), and one solve for X and y together
    try:
        logdet_v = 2.0 * np.log(np.diagonal(np.linalg.cholesky(v), axis1=1, axis2=2)).sum(axis=1)
    except np.linalg.LinAlgError:  # an error covariance a rounding error short of definite: LU instead
        logdet_v = np.linalg.slogdet(v)[1]
    xo = np.where(obs[..., None], x, 0.0)
    yo = np.where(obs, y, 0.0)
    solved = np.linalg.solve(v, np.concatenate([xo, yo[..., None]], axis=2))
    vinv_x, vinv_y = solved[..., :-1], solved[..., -1]
    info = np.einsum("mkp,mkq->pq", xo, vinv_x)
    score = np.einsum("mkp,mk->p", xo, vinv_y)
    cov_beta = np.linalg.inv(info)
    beta = cov_beta @ score
    quad = float(np.einsum("mk,mk->", yo, vinv_y) - score @ beta)
    _s2, logdet_info = np.linalg.slogdet(info)
    return -0.5 * (float(logdet_v.sum()) + logdet_info + quad), beta, cov_beta


def _area_error(b: float, s: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """D_i = (1' (B I + S_i)^-1 1)^-1 over the observed slots, (m,): the error variance of area i's mean given v_i."""
    w = _masked_v(np.zeros(obs.shape[0]), b, s, obs)
    ones = obs.astype(float)
    total = np.einsum("mk,mk->m", ones, np.linalg.solve(w, ones[..., None])[..., 0])
    with np.errstate(divide="ignore"):
        return np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), np.inf)


def two_fold_fay_herriot(
    direct: np.ndarray, error_cov: np.ndarray, covariates: np.ndarray, area_scale: np.ndarray | None = None
) -> TwoFoldFit:
    """Fit the two-fold model by adjusted REML (A: Li & Lahiri 2010; B: Yoshimori & Lahiri 2014; module docstring).

    ``direct`` (m, k) direct estimates, NaN where a subarea has none; ``error_cov`` (m, k, k)
    their known error covariance per area (finite, symmetric, positive semi-definite on the
    observed slots); ``covariates`` (m, k, p), include an intercept. ``area_scale`` (m,), public
    and positive, makes the area variance heteroscedastic, Var(v_i) = A0 + A1 h_i (e.g.
    h_i = 1 / the number of schools of district i); None: one A for every area. Raises
    ValueError for shapes that disagree, non-finite covariates or covariances, collinear
    covariates, fewer than p + 2 observed subareas (p + 3 with ``area_scale``), or an
    ``area_scale`` that is not positive or does not vary over the areas with a subarea observed.

    >>> rng = np.random.default_rng(1)
    >>> theta = 0.8 + rng.normal(0, 0.05, (40, 1)) + rng.normal(0, 0.02, (40, 5))
    >>> cov = np.broadcast_to(0.01 * np.eye(5), (40, 5, 5))
    >>> fit = two_fold_fay_herriot(theta + rng.normal(0, 0.1, (40, 5)), cov, np.ones((40, 5, 1)))
    >>> fit.area_variance > fit.subarea_variance > 0
    True
    """
    y = np.asarray(direct, dtype=float)
    s = np.asarray(error_cov, dtype=float)
    x = np.asarray(covariates, dtype=float)
    if y.ndim != 2 or s.shape != (*y.shape, y.shape[1]) or x.ndim != 3 or x.shape[:2] != y.shape:
        raise ValueError("two_fold: direct must be (m, k), error_cov (m, k, k) and covariates (m, k, p)")
    obs = np.isfinite(y)
    pair = obs[:, :, None] & obs[:, None, :]
    if not np.all(np.isfinite(np.where(pair, s, 0.0))):
        raise ValueError("two_fold: error covariances must be finite where subareas are observed")
    if not np.all(np.isfinite(x)):
        raise ValueError("two_fold: covariates must be finite")
    p = x.shape[2]
    scale = None
    if area_scale is not None:
        scale = np.asarray(area_scale, dtype=float)
        if scale.shape != (y.shape[0],) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError("two_fold: area_scale must be (m,), finite and positive")
        if np.ptp(scale[obs.any(axis=1)]) <= 0:
            raise ValueError("two_fold: area_scale must vary over the areas with a subarea observed")
    n_psi = 2 if scale is None else 3
    if obs.sum() < p + n_psi:
        raise ValueError(f"two_fold: need at least p + {n_psi} subareas with a direct estimate")
    if np.linalg.matrix_rank(x[obs]) < p:
        raise ValueError("two_fold: covariates are collinear over the subareas with a direct estimate")
    s = np.where(pair, 0.5 * (s + np.swapaxes(s, 1, 2)), 0.0)
    y0 = np.where(obs, y, 0.0)

    own_var = np.diagonal(s, axis1=1, axis2=2)[obs]
    n_sub = int(obs.sum())
    fitted = obs.any(axis=1)
    n_area = int(fitted.sum())
    mean_scale = float(scale[fitted].mean()) if scale is not None else 0.0

    def neg(log_psi: np.ndarray) -> float:
        psi = np.exp(log_psi)
        hetero = len(psi) == 3
        a, b = _area_variances(psi, scale if hetero else None, y.shape[0])
        trace = float(np.arctan(np.sum(b / (b + own_var))))  # Yoshimori & Lahiri (2014)
        adjust = np.log(max(trace, 1e-300)) / n_sub
        if not hetero:
            adjust += log_psi[0]  # Li & Lahiri (2010): h(A) = A
        else:
            # Li & Lahiri on the mean area variance; Yoshimori & Lahiri on each part's share of it
            assert scale is not None
            total = a[fitted] + _area_error(b, s, obs)[fitted]
            adjust += np.log(psi[0] + psi[2] * mean_scale)
            for part in (psi[0] * np.ones(n_area), psi[2] * scale[fitted]):
                adjust += np.log(max(float(np.arctan(np.sum(part / total))), 1e-300)) / n_area
        return -(_restricted(a, b, y0, obs, s, x)[0] + adjust)

    spread = max(float(np.var(y[obs])), 1e-8)
    best = _search(neg, [np.log(spread * np.array(start)) for start in ((0.5, 0.5), (0.1, 0.01), (0.01, 0.1))], spread)
    if scale is not None:  # from the one-A fit, with A split between A0 and A1 h at the mean scale
        a1, b1 = np.exp(best.x)
        starts = [np.log([a1 * (1 - f), b1, a1 * f / mean_scale]) for f in (0.5, 0.1, 0.9)]
        best = _search(neg, starts, spread)
    psi_hat = np.exp(best.x)
    a_hat, b_hat = _area_variances(psi_hat, scale, y.shape[0])
    _ll, beta, cov_beta = _restricted(a_hat, b_hat, y0, obs, s, x)
    cov_psi = _psi_covariance(psi_hat, scale, y0, obs, s, x)
    slope = float(psi_hat[2]) if scale is not None else 0.0
    return TwoFoldFit(y0, obs, s, x, beta, cov_beta, float(psi_hat[0]), b_hat, cov_psi, slope, scale)


def _search(neg: Callable[[np.ndarray], float], starts: list[np.ndarray], spread: float) -> OptimizeResult:
    """Nelder-Mead on log variances from each start, bounded far outside any variance the data allow; the best."""
    bounds = [(np.log(spread) - 30.0, np.log(spread) + 5.0)] * len(starts[0])
    best = None
    for start in starts:
        res = minimize(neg, np.clip(start, *bounds[0]), method="Nelder-Mead", bounds=bounds,
                       options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 400 * len(start)})  # fmt: skip
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return best


def _psi_covariance(
    psi: np.ndarray, scale: np.ndarray | None, y: np.ndarray, obs: np.ndarray, s: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Inverse observed information of the (unadjusted) restricted likelihood in psi, by finite differences."""
    q = len(psi)
    h = np.maximum(psi * 1e-3, 1e-12)

    def ll(v: np.ndarray) -> float:
        a, b = _area_variances(np.maximum(v, 1e-14), scale, y.shape[0])
        return _restricted(a, b, y, obs, s, x)[0]

    hess = np.empty((q, q))
    for i in range(q):
        for j in range(q):
            ei, ej = np.eye(q)[i] * h[i], np.eye(q)[j] * h[j]
            hess[i, j] = (ll(psi + ei + ej) - ll(psi + ei - ej) - ll(psi - ei + ej) + ll(psi - ei - ej)) / (
                4 * h[i] * h[j]
            )
    fallback = np.diag(2 * psi**2)
    try:
        cov = np.linalg.inv(-0.5 * (hess + hess.T))
    except np.linalg.LinAlgError:
        return fallback
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return fallback
    return cov
