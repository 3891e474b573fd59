"""Accuracy-first budget design: split a zCDP budget across tables from what each table is for.

A steward states, per table (each a histogram measured with discrete Gaussian noise), either

- a **target**: the 95% margin of error wanted, as counts in a cell, or as rate points at a
  reference cell size (:meth:`TableGoal.for_rate`); or
- a **priority weight**: how much the table's noise variance matters relative to others.

With L2 sensitivity D and noise scale sigma a table costs rho = D^2 / (2 sigma^2) (Bun &
Steinke 2016), and costs add up. Closed forms:

- **Smallest total meeting every target**: each target fixes the largest sigma_t that meets
  it, so rho_t = D_t^2 / (2 sigma_t^2) and the total is their sum (:func:`minimum_total`).
- **Split of a given total among targets**: rho_t proportional to each table's required rho
  leaves every table at the same fraction of its target, margin_t = target_t *
  sqrt(required / total), which minimises the largest ratio of margin to target.
- **Split among weights**: minimising sum_t w_t Var_t with Var_t = D_t^2 / (2 rho_t) subject
  to sum_t rho_t = total gives (Lagrange) rho_t = total * sqrt(w_t) D_t / sum_s sqrt(w_s) D_s.
- **Both**: tables with a target get what they need; the rest of the total is shared among
  the weighted tables as above (:func:`split_total`).

Margins of counts use the exact discrete Gaussian quantile (:mod:`analytics.noise`); rate
margins use the delta method for a rate whose numerator is one of ``categories`` cells of a
histogram with independent noise: Var(rate) = sigma^2 ((1 - R)^2 + R^2 (k - 1)) / n^2. The
design ignores what consistency and small-area estimation later add, so the margins it
previews are what the direct estimates achieve: the published ones are no wider.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics import accounting, noise

__all__ = ["Design", "TableGoal", "expected_rate_moe", "minimum_total", "sigma_for_count_moe", "split_total"]

Z95 = float(norm.ppf(0.975))


def sigma_for_count_moe(target_moe: float, confidence: float = 0.95) -> float:
    """Largest discrete Gaussian scale whose exact margin at ``confidence`` is at most ``target_moe`` counts.

    Raises ValueError for a target below 1 count (a smaller margin would need noise that is always 0).

    >>> noise.discrete_gaussian_moe(sigma_for_count_moe(10.0)) <= 10.0
    True
    >>> round(sigma_for_count_moe(10.0), 2)
    5.37
    """
    if not (target_moe >= 1 and math.isfinite(target_moe)):
        raise ValueError("design: a count target must be at least 1 count and finite")
    target = math.floor(target_moe)
    lo, hi = 1e-3, (target + 1) / 1.0  # moe(sigma) >= sigma roughly, so hi is too large
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if noise.discrete_gaussian_moe(mid, confidence) <= target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9:
            break
    return lo


def expected_rate_moe(
    sigma: float, n: np.ndarray | float, rate: float, categories: int = 2, z: float = Z95
) -> np.ndarray:
    """Delta-method 95% margin (as a share) of a rate from one histogram with noise scale ``sigma`` per cell.

    The numerator is one of ``categories`` cells and the denominator their sum, each cell
    with independent noise of variance sigma^2; ``n`` is the (reference) cell size.

    >>> round(float(expected_rate_moe(2.0, 100, 0.5, categories=2)), 4)
    0.0277
    """
    if categories < 2:
        raise ValueError("design: a rate needs at least 2 categories")
    factor = math.sqrt((1 - rate) ** 2 + rate**2 * (categories - 1))
    return z * sigma * factor / np.asarray(n, dtype=float)


@dataclass(frozen=True)
class TableGoal:
    """What one table is for: a 95% margin target in counts (``target_moe``) or a priority ``weight``.

    ``l2_sensitivity`` is the L2 change of the table when one student is added or removed
    (1 for a histogram of one row per student; sqrt(r) for r rows in distinct cells).
    ``reference`` describes the cell a rate target refers to (for previews).
    ``pure_parts``: 0 for a Gaussian table; n >= 1 for a table of n pure epsilon-DP parts
    composed in zCDP, each at epsilon = sqrt(2 rho / n) (each charged rho / n; Bun & Steinke
    2016, Prop. 1.4), which has no Gaussian sigma to preview.
    """

    name: str
    l2_sensitivity: float = 1.0
    target_moe: float | None = None
    weight: float | None = None
    reference_n: float | None = None
    reference_rate: float | None = None
    categories: int | None = None
    pure_parts: int = 0

    def __post_init__(self) -> None:
        if (self.target_moe is None) == (self.weight is None):
            raise ValueError(f"design: table {self.name!r} needs exactly one of a target margin or a weight")
        if not self.l2_sensitivity > 0:
            raise ValueError(f"design: table {self.name!r} needs a positive l2_sensitivity")
        if self.weight is not None and not self.weight > 0:
            raise ValueError(f"design: table {self.name!r} needs a positive weight")

    @classmethod
    def for_rate(
        cls,
        name: str,
        target_rate_moe: float,
        reference_n: float,
        reference_rate: float,
        categories: int = 2,
        l2_sensitivity: float = 1.0,
    ) -> TableGoal:
        """Goal for a rate table: a 95% margin of ``target_rate_moe`` (a share) at a cell of ``reference_n`` students.

        The sigma that meets it is target * n / (1.96 * sqrt((1 - R)^2 + R^2 (k - 1))),
        expressed here as the equivalent Gaussian count margin 1.96 * sigma.
        """
        if not (target_rate_moe > 0 and reference_n > 0 and 0 <= reference_rate <= 1):
            raise ValueError(f"design: table {name!r} needs a positive target, a positive n and a rate in [0, 1]")
        sigma = target_rate_moe / float(expected_rate_moe(1.0, reference_n, reference_rate, categories))
        return cls(
            name,
            l2_sensitivity=l2_sensitivity,
            target_moe=Z95 * sigma,
            reference_n=reference_n,
            reference_rate=reference_rate,
            categories=categories,
        )

    def required_sigma(self) -> float:
        """Largest noise scale that meets the target (Gaussian approximation target / 1.96 for rate goals)."""
        if self.target_moe is None:
            raise ValueError(f"design: table {self.name!r} has a weight, not a target")
        if self.reference_n is not None:
            return self.target_moe / Z95
        return sigma_for_count_moe(self.target_moe)

    def required_rho(self) -> float:
        return accounting.gaussian_rho(self.required_sigma(), self.l2_sensitivity)


@dataclass(frozen=True)
class Design:
    """A split of a total rho across tables; ``table`` has one row per goal (see :meth:`preview`)."""

    goals: tuple[TableGoal, ...]
    rho: tuple[float, ...]

    @property
    def total_rho(self) -> float:
        return accounting.compose_rho(self.rho)

    def privacy_loss(self, delta: float) -> accounting.PrivacyLoss:
        """The design's total privacy loss as rho and as (epsilon, delta)."""
        return accounting.PrivacyLoss.from_rhos(self.rho, delta)

    def sigma(self, name: str) -> float:
        """Discrete Gaussian scale of table ``name``."""
        for goal, rho in zip(self.goals, self.rho, strict=True):
            if goal.name == name:
                return noise.discrete_gaussian_scale(rho, goal.l2_sensitivity)
        raise ValueError(f"design: no table {name!r}")

    def preview(self) -> pd.DataFrame:
        """Expected margins per table: name, rho, share, pure_parts, epsilon (of each part), sigma, count_moe95
        (exact), target_moe, rate_moe95.

        ``rate_moe95`` is the delta-method margin at the goal's reference cell (NaN without one).
        A goal of pure parts has the ``epsilon`` of each part (sqrt(2 rho / parts)) and NaN for the
        Gaussian columns; a Gaussian one has NaN ``epsilon``.
        """
        rows = []
        total = self.total_rho
        for goal, rho in zip(self.goals, self.rho, strict=True):
            sigma = np.nan if goal.pure_parts else noise.discrete_gaussian_scale(rho, goal.l2_sensitivity)
            rate_moe = (
                float(expected_rate_moe(sigma, goal.reference_n, goal.reference_rate, goal.categories or 2))
                if goal.reference_n is not None and goal.reference_rate is not None and not goal.pure_parts
                else np.nan
            )
            rows.append(
                {
                    "table": goal.name,
                    "rho": rho,
                    "share": rho / total,
                    "pure_parts": goal.pure_parts,
                    "epsilon": math.sqrt(2 * rho / goal.pure_parts) if goal.pure_parts else np.nan,
                    "sigma": sigma,
                    "count_moe95": np.nan if goal.pure_parts else noise.discrete_gaussian_moe(sigma),
                    "target_moe": np.nan if goal.target_moe is None else goal.target_moe,
                    "rate_moe95": rate_moe,
                }
            )
        return pd.DataFrame(rows)


