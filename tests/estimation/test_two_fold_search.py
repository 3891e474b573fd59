"""Two-fold Fay-Herriot's fast search against slow references on seeded synthetic data.

The fit evaluates the restricted likelihood in each area's eigenbasis and searches with
L-BFGS-B on an analytic gradient, polished by Newton steps. Checked here against a dense
evaluation (one solve per area, as the model's formulas read) and against scipy's
Nelder-Mead run to a tight tolerance on the same objective, on worlds that include the edge
cases: a variance planted at 0, areas with one cohort, missing cells, an area with none,
nearly exact areas, correlated errors and the heteroscedastic area variance with one or two
scale columns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import minimize

from analytics.estimation import two_fold

#: The fast search stops on a Newton step under two_fold.XTOL (1e-5) on log variances, the reference
#: below at 1e-6: they must agree within 10 XTOL. (Nelder-Mead stopped at 1e-3 before the fast search,
#: so the published estimates were only determined to 1e-3.)
LOG_PSI_TOL = 10 * two_fold.XTOL


def _world(
    rng: np.random.Generator,
    m: int = 80,
    k: int = 6,
    a: float = 0.003,
    b: float = 0.0005,
    a1: float = 0.0,
    noise: float = 0.01,
    rho: float = 0.3,
    a2: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(direct (m, k), error_cov (m, k, k) with within-area correlation ``rho``, covariates (m, k, 2), h (m, 2)).

    Var(v_i) = a + a1 h_i1 + a2 h_i2 with h_i1 = 1 / schools (1-11) and h_i2 a structure: 1 in
    about 30% of the areas, 0.5 in the others.
    """
    schools = rng.integers(1, 12, m).astype(float)
    x = np.stack([np.ones((m, k)), np.repeat((rng.random(m) < 0.4)[:, None], k, 1).astype(float)], -1)
    h = np.column_stack([1.0 / schools, np.where(rng.random(m) < 0.3, 1.0, 0.5)])
    v = rng.normal(0, np.sqrt(a + h @ np.array([a1, a2])))[:, None]
    theta = x @ np.array([0.85, -0.03]) + v + rng.normal(0, np.sqrt(b), (m, k))
    sd = np.sqrt(noise * np.exp(rng.normal(0, 0.7, (m, 1))) * rng.uniform(0.5, 2, (m, k)))
    corr = (1 - rho) * np.eye(k) + rho
    cov = sd[:, :, None] * corr[None] * sd[:, None, :]
    y = theta + np.einsum("mkl,ml->mk", np.linalg.cholesky(cov), rng.normal(size=(m, k)))
    return y, cov, x, h


def _sparse(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    y, cov, x, h = _world(rng)
    y[:25, 1:] = np.nan  # 25 areas with one cohort
    y[rng.random(y.shape) < 0.15] = np.nan  # scattered missing cells
    y[30] = np.nan  # an area with none
    return y, cov, x, h


def _exact(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    y, cov, x, h = _world(rng)
    cov[:10] *= 1e-8  # ten nearly exact areas
    return y, cov, x, h


CASES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "typical": lambda rng: _world(rng),
    "cohort variance planted at 0 under heavy noise": lambda rng: _world(rng, b=0.0, noise=0.02),
    "area variance planted at 0": lambda rng: _world(rng, a=0.0),
    "one cohort, missing cells, an empty area": _sparse,
    "nearly exact areas": _exact,
    "independent errors": lambda rng: _world(rng, rho=0.0),
}
HETERO_CASES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "heteroscedastic": lambda rng: _world(rng, m=150, a=0.0005, a1=0.008),
    "heteroscedastic, A0 planted at 0": lambda rng: _world(rng, m=150, a=0.0, a1=0.008),
    "heteroscedastic, sparse": _sparse,
}
#: Cases fitted with both columns of h (A0, B, A1, A2): the structure-aware area variance.
TWO_SCALE_CASES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "two scales": lambda rng: _world(rng, m=150, a=0.0005, a1=0.006, a2=0.002),
    "two scales, A2 planted at 0": lambda rng: _world(rng, m=150, a=0.0005, a1=0.006),
    "two scales, sparse": _sparse,
    "two scales, low noise": lambda rng: _world(rng, m=150, a=0.002, a1=0.006, a2=0.004, noise=0.003),
}
ALL_CASES = {**CASES, **HETERO_CASES, **TWO_SCALE_CASES}


def _scale(case: str, h: np.ndarray) -> np.ndarray | None:
    """The area scale a case is fitted with: None, h's first column, or both."""
    return h if case in TWO_SCALE_CASES else h[:, 0] if case in HETERO_CASES else None


