"""From noisy cohort measurements to published rates: consistent direct figures and model-based figures.

Input: the raw noisy counts of one rate's two categories (``yes``: in the numerator, ``no``:
in the denominator only) measured at several levels of the public hierarchy state > district
> school, by cohort, plus the district pooled over all cohorts (:func:`analytics.queries.
noisy_levels`). Output, per level, one row per (area, cohort) and per (area, cohort window):

- **direct** figures: counts made consistent by :func:`analytics.estimation.consistency.tree_wls`
  (state = sum of districts = sum of schools; pooled = sum of cohorts), rates by
  :func:`analytics.estimation.rates.rate_estimates` with the estimator's own covariance, and
  "no estimate" where the cell's size cannot be told from zero, judged on a size statistic
  whose noise is uncorrelated with the rate's (:func:`analytics.estimation.rates.
  decorrelated_size`, around the statewide rate), so that which cells are published does not
  depend on their rate's noise. They estimate what happened:
  the cell's actual rate. Their margins cover the privacy noise.
- **model-based** figures (districts and schools): the two-fold Fay-Herriot model of
  :mod:`analytics.estimation.two_fold` on linearised direct rates, with public covariates
  only (locale; school level). They estimate the cell's *underlying* rate: what the
  district's schools produce for a cohort like this one, without the luck of which students
  happened to be in a small cohort; their margins cover the noise, that luck (binomial
  sampling variance) and the model's error. A model-based figure is published only where
  the cell is known not to be empty (the same rule as the direct one), so an empty cell
  never gets a rate.

The linearised input (Woodruff 1971) of cell (i, j) is p_j + (N_ij - p_j D_ij) / R_ij, with
p_j the statewide rate of cohort j and R_ij a reference size: the cell's own consistent
denominator where its noise is under 5% of it, else the area's pooled denominator times the
cohort's statewide share. Its noise has mean 0 whatever the cell's size (no ratio of noisy
counts), and its error covariance within an area is computed exactly from the consistent
counts' covariance; the sampling variance p~(1 - p~) / R_ij uses the first fit's smoothed rate.
Everything here is post-processing of published measurements and public lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics.estimation import consistency, rates, two_fold

__all__ = [
    "MODEL_REASON_EMPTY",
    "USABLE_MOE",
    "CohortCounts",
    "consistent_counts",
    "direct_rates",
    "district_structure",
    "model_rates",
    "schools_per_level",
    "windows",
]

Z95 = float(norm.ppf(0.975))
#: A figure whose 95% margin is at most this (a share) is usable (issue 10's threshold).
USABLE_MOE = 0.10
#: Relative noise below which a cell's own denominator serves as its reference size.
OWN_SIZE_NOISE = 0.05
#: Why a model-based figure is withheld for a cell that may be empty.
MODEL_REASON_EMPTY = rates.NO_ESTIMATE_REASON
LEVEL_OF = {"state": "state", "district": "district_id", "district_pooled": "district_id", "school": "school_id"}


@dataclass(frozen=True)
class CohortCounts:
    """Consistent ``yes`` and ``no`` counts for every node of the hierarchy, by cohort.

    ``yes``/``no`` are :class:`consistency.TreeEstimate` over levels (state, district_id,
    school_id) with k = len(cohorts) values per node; noise of the two is independent.
    """

    hierarchy: consistency.Hierarchy
    cohorts: tuple[int, ...]
    yes: consistency.TreeEstimate
    no: consistency.TreeEstimate

    def keys(self, level: str) -> np.ndarray:
        return self.hierarchy.keys[self.hierarchy.index(level)]

    def cells(self, level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(N, D, var N, var D) per (node, cohort) of ``level``, each (n_nodes, k); Cov(N, D) = var N."""
        n, d = self.yes.values(level), self.yes.values(level) + self.no.values(level)
        vn = self.yes.variances(level)
        return n, d, vn, vn + self.no.variances(level)

    def combined(self, level: str, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(N, D, var N, var D) per node of w' x, e.g. a window of cohorts (weights of 0 and 1)."""
        n, vn = self.yes.combined(level, weights)
        m, vm = self.no.combined(level, weights)
        return n, n + m, vn, vn + vm


def consistent_counts(measurements: pd.DataFrame, leaves: pd.DataFrame, cohorts: Sequence[int]) -> CohortCounts:
    """Make one rate's noisy measurements consistent across levels and cohorts.

    ``measurements`` has the columns of :func:`analytics.queries.noisy_levels` with categories
    ``'yes'`` and ``'no'`` and levels ``'state'`` (by cohort), ``'district'`` (by cohort),
    ``'district_pooled'`` (all ``cohorts`` together; optional) and ``'school'`` (by cohort);
    ``leaves`` one row per school with ``state``, ``district_id`` and ``school_id``. Raises
    ValueError when a level or cell is missing (every leaf needs its school measurement).
    """
    cohorts = tuple(int(c) for c in cohorts)
    h = consistency.Hierarchy.from_frame(leaves, ["state", "district_id", "school_id"])
    k = len(cohorts)
    out = {}
    for category in ("yes", "no"):
        parts = []
        m = measurements[measurements["category"] == category]
        for level, rows in m.groupby("level", sort=True):
            if level not in LEVEL_OF:
                raise ValueError(f"cohort_rates: unknown measurement level {level!r}")
            key = LEVEL_OF[str(level)]
            nodes = pd.Index(h.keys[h.index(key)])
            node_col = "state" if key == "state" else key
            if level == "state":
                rows = rows.assign(state=h.keys[0][0])
            if level == "district_pooled":
                table = rows.groupby(node_col)[["noisy", "variance"]].first().reindex(nodes)
                values, var = table[["noisy"]].to_numpy(float), table[["variance"]].to_numpy(float)
                mapping = np.ones((1, k))
            else:
                wide = rows.pivot_table(index=node_col, columns="cohort", values=["noisy", "variance"], aggfunc="first")
                wide = wide.reindex(index=nodes)
                values = wide["noisy"].reindex(columns=list(cohorts)).to_numpy(float)
                var = wide["variance"].reindex(columns=list(cohorts)).to_numpy(float)
                mapping = None
            if np.isnan(values).any() or np.isnan(var).any():
                raise ValueError(f"cohort_rates: level {level!r} lacks a measurement for some {node_col} or cohort")
            parts.append(consistency.LevelMeasurement(key, values, var, mapping))
        out[category] = consistency.tree_wls(h, parts, k=k)
    return CohortCounts(h, cohorts, out["yes"], out["no"])


def _direct_frame(
    n: np.ndarray, d: np.ndarray, vn: np.ndarray, vd: np.ndarray, reference: np.ndarray | float | None = None
) -> pd.DataFrame:
    r = rates.rate_estimates(n, d, vn, vd, reference_rate=reference)
    flag = np.where(~r["published"], "unreliable", np.where(r["moe"] <= USABLE_MOE, "reliable", "unreliable"))
    reason = np.where(
        ~r["published"],
        r["reason"],
        np.where(r["moe"] <= USABLE_MOE, "", f"margin of error above {USABLE_MOE * 100:.0f} percentage points"),
    )
    return pd.DataFrame(
        {
            "value": r["rate"],
            "value_moe95": r["moe"],
            "value_lower": r["lower"],
            "value_upper": r["upper"],
            "numerator": n,
            "denominator": d,
            "n_students": d,
            "denominator_moe95": Z95 * np.sqrt(vd),
            "flag": flag,
            "flag_reason": reason,
            "known_nonempty": r["published"].to_numpy(),
        }
    )


def windows(cohorts: Sequence[int], width: int = 3) -> list[tuple[str, np.ndarray]]:
    """Rolling windows of ``width`` consecutive cohorts as (label, 0/1 weights), oldest first.

    >>> [(label, w.tolist()) for label, w in windows([2011, 2012, 2013], 2)]
    [('2011-2012', [1.0, 1.0, 0.0]), ('2012-2013', [0.0, 1.0, 1.0])]
    """
    cohorts = list(cohorts)
    out = []
    for start in range(0, len(cohorts) - width + 1):
        w = np.zeros(len(cohorts))
        w[start : start + width] = 1.0
        out.append((f"{cohorts[start]}-{cohorts[start + width - 1]}", w))
    return out


def direct_rates(counts: CohortCounts, level: str, window: int = 3) -> dict[str, pd.DataFrame]:
    """Direct rates of every node of ``level``: ``'cohort'``, ``'pooled'`` (all cohorts) and ``'window'``.

    Frames have the node key column (named after ``level``), then ``cohort`` /
    ``cohorts`` (``first_cohort``, ``last_cohort`` for windows) and the columns of the long
    table format: ``value``, ``value_moe95``, ``value_lower``, ``value_upper``,
    ``numerator``, ``denominator``, ``n_students``, ``denominator_moe95``, ``flag``,
    ``flag_reason``, ``known_nonempty``.
    """
    keys = counts.keys(level)
    k = len(counts.cohorts)
    n, d, vn, vd = (a.ravel() for a in counts.cells(level))
    state_n, state_d = (a[0] for a in counts.cells("state")[:2])

    def ref(w: np.ndarray) -> float | None:
        return None if level == "state" else float((state_n @ w) / (state_d @ w))

    by_ref = None if level == "state" else np.tile(state_n / state_d, len(keys))
    by_cohort = pd.concat(
        [pd.DataFrame({level: np.repeat(keys, k), "cohort": np.tile(counts.cohorts, len(keys))}),
         _direct_frame(n, d, vn, vd, by_ref)], axis=1)  # fmt: skip
    ones = np.ones(k)
    pooled = pd.concat([pd.DataFrame({level: keys}), _direct_frame(*counts.combined(level, ones), ref(ones))], axis=1)
    parts = []
    for label, w in windows(counts.cohorts, window):
        first, last = (int(c) for c in label.split("-"))
        frame = _direct_frame(*counts.combined(level, w), ref(w))
        parts.append(pd.concat([pd.DataFrame({level: keys, "cohorts": label, "first_cohort": first,
                                              "last_cohort": last}), frame], axis=1))  # fmt: skip
    if not parts:  # fewer cohorts than a window holds
        empty = pooled.iloc[:0].assign(cohorts="", first_cohort=0, last_cohort=0)
        return {"cohort": by_cohort, "pooled": pooled, "window": empty}
    return {"cohort": by_cohort, "pooled": pooled, "window": pd.concat(parts, ignore_index=True)}


@dataclass(frozen=True)
class ModelInputs:
    """Linearised direct rates of one level's areas x cohorts and their error covariance."""

    y: np.ndarray  # (m, k), NaN where the area is not known to hold students
    error_cov: np.ndarray  # (m, k, k) noise part (without sampling variance)
    reference: np.ndarray  # (m, k) reference sizes R_ij
    area_known: np.ndarray  # (m,) bool


def model_inputs(counts: CohortCounts, level: str) -> ModelInputs:
    """Linearised rates p_j + (N_ij - p_j D_ij) / R_ij and their noise covariance (module docstring)."""
    n, d, _vn, vd = counts.cells(level)
    sn, sd_ = counts.cells("state")[:2]
    p = (sn / sd_)[0]  # statewide rate by cohort (k,)
    share = sd_[0] / sd_[0].sum()
    _pooled_n, pooled_d, _pvn, pooled_vd = counts.combined(level, np.ones(len(counts.cohorts)))
    area_known = pooled_d > Z95 * np.sqrt(pooled_vd)
    own = np.sqrt(vd) <= OWN_SIZE_NOISE * d
    reference = np.where(own, d, np.outer(np.maximum(pooled_d, 1.0), share))
    reference = np.maximum(reference, 1.0)
    y = p + (n - p * d) / reference
    i = counts.hierarchy.index(level)
    lin = np.diag(1 - p)[None] @ counts.yes.covariance[i] @ np.diag(1 - p)[None]
    lin = lin + np.diag(p)[None] @ counts.no.covariance[i] @ np.diag(p)[None]
    scale = 1.0 / reference
    error = scale[:, :, None] * lin * scale[:, None, :]
    y = np.where(area_known[:, None], y, np.nan)
    return ModelInputs(y, error, reference, area_known)


#: School levels a district's graduates pass through; a ``Combined`` school serves all of them.
PATH_LEVELS = ("Elementary", "Middle", "High")


def schools_per_level(schools: pd.DataFrame) -> pd.Series:
    """Effective number of schools per district, s_i: harmonic mean over levels of the schools serving each.

    ``schools`` is the public school list (``district_id``, ``school_level`` in
    :data:`analytics.schema.SCHOOL_LEVELS`). A district's graduation rate carries the effects
    of the schools its students pass through, one per level (:data:`PATH_LEVELS`; a
    ``Combined`` school counts at every level): averaged over n_l schools at level l, their
    variance is about sigma_l^2 / n_l, so with equal sigma_l the district's area variance is
    A0 + A1 / s_i with 1 / s_i = mean_l 1 / max(n_l, 1). A district of one elementary, one
    middle and one high school carries three effects whole, like one combined school (s = 1);
    a count of all its schools (3) would call it three times steadier. Returns a float Series
    indexed by ``district_id``, each value >= 1. Raises ValueError for a missing column.

    >>> schools_per_level(pd.DataFrame({"district_id": ["A", "A", "A", "B", "B", "B", "B"],
    ...     "school_level": ["Elementary", "Middle", "High", "Elementary", "Elementary", "Middle", "High"]})).tolist()
    [1.0, 1.2]
    """
    for col in ("district_id", "school_level"):
        if col not in schools.columns:
            raise ValueError(f"schools list: no column {col!r}")
    counts = pd.crosstab(schools["district_id"], schools["school_level"])
    combined = counts["Combined"] if "Combined" in counts.columns else 0
    inverse = sum(1.0 / np.maximum((counts[lv] if lv in counts.columns else 0) + combined, 1) for lv in PATH_LEVELS)
    return (len(PATH_LEVELS) / inverse).astype(float).rename("schools_per_level")


#: The column of :func:`district_structure` that scales the district area variance (one A_1 for it).
DISTRICT_SCALE = "structure_scale"


def district_structure(schools: pd.DataFrame) -> pd.DataFrame:
    """Public scales of each district's area variance from its school structure, one row per ``district_id``.

    ``schools`` is the public school list (``district_id``, ``school_level`` in
    :data:`analytics.schema.SCHOOL_LEVELS`). A district's graduation rate carries two kinds of
    school effects, averaged over its students (a variance of sigma^2 / n over n schools):

    - ``inverse_diploma_schools``: 1 / (High + Combined schools), the schools whose graduation
      effect its graduates carry;
    - ``growth_concentration``: how concentrated the grade 3-8 growth effects its students bring
      to high school are, in [0, 1]. The elementary grades (3-5) are served by its Elementary
      schools (a lone Combined school where there are none), the middle grades (6-8) by its
      Middle schools, else its Combined schools (grades 6-12 beside an elementary school), else
      its Elementary schools (grades K-8). With the two stages weighted equally, the growth part's
      variance is (1/n_E + 1/n_M + 2 c / n_E) / 4 times one school's, c = 1 where the same schools
      serve both stages: 1 for a K-8 or K-12 school that carries grades 3-8 whole, 0.5 for one
      elementary and one middle (or 6-12) school, which average two independent effects.
    - ``structure_scale`` (:data:`DISTRICT_SCALE`): their mean, the scale h_i of the district's
      area variance A0 + A1 h_i. The two kinds weigh equally (no weight is fitted to a state's
      data); giving each its own A_k was tried and is not identified from 150 districts (see
      docs/estimation.md, sixth round). Against round 4's 1 / (schools per level)
      (:func:`schools_per_level`) it tells a K-8 or K-12 school (1) from an elementary and a
      middle or 6-12 school (0.75), which that count calls alike.

    All are read from school levels alone; a state whose list has grade spans would read the
    stages from the spans (a K-8 school is "Elementary" here only because no Middle school
    exists beside it). Raises ValueError for a missing column.

    >>> district_structure(pd.DataFrame({"district_id": ["A", "A", "B", "B", "C", "C", "C"],
    ...     "school_level": ["Elementary", "High", "Elementary", "Combined", "Elementary", "Middle", "High"]}))
    ... # doctest: +NORMALIZE_WHITESPACE
                 inverse_diploma_schools  growth_concentration  structure_scale
    district_id
    A                                1.0                   1.0             1.00
    B                                1.0                   0.5             0.75
    C                                1.0                   0.5             0.75
    """
    for col in ("district_id", "school_level"):
        if col not in schools.columns:
            raise ValueError(f"schools list: no column {col!r}")
    counts = pd.crosstab(schools["district_id"], schools["school_level"])

    def count(level: str) -> pd.Series:
        return counts[level] if level in counts.columns else pd.Series(0, index=counts.index)

    elem, mid, high, comb = count("Elementary"), count("Middle"), count("High"), count("Combined")
    n_early = np.where(elem > 0, elem, comb)
    n_middle = np.where(mid > 0, mid, np.where(comb > 0, comb, elem))
    shared = (mid == 0) & ((elem == 0) | (comb == 0))  # one school serves grades 3-8: K-8 or K-12
    early, middle = 1.0 / np.maximum(n_early, 1), 1.0 / np.maximum(n_middle, 1)
    diploma = 1.0 / np.maximum(high + comb, 1).astype(float)
    growth = (early + middle + 2.0 * shared * early) / 4.0
    return pd.DataFrame(
        {"inverse_diploma_schools": diploma, "growth_concentration": growth, DISTRICT_SCALE: (diploma + growth) / 2},
        index=counts.index,
    )


#: Fewest areas with students a model is fitted on.
MIN_AREAS = 10
#: Why no model-based figures exist at all.
TOO_FEW_REASON = f"no model-based figure: fewer than {MIN_AREAS} areas with students to fit the model on"


def _identified(x_area: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Drop covariate columns (never the intercept) that are constant or collinear over the areas fitted."""
    cols = [0]
    if not keep.any():
        return x_area[:, cols]
    for j in range(1, x_area.shape[1]):
        trial = x_area[keep][:, [*cols, j]]
        if np.ptp(x_area[keep][:, j]) > 0 and np.linalg.matrix_rank(trial) == len(cols) + 1:
            cols.append(j)
    return x_area[:, cols]


def _identified_scales(h: np.ndarray) -> np.ndarray:
    """Keep the columns of ``h`` (n, q) that vary and are not collinear, with a constant, with the ones kept before."""
    cols: list[int] = []
    for j in range(h.shape[1]):
        trial = np.column_stack([np.ones(len(h)), h[:, [*cols, j]]])
        if np.ptp(h[:, j]) > 0 and np.linalg.matrix_rank(trial / np.abs(trial).max(axis=0)) == len(cols) + 2:
            cols.append(j)
    return h[:, cols]


def _no_model(keys: np.ndarray, counts: CohortCounts, level: str, window: int, reason: str) -> dict[str, pd.DataFrame]:
    empty = {"model_value": np.nan, "model_moe95": np.nan, "model_lower": np.nan, "model_upper": np.nan,
             "model_flag": "unreliable", "model_reason": reason}  # fmt: skip
    by_cohort = pd.DataFrame({level: np.repeat(keys, len(counts.cohorts)),
                              "cohort": np.tile(counts.cohorts, len(keys))}).assign(**empty)  # fmt: skip
    labels = [label for label, _w in windows(counts.cohorts, window)]
    tiled = np.tile(np.asarray(labels, dtype=object), len(keys))
    win = pd.DataFrame({level: np.repeat(keys, len(labels)), "cohorts": tiled}).assign(**empty)
    return {"cohort": by_cohort, "pooled": pd.DataFrame({level: keys}).assign(**empty), "window": win}


def model_rates(
    counts: CohortCounts,
    level: str,
    covariates: pd.DataFrame,
    categorical: Sequence[str],
    window: int = 3,
    area_size: str | None = None,
    logit_scale: bool = True,
    area_scales: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """Model-based rates for every node of ``level`` (``'district_id'`` or ``'school_id'``).

    ``covariates`` has one row per node (column ``level``) with the public ``categorical``
    columns (e.g. locale). ``area_size`` names a column of ``covariates`` holding a public
    size s_i >= 1 per node (for districts: :func:`schools_per_level` of the public school list);
    the area variance is then Var(v_i) = A0 + A1 / s_i (:func:`two_fold.two_fold_fay_herriot`
    with ``area_scale`` 1 / s_i), one A when the column is None or does not vary over the
    nodes fitted. With ``logit_scale`` (default) the second fit multiplies that scale by
    (p~_i (1 - p~_i))^2, p~_i the first fit's pooled rate of node i: schools' effects act on the
    logit, so on the rate scale an area near 60% varies several times more than one near 93%
    (the delta method), and one A fitted over both leaves low-rate areas' intervals too narrow
    (tests: 89.7% against 94.0% coverage). ``area_scales`` names further columns of public scales
    h_ik >= 0 (for districts: :data:`DISTRICT_SCALES` of :func:`district_structure`), each with
    its own A_k: Var(v_i) = A0 + sum_k A_k h_ik, with 1 / s_i first when ``area_size`` is given
    too; a scale that is constant over the nodes fitted, or collinear with the ones before it,
    is left out. Returns frames ``'cohort'``, ``'pooled'``, ``'window'`` keyed like
    :func:`direct_rates`, with columns ``model_value``, ``model_moe95``, ``model_lower``,
    ``model_upper`` (clipped to [0, 1]), ``model_flag``, ``model_reason``. A cell gets a
    model-based figure only where its (or, pooled, its area's) consistent denominator is
    known to be above zero. Raises ValueError when a node lacks covariates or has an
    ``area_size`` below 1 or a negative ``area_scales`` value.
    """
    keys = counts.keys(level)
    k = len(counts.cohorts)
    cov = covariates.set_index(level).reindex(keys)
    needed = [*categorical, *([area_size] if area_size is not None else []), *area_scales]
    if cov[needed].isna().any().any():
        raise ValueError(f"cohort_rates: covariates lack a row for some {level}")
    sizes = None if area_size is None else cov[area_size].to_numpy(dtype=float)
    if sizes is not None and np.any(sizes < 1):
        raise ValueError(f"cohort_rates: covariates column {area_size!r} must be at least 1 for every {level}")
    for col in area_scales:
        if np.any(cov[col].to_numpy(dtype=float) < 0):
            raise ValueError(f"cohort_rates: covariates column {col!r} must not be negative for any {level}")
    inputs = model_inputs(counts, level)
    x_area = np.ones((len(keys), 1))
    for col in categorical:
        levels = sorted(cov[col].astype(str).unique())
        dummies = [(cov[col].astype(str).to_numpy() == lv).astype(float)[:, None] for lv in levels[1:]]
        x_area = np.hstack([x_area, *dummies]) if dummies else x_area
    keep = np.isfinite(inputs.y).any(axis=1)
    if keep.sum() < MIN_AREAS:  # before anything is fitted or identified (no area at all on a tiny extract)
        return _no_model(keys, counts, level, window, TOO_FEW_REASON)
    x_area = _identified(x_area, keep)
    x = np.repeat(x_area[:, None, :], k, axis=1)
    state_p = (counts.cells("state")[0] / counts.cells("state")[1])[0]
    smooth = np.broadcast_to(state_p, (len(keys), k))
    fit = None
    columns = ([1.0 / sizes] if sizes is not None else []) + [cov[c].to_numpy(dtype=float) for c in area_scales]
    per_school = _identified_scales(np.column_stack(columns)[keep] if columns else np.ones((int(keep.sum()), 0)))
    scale = per_school if per_school.shape[1] else None
    if np.isfinite(inputs.y[keep]).sum() < x_area.shape[1] + 3 or keep.sum() < MIN_AREAS:
        return _no_model(keys, counts, level, window, TOO_FEW_REASON)
    for _pass in range(2):
        p_s = np.clip(smooth, 0.02, 0.98)
        sampling = p_s * (1 - p_s) / inputs.reference
        error = inputs.error_cov + sampling[:, :, None] * np.eye(k)[None]
        fit = two_fold.two_fold_fay_herriot(inputs.y[keep], error[keep], x[keep], area_scale=scale)
        pooled_w = inputs.reference[keep] / inputs.reference[keep].sum(axis=1, keepdims=True)
        pred = fit.predict(pooled_w)["estimate"]
        smooth = np.broadcast_to(state_p, (len(keys), k)).copy()
        smooth[keep] = pred[:, None]
        if logit_scale:
            # effects act on the logit: on the rate scale their variance is (p (1 - p))^2 times theirs
            slope = np.clip(pred, 0.02, 0.98) * (1 - np.clip(pred, 0.02, 0.98))
            scaled = np.column_stack([per_school * slope[:, None] ** 2, *([] if per_school.shape[1] else [slope**2])])
            scaled = _identified_scales(scaled / scaled.mean(axis=0))  # A_k's units: the fit does not depend on h's
            scale = scaled if scaled.shape[1] else None
    assert fit is not None
    _n, d, _vn, vd = counts.cells(level)
    cell_known = (d > Z95 * np.sqrt(vd)) & keep[:, None]

    def frame(weights: np.ndarray, known: np.ndarray) -> pd.DataFrame:
        est = np.full(len(keys), np.nan)
        moe = np.full(len(keys), np.nan)
        pr = fit.predict(weights[keep])
        est[keep], moe[keep] = pr["estimate"], pr["moe"]
        est, moe = np.where(known, est, np.nan), np.where(known, moe, np.nan)
        usable = moe <= USABLE_MOE
        return pd.DataFrame(
            {
                "model_value": np.clip(est, 0, 1),
                "model_moe95": moe,
                "model_lower": np.clip(est - moe, 0, 1),
                "model_upper": np.clip(est + moe, 0, 1),
                "model_flag": np.where(np.isfinite(est) & usable, "reliable", "unreliable"),
                "model_reason": np.where(
                    ~np.isfinite(est),
                    MODEL_REASON_EMPTY,
                    np.where(usable, "", f"margin of error above {USABLE_MOE * 100:.0f} percentage points"),
                ),
            }
        )

    parts = []
    for j, cohort in enumerate(counts.cohorts):
        w = np.zeros((len(keys), k))
        w[:, j] = 1.0
        parts.append(pd.concat([pd.DataFrame({level: keys, "cohort": cohort}), frame(w, cell_known[:, j])], axis=1))
    by_cohort = pd.concat(parts, ignore_index=True)
    ref = inputs.reference
    pooled = pd.concat(
        [pd.DataFrame({level: keys}), frame(ref / ref.sum(axis=1, keepdims=True), inputs.area_known & keep)], axis=1
    )
    parts = []
    for label, w in windows(counts.cohorts, window):
        rw = ref * w
        known = (counts.combined(level, w)[1] > Z95 * np.sqrt(counts.combined(level, w)[3])) & keep
        parts.append(pd.concat([pd.DataFrame({level: keys, "cohorts": label}),
                                frame(rw / rw.sum(axis=1, keepdims=True), known)], axis=1))  # fmt: skip
    window_frame = pd.concat(parts, ignore_index=True) if parts else pooled.iloc[:0].assign(cohorts="")
    return {"cohort": by_cohort, "pooled": pooled, "window": window_frame}
