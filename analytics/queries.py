"""Noisy tables: counts, rates, bounded means and percentiles over public group keys.

Each function takes ``rows``, one row per (student, cell) as produced by a
metric's exact computation, with a ``student_key`` column, the group columns
named in ``domains`` and, for rates, means and percentiles, a value column.
It bounds every student's contribution, counts over the full public domain (so
empty cells are published with noise like any other), adds noise, post-processes
(no negative counts, rates within [0, 1], totals equal to the sum of their parts)
and returns a DataFrame with the value, its 95% margin of error, the epsilon it
cost, and a reliability flag with its reason in words.

Column conventions of every result: the group columns, then the measure
columns, then ``moe95`` columns named ``<measure>_moe95``, then ``epsilon``,
``flag`` ('reliable', 'rough' or 'unreliable') and ``flag_reason``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics import privacy
from analytics.privacy import Bins, Seed

Domains = dict[str, Sequence[object]]
#: A public cap on how many students a cell can hold, so a sum's bounds never depend on the data.
MAX_CELL_STUDENTS = 10_000_000


def _check(rows: pd.DataFrame, domains: Domains, needed: Sequence[str]) -> None:
    missing = [c for c in ["student_key", *domains, *needed] if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {', '.join(missing)} needed by this query")
    if not domains:
        raise ValueError("a noisy table needs at least one group column from a public list")


def _flagged(
    out: pd.DataFrame, n: np.ndarray, moe: np.ndarray, value: np.ndarray, kind: str, epsilon: float
) -> pd.DataFrame:
    flags, reasons = privacy.reliability(n, moe, value, kind)
    return out.assign(epsilon=epsilon, flag=flags, flag_reason=reasons)


def noisy_count(
    rows: pd.DataFrame, domains: Domains, epsilon: float, max_cells_per_student: int = 1, seed: Seed = None
) -> pd.DataFrame:
    """Number of students per cell, with geometric noise.

    A student counts in at most ``max_cells_per_student`` cells (rows beyond are
    dropped by :func:`privacy.bound_contributions`, and at most once per cell),
    so the L1 sensitivity is ``max_cells_per_student``.

    Result columns: groups, ``n_students``, ``n_students_moe95``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [])
    keys = list(domains)
    per_cell = rows[["student_key", *keys]].drop_duplicates()
    bounded = privacy.bound_contributions(per_cell, max_cells_per_student)
    exact = privacy.exact_counts(bounded, domains)
    noisy = np.clip(
        privacy.geometric_noise_counts(exact["n"].to_numpy(), epsilon, max_cells_per_student, seed), 0, None
    )
    moe = np.full(len(noisy), privacy.geometric_moe95(epsilon, max_cells_per_student))
    out = exact[keys].assign(n_students=noisy, n_students_moe95=moe)
    return _flagged(out, noisy, moe, noisy.astype(float), "count", epsilon)


def noisy_rate(
    rows: pd.DataFrame,
    domains: Domains,
    outcome: str,
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Share of students per cell whose boolean ``outcome`` is true.

    One disjoint histogram over (cell, outcome): each student is in exactly one
    (cell, outcome) bin, so the whole table costs ``epsilon`` once. The rate is
    ``yes / (yes + no)`` of the noisy counts, so it is always within [0, 1] and
    the published denominator is the sum of its published parts.

    Result columns: groups, ``n_yes``, ``n_students``, ``rate``, ``n_students_moe95``,
    ``rate_moe95``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [outcome])
    keys = list(domains)
    one = privacy.bound_contributions(rows[["student_key", *keys, outcome]], 1)
    hist = privacy.exact_counts(one.assign(_y=one[outcome].astype(bool)), {**domains, "_y": [True, False]})
    noisy = np.clip(privacy.geometric_noise_counts(hist["n"].to_numpy(), epsilon, 1, seed), 0, None)
    hist = hist.assign(noisy=noisy)
    yes = hist[hist["_y"]].reset_index(drop=True)
    no = hist[~hist["_y"]].reset_index(drop=True)
    n_yes = yes["noisy"].to_numpy()
    n_no = no["noisy"].to_numpy()
    rate = privacy.rate_from_counts(n_yes, n_no)
    rate_moe = privacy.ratio_moe95(n_yes, n_no, epsilon, 1, seed=bootstrap_seed)
    total = n_yes + n_no
    n_moe = privacy.summed_count_moe95(epsilon, 1, cells=2, seed=bootstrap_seed)  # yes + no: two noisy cells
    out = yes[keys].assign(n_yes=n_yes, n_students=total, rate=rate, n_students_moe95=n_moe, rate_moe95=rate_moe)
    return _flagged(out, total, rate_moe, rate, "rate", epsilon)


