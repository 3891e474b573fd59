"""Noisy tables: counts, rates, bounded means and percentiles over public group keys.

Each function takes ``rows``, one row per (student, cell) as produced by a
metric's exact computation (a relation on the configured engine, see
:mod:`analytics.engine`, or a small pandas frame), with a ``student_key`` column,
the group columns named in ``domains`` and, for rates, means and percentiles, a
value column. The engine bounds every student's contribution and aggregates over
the full public domain (:mod:`analytics.exact`; empty cells are published with
noise like any other); this module adds noise, post-processes
(no negative counts, rates within [0, 1], totals equal to the sum of their parts)
and returns a DataFrame with the value, its 95% margin of error, the epsilon it
cost, and a reliability flag with its reason in words.

Column conventions of every result: the group columns, then the measure
columns, then ``moe95`` columns named ``<measure>_moe95``, then ``epsilon``,
``flag`` ('reliable', 'rough' or 'unreliable') and ``flag_reason``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analytics import exact, privacy
from analytics.engine import as_relation
from analytics.privacy import Bins, Seed

Domains = Mapping[str, Sequence[object]]
#: Per-student rows: a relation on the engine, or a small pandas frame.
Rows: TypeAlias = pd.DataFrame | ir.Table
#: A public cap on how many students a cell can hold, so a sum's bounds never depend on the data.
MAX_CELL_STUDENTS = 10_000_000


def _check(rows: Rows, domains: Domains, needed: Sequence[str]) -> None:
    columns = set(rows.columns)
    missing = [c for c in ["student_key", *domains, *needed] if c not in columns]
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
    rows: Rows, domains: Domains, epsilon: float, max_cells_per_student: int = 1, seed: Seed = None
) -> pd.DataFrame:
    """Number of students per cell, with geometric noise.

    A student counts in at most ``max_cells_per_student`` cells (rows beyond are
    dropped by :func:`analytics.exact.bound`, and at most once per cell),
    so the L1 sensitivity is ``max_cells_per_student``.

    Result columns: groups, ``n_students``, ``n_students_moe95``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [])
    keys = list(domains)
    per_cell = as_relation(rows).select("student_key", *keys).distinct()
    cells = exact.on_domain(exact.counts(per_cell, keys, max_cells_per_student), domains, ["n"])
    noisy = np.clip(
        privacy.geometric_noise_counts(cells["n"].to_numpy("int64"), epsilon, max_cells_per_student, seed), 0, None
    )
    moe = np.full(len(noisy), privacy.geometric_moe95(epsilon, max_cells_per_student))
    out = cells[keys].assign(n_students=noisy, n_students_moe95=moe)
    return _flagged(out, noisy, moe, noisy.astype(float), "count", epsilon)


@dataclass(frozen=True)
class NoisyHistogram:
    """Noisy counts of students per (cell, category): the raw output of one disjoint histogram.

    ``noisy`` holds the mechanism's raw integer outputs (they can be negative);
    read-outs clamp them. ``mechanism`` is the noise every bin got. Every rate derived
    from one histogram costs the histogram once, however many rates are read from it:
    ``epsilon`` for a discrete Laplace histogram (the pure epsilon recorded in the table's
    ``epsilon`` column), 0 there for a discrete Gaussian one, whose rho the release records.
    """

    cells: pd.DataFrame
    categories: tuple[object, ...]
    noisy: np.ndarray  # (cells, categories)
    mechanism: privacy.CountNoise
    epsilon: float  # the pure epsilon of a discrete Laplace histogram; 0 for a discrete Gaussian one

    def counts(self, categories: Sequence[object]) -> np.ndarray:
        """Raw noisy total over ``categories`` per cell (unbiased; may be negative)."""
        idx = [self.categories.index(c) for c in categories]
        return self.noisy[:, idx].sum(axis=1)


