"""Two-fold (area and subarea) Fay-Herriot estimates: districts x cohorts, schools x cohorts.

The model (Torabi & Rao 2014, "Small area estimation under a two-fold nested error
regression model", J. Multivariate Anal. 127; the subarea-level form of Fay & Herriot 1979):
for area i (a district) and subarea j (one of its cohorts),

    y_ij     = theta_ij + e_ij,           e_i ~ (0, S_i), S_i (k x k) known,
    theta_ij = x_ij' beta + v_i + u_ij,   v_i ~ (0, A), u_ij ~ (0, B), all independent.

or, with public area scales h_ik >= 0 (``area_scale``, one column or q), a heteroscedastic area
variance

    v_i ~ (0, A0 + sum_k A_k h_ik),   A0, A_k > 0,

for districts one column, the structure scale of the public school list
(:func:`analytics.estimation.cohort_rates.district_structure`): a district's rate carries the
effects of the schools its students pass through, whole where one school serves a stage,
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

With h, the factor on the area variance is Li & Lahiri's on its mean over the areas,
A0 + sum_k A_k mean(h_ik), times Yoshimori & Lahiri's on each part, arctan(sum_i A0 / (A_i + D_i))^(1/m)
and arctan(sum_i A_k h_ik / (A_i + D_i))^(1/m) for each k, with D_i = (1' (B I + S_i)^-1 1)^-1 the
error variance of area i's mean and m the areas fitted: every part stays strictly positive and the
mean area variance is kept off 0 as A was. The search starts from the one-A fit, A split
between the parts. Each A_k needs its column to vary apart from the others: two columns that
move together over 150 districts leave their split unidentified (measured on the sample: the fit
put the whole variance on one column or the other from draw to draw), so the product passes one.
Tested in ``tests/estimation/test_two_fold.py``: planted (A0, B, A1)
recovered within 3 standard errors of the mean estimate, pooled intervals covering 93-97% for
areas of 1, 2-3 and 4+ schools where one A covers under 93% for areas of one.

The fit is computed in each area's eigenbasis of S_i, where B I + S_i is diagonal and A_i 11'
a rank-one term, so the likelihood and its gradient (Harville 1977) need no solve; the search is
L-BFGS-B on the log variances with that gradient, finished by Newton steps until a step is under
1e-5 (Nelder-Mead on the same objective agrees within 1e-4: ``tests/estimation/
test_two_fold_search.py``).

All of it is post-processing of published values and public covariates: it costs no privacy.

Shapes: m areas, k subarea slots per area (unused slots are NaN in ``direct``), p covariates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm
from threadpoolctl import ThreadpoolController

__all__ = ["TwoFoldFit", "two_fold_fay_herriot"]

#: Stopping rule of the search on log variances (:func:`_search`): the largest Newton step that ends
#: it, about the distance to the optimum (Nelder-Mead stopped at 1e-3 before).
XTOL = 1e-5


_BLAS_LOCK = threading.Lock()


@cache
def _blas_pools() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread while L-BFGS-B runs (its Python loop makes thousands of tiny BLAS calls).

    Those calls go to SciPy's own OpenBLAS, a thread pool beside NumPy's; with few cores the two
    pools' waiting threads made each call cost 100 times its work (measured on 2 cores: 2.7 ms
    instead of 11 us). The lock keeps two fits in different threads from restoring each other's limit.
    """
    with _BLAS_LOCK, _blas_pools().limit(limits=1, user_api="blas"):
        yield


def _area_variances(psi: np.ndarray, scale: np.ndarray | None, m: int) -> tuple[np.ndarray, float]:
    """(Var(v_i) per area (m,), B) from psi = (A, B) or (A0, B, A1..Aq): A0 + sum_k A_k h_ik, h = ``scale`` (m, q)."""
    a = np.full(m, float(psi[0]))
    if scale is not None:
        a = a + scale @ np.asarray(psi[2:], dtype=float)
    return a, float(psi[1])


