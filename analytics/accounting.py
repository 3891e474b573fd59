"""Zero-concentrated differential privacy (zCDP) arithmetic: cost, composition and conversion.

Definitions and sources:

- A mechanism is rho-zCDP if the Renyi divergence of order alpha between its outputs on
  neighbouring datasets is at most rho * alpha for every alpha > 1 (Bun & Steinke 2016,
  "Concentrated Differential Privacy: Simplifications, Extensions, and Lower Bounds", Def. 1.1).
- Gaussian (and discrete Gaussian) noise of scale sigma on a query of L2 sensitivity D is
  D^2 / (2 sigma^2)-zCDP (BS16 Prop. 1.6; Canonne, Kamath & Steinke 2020, Thm. 4).
- Composition: rho adds up (BS16 Lemma 2.3), whatever the order or adaptivity.
- Pure epsilon-DP implies (epsilon^2 / 2)-zCDP (BS16 Prop. 1.4).
- zCDP to (epsilon, delta)-DP: this module uses the conversion of Canonne, Kamath & Steinke
  2020 ("The Discrete Gaussian for Differential Privacy", Prop. 12 / Cor. 13, section 2.3):

      delta = inf_{alpha > 1} exp((alpha - 1)(alpha rho - epsilon)) / (alpha - 1) * (1 - 1/alpha)^alpha,

  equivalently epsilon = inf_{alpha > 1} alpha rho
                         + (ln(1/delta) + alpha ln(1 - 1/alpha) - ln(alpha - 1)) / (alpha - 1).
  It is what OpenDP's ``make_zCDP_to_approxDP`` implements (tests check the two agree), and it
  is never looser than the classic bound rho + 2 sqrt(rho ln(1/delta)) (BS16 Prop. 1.3), which
  :func:`rho_to_epsilon_bun_steinke` keeps for comparison and as a fallback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.optimize import brentq, minimize_scalar

__all__ = [
    "PrivacyLoss",
    "compose_rho",
    "epsilon_to_rho",
    "gaussian_rho",
    "opendp_rho_to_epsilon",
    "pure_epsilon_to_rho",
    "rho_to_delta",
    "rho_to_epsilon",
    "rho_to_epsilon_bun_steinke",
]

#: The conversion used by :func:`rho_to_epsilon`, for manifests and docs.
CONVERSION = "Canonne, Kamath & Steinke 2020, Proposition 12 / Corollary 13"


def _check_rho(rho: float) -> None:
    if not (rho >= 0 and math.isfinite(rho)):
        raise ValueError("accounting: rho must be a finite number >= 0")


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ValueError("accounting: delta must be strictly between 0 and 1")


def gaussian_rho(sigma: float, l2_sensitivity: float = 1.0) -> float:
    """rho of (discrete) Gaussian noise of scale ``sigma`` on a query of L2 sensitivity ``D``: D^2 / (2 sigma^2).

    Raises ValueError if sigma is not positive or the sensitivity is negative.

    >>> gaussian_rho(2.0)
    0.125
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError("accounting: sigma must be a positive finite number")
    if not l2_sensitivity >= 0:
        raise ValueError("accounting: l2_sensitivity must be >= 0")
    return float(l2_sensitivity) ** 2 / (2.0 * float(sigma) ** 2)


def compose_rho(rhos: Iterable[float]) -> float:
    """Total rho of several measurements on the same people: the sum (BS16 Lemma 2.3).

    >>> compose_rho([0.1, 0.25, 0.05])
    0.4
    """
    total = 0.0
    for rho in rhos:
        _check_rho(rho)
        total += float(rho)
    return round(total, 15)


def pure_epsilon_to_rho(epsilon: float) -> float:
    """zCDP cost of an epsilon-DP measurement: epsilon^2 / 2 (BS16 Prop. 1.4).

    >>> pure_epsilon_to_rho(0.4)
    0.08...
    """
    if not (epsilon >= 0 and math.isfinite(epsilon)):
        raise ValueError("accounting: epsilon must be a finite number >= 0")
    return float(epsilon) ** 2 / 2.0