def _dense_restricted(a: np.ndarray, b: float, y: np.ndarray, obs: np.ndarray, s: np.ndarray, x: np.ndarray):
    """log L_R, beta, Cov(beta) with one dense solve per area: V_i = a_i 11' + B I + S_i on the observed slots."""
    k = obs.shape[1]
    pair = obs[:, :, None] & obs[:, None, :]
    unobserved = np.where(~obs[:, :, None] & np.eye(k, dtype=bool), 1.0, 0.0)  # an identity row and column
    v = np.where(pair, a[:, None, None] + s + b * np.eye(k), 0.0) + unobserved
    xo, yo = np.where(obs[..., None], x, 0.0), np.where(obs, y, 0.0)
    vinv_x, vinv_y = np.linalg.solve(v, xo), np.linalg.solve(v, yo[..., None])[..., 0]
    info = np.einsum("mkp,mkq->pq", xo, vinv_x)
    score = np.einsum("mkp,mk->p", xo, vinv_y)
    cov_beta = np.linalg.inv(info)
    beta = cov_beta @ score
    quad = np.einsum("mk,mk->", yo, vinv_y) - score @ beta
    return -0.5 * (np.linalg.slogdet(v)[1].sum() + np.linalg.slogdet(info)[1] + quad), beta, cov_beta


def _prepared(y: np.ndarray, cov: np.ndarray, x: np.ndarray):
    obs = np.isfinite(y)
    s = np.where(obs[:, :, None] & obs[:, None, :], 0.5 * (cov + np.swapaxes(cov, 1, 2)), 0.0)
    return np.where(obs, y, 0.0), obs, s


@pytest.mark.parametrize("case", ["typical", "one cohort, missing cells, an empty area", "nearly exact areas"])
def test_restricted_likelihood_matches_the_dense_evaluation_and_its_gradient_the_differences(case: str) -> None:
    """Eigenbasis and dense evaluations agree to rounding; the analytic gradient to central differences.

    The dense evaluation forms V_i = a_i 11' + S_i + B I in floating point and solves with it, so
    its relative error is up to about eps cond(V_i) (nearly exact areas: S_i near 1e-10 under a_i
    near 1e-2 make cond(V_i) near 1e9); the tolerance is 10 eps max_i cond(V_i), at least 1e-9.
    Central differences with step h = 1e-4 in log psi err by h^2 |f'''| / 6 (on the log scale
    |f'''| is within 10 times the largest |f'|: under 2e-8 max|f'|) plus rounding eps |f| / h
    (about 2e-12 |f|): the tolerance 1e-7 (1 + max|f'|) + 1e-10 |f| has a margin of 5 or more.
    """
    rng = np.random.default_rng(41)
    y, cov, x, h = CASES[case](rng)
    y0, obs, s = _prepared(y, cov, x)
    areas = two_fold._Areas(y0, obs, s, x)
    for a0, b, a1 in ((0.003, 0.0005, 0.0), (1e-9, 1e-12, 0.01), (0.1, 0.02, 0.0)):
        a = a0 + a1 * h[:, 0] + 0.5 * a1 * h[:, 1]
        ll, beta, cov_beta, _da, _db = areas.restricted(a, b)
        ref_ll, ref_beta, ref_cov = _dense_restricted(a, b, y0, obs, s, x)
        v = np.where(obs[:, :, None] & obs[:, None, :], a[:, None, None] + s + b * np.eye(obs.shape[1]), 0.0)
        blocks = [v[i][np.ix_(obs[i], obs[i])] for i in range(len(v)) if obs[i].any()]
        tol = max(1e-9, 10 * np.finfo(float).eps * max(float(np.linalg.cond(block)) for block in blocks))
        assert ll == pytest.approx(ref_ll, rel=tol, abs=tol)
        np.testing.assert_allclose(beta, ref_beta, rtol=tol, atol=tol * np.abs(ref_beta).max())
        np.testing.assert_allclose(cov_beta, ref_cov, rtol=tol, atol=tol * np.abs(ref_cov).max())
        # the predictor's lambda = V_i^-1 c_i and the quadratic form of its g3 term
        c = np.where(obs, rng.normal(size=obs.shape), 0.0)
        dense_v = v + np.where(~obs[:, :, None] & np.eye(obs.shape[1], dtype=bool), 1.0, 0.0)
        ref_lam = np.linalg.solve(dense_v, c[..., None])[..., 0]
        np.testing.assert_allclose(areas.solve(a, b, c), ref_lam, rtol=tol, atol=tol * np.abs(ref_lam).max())
        ref_quad = np.einsum("mk,mkl,ml->m", ref_lam, dense_v, c)
        quad = areas.quadratic(a, b, ref_lam, c)
        np.testing.assert_allclose(quad, ref_quad, rtol=tol, atol=tol * np.abs(ref_quad).max())
    own = np.diagonal(s, axis1=1, axis2=2)[obs]
    for scale, log_psi in (
        (None, np.log([0.002, 0.0003])),
        (h[:, :1], np.log([0.0004, 1e-6, 0.006])),
        (h, np.log([0.0004, 1e-6, 0.006, 0.001])),
    ):
        neg = two_fold._adjusted_objective(areas, own, scale, obs.any(axis=1))
        f, grad = neg(log_psi)
        steps = np.eye(len(log_psi)) * 1e-4
        central = np.array([(neg(log_psi + e)[0] - neg(log_psi - e)[0]) / 2e-4 for e in steps])
        np.testing.assert_allclose(grad, central, rtol=0, atol=1e-7 * (1 + np.abs(grad).max()) + 1e-10 * abs(f))