def noisy_mean(
    rows: pd.DataFrame,
    domains: Domains,
    value: str,
    lower: float,
    upper: float,
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Mean of a value clamped to [lower, upper], one value per student per cell.

    Half of ``epsilon`` buys a geometric count, half a Snapping sum with
    sensitivity max(|lower|, |upper|). The margin of error of the mean is from
    a parametric bootstrap on the published count and sum; it covers the noise,
    not the bias of clamping.

    Result columns: groups, ``n_students``, ``mean``, ``n_students_moe95``, ``mean_moe95``,
    ``lower``, ``upper``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [value])
    if not lower < upper:
        raise ValueError(f"lower ({lower}) must be below upper ({upper})")
    keys = list(domains)
    one = privacy.bound_contributions(rows[["student_key", *keys, value]], 1)
    clamped = one.assign(_v=one[value].astype(float).clip(lower, upper))
    cells = privacy.full_domain(domains)
    sums = (
        cells.merge(clamped.groupby(keys, observed=True)["_v"].sum().rename("s").reset_index(), on=keys, how="left")[
            "s"
        ]
        .fillna(0.0)
        .to_numpy()
    )
    counts = privacy.exact_counts(clamped, domains)["n"].to_numpy()
    eps_half = epsilon / 2
    sensitivity = max(abs(lower), abs(upper))
    lo_sum, hi_sum = min(0.0, lower) * MAX_CELL_STUDENTS, max(0.0, upper) * MAX_CELL_STUDENTS
    n = np.clip(privacy.geometric_noise_counts(counts, eps_half, 1, privacy.seed_for(seed, 1)), 0, None)
    s = privacy.snapping_noise_sums(sums, eps_half, sensitivity, lo_sum, hi_sum, privacy.seed_for(seed, 2))
    mean = np.divide(s, n, out=np.full(len(n), np.nan), where=n > 0)
    mean = np.clip(mean, lower, upper)
    moe = _mean_moe95(n, s, eps_half, sensitivity, lo_sum, hi_sum, lower, upper, bootstrap_seed)
    out = cells.assign(
        n_students=n,
        mean=mean,
        n_students_moe95=privacy.geometric_moe95(eps_half, 1),
        mean_moe95=moe,
        lower=lower,
        upper=upper,
    )
    return _flagged(out, n, moe, mean, "amount", epsilon)


def _mean_moe95(
    n: np.ndarray,
    s: np.ndarray,
    epsilon: float,
    sensitivity: float,
    lo_sum: float,
    hi_sum: float,
    lower: float,
    upper: float,
    seed: int,
    draws: int = privacy.BOOTSTRAP_DRAWS,
) -> np.ndarray:
    count_bank = privacy.noise_bank(epsilon, 1, draws, seed)
    sum_bank = privacy.snapping_noise_bank(epsilon, sensitivity, lo_sum, hi_sum, draws, seed + 1)
    base = np.clip(np.divide(s, n, out=np.full(len(n), np.nan), where=n > 0), lower, upper)
    sim_n = np.clip(n[:, None] + count_bank[None, :], 0, None)
    sim_s = s[:, None] + sum_bank[None, :]
    sim = np.clip(np.divide(sim_s, sim_n, out=np.full(sim_n.shape, np.nan), where=sim_n > 0), lower, upper)
    dev = np.abs(sim - base[:, None])
    dev = np.where(np.isnan(dev), upper - lower, dev)
    return np.quantile(dev, 0.95, axis=1)


def noisy_percentiles(
    rows: pd.DataFrame,
    domains: Domains,
    value: str,
    bins: Bins,
    quantiles: Sequence[float],
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Percentiles of a value per cell by the PSEO method (noisy histogram -> CDF -> percentiles).

    One disjoint histogram over (cell, bin) costs ``epsilon`` once. Values
    outside the bins are clamped into the first or last bin, so a top-coded
    percentile reads as at most the last edge.

    Result columns: groups, ``n_students``, ``p25``/``p50``/... , their ``_moe95``,
    epsilon, flag, flag_reason (judged on the median's margin).
    """
    _check(rows, domains, [value])
    keys = list(domains)
    one = privacy.bound_contributions(rows[["student_key", *keys, value]], 1)
    n_bins = len(bins.edges) - 1
    binned = one.assign(_bin=bins.assign(one[value].to_numpy()))
    hist = privacy.exact_counts(binned, {**domains, "_bin": list(range(n_bins))})
    noisy_raw = privacy.geometric_noise_counts(hist["n"].to_numpy(), epsilon, 1, seed)
    matrix = np.clip(noisy_raw, 0, None).reshape(-1, n_bins)
    pct = privacy.percentiles_from_histogram(matrix, bins.edges, quantiles)
    moe = privacy.percentile_moe95(matrix, bins.edges, quantiles, epsilon, seed=bootstrap_seed)
    out = privacy.full_domain(domains)
    names = [f"p{round(q * 100)}" for q in quantiles]
    # the unclipped noisy total is an unbiased count of the cell's students
    n = np.clip(noisy_raw.reshape(-1, n_bins).sum(axis=1), 0, None)
    out = out.assign(n_students=n)
    for j, name in enumerate(names):
        out[name] = pct[:, j]
    for j, name in enumerate(names):
        out[f"{name}_moe95"] = moe[:, j]
    mid = int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))
    return _flagged(out, n, moe[:, mid], pct[:, mid], "amount", epsilon)