def noisy_histogram(
    rows: Rows,
    domains: Domains,
    category: str,
    categories: Sequence[object],
    epsilon: float,
    max_rows_per_student: int = 1,
    seed: Seed = None,
    accounting: str = "epsilon",
    max_per_bin: int | None = None,
) -> NoisyHistogram:
    """Count students per (cell, category) with discrete Laplace or discrete Gaussian noise.

    A student contributes at most k = ``max_rows_per_student`` rows (across all cells) and at
    most c = ``max_per_bin`` (default k) to one (cell, category) bin (:func:`analytics.exact.
    histogram`), so the L1 sensitivity is k and the L2 sensitivity D2 = sqrt(k) when c = 1
    (:func:`analytics.exact.histogram_l2_sensitivity`). ``accounting`` picks the noise
    (:meth:`analytics.privacy.CountNoise.for_histogram`): ``'epsilon'`` spends ``epsilon``
    (pure) on discrete Laplace noise of scale k / epsilon; ``'zcdp'`` reads ``epsilon`` as rho
    and adds discrete Gaussian noise of scale D2 / sqrt(2 rho): sqrt(2 k^2 / D2^2) times less
    spread than the Laplace charged the same rho (epsilon^2 / 2). Categories and cells come from
    public lists.
    """
    _check(rows, domains, [category])
    mech = privacy.CountNoise.for_histogram(accounting, epsilon, max_rows_per_student, max_per_bin)
    counted = exact.histogram(rows, domains, category, categories, max_rows_per_student, max_per_bin=max_per_bin)
    raw = mech.add(counted["n"].to_numpy(), seed)
    return NoisyHistogram(
        cells=exact.full_domain(domains),
        categories=tuple(categories),
        noisy=raw.reshape(-1, len(categories)),
        mechanism=mech,
        epsilon=float(epsilon) if mech.kind == "laplace" else 0.0,
    )