def _tight_nelder_mead(neg, starts, spread, _gtol):
    """The reference search: Nelder-Mead from every start to 1e-6 on log variances, restarted once; the best.

    ``fatol`` 1e-9: the objective's rounding (about 1e-13 of |f| near 1e3) is far below it.
    """
    bounds = [(np.log(spread) - 30.0, np.log(spread) + 5.0)] * len(starts[0])
    best = None
    for start in starts:
        x = np.clip(start, *bounds[0])
        for _restart in range(2):  # a restart from the end re-expands a simplex that collapsed early
            res = minimize(lambda v: neg(v)[0], x, method="Nelder-Mead", bounds=bounds,
                           options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 20000, "maxfev": 20000})  # fmt: skip
            x = res.x
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def _fixed(log_psi: np.ndarray):
    return lambda neg, starts, spread, gtol: log_psi[: len(starts[0])]


def _predictions(fit: two_fold.TwoFoldFit) -> np.ndarray:
    one = np.zeros(fit.observed.shape)
    one[:, 0] = 1.0
    out = [fit.predict(w) for w in (one, np.full(fit.observed.shape, 1.0 / fit.observed.shape[1]))]
    return np.concatenate([np.concatenate([p["estimate"], p["moe"]]) for p in out])


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_fast_search_agrees_with_tight_nelder_mead_on_the_same_objective(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psi within LOG_PSI_TOL on the log scale; estimates and margins within what that moves them.

    The bound on predictions is first order: sum_k |pred(log psi_ref + tol e_k) - pred(log psi_ref)|,
    with 10% for the second-order terms, each psi refitted at the shifted value (beta and Cov(psi)
    follow it as in a fit).
    """
    y, cov, x, h = ALL_CASES[case](np.random.default_rng(42))
    scale = _scale(case, h)
    fast = two_fold.two_fold_fay_herriot(y, cov, x, area_scale=scale)
    with monkeypatch.context() as patch:
        patch.setattr(two_fold, "_search", _tight_nelder_mead)
        ref = two_fold.two_fold_fay_herriot(y, cov, x, area_scale=scale)
    np.testing.assert_array_less(np.abs(np.log(fast.psi) - np.log(ref.psi)), LOG_PSI_TOL)
    base = _predictions(ref)
    shifts = []
    for e in np.eye(len(ref.psi)) * LOG_PSI_TOL:
        with monkeypatch.context() as patch:
            patch.setattr(two_fold, "_search", _fixed(np.log(ref.psi) + e))
            shifts.append(np.abs(_predictions(two_fold.two_fold_fay_herriot(y, cov, x, area_scale=scale)) - base))
    bound = 1.1 * np.sum(shifts, axis=0) + 1e-12
    finite = np.isfinite(base)
    assert np.array_equal(finite, np.isfinite(_predictions(fast)))
    np.testing.assert_array_less(np.abs(_predictions(fast) - base)[finite], bound[finite])


@pytest.mark.parametrize("case", ["typical", "heteroscedastic", "two scales, low noise"])
def test_psi_covariance_is_the_inverse_information_by_second_differences_of_the_dense_likelihood(case: str) -> None:
    """Cov(psi) = D (information on log psi)^-1 D, D = diag(psi), against dense second differences.

    Second differences with step h = 1e-3 in log psi err by about h^2 |l''''| / 12 + 4 eps |l| / h^2,
    about 1e-7 of the information's largest eigenvalue here (|l| near 1e3, that eigenvalue near 10);
    the inverse magnifies that by the condition number (under 1e3, asserted): 1e-4 relative.
    """
    y, cov, x, h = ALL_CASES[case](np.random.default_rng(43))
    scale = _scale(case, h)
    fit = two_fold.two_fold_fay_herriot(y, cov, x, area_scale=scale)
    y0, obs, s = _prepared(y, cov, x)
    q, step = len(fit.psi), 1e-3

    def ll(log_psi: np.ndarray) -> float:
        psi = np.exp(log_psi)
        a = psi[0] + (np.reshape(scale, (len(y0), -1)) @ psi[2:] if scale is not None else 0.0)
        return float(_dense_restricted(np.broadcast_to(a, (len(y0),)).copy(), psi[1], y0, obs, s, x)[0])

    base, e = np.log(fit.psi), np.eye(q) * step
    corners = [[[ll(base + si * e[i] + sj * e[j]) * si * sj for si in (1, -1) for sj in (1, -1)] for j in range(q)]
               for i in range(q)]  # fmt: skip
    second = np.sum(corners, axis=2) / (4 * step**2)
    first = np.array([ll(base + e[i]) - ll(base - e[i]) for i in range(q)]) / (2 * step)
    info = np.diag(first) - second
    eigen = np.linalg.eigvalsh(info)
    assert eigen[0] > 1e-3 * eigen[-1]  # well determined: the inverse serves, not the fallback
    ref = np.linalg.inv(info) * np.outer(fit.psi, fit.psi)
    np.testing.assert_allclose(fit.cov_psi, ref, rtol=1e-4, atol=1e-4 * np.abs(np.diag(ref)).max())