@dataclass(frozen=True)
class TwoFoldFit:
    """A fitted two-fold model; :meth:`predict` gives subareas or weighted combinations per area.

    ``y`` (m, k) direct estimates with 0 where unobserved; ``observed`` (m, k) bool; ``error_cov``
    (m, k, k); ``x`` (m, k, p); ``beta`` (p,); ``cov_beta`` (p, p); ``area_variance`` A (A0 when
    the area variance is heteroscedastic); ``subarea_variance`` B; ``area_slopes`` (A1, ..., Aq)
    (empty when homoscedastic) and ``area_scale`` h (m, q) or None, so that
    Var(v_i) = A0 + sum_k A_k h_ik; ``cov_psi`` the estimated covariance of psi = (A, B), or
    (A0, B, A1, ..., Aq): (2, 2) or (q + 2, q + 2).
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
    area_slopes: tuple[float, ...] = ()
    area_scale: np.ndarray | None = None

    @property
    def psi(self) -> np.ndarray:
        """The variance parameters in the order of ``cov_psi``: (A, B) or (A0, B, A1, ..., Aq)."""
        return np.array([self.area_variance, self.subarea_variance, *self.area_slopes])

    def area_variances(self) -> np.ndarray:
        """Var(v_i) per area, (m,): A, or A0 + sum_k A_k h_ik."""
        return _area_variances(self.psi, self.area_scale, self.y.shape[0])[0]

    @cached_property
    def _areas(self) -> _Areas:
        return _Areas(self.y, self.observed, self.error_cov, self.x)

    def _lambda(self, psi: np.ndarray, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lambda = V_i^-1 c_i, c_i = Cov(y_i, T_i)), each (m, k) with 0 in the unobserved slots."""
        obs = self.observed
        a, b = _area_variances(psi, self.area_scale, obs.shape[0])
        c = np.where(obs, a[:, None] * omega.sum(axis=1, keepdims=True) + b * omega, 0.0)
        return self._areas.solve(a, b, c), c

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
        lam, c = self._lambda(psi, omega)
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
            self.cov_psi[i, j] * self._areas.quadratic(a, b, grads[i], grads[j])
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


