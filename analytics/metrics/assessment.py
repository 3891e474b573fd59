"""Proficiency and growth on the state assessments (grades 3-8 and 11, math and ELA).

**Proficiency rate**: share of tests at achievement level 3 or 4. A test counts
for the school (and its district) where the student was enrolled that school
year; for a student with two schools that year, the school attended the next
year, else the smallest school_id (a stated, deterministic tie-break). Every test
counts: a student contributes at most :data:`MAX_TESTS_PER_STUDENT` tests (both
subjects in each tested grade plus two repeated tested grades), so a student who
repeats a grade keeps all their tests; only a student repeating three or more
tested grades loses tests (the remaining bias, measured in docs/metrics.md).

**Growth** (DP throughout):

1. The model: for each grade transition (g-1 to g, grades 4-8), subject and
   public prior-score band (a tenth of the prior grade's declared score scale,
   :mod:`analytics.extract`), the noisy count, sum and sum of squares of score
   gains (clamped to +/- 12% of the scale width: 60 points on a 200-700 scale) are released
   (:func:`dp_growth_model`); its epsilon is counted in the release. The
   expected gain of a band is its noisy mean, which captures regression to the
   mean; the spread is the pooled within-band standard deviation.
2. Each student's **growth percentile** (SGP-style, 1-99) is the normal
   conditional percentile of their gain given their prior band:
   ``100 * Phi((gain - expected gain) / sigma)``. It is a function of the
   student's own scores and the published model only.
3. A school's **median growth percentile** (MGP) is a noisy median of its
   students' growth percentiles (PSEO histogram method); its **value-added** is
   the noisy mean residual (scale points, clamped to +/- 3 sigma), shrunk toward
   zero by empirical Bayes: ``theta_EB = lambda * theta``, ``lambda = s2_theta /
   (s2_theta + s2_eps / n + noise variance)`` (:func:`shrink_value_added`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import norm

from analytics import exact, extract, privacy, schema
from analytics.engine import as_relation, engine_of
from analytics.metrics.cohort import SUBGROUP_COLUMNS

#: Default public reporting range of the scale scores (a dataset declares its own in extract.json).
SCORE_LOW, SCORE_HIGH = extract.DEFAULT_SCORE_SCALE
#: Repeated tested grades a student's bound covers (each adds one test per subject).
REPEATED_GRADES_COVERED = 2
MAX_TESTS_PER_STUDENT = len(schema.SUBJECTS) * (len(schema.ASSESSED_GRADES) + REPEATED_GRADES_COVERED)
GROWTH_GRADES: tuple[int, ...] = (4, 5, 6, 7, 8)
#: Public bins of growth percentiles for the noisy median: 1-99 in steps of 5.
SGP_EDGES: tuple[float, ...] = (0.0, *[float(x) for x in range(5, 100, 5)], 100.0)


def assessment_rows(source: Any) -> ir.Table:
    """One row per test, a relation: student_key, school_year, grade, subject, scale_score, proficient,
    school_id, district_id, and the subgroup columns."""
    return engine_of(source).relation(assessment_sql())


def assessment_sql() -> str:
    """The SQL (DuckDB dialect) of :func:`assessment_rows`."""
    subgroups = ", ".join(f"st.{c}" for c in SUBGROUP_COLUMNS)
    return f"""
        WITH enrol AS (
            SELECT student_key, school_year, school_id FROM (
                SELECT e.student_key, e.school_year, e.school_id,
                       row_number() OVER (PARTITION BY e.student_key, e.school_year
                           ORDER BY (n.student_key IS NOT NULL) DESC, e.school_id) AS pos
                FROM enrollments e
                LEFT JOIN (SELECT student_key, school_year - 1 AS school_year, school_id FROM enrollments) n
                  USING (student_key, school_year, school_id)
            ) ranked WHERE pos = 1
        )
        SELECT a.student_key, a.school_year, a.grade, a.subject, a.scale_score,
               a.achievement_level >= {schema.PROFICIENT_LEVEL} AS proficient, e.school_id, s.district_id,
               {subgroups}
        FROM assessments a
        JOIN enrol e ON e.student_key = a.student_key AND e.school_year = a.school_year
        JOIN schools s ON s.school_id = e.school_id
        LEFT JOIN students st ON st.student_key = a.student_key
        """


#: What tells a student's growth pairs apart: one test per student, school year and subject (the
#: assessments table's key, checked by validation), hence one pair. Contribution bounding hashes only these.
PAIR_IDENTITY = ("school_year", "subject")


def growth_pairs(tests: pd.DataFrame | ir.Table) -> ir.Table:
    """Consecutive-year score pairs (grade g-1 then g, g in 4-8) by subject, with the current school (a relation).

    Columns: those of ``tests`` (the current year's test) and ``prior_score``; one row per
    student and :data:`PAIR_IDENTITY`.
    """
    t = as_relation(tests)
    cur = t.filter(t["grade"].isin(GROWTH_GRADES))
    prior = t.select(
        p_key=t["student_key"],
        p_year=t["school_year"] + 1,
        p_grade=t["grade"] + 1,
        p_subject=t["subject"],
        prior_score=t["scale_score"],
    )
    joined = cur.join(
        prior,
        [
            cur["student_key"] == prior["p_key"],
            cur["school_year"] == prior["p_year"],
            cur["grade"] == prior["p_grade"],
            cur["subject"] == prior["p_subject"],
        ],
    )
    return joined.drop("p_key", "p_year", "p_grade", "p_subject")


#: Gains (current minus prior score) are clamped to +/- this share of the scale width (60 points on 200-700).
GAIN_BOUND_SHARE = 0.12
#: Gain bound on the default scale (for documentation and the default release).
GAIN_BOUND = GAIN_BOUND_SHARE * (SCORE_HIGH - SCORE_LOW)
#: Public prior-score bands of the conditional model: 10 equal bands over the prior grade's scale.
N_PRIOR_BANDS = 10
PRIOR_BANDS: tuple[int, ...] = tuple(range(N_PRIOR_BANDS))
#: Band edges on the default scale (50-point bands over 200-700).
PRIOR_BAND_EDGES: tuple[float, ...] = tuple(
    SCORE_LOW + i * (SCORE_HIGH - SCORE_LOW) / N_PRIOR_BANDS for i in range(N_PRIOR_BANDS + 1)
)
STATISTICS = ("n", "sum_gain", "sum_gain_sq")


@dataclass(frozen=True)
class TransitionScale:
    """Public scale of one grade transition: prior-score band edges and the gain clamp (scale points)."""

    band_edges: tuple[float, ...]
    gain_bound: float


def transition_scales(config: extract.ExtractConfig | None = None) -> dict[tuple[int, str], TransitionScale]:
    """Band edges and gain bound of each (grade, subject) transition from the dataset's declared scales.

    >>> sc = transition_scales()[(5, "math")]
    >>> sc.band_edges[:3], sc.gain_bound
    ((200.0, 250.0, 300.0), 60.0)
    """
    cfg = config or extract.ExtractConfig()
    out = {}
    for g in GROWTH_GRADES:
        for subject in schema.SUBJECTS:
            lo, hi = cfg.scale(subject, g - 1)
            clo, chi = cfg.scale(subject, g)
            edges = tuple(lo + i * (hi - lo) / N_PRIOR_BANDS for i in range(N_PRIOR_BANDS + 1))
            out[(g, subject)] = TransitionScale(edges, GAIN_BOUND_SHARE * ((hi - lo) + (chi - clo)) / 2)
    return out


def _by_transition(pairs: ir.Table, values: dict[tuple[int, str], ir.Value], default: ir.Value) -> ir.Value:
    """One expression per (grade, subject) transition, picked by the pair's grade and subject."""
    branches = [
        ((pairs["grade"] == g) & (pairs["subject"] == subject), value) for (g, subject), value in values.items()
    ]
    return ibis.cases(*branches, else_=default) if branches else default


def _band(pairs: ir.Table, scales: dict[tuple[int, str], TransitionScale]) -> ir.IntegerValue:
    """The pair's prior-score band (0-9) on its transition's public band edges (clamped into the end bands)."""
    prior = pairs["prior_score"].cast("float64")
    per = {key: exact.bin_index(prior, sc.band_edges, N_PRIOR_BANDS) for key, sc in scales.items()}
    return _by_transition(pairs, per, ibis.literal(0, type="int64"))


def _gain_bound(pairs: ir.Table, scales: dict[tuple[int, str], TransitionScale]) -> ir.FloatingValue:
    per = {key: ibis.literal(float(sc.gain_bound), type="float64") for key, sc in scales.items()}
    return _by_transition(pairs, per, ibis.literal(0.0, type="float64"))


def _clamped_gain(pairs: ir.Table, bound: ir.FloatingValue) -> ir.FloatingValue:
    """Current minus prior score, clamped to +/- the transition's gain bound (scale points)."""
    gain = (pairs["scale_score"] - pairs["prior_score"]).cast("float64")
    return ibis.least(ibis.greatest(gain, -bound), bound)


def dp_growth_model(
    pairs: pd.DataFrame,
    epsilon: float,
    max_pairs_per_student: int,
    seed: privacy.Seed = None,
    scales: dict[tuple[int, str], TransitionScale] | None = None,
    accounting: str = "epsilon",
) -> pd.DataFrame:
    """The noisy conditional growth model: gain statistics per (grade, subject, prior band).

    Each pair falls in exactly one (grade, subject, prior-score band) cell, and
    a student contributes at most ``max_pairs_per_student`` pairs. Gains are
    clamped to +/- the transition's gain bound (:func:`transition_scales`) and
    scaled to [-1, 1], so each statistic's sensitivity is the pair bound.
    The three statistics (count by the geometric mechanism, sums by Snapping) share the
    budget evenly: with ``accounting='epsilon'`` each runs at epsilon / 3 (pure epsilon adds
    up); with ``'zcdp'`` the budget is rho and each runs at sqrt(2 rho / 3), costing rho / 3
    (Bun & Steinke 2016, Prop. 1.4; zCDP adds up), sqrt(3) times the epsilon of the pure split.
    Result: one row per cell with noisy n, sum_gain, sum_gain_sq (scaled units), their
    margins, ``sum_noise_scale`` (the sums' noise scale, which :func:`fit_models` reads) and
    ``epsilon`` (the table's pure epsilon; 0 on a zCDP lineage, where its rho is recorded).
    """
    scales = scales or transition_scales()
    t = as_relation(pairs).select("student_key", "school_year", "grade", "subject", "scale_score", "prior_score")
    kept = exact.bound(t, max_pairs_per_student, identity=PAIR_IDENTITY)
    bound = _gain_bound(kept, scales)
    g = _clamped_gain(kept, bound) / ibis.cases((bound > 0, bound), else_=1.0)
    scaled = kept.mutate(band=_band(kept, scales), _g=g)
    stats = scaled.group_by(["grade", "subject", "band"]).aggregate(
        n=scaled.count(), sum_gain=scaled["_g"].sum(), sum_gain_sq=(scaled["_g"] * scaled["_g"]).sum()
    )
    keys: dict[str, list[object]] = {
        "grade": list(GROWTH_GRADES),
        "subject": list(schema.SUBJECTS),
        "band": list(PRIOR_BANDS),
    }
    sums = exact.on_domain(exact.aggregate(stats), keys, list(STATISTICS))
    cells = sums[list(keys)]
    parts = len(STATISTICS)
    eps = part_epsilon(epsilon, parts, accounting)
    k = max_pairs_per_student
    out = cells.copy()
    out["n"] = privacy.geometric_noise_counts(sums["n"].astype(int).to_numpy(), eps, k, privacy.seed_for(seed, 0))
    for i, name in enumerate(STATISTICS[1:], start=1):
        out[name] = privacy.snapping_noise_sums(
            sums[name].to_numpy(float), eps, float(k), -1e7, 1e7, privacy.seed_for(seed, i)
        )
    sum_moe = privacy.snapping_moe95(eps, float(k), -1e7, 1e7)
    min_pairs = MIN_PAIRS_SCALES * k / eps
    small = out["n"] < min_pairs
    return out.assign(
        n_moe95=privacy.geometric_moe95(eps, k),
        sum_gain_moe95=sum_moe,
        sum_gain_sq_moe95=sum_moe,
        sum_noise_scale=k / eps,
        epsilon=epsilon if accounting == "epsilon" else 0.0,
        flag=np.where(small, "rough", "reliable"),
        flag_reason=np.where(small, "band too small for its own mean gain: the model uses the grade's pooled gain", ""),
    )


#: A band uses its own mean gain when it holds this many times the noise scale of its sums.
MIN_PAIRS_SCALES = 20


def part_epsilon(budget: float, parts: int, accounting: str) -> float:
    """The pure epsilon of each of ``parts`` equal parts of a table's ``budget`` (epsilon, or rho under zCDP).

    >>> round(part_epsilon(0.3, 3, "epsilon"), 3), round(part_epsilon(0.045, 3, "zcdp"), 3)
    (0.1, 0.173)
    """
    if accounting == "epsilon":
        return budget / parts
    if accounting == "zcdp":
        return math.sqrt(2 * budget / parts)
    raise ValueError(f"accounting must be 'epsilon' or 'zcdp', not {accounting!r}")


def _min_pairs(noisy_stats: pd.DataFrame, max_pairs_per_student: int) -> float:
    """Pairs a band needs (:data:`MIN_PAIRS_SCALES` times the noise scale of its sums) to use its own mean gain.

    A model table written before it recorded ``sum_noise_scale`` ran its sums at epsilon / 3.
    """
    if "sum_noise_scale" in noisy_stats.columns:
        return MIN_PAIRS_SCALES * float(noisy_stats["sum_noise_scale"].iloc[0])
    epsilon = float(noisy_stats["epsilon"].iloc[0])
    if not epsilon > 0:
        raise ValueError("growth model: the table states neither its sums' noise scale nor a pure epsilon to derive it")
    return MIN_PAIRS_SCALES * max_pairs_per_student * len(STATISTICS) / epsilon


@dataclass(frozen=True)
class GrowthModel:
    """Expected gain per prior band, and the spread of gains, for one grade transition and subject."""

    grade: int
    subject: str
    band_mean_gain: dict[int, float]
    sigma: float
    scale: TransitionScale = TransitionScale(PRIOR_BAND_EDGES, GAIN_BOUND)


def fit_models(
    noisy_stats: pd.DataFrame,
    max_pairs_per_student: int,
    scales: dict[tuple[int, str], TransitionScale] | None = None,
) -> list[GrowthModel]:
    """Turn the noisy statistics into models (post-processing).

    A band's expected gain is its noisy mean when the band holds at least 20
    times the noise scale of its sums (so the noise moves its mean by at most
    about 0.15 of the gain bound, 9 points); a smaller band borrows the grade's
    pooled mean. The spread is the pooled within-band standard deviation.
    """
    scales = scales or transition_scales()
    min_pairs = _min_pairs(noisy_stats, max_pairs_per_student)
    models = []
    for (grade, subject), cell in noisy_stats.groupby(["grade", "subject"], sort=True):
        scale = scales[(int(grade), str(subject))]
        n = cell["n"].clip(lower=0).astype(float)
        total_n = max(float(n.sum()), 1.0)
        pooled_mean = float(cell["sum_gain"].sum()) / total_n
        means = {}
        within = 0.0
        for row, count in zip(cell.itertuples(), n, strict=True):
            mean = row.sum_gain / count if count >= min_pairs else pooled_mean
            means[int(row.band)] = float(np.clip(mean, -1, 1)) * scale.gain_bound
            within += max(row.sum_gain_sq - count * mean * mean, 0.0) if count >= min_pairs else 0.0
        used = float(n[n >= min_pairs].sum())
        var = within / used if used > 0 else (float(cell["sum_gain_sq"].sum()) / total_n - pooled_mean**2)
        sigma = float(np.sqrt(max(var, 1e-4))) * scale.gain_bound
        models.append(GrowthModel(int(grade), str(subject), means, sigma, scale))
    return models


def score_growth(pairs: pd.DataFrame | ir.Table, models: list[GrowthModel]) -> ir.Table:
    """Add each pair's ``residual`` (gain minus expected gain, scale points) and ``sgp_floor`` (a relation).

    A pair's growth percentile is ``SGP = clip(round(100 * Phi(residual / sigma)), 1, 99)``;
    ``sgp_floor`` is SGP rounded down to its public 5-point bin (:data:`SGP_EDGES`:
    0, 5, ..., 95), which is all the noisy median needs. It is computed in the
    engine without Phi: SGP >= e exactly when residual >= sigma * Phi^-1((e - 0.5) / 100).
    """
    scales = {(m.grade, m.subject): m.scale for m in models}
    t = as_relation(pairs)
    t = t.mutate(_band=_band(t, scales), _bound=_gain_bound(t, scales))
    cells = [
        (m.grade, m.subject, int(b), float(v), float(m.sigma)) for m in models for b, v in m.band_mean_gain.items()
    ]
    model = ibis.memtable(
        pa.table(
            {
                "_m_grade": pa.array([c[0] for c in cells], pa.int64()),
                "_m_subject": pa.array([c[1] for c in cells], pa.string()),
                "_m_band": pa.array([c[2] for c in cells], pa.int64()),
                "_m_expected": pa.array([c[3] for c in cells], pa.float64()),
                "_m_sigma": pa.array([c[4] for c in cells], pa.float64()),
            }
        )
    )
    # a join, not nested CASE expressions: the engine looks the expected gain up once per pair
    j = t.join(
        model,
        [t["grade"] == model["_m_grade"], t["subject"] == model["_m_subject"], t["_band"] == model["_m_band"]],
    )
    j = j.mutate(residual=_clamped_gain(j, j["_bound"]) - j["_m_expected"])
    z = j["residual"] / j["_m_sigma"]
    cuts = [float(norm.ppf((e - 0.5) / 100)) for e in SGP_EDGES[1:-1]]
    floor = None
    for cut, step in zip(cuts, np.diff(SGP_EDGES[:-1]), strict=True):
        term = (z >= cut).cast("float64") * float(step)
        floor = term if floor is None else floor + term
    return j.mutate(sgp_floor=floor).drop(
        "_band", "_bound", "_m_grade", "_m_subject", "_m_band", "_m_expected", "_m_sigma"
    )


def shrink_value_added(means: pd.DataFrame, residual_sd: float) -> pd.DataFrame:
    """Empirical-Bayes shrinkage of noisy school mean residuals toward the state average, 0 (post-processing).

    The Fay-Herriot model with a known mean (residuals are measured from the statewide expected
    gain, so the state average is 0): ``value_i = theta_i + e_i``, ``theta_i ~ (0, A)``,
    ``e_i ~ (0, D_i)`` with ``D_i = residual_sd**2 / n_i + (value_moe95_i / 1.96)**2``, the
    sampling variance of a mean of ``n_i`` residuals plus the privacy noise (scale points squared).

    The spread of true school effects ``A`` is the Prasad-Rao moment estimate
    ``max(0, mean(value_i**2 - D_i))`` (Prasad & Rao 1990, JASA 85). It is 0 when the figures vary
    no more than their noise explains: then every school is shrunk to the state average. The
    likelihood-based positive estimates (REML; Li & Lahiri's 2010 adjusted REML) are not used:
    they trust ``D_i``, and the Snapping noise on a mean is coarse and heavier-tailed than the normal
    law behind ``value_moe95 / 1.96``, so they read part of the noise as spread between schools.

    Each estimate is ``value_eb = lambda_i * value_i``, ``lambda_i = A / (A + D_i)``, with the
    Prasad-Rao mean squared error ``g1 + 2 g3`` (``g1 = lambda_i D_i``, ``g3 = D_i**2 / (A + D_i)**3
    * Var(A)``, ``Var(A) = 2 sum_j (A + D_j)**2 / m**2``) so that the margin also counts the
    uncertainty about ``A``; where that first-order term exceeds ``D_i`` (the most precise schools
    when ``A`` is near 0) the margin is the direct figure's own, never wider.

    ``means`` has columns value (noisy mean residual, scale points; NaN without an estimate),
    value_moe95 and n_students. Returns ``means`` with ``shrinkage`` (lambda), ``value_eb`` and
    ``value_eb_moe95`` (95% margin of ``value_eb``) added; NaN where there is no estimate.
    Raises ValueError for a residual_sd that is not positive.

    >>> m = pd.DataFrame({"value": [6.0, -6.0, 1.0, float("nan")], "value_moe95": [1.96, 1.96, 1.96, 9.0],
    ...                   "n_students": [100, 100, 100, 0]})
    >>> out = shrink_value_added(m, residual_sd=10.0)  # D = 1 + 1; A = (34 + 34 - 1) / 3; lambda = A / (A + 2)
    >>> out["shrinkage"].round(3).tolist()[:3], out["value_eb"].round(2).tolist()[:3]
    ([0.918, 0.918, 0.918], [5.51, -5.51, 0.92])
    """
    if not residual_sd > 0:
        raise ValueError("shrink_value_added: residual_sd must be positive (scale points)")
    ok = (means["value"].notna() & (means["n_students"] > 0) & means["value_moe95"].notna()).to_numpy()
    n = means["n_students"].clip(lower=1).to_numpy(float)
    d = residual_sd**2 / n + (means["value_moe95"].to_numpy(float) / 1.96) ** 2
    y = means["value"].to_numpy(float)
    lam = np.full(len(means), np.nan)
    eb_moe = np.full(len(means), np.nan)
    if ok.any():
        yo, do = y[ok], d[ok]
        m = len(yo)
        a_hat = max(0.0, float(np.mean(yo * yo - do)))
        var_a = 2.0 * float(np.sum((a_hat + do) ** 2)) / m**2
        lam_o = a_hat / (a_hat + do)
        g1 = lam_o * do
        g3 = do**2 / (a_hat + do) ** 3 * var_a
        lam[ok] = lam_o
        eb_moe[ok] = 1.96 * np.sqrt(np.minimum(g1 + 2.0 * g3, do))
    return means.assign(shrinkage=lam, value_eb=lam * np.where(ok, y, np.nan), value_eb_moe95=eb_moe)