def rho_to_epsilon_bun_steinke(rho: float, delta: float) -> float:
    """The classic conversion: rho-zCDP implies (rho + 2 sqrt(rho ln(1/delta)), delta)-DP (BS16 Prop. 1.3).

    >>> round(rho_to_epsilon_bun_steinke(0.5, 1e-10), 4)
    7.2861
    """
    _check_rho(rho)
    _check_delta(delta)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def rho_to_epsilon(rho: float, delta: float) -> float:
    """Smallest epsilon such that rho-zCDP implies (epsilon, delta)-DP, by CKS20 Cor. 13.

    Minimises alpha rho + (ln(1/delta) + alpha ln(1 - 1/alpha) - ln(alpha - 1)) / (alpha - 1)
    over alpha > 1 (numerically, on log(alpha - 1)). Never above :func:`rho_to_epsilon_bun_steinke`.
    Raises ValueError for rho < 0 or delta outside (0, 1).

    >>> round(rho_to_epsilon(1 / 18, 1e-10), 6)
    2.114034
    >>> rho_to_epsilon(0.0, 1e-10)
    0.0
    """
    _check_rho(rho)
    _check_delta(delta)
    if rho == 0:
        return 0.0
    log_inv_delta = math.log(1.0 / delta)

    def epsilon_at(log_am1: float) -> float:
        am1 = math.exp(log_am1)
        alpha = am1 + 1.0
        return alpha * rho + (log_inv_delta + alpha * math.log1p(-1.0 / alpha) - log_am1) / am1

    # the optimum is near alpha = 1 + sqrt(ln(1/delta) / rho); search two decades either side
    centre = 0.5 * math.log(log_inv_delta / rho)
    res = minimize_scalar(epsilon_at, bounds=(centre - 6, centre + 6), method="bounded", options={"xatol": 1e-10})
    best = float(res.fun)
    return max(0.0, min(best, rho_to_epsilon_bun_steinke(rho, delta)))


def rho_to_delta(rho: float, epsilon: float) -> float:
    """Smallest delta such that rho-zCDP implies (epsilon, delta)-DP, by CKS20 Cor. 13 (capped at 1).

    >>> rho_to_delta(1 / 18, rho_to_epsilon(1 / 18, 1e-10)) < 1.0001e-10
    True
    """
    _check_rho(rho)
    if not (epsilon >= 0 and math.isfinite(epsilon)):
        raise ValueError("accounting: epsilon must be a finite number >= 0")
    if rho == 0:
        return 0.0

    def log_delta_at(log_am1: float) -> float:
        am1 = math.exp(log_am1)
        alpha = am1 + 1.0
        return am1 * (alpha * rho - epsilon) - log_am1 + alpha * math.log1p(-1.0 / alpha)

    centre = math.log(max(epsilon, rho) / (2 * rho) + 1e-9)
    res = minimize_scalar(log_delta_at, bounds=(centre - 12, centre + 12), method="bounded", options={"xatol": 1e-10})
    return min(1.0, math.exp(float(res.fun)))


def epsilon_to_rho(epsilon: float, delta: float) -> float:
    """Largest rho whose zCDP guarantee implies (epsilon, delta)-DP by CKS20 Cor. 13 (the inverse of rho_to_epsilon).

    Raises ValueError for epsilon <= 0 or delta outside (0, 1).

    >>> round(rho_to_epsilon(epsilon_to_rho(6.55, 1e-10), 1e-10), 9)
    6.55
    """
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("accounting: epsilon must be a positive finite number")
    _check_delta(delta)
    hi = epsilon  # rho_to_epsilon(rho) > rho, so rho = epsilon is always too much
    return float(brentq(lambda r: rho_to_epsilon(r, delta) - epsilon, 1e-15, hi, xtol=1e-14, rtol=1e-13))


def opendp_rho_to_epsilon(rho: float, delta: float) -> float:
    """OpenDP's own conversion of rho-zCDP to epsilon at ``delta`` (``make_zCDP_to_approxDP``), for cross-checks.

    Builds a discrete Gaussian measurement whose privacy map gives ``rho`` at sensitivity 1
    and reads epsilon off its privacy profile. The map may round rho up by a few ulps.
    """
    import opendp.prelude as dp

    _check_rho(rho)
    _check_delta(delta)
    if rho == 0:
        return 0.0
    dp.enable_features("contrib")
    space = dp.atom_domain(T="i64"), dp.absolute_distance(T="i64")
    gauss = dp.m.make_gaussian(*space, scale=1.0 / math.sqrt(2.0 * rho))
    profile = dp.c.make_zCDP_to_approxDP(gauss).map(1)
    return float(profile.epsilon(delta))


@dataclass(frozen=True)
class PrivacyLoss:
    """A release's total privacy loss, stated as rho and as (epsilon, delta) with delta stated.

    ``conversion`` names the rho-to-epsilon rule (:data:`CONVERSION`).

    >>> PrivacyLoss.from_rhos([0.2, 0.25], delta=1e-10).epsilon
    6.45...
    """

    rho: float
    delta: float
    epsilon: float
    conversion: str = CONVERSION

    @classmethod
    def from_rhos(cls, rhos: Iterable[float], delta: float) -> PrivacyLoss:
        total = compose_rho(rhos)
        return cls(rho=total, delta=delta, epsilon=rho_to_epsilon(total, delta))