def noisy_levels(
    rows: Rows,
    levels: Mapping[str, tuple[Domains, privacy.CountNoise]],
    category: str,
    categories: Sequence[object],
    seed: Seed = None,
) -> pd.DataFrame:
    """Count the same students at several levels: one disjoint histogram per level, each with its own noise.

    ``levels`` maps a level name (e.g. ``'school'``, ``'district'``, ``'district_pooled'``,
    ``'state'``) to its public group keys and its noise. Each student counts once (rows
    beyond one per student are dropped by :func:`analytics.exact.bound`), in one cell
    and one category of every level, so each level is a histogram of L1 and L2 sensitivity 1:
    a Gaussian level costs rho = 1 / (2 sigma^2), a Laplace level epsilon = 1 / t, and the
    levels add up. These are the raw measurements that :mod:`analytics.estimation.cohort_rates`
    makes consistent; nothing is clamped or rounded.

    Result: one row per (level, cell, category): ``level``, the group columns of every level
    (missing where a level has no such key), ``category``, ``noisy`` (int64, may be negative),
    ``variance`` (exact noise variance), ``mechanism`` and ``noise_scale``.
    Raises ValueError when a column is missing or a level has no group keys.
    """
    if not levels:
        raise ValueError("noisy_levels needs at least one level")
    frames = []
    keys_all = list(dict.fromkeys(k for domains, _mech in levels.values() for k in domains))
    _check(rows, dict.fromkeys(keys_all, ()), [category])
    finest = exact.counts(rows, [*keys_all, category], 1)  # each student once, in one cell of the finest keys
    for i, (name, (domains, mech)) in enumerate(levels.items()):
        if not domains:
            raise ValueError(f"noisy_levels: level {name!r} needs at least one group key")
        keys = [*domains, category]
        level = finest.groupby(keys, dropna=True, sort=False)["n"].sum().reset_index()
        counted = exact.on_domain(level, {**domains, category: list(categories)}, ["n"])
        noisy = mech.add(counted["n"].to_numpy("int64"), privacy.seed_for(seed, i))
        frames.append(
            counted.drop(columns="n").assign(
                level=name, noisy=noisy, variance=mech.variance, mechanism=mech.kind, noise_scale=mech.scale
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out[["level", *keys_all, category, "noisy", "variance", "mechanism", "noise_scale"]].rename(
        columns={category: "category"}
    )


def read_rate(
    hist: NoisyHistogram,
    numerator: Sequence[object],
    denominator: Sequence[object],
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
    draws: int = privacy.BOOTSTRAP_DRAWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rate = numerator categories / denominator categories, read from one noisy histogram.

    ``numerator`` must be a subset of ``denominator``. Numerator and remainder
    are each summed from the raw noisy counts (unbiased) and floored at 0, so
    the rate is within [0, 1] and the published denominator equals numerator
    plus remainder. The 95% margin of error re-noises every category of the
    published cells (seeded parametric bootstrap; spends nothing).

    Returns (numerator count, denominator count, rate, rate_moe95).
    """
    if not set(numerator) <= set(denominator):
        raise ValueError("the numerator's categories must be part of the denominator's")
    rest = [c for c in denominator if c not in set(numerator)]
    num = np.clip(hist.counts(numerator), 0, None)
    oth = np.clip(hist.counts(rest), 0, None) if rest else np.zeros(len(num), dtype=np.int64)
    rate = privacy.rate_from_counts(num, oth)
    k = len(hist.categories)
    bank = hist.mechanism.bank(draws * k, bootstrap_seed).reshape(draws, k)
    e_num = bank[:, [hist.categories.index(c) for c in numerator]].sum(axis=1)
    e_oth = bank[:, [hist.categories.index(c) for c in rest]].sum(axis=1) if rest else np.zeros(draws)
    return num, num + oth, rate, privacy.bootstrap_rate_moe95(num, oth, e_num, e_oth)


def rates_long(
    hist: NoisyHistogram,
    measures: Mapping[str, tuple[Sequence[object], Sequence[object]]],
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Read several rates off one histogram, one row per (cell, measure): the long table format.

    ``measures`` maps a measure name to (numerator categories, denominator
    categories). Result columns: the group columns, ``measure``, ``value``,
    ``value_moe95``, ``numerator``, ``denominator``, ``epsilon``, ``flag``,
    ``flag_reason``. All measures share the histogram's epsilon (paid once).
    """
    parts = []
    for name, (num_cats, den_cats) in measures.items():
        num, den, rate, moe = read_rate(hist, num_cats, den_cats, bootstrap_seed)
        flags, reasons = privacy.reliability(den, moe, rate, "rate")
        parts.append(
            hist.cells.assign(
                measure=name,
                value=rate,
                value_moe95=moe,
                numerator=num,
                denominator=den,
                epsilon=hist.epsilon,
                flag=flags,
                flag_reason=reasons,
            )
        )
    return pd.concat(parts, ignore_index=True)


def count_moe95(hist: NoisyHistogram, categories: int) -> float:
    """95% margin of error of a total summing ``categories`` noisy bins of ``hist``."""
    return privacy.summed_count_moe95(hist.mechanism, cells=categories)


def noisy_rate(
    rows: Rows,
    domains: Domains,
    outcome: str,
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
    max_rows_per_student: int = 1,
    accounting: str = "epsilon",
    max_per_bin: int | None = None,
) -> pd.DataFrame:
    """Share of rows per cell whose boolean ``outcome`` is true.

    One disjoint histogram over (cell, outcome) (:func:`noisy_histogram`, whose
    ``accounting`` reads ``epsilon`` as epsilon or as rho): with one row per student each
    student is in exactly one (cell, outcome) bin, so the whole table costs
    ``epsilon`` once. The rate is ``yes / (yes + no)`` of the noisy counts, so it
    is always within [0, 1] and the published denominator is the sum of its
    published parts.

    Result columns: groups, ``n_yes``, ``n_students``, ``rate``, ``n_students_moe95``,
    ``rate_moe95``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [outcome])
    t = as_relation(rows)
    hist = noisy_histogram(
        t.mutate(_y=t[outcome].cast("boolean")),
        domains,
        "_y",
        [True, False],
        epsilon,
        max_rows_per_student,
        seed,
        accounting,
        max_per_bin,
    )
    n_yes, total, rate, rate_moe = read_rate(hist, [True], [True, False], bootstrap_seed)
    out = hist.cells.assign(
        n_yes=n_yes, n_students=total, rate=rate, n_students_moe95=count_moe95(hist, 2), rate_moe95=rate_moe
    )
    return _flagged(out, total, rate_moe, rate, "rate", hist.epsilon)


def noisy_mean(
    rows: Rows,
    domains: Domains,
    value: str,
    lower: float,
    upper: float,
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
    max_rows_per_student: int = 1,
) -> pd.DataFrame:
    """Mean of a value clamped to [lower, upper] over rows, at most ``max_rows_per_student`` per student.

    Half of ``epsilon`` buys a geometric count (sensitivity k = the row bound),
    half a Snapping sum with sensitivity k * max(|lower|, |upper|). The margin of error of the mean is from
    a parametric bootstrap on the published count and sum; it covers the noise,
    not the bias of clamping.

    Result columns: groups, ``n_students``, ``mean``, ``n_students_moe95``, ``mean_moe95``,
    ``lower``, ``upper``, epsilon, flag, flag_reason.
    """
    _check(rows, domains, [value])
    if not lower < upper:
        raise ValueError(f"lower ({lower}) must be below upper ({upper})")
    k = max_rows_per_student
    summed = exact.clamped_sums(rows, domains, value, lower, upper, k)
    cells = summed[list(domains)]
    sums = summed["s"].to_numpy(float)
    counts = summed["n"].to_numpy("int64")
    eps_half = epsilon / 2
    sensitivity = k * max(abs(lower), abs(upper))
    lo_sum, hi_sum = min(0.0, lower) * MAX_CELL_STUDENTS, max(0.0, upper) * MAX_CELL_STUDENTS
    n = np.clip(privacy.geometric_noise_counts(counts, eps_half, k, privacy.seed_for(seed, 1)), 0, None)
    s = privacy.snapping_noise_sums(sums, eps_half, sensitivity, lo_sum, hi_sum, privacy.seed_for(seed, 2))
    mean = np.divide(s, n, out=np.full(len(n), np.nan), where=n > 0)
    mean = np.clip(mean, lower, upper)
    moe = _mean_moe95(n, s, eps_half, k, sensitivity, lo_sum, hi_sum, lower, upper, bootstrap_seed)
    out = cells.assign(
        n_students=n,
        mean=mean,
        n_students_moe95=privacy.geometric_moe95(eps_half, k),
        mean_moe95=moe,
        lower=lower,
        upper=upper,
    )
    return _flagged(out, n, moe, mean, "amount", epsilon)


def _mean_moe95(
    n: np.ndarray,
    s: np.ndarray,
    epsilon: float,
    count_sensitivity: int,
    sensitivity: float,
    lo_sum: float,
    hi_sum: float,
    lower: float,
    upper: float,
    seed: int,
    draws: int = privacy.BOOTSTRAP_DRAWS,
) -> np.ndarray:
    count_bank = privacy.noise_bank(epsilon, count_sensitivity, draws, seed)
    sum_bank = privacy.snapping_noise_bank(epsilon, sensitivity, lo_sum, hi_sum, draws, seed + 1)
    base = np.clip(np.divide(s, n, out=np.full(len(n), np.nan), where=n > 0), lower, upper)
    sim_n = np.clip(n[:, None] + count_bank[None, :], 0, None)
    sim_s = s[:, None] + sum_bank[None, :]
    sim = np.clip(np.divide(sim_s, sim_n, out=np.full(sim_n.shape, np.nan), where=sim_n > 0), lower, upper)
    dev = np.abs(sim - base[:, None])
    dev = np.where(np.isnan(dev), upper - lower, dev)
    return np.quantile(dev, 0.95, axis=1)


def noisy_percentiles(
    rows: Rows,
    domains: Domains,
    value: str,
    bins: Bins,
    quantiles: Sequence[float],
    epsilon: float,
    seed: Seed = None,
    bootstrap_seed: int = privacy.BOOTSTRAP_SEED,
    max_rows_per_student: int = 1,
    accounting: str = "epsilon",
    max_per_bin: int | None = None,
) -> pd.DataFrame:
    """Percentiles of a value per cell by the PSEO method (noisy histogram -> CDF -> percentiles).

    One disjoint histogram over (cell, bin) (:func:`noisy_histogram`: ``epsilon`` is rho when
    ``accounting`` is ``'zcdp'``) costs ``epsilon`` once (with one row
    per student; ``max_rows_per_student`` rows scale the noise). Values outside
    the bins are clamped into the first or last bin; with ``bins.open_top`` the
    last bin is open above and a percentile landing there is top-coded: its value
    is the top edge and its ``<name>_top_coded`` column is True (publish ">= top").

    Result columns: groups, ``n_students``, ``p25``/``p50``/... , their ``_moe95``,
    their ``_top_coded`` (bool), epsilon, flag, flag_reason (judged on the median's margin).
    """
    _check(rows, domains, [value])
    n_bins = bins.n_bins
    t = as_relation(rows)
    binned = t.mutate(_bin=exact.bin_index(t[value], bins.edges, n_bins))
    hist = noisy_histogram(
        binned, domains, "_bin", list(range(n_bins)), epsilon, max_rows_per_student, seed, accounting, max_per_bin
    )
    matrix = np.clip(hist.noisy, 0, None)
    pct = privacy.percentiles_from_histogram(matrix, bins.edges, quantiles, bins.open_top)
    top = privacy.percentiles_top_coded(matrix, quantiles) if bins.open_top else np.zeros(pct.shape, dtype=bool)
    moe = privacy.percentile_moe95(
        matrix,
        bins.edges,
        quantiles,
        hist.mechanism,
        seed=bootstrap_seed,
        open_top=bins.open_top,
    )
    names = [f"p{round(q * 100)}" for q in quantiles]
    n = np.clip(hist.noisy.sum(axis=1), 0, None)  # the unfloored total is an unbiased count
    out = hist.cells.assign(n_students=n)
    for j, name in enumerate(names):
        out[name] = pct[:, j]
    for j, name in enumerate(names):
        out[f"{name}_moe95"] = moe[:, j]
    for j, name in enumerate(names):
        out[f"{name}_top_coded"] = top[:, j]
    mid = int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))
    return _flagged(out, n, moe[:, mid], pct[:, mid], "amount", hist.epsilon)