class _Areas:
    """The areas in the eigenbasis of their error covariances: V_i = Q_i (diag(lambda_i + B) + A_i u_i u_i') Q_i'.

    With S_i = Q_i diag(lambda_i) Q_i' over the observed slots, B I + S_i is diagonal in that basis
    and A_i 11' a rank-one term with u_i = Q_i' 1, so the restricted likelihood, its gradient and
    D_i need no solve (Sherman-Morrison): O(m k p^2) per evaluation, the eigenvectors found once.
    Components outside the observed slots (``comp`` False) have u, x, y = 0 and weight 1, as
    V's identity rows there, so they add nothing.
    """

    def __init__(self, y: np.ndarray, obs: np.ndarray, s: np.ndarray, x: np.ndarray) -> None:
        k, p = obs.shape[1], x.shape[2]
        # observed block as is; unobserved slots decoupled on the diagonal at -1, far below any
        # eigenvalue of the (positive semi-definite) observed block, so no eigenvector mixes the two
        unobserved = np.where(~obs, 1.0, 0.0)[:, :, None] * np.eye(k)
        lam, q = np.linalg.eigh(np.where(obs[:, :, None] & obs[:, None, :], s, 0.0) - unobserved)
        self.comp = lam > -0.5  # (m, k) components in the observed slots
        self.lam = np.where(self.comp, np.maximum(lam, 0.0), 0.0)  # rounding below 0 on a singular S_i
        self.rot = np.swapaxes(q, 1, 2) * self.comp[:, :, None]  # Q_i', rows outside the observed slots 0
        z = np.concatenate([np.where(obs[..., None], x, 0.0), np.where(obs, y, 0.0)[..., None]], axis=2)
        self.p = p
        self.u = (self.rot @ obs.astype(float)[..., None])[..., 0]  # (m, k): rotated 1
        self.z = self.rot @ z  # (m, k, p + 1): rotated [X_i, y_i]
        self.zz = np.einsum("mka,mkb->mkab", self.z, self.z).reshape(-1, (p + 1) ** 2)

    def _parts(self, a: np.ndarray, b: float) -> tuple[np.ndarray, ...]:
        d = np.where(self.comp, self.lam + b, 1.0)
        w = 1.0 / d
        wu = w * self.u
        t = np.einsum("mk,mk->m", self.u, wu)
        return d, w, wu, t, 1.0 + a * t

    def solve(self, a: np.ndarray, b: float, c: np.ndarray) -> np.ndarray:
        """V_i^-1 c_i over the observed slots, (m, k), for ``c`` (m, k) with 0 in the unobserved slots."""
        _d, w, wu, _t, den = self._parts(a, b)
        rc = (self.rot @ c[..., None])[..., 0]
        out = w * rc - (a / den * np.einsum("mk,mk->m", wu, rc))[:, None] * wu
        return (np.swapaxes(self.rot, 1, 2) @ out[..., None])[..., 0]

    def quadratic(self, a: np.ndarray, b: float, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """left_i' V_i right_i, (m,), for ``left`` and ``right`` (m, k) with 0 in the unobserved slots."""
        d = self.lam + b
        rl, rr = (self.rot @ left[..., None])[..., 0], (self.rot @ right[..., None])[..., 0]
        shared = np.einsum("mk,mk->m", self.u, rl) * np.einsum("mk,mk->m", self.u, rr)  # (1' left)(1' right)
        return np.einsum("mk,mk->m", d * rl, rr) + a * shared

    def area_error(self, b: float) -> tuple[np.ndarray, np.ndarray]:
        """(D_i, dD_i/dB), (m,) each: D_i = (1' (B I + S_i)^-1 1)^-1, inf for an area with nothing observed."""
        _d, _w, wu, t, _den = self._parts(np.zeros(len(self.u)), b)
        safe = np.where(t > 0, t, 1.0)
        return np.where(t > 0, 1.0 / safe, np.inf), np.where(t > 0, np.einsum("mk,mk->m", wu, wu) / safe**2, 0.0)

    def restricted(
        self, a: np.ndarray, b: float, gradient: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
        """(log L_R, beta, Cov(beta), d log L_R / d a_i (m,), d log L_R / dB) at Var(v_i) = ``a`` (m,) and B.

        The derivatives, -tr(P dV) / 2 + y' P dV P y / 2 with P = V^-1 - V^-1 X Cov(beta) X' V^-1
        (Harville 1977, J. Amer. Statist. Assoc. 72, eq. 4.4), are NaN unless ``gradient``.
        """
        p = self.p
        d, w, wu, t, den = self._parts(a, b)
        g = a / den  # V_i^-1 = W - g_i (W u)(W u)' in the area's basis, W = diag(1 / d)
        zwu = (wu[:, None, :] @ self.z)[:, 0]  # (m, p + 1): [X_i, y_i]' W u
        gram = (w.reshape(-1) @ self.zz).reshape(p + 1, p + 1) - (zwu.T * g) @ zwu  # [X, y]' V^-1 [X, y]
        info, score = gram[:p, :p], gram[:p, p]
        cov_beta = np.linalg.inv(info)
        beta = cov_beta @ score
        quad = float(gram[p, p] - score @ beta)
        logdet_info = np.linalg.slogdet(info)[1]
        ll = -0.5 * (float(np.log(d).sum() + np.log(den).sum()) + logdet_info + quad)
        if not gradient:
            return ll, beta, cov_beta, np.full(len(a), np.nan), np.nan
        # r_i = V_i^-1 e_i with e_i = y_i - X_i beta = [X_i, y_i] coef: every term below from W-weighted grams
        coef = np.append(-beta, 1.0)
        w2 = (w * w).reshape(-1)
        gram2 = (w2 @ self.zz).reshape(p + 1, p + 1)  # [X, y]' W^2 [X, y]
        zw2u = ((w * wu)[:, None, :] @ self.z)[:, 0]  # [X_i, y_i]' W^2 u
        q = np.einsum("mk,mk->m", wu, wu)
        wue, w2ue = zwu @ coef, zw2u @ coef  # u' W e_i, u' W^2 e_i
        x1, x2 = zwu[:, :p], zw2u[:, :p]
        h = x1 / den[:, None]  # X_i' V_i^-1 u
        d_a = -0.5 * (t / den - ((h @ cov_beta) * h).sum(axis=1) - (wue / den) ** 2)
        r2 = float(coef @ gram2 @ coef - np.sum(2 * g * wue * w2ue - g**2 * q * wue**2))  # sum_i r_i' r_i
        x_v2_x = gram2[:p, :p] - (x2.T * g) @ x1 - (x1.T * g) @ x2 + (x1.T * (g**2 * q)) @ x1  # sum_i X_i' V_i^-2 X_i
        trace_vinv = float((w * self.comp).sum() - g @ q)
        d_b = -0.5 * (trace_vinv - float(np.sum(cov_beta * x_v2_x)) - r2)
        return ll, beta, cov_beta, d_a, d_b


def two_fold_fay_herriot(
    direct: np.ndarray, error_cov: np.ndarray, covariates: np.ndarray, area_scale: np.ndarray | None = None
) -> TwoFoldFit:
    """Fit the two-fold model by adjusted REML (A: Li & Lahiri 2010; B: Yoshimori & Lahiri 2014; module docstring).

    ``direct`` (m, k) direct estimates, NaN where a subarea has none; ``error_cov`` (m, k, k)
    their known error covariance per area (finite, symmetric, positive semi-definite on the
    observed slots); ``covariates`` (m, k, p), include an intercept. ``area_scale`` (m,) or
    (m, q), public, makes the area variance heteroscedastic, Var(v_i) = A0 + sum_k A_k h_ik
    (e.g. h_i1 = 1 / the number of high schools of district i); None: one A for every area.
    Raises ValueError for shapes that disagree, non-finite covariates or covariances, collinear
    covariates, fewer than p + 2 observed subareas (p + 2 + q with ``area_scale``), or an
    ``area_scale`` with a negative value, a column without a positive value, or columns that
    with a constant are not linearly independent over the areas with a subarea observed (a
    column that does not vary, or two that move together, leave the A_k unidentified).

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
        scale = scale[:, None] if scale.ndim == 1 else scale
        if scale.ndim != 2 or scale.shape[0] != y.shape[0] or not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ValueError("two_fold: area_scale must be (m,) or (m, q), finite and not negative")
        if not np.all(scale.max(axis=0) > 0):
            raise ValueError("two_fold: every area_scale column needs a positive value")
        fitted = np.column_stack([np.ones(int(obs.any(axis=1).sum())), scale[obs.any(axis=1)]])
        if np.linalg.matrix_rank(fitted / np.abs(fitted).max(axis=0)) < fitted.shape[1]:
            raise ValueError(
                "two_fold: area_scale must vary over the areas with a subarea observed, "
                "each column apart from the others"
            )
    n_psi = 2 if scale is None else 2 + scale.shape[1]
    if obs.sum() < p + n_psi:
        raise ValueError(f"two_fold: need at least p + {n_psi} subareas with a direct estimate")
    if np.linalg.matrix_rank(x[obs]) < p:
        raise ValueError("two_fold: covariates are collinear over the subareas with a direct estimate")
    s = np.where(pair, 0.5 * (s + np.swapaxes(s, 1, 2)), 0.0)
    y0 = np.where(obs, y, 0.0)

    areas = _Areas(y0, obs, s, x)
    neg = _adjusted_objective(areas, np.diagonal(s, axis1=1, axis2=2)[obs], scale, obs.any(axis=1))
    spread = max(float(np.var(y[obs])), 1e-8)
    # where the likelihood is flat in a variance near 0 the adjustment's slope in its log is about 1/M
    # (1/m for the parts): L-BFGS-B must not stop on a gradient of that size, so it stops at 1% of it
    gtol = 0.01 / int(obs.sum())
    starts = [np.log(spread * np.array(start)) for start in ((0.5, 0.5), (0.1, 0.01), (0.01, 0.1))]
    best = _search(neg, starts, spread, gtol)
    if scale is not None:  # from the one-A fit: a share f of A to A0, the rest split evenly over the A_k h_k
        mean_scale = scale[obs.any(axis=1)].mean(axis=0)
        a1, b1 = np.exp(best)
        q = scale.shape[1]
        starts = [np.log([a1 * (1 - f), b1, *(a1 * f / q / mean_scale)]) for f in (0.5, 0.1, 0.9)]
        best = _search(neg, starts, spread, gtol)
    psi_hat = np.exp(best)
    a_hat, b_hat = _area_variances(psi_hat, scale, y.shape[0])
    _ll, beta, cov_beta, _da, _db = areas.restricted(a_hat, b_hat)
    cov_psi = _psi_covariance(psi_hat, scale, areas)
    slopes = tuple(float(v) for v in psi_hat[2:])
    return TwoFoldFit(y0, obs, s, x, beta, cov_beta, float(psi_hat[0]), b_hat, cov_psi, slopes, scale)


def _adjusted_objective(
    areas: _Areas, own_var: np.ndarray, scale: np.ndarray | None, fitted: np.ndarray
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Minus the adjusted restricted log-likelihood of log psi, (2,) or (q + 2,), and its gradient (module docstring).

    ``scale`` (m, q) or None; ``own_var`` the observed subareas' own error variances S_ij,jj;
    ``fitted`` (m,) the areas with a subarea observed. Log psi of length 2 is the one-A model
    even when ``scale`` is given.
    """
    n_sub, n_area, m = len(own_var), int(fitted.sum()), len(fitted)
    h = scale[fitted] if scale is not None else np.zeros((n_area, 0))  # (n_area, q)
    mean_scale = h.mean(axis=0)  # (q,)

    def log_arctan(total: float, d_total: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
        """weight log arctan(total) and its gradient, given total's gradient."""
        angle = float(np.arctan(total))
        return weight * np.log(max(angle, 1e-300)), weight * d_total / ((1.0 + total**2) * max(angle, 1e-300))

    def neg(log_psi: np.ndarray) -> tuple[float, np.ndarray]:
        psi = np.exp(log_psi)
        hetero = len(psi) > 2
        a, b = _area_variances(psi, scale if hetero else None, m)
        ll, _beta, _cov, d_a, d_b = areas.restricted(a, b, gradient=True)
        grad = np.array([d_a.sum(), d_b, *(d_a @ scale if hetero and scale is not None else [])])
        # Yoshimori & Lahiri (2014) on B: (1/M) log arctan(sum_ij B / (B + S_ij,jj))
        d_trace = np.eye(len(psi))[1] * float(np.sum(own_var / (b + own_var) ** 2))
        adjust, d_adjust = log_arctan(float(np.sum(b / (b + own_var))), d_trace, 1 / n_sub)
        if not hetero:
            adjust, d_adjust = adjust + log_psi[0], d_adjust + np.array([1.0 / psi[0], 0.0])  # Li & Lahiri: h(A) = A
        else:
            # Li & Lahiri on the mean area variance; Yoshimori & Lahiri on each part's share of it
            n_psi = len(psi)
            area_error, d_area_error = areas.area_error(b)
            total = a[fitted] + area_error[fitted]
            d_total = np.vstack([np.ones(n_area), d_area_error[fitted], h.T])  # (q + 2, n_area): d total_i / d psi
            mean_a = psi[0] + float(psi[2:] @ mean_scale)
            adjust, d_adjust = adjust + np.log(mean_a), d_adjust + np.r_[1.0, 0.0, mean_scale] / mean_a
            eye = np.eye(n_psi)
            parts = [(psi[0] * np.ones(n_area), eye[0][:, None] * np.ones(n_area))]
            parts += [(psi[2 + j] * h[:, j], eye[2 + j][:, None] * h[:, j]) for j in range(h.shape[1])]
            for part, d_part in parts:  # (part_i (n_area,), d part_i / d psi (q + 2, n_area))
                share = d_part / total - d_total * part / total**2  # d (part_i / total_i) / d psi
                value, d_value = log_arctan(float(np.sum(part / total)), share.sum(axis=1), 1 / n_area)
                adjust, d_adjust = adjust + value, d_adjust + d_value
        return -(ll + adjust), -(grad + d_adjust) * psi

    return neg


def _search(
    neg: Callable[[np.ndarray], tuple[float, np.ndarray]], starts: list[np.ndarray], spread: float, gtol: float
) -> np.ndarray:
    """The minimum of ``neg`` over log variances, bounded far outside any variance the data allow.

    From each start in turn: L-BFGS-B with the analytic gradient (stopping at a largest gradient
    component of ``gtol``), then Newton steps (:func:`_polish`). The first start whose polish
    converges (a positive definite Hessian and a last step under :data:`XTOL`) gives the answer;
    the later starts serve only when it does not, and then the lowest point found wins.
    """
    lo, hi = np.log(spread) - 30.0, np.log(spread) + 5.0
    best, best_f = starts[0], np.inf
    for start in starts:
        with _one_blas_thread():
            res = minimize(neg, np.clip(start, lo, hi), jac=True, method="L-BFGS-B", bounds=[(lo, hi)] * len(start),
                           options={"ftol": 1e-12, "gtol": gtol, "maxiter": 500})  # fmt: skip
        x, f, converged = _polish(neg, np.asarray(res.x, dtype=float), lo, hi)
        if converged:
            return x
        if f < best_f:
            best, best_f = x, f
    return best


def _polish(
    neg: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, float, bool]:
    """Newton steps from ``x`` while they lower ``neg``, the Hessian by central differences of the gradient.

    Returns (x, neg(x), converged): converged when the Newton step from ``x`` is under :data:`XTOL`
    in every log variance with a positive definite Hessian (the distance to the optimum is then
    about that step); not when the Hessian is not positive definite (a flat ridge, a saddle),
    a step does not lower ``neg`` beyond rounding, or 8 steps do not get there.
    """
    f, g = neg(x)
    eye = np.eye(len(x)) * 1e-4
    for _ in range(8):
        hess = np.array([(neg(x + e)[1] - neg(x - e)[1]) / 2e-4 for e in eye])
        hess = 0.5 * (hess + hess.T)
        try:
            np.linalg.cholesky(hess)
        except np.linalg.LinAlgError:
            return x, f, False
        step = -np.linalg.solve(hess, g)
        if np.max(np.abs(step)) <= XTOL:
            return x, f, True
        trial = np.clip(x + step, lo, hi)
        f_trial, g_trial = neg(trial)
        if not f_trial <= f + 1e-12 * abs(f):  # a step in a flat direction may gain less than rounding
            return x, f, False
        x, f, g = trial, f_trial, g_trial
    return x, f, False


def _psi_covariance(psi: np.ndarray, scale: np.ndarray | None, areas: _Areas) -> np.ndarray:
    """Inverse observed information of the (unadjusted) restricted likelihood in psi, by finite differences.

    Second differences of the likelihood in psi (steps 1e-3 psi), as the model was calibrated;
    diag(2 psi^2) where the information is singular: its inverse is not finite or has a diagonal
    entry <= 0, or the information on log psi, D I_psi D (D = diag(psi)), from central
    differences of the analytic gradient, has its smallest eigenvalue under 1e-8 of its largest
    (zero to the precision of those differences). Without that last test the choice flipped with
    rounding where two variances near 0 trade off (the bundled sample's district graduation fits).
    """
    q, m = len(psi), len(areas.u)
    h = np.maximum(psi * 1e-3, 1e-12)
    fallback = np.diag(2 * psi**2)

    def ll(v: np.ndarray) -> float:
        a, b = _area_variances(np.maximum(v, 1e-14), scale, m)
        return areas.restricted(a, b)[0]

    def gradient(log_psi: np.ndarray) -> np.ndarray:
        a, b = _area_variances(np.exp(log_psi), scale, m)
        _ll, _beta, _cov, d_a, d_b = areas.restricted(a, b, gradient=True)
        return np.array([d_a.sum(), d_b, *(d_a @ scale if scale is not None else [])]) * np.exp(log_psi)

    log_psi = np.log(psi)
    second = np.array([(gradient(log_psi + e) - gradient(log_psi - e)) / 2e-4 for e in np.eye(q) * 1e-4])
    info_log = np.diag(gradient(log_psi)) - 0.5 * (second + second.T)
    if not np.all(np.isfinite(info_log)):
        return fallback
    eigen = np.linalg.eigvalsh(info_log)
    if eigen[0] <= 1e-8 * eigen[-1]:
        return fallback
    hess = np.empty((q, q))
    for i in range(q):
        for j in range(q):
            ei, ej = np.eye(q)[i] * h[i], np.eye(q)[j] * h[j]
            hess[i, j] = (ll(psi + ei + ej) - ll(psi + ei - ej) - ll(psi - ei + ej) + ll(psi - ei - ej)) / (
                4 * h[i] * h[j]
            )
    try:
        cov = np.linalg.inv(-0.5 * (hess + hess.T))
    except np.linalg.LinAlgError:
        return fallback
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return fallback
    return cov