def minimum_total(goals: Sequence[TableGoal]) -> Design:
    """The smallest total rho that meets every target (every goal must have a target, not a weight).

    >>> d = minimum_total([TableGoal("a", target_moe=10.0), TableGoal("b", target_moe=20.0)])
    >>> [round(r, 4) for r in d.rho]
    [0.0174, 0.0046]
    """
    goals = _unique(goals)
    if any(g.target_moe is None for g in goals):
        raise ValueError("design: minimum_total needs a target margin for every table")
    return Design(tuple(goals), tuple(g.required_rho() for g in goals))


def split_total(goals: Sequence[TableGoal], total_rho: float) -> Design:
    """Split ``total_rho`` across tables by the closed forms in the module docstring.

    Raises ValueError when the total is below what the targets need (the message states the
    minimum), or when weighted tables would be left with nothing.

    >>> d = split_total([TableGoal("a", weight=1.0), TableGoal("b", weight=4.0)], 0.3)
    >>> [round(r, 6) for r in d.rho]
    [0.1, 0.2]
    """
    goals = _unique(goals)
    if not (total_rho > 0 and math.isfinite(total_rho)):
        raise ValueError("design: the total rho must be positive and finite")
    targeted = [g for g in goals if g.target_moe is not None]
    weighted = [g for g in goals if g.weight is not None]
    required = {g.name: g.required_rho() for g in targeted}
    need = sum(required.values())
    if need > total_rho * (1 + 1e-12):
        raise ValueError(f"design: the targets need a total rho of at least {need:.6g}; the total given is smaller")
    rest = total_rho - need
    if weighted and rest <= 0:
        raise ValueError("design: the targets use the whole total, leaving nothing for the weighted tables")
    rho: dict[str, float] = {}
    if weighted:
        rho.update(required)
        denom = sum(math.sqrt(g.weight or 0.0) * g.l2_sensitivity for g in weighted)
        for g in weighted:
            rho[g.name] = rest * math.sqrt(g.weight or 0.0) * g.l2_sensitivity / denom
    else:
        for g in targeted:
            rho[g.name] = total_rho * required[g.name] / need
    return Design(tuple(goals), tuple(rho[g.name] for g in goals))


def _unique(goals: Sequence[TableGoal]) -> list[TableGoal]:
    out = list(goals)
    if not out:
        raise ValueError("design: give at least one table")
    names = [g.name for g in out]
    if len(set(names)) != len(names):
        raise ValueError("design: table names must be unique")
    return out
