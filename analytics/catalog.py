"""The catalogue of public tables: what each release publishes, how, and at what privacy cost.

Every table is one question to the privacy ledger. Metric tables use the long
format: the group columns, then ``measure``, ``value``, ``value_moe95``,
``numerator``, ``denominator`` (for rates), ``n_students``, ``epsilon``, ``flag``
and ``flag_reason``. The SSN collection tables use their own wide columns
(``n_asked``, ``n_declined``, ``optout_rate``...).

Shares of the release's epsilon are in :data:`EPSILON_SHARES`; docs/privacy.md
explains the split and shows the measured margins of error.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analytics import exact, extract, privacy, publiclists, queries, schema
from analytics.engine import Engine, EngineConfig
from analytics.io import DataSource
from analytics.metrics import assessment, cohort, coverage, postsecondary, subgroups, workforce
from analytics.privacy import Bins


class BuildContext:
    """What table builders share during one release build: the data, the engine that does the exact
    work, the public lists, per-student relations materialised once in the engine, and the tables
    published so far.

    ``engine`` is an :class:`analytics.engine.Engine`, an engine name or config, or None for the
    one ``ANALYTICS_ENGINE`` names (DuckDB by default).
    """

    def __init__(
        self,
        source: DataSource,
        accounting: str = "epsilon",
        plan: dict[str, float] | None = None,
        engine: Engine | EngineConfig | str | None = None,
    ) -> None:
        self.source = source
        self.engine = engine if isinstance(engine, Engine) else Engine.for_source(source, engine)
        self.lists = publiclists.public_lists(source)
        self.published: dict[str, pd.DataFrame] = {}
        #: The lineage's accounting ('epsilon' or 'zcdp'): measurement tables draw Gaussian noise under zCDP.
        self.accounting = accounting
        #: What each measured level gets, in the lineage's unit (see :func:`level_plan`).
        self.plan: dict[str, float] = dict(plan or {})

    @functools.cached_property
    def extract(self) -> extract.ExtractConfig:
        """The dataset's end years and score scales (declared in extract.json or derived from the data)."""
        return extract.of(self.source)

    @functools.cached_property
    def cohort(self) -> ir.Table:
        return self.engine.cache(cohort.adjusted_cohort(self.engine))

    @property
    def _cohort_table(self) -> str:
        """The name of the engine's materialised adjusted cohort (other relations read it, not recompute it)."""
        return str(self.cohort.op().name)

    @functools.cached_property
    def workforce(self) -> ir.Table:
        return self.engine.cache(workforce.workforce_rows(self.engine, self._cohort_table))

    @functools.cached_property
    def college(self) -> ir.Table:
        return self.engine.cache(postsecondary.college_rows(self.engine, self._cohort_table))

    @functools.cached_property
    def tests(self) -> ir.Table:
        return self.engine.cache(assessment.assessment_rows(self.engine))

    @functools.cached_property
    def high_schools(self) -> list[object]:
        s = self.lists.schools
        return s.loc[s["school_level"].isin(["High", "Combined"]), "school_id"].tolist()

    @functools.cached_property
    def growth_schools(self) -> list[object]:
        """Schools that can serve grades 4-8, where growth is measured."""
        s = self.lists.schools
        return s.loc[s["school_level"].isin(["Elementary", "Middle", "Combined"]), "school_id"].tolist()

    @functools.cached_property
    def match(self) -> ir.Table:
        return coverage.match_rows(self.engine, self._cohort_table)

    @functools.cached_property
    def growth_pairs(self) -> ir.Table:
        return self.engine.cache(assessment.growth_pairs(self.tests))

    def close(self) -> None:
        """Drop what the build materialised in the engine (and, for Spark, the staged tables)."""
        self.engine.close()

    def __enter__(self) -> BuildContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Builder = Callable[[BuildContext, float, privacy.Seed], pd.DataFrame]


@dataclass(frozen=True)
class TableSpec:
    """One noisy table of a release."""

    name: str
    title: str
    description: str
    mechanism: str
    contribution_bound: str
    build: Builder
    bounds: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: 'epsilon': a pure epsilon-DP table (charged epsilon^2 / 2 on a zCDP lineage); 'composed': pure
    #: epsilon-DP parts that share the table's rho on a zCDP lineage (each part rho / parts, run at
    #: sqrt(2 rho / parts)) and its epsilon on a pure one; 'counts': one
    #: disjoint histogram (:func:`counts_builder`): discrete Gaussian at its rho on a zCDP lineage,
    #: discrete Laplace at its epsilon on a pure one; 'levels': noisy measurements whose levels
    #: follow the design (Gaussian under zCDP); 'none': post-processing of published tables, which
    #: costs nothing and is not put to the ledger.
    cost: str = "epsilon"
    #: A 'composed' table's number of equal pure-epsilon parts (what the design preview splits its rho into).
    pure_parts: int = 0

    def __post_init__(self) -> None:
        if getattr(self.build, "rows_per_student", None) is not None:  # built by counts_builder
            if self.cost not in ("epsilon", "counts"):
                raise ValueError(f"table {self.name!r}: a histogram builder's table costs 'counts', not {self.cost!r}")
            object.__setattr__(self, "cost", "counts")

    @property
    def rows_per_student(self) -> int | None:
        """The histogram's contribution bound k of a 'counts' table (its L1 sensitivity); None otherwise."""
        return getattr(self.build, "rows_per_student", None) if self.cost == "counts" else None

    @property
    def rows_per_bin(self) -> int | None:
        """The most rows a student keeps in one bin of a 'counts' table's histogram; None otherwise."""
        return getattr(self.build, "rows_per_bin", None) if self.cost == "counts" else None

    @property
    def l2_sensitivity(self) -> float | None:
        """The L2 sensitivity of a 'counts' table's histogram (:func:`analytics.exact.histogram_l2_sensitivity`)."""
        k = self.rows_per_student
        return None if k is None else exact.histogram_l2_sensitivity(k, self.rows_per_bin)

    def count_noise(self, accounting: str, amount: float) -> privacy.CountNoise | None:
        """The noise a 'counts' table's histogram gets for ``amount`` (rho or epsilon); None for other tables."""
        k = self.rows_per_student
        if k is None or not amount > 0:
            return None
        return privacy.CountNoise.for_histogram(accounting, amount, k, self.rows_per_bin)


# ---------------------------------------------------------------------------
# Generic builders
# ---------------------------------------------------------------------------

Domain = Callable[[BuildContext], list[object]]


def _districts(ctx: BuildContext) -> list[object]:
    return list(ctx.lists.district_ids)


def _schools(ctx: BuildContext) -> list[object]:
    return list(ctx.lists.school_ids)


def _high_schools(ctx: BuildContext) -> list[object]:
    return ctx.high_schools


def _fixed(values: tuple[object, ...]) -> Domain:
    return lambda _ctx: list(values)


_COHORTS = _fixed(publiclists.COHORTS)
_YEARS_OUT = _fixed(workforce.YEARS_OUT)
_SUBGROUPS = _fixed(subgroups.SUBGROUPS)
_SUBJECTS = _fixed(schema.SUBJECTS)


_COLLEGE_MEASURE_NAMES = frozenset(postsecondary.COLLEGE_MEASURES)


def _observable(df: pd.DataFrame, ctx: BuildContext) -> pd.DataFrame:
    """Drop cells whose window runs past the extract's end years: they are not yet observable.

    A public rule on the cell's keys and the extract's declared (or derived) end
    years, never on counts: a cohort cell needs its 4 years over (5 for
    ``acgr_5yr``; 5 plus the 16-month college window for college measures); a
    years-out cell needs calendar year ``cohort + 3 + years_out`` in the wage records.
    """
    if "school_year" in df.columns:
        df = df[df["school_year"] <= ctx.extract.require_years()[0]]
    if "cohort" not in df.columns:
        return df.reset_index(drop=True)
    last_school, last_wage, last_post = ctx.extract.require_years()
    keep = df["cohort"] + 3 <= last_school
    if "measure" in df.columns:
        is5 = df["measure"] == "acgr_5yr"
        keep &= ~is5 | (df["cohort"] + cohort.WINDOW_YEARS["acgr_5yr"] <= last_school)
        is_college = df["measure"].isin(_COLLEGE_MEASURE_NAMES)
        keep &= ~is_college | (df["cohort"] + postsecondary.COLLEGE_WINDOW_YEARS <= last_post)
    if "years_out" in df.columns:
        keep &= df["cohort"] + 3 + df["years_out"] <= last_wage
    return df[keep].reset_index(drop=True)


def _expanded(rows: ir.Table, rows_per_student: int, by_subgroup: bool) -> ir.Table:
    """``rows``, one copy per subgroup family when ``by_subgroup``.

    The student's rows are bounded before they are copied (to ``rows_per_student`` divided by the
    families), so the copies stay within ``rows_per_student`` and the engine never ranks five times
    as many rows.
    """
    if not by_subgroup:
        return rows
    per_family = rows_per_student // subgroups.ROWS_PER_STUDENT
    return subgroups.expand_subgroups(exact.bound(rows, per_family))


def counts_builder(build: Builder, rows_per_student: int, rows_per_bin: int) -> Builder:
    """Mark ``build`` as one histogram (a 'counts' table): ``rows_per_student`` rows in all, ``rows_per_bin`` per bin.

    The bounds are what the table's noise is calibrated to (:meth:`TableSpec.count_noise`) and what
    its manifest states; the builder passes the same numbers to :func:`analytics.queries.noisy_histogram`.
    """
    build.rows_per_student = rows_per_student  # type: ignore[attr-defined]
    build.rows_per_bin = rows_per_bin  # type: ignore[attr-defined]
    return build


def rate_table(
    rows: Callable[[BuildContext], ir.Table],
    domains: dict[str, Domain],
    categories: tuple[object, ...],
    measures: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]],
    rows_per_student: int = 1,
    by_subgroup: bool = False,
    rows_per_bin: int = 1,
) -> Builder:
    """Rates read off one histogram of students over (cell, category).

    A student keeps at most ``rows_per_student`` rows in all and ``rows_per_bin`` in one bin
    (1: counted once per cell, as a rate per year or per cohort does; more where a cell pools
    several years of a student's tests). The builder receives rho on a zCDP lineage (discrete
    Gaussian) and epsilon on a pure one (discrete Laplace); see :func:`analytics.queries.noisy_histogram`.
    """

    def build(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
        data = _expanded(rows(ctx), rows_per_student, by_subgroup)
        keys = {k: d(ctx) for k, d in domains.items()}
        hist = queries.noisy_histogram(
            data, keys, "category", categories, amount, rows_per_student, seed, ctx.accounting, rows_per_bin
        )
        out = queries.rates_long(hist, measures)
        return _observable(out.assign(n_students=out["denominator"]), ctx)

    return counts_builder(build, rows_per_student, rows_per_bin)


def percentile_table(
    rows: Callable[[BuildContext], ir.Table],
    domains: dict[str, Domain],
    value: str,
    bins: Bins,
    quantiles: tuple[float, ...],
    rows_per_student: int = 1,
    by_subgroup: bool = False,
    rows_per_bin: int = 1,
) -> Builder:
    """Percentiles of ``value`` by the PSEO method, in the long format (one row per percentile).

    Bounds and noise as :func:`rate_table` (``rows_per_bin``: a student's rows in one cell and bin).
    """

    def build(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
        data = _expanded(rows(ctx), rows_per_student, by_subgroup)
        keys = {k: d(ctx) for k, d in domains.items()}
        wide = queries.noisy_percentiles(
            data, keys, value, bins, quantiles, amount, seed=seed, max_rows_per_student=rows_per_student,
            accounting=ctx.accounting, max_per_bin=rows_per_bin,
        )  # fmt: skip
        return _observable(_percentiles_long(wide, list(keys), quantiles), ctx)

    return counts_builder(build, rows_per_student, rows_per_bin)


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _percentiles_long(wide: pd.DataFrame, keys: list[str], quantiles: tuple[float, ...]) -> pd.DataFrame:
    parts = []
    for q in quantiles:
        name = f"p{round(q * 100)}"
        flags, reasons = privacy.reliability(wide["n_students"], wide[f"{name}_moe95"], wide[name], "amount")
        top = wide[f"{name}_top_coded"].to_numpy(bool) if f"{name}_top_coded" in wide else np.zeros(len(wide), bool)
        reasons = [
            (f"top-coded: at least {_money(top_edge)}, the open top bin" + (f"; {r}" if r else "")) if t else r
            for r, t, top_edge in zip(reasons, top, wide[name], strict=True)
        ]
        parts.append(
            wide[keys].assign(
                measure=name,
                value=wide[name],
                value_moe95=wide[f"{name}_moe95"],
                top_coded=top,
                n_students=wide["n_students"],
                epsilon=wide["epsilon"],
                flag=flags,
                flag_reason=reasons,
            )
        )
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------
# SSN collection (wide format)
# ---------------------------------------------------------------------------


def _ssn_optout(by: dict[str, Domain]) -> Builder:
    def build(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
        rows = coverage.ssn_collection_rows(ctx.engine)
        keys = {col: keys(ctx) for col, keys in by.items()}
        out = queries.noisy_rate(rows, keys, "declined", amount, seed=seed, accounting=ctx.accounting, max_per_bin=1)
        return out.rename(
            columns={
                "n_yes": "n_declined",
                "n_students": "n_asked",
                "rate": "optout_rate",
                "n_students_moe95": "n_asked_moe95",
                "rate_moe95": "optout_rate_moe95",
            }
        )

    return counts_builder(build, 1, 1)


_SSN_YEARS = _fixed(publiclists.SSN_SCHOOL_YEARS)
_GROWTH_MECHANISM = (
    "PSEO median and Snapping mean (its count geometric): on a zCDP lineage three equal parts, rho / 3 each at "
    "epsilon sqrt(2 rho / 3); on a pure-epsilon one half the epsilon for the median and half for the mean"
)
_HISTOGRAM = (
    "discrete Gaussian on a zCDP lineage, two-sided geometric on a pure-epsilon one (OpenDP exact samplers), "
    "one histogram over the cells x categories; each student's rows bounded in all and per cell as stated"
)
_ONE = "1 row per student"


# ---------------------------------------------------------------------------
# Growth (depends on the published growth model)
# ---------------------------------------------------------------------------

GROWTH_MODEL_PAIRS = 10  # every grade 4-8 pair of both subjects
GROWTH_ROWS_PER_STUDENT = 2


def _growth_scored(ctx: BuildContext) -> ir.Table:
    cached = getattr(ctx, "_growth_scored", None)
    if cached is None:
        model = ctx.published["growth_model"]
        models = assessment.fit_models(model, GROWTH_MODEL_PAIRS, _scales(ctx))
        # each student's pairs bounded once for both growth tables (the noise is scaled to this bound)
        kept = exact.bound(ctx.growth_pairs, GROWTH_ROWS_PER_STUDENT, identity=assessment.PAIR_IDENTITY)
        cached = ctx.engine.cache(assessment.score_growth(kept, models))  # scoring is row by row
        ctx._growth_scored = cached  # type: ignore[attr-defined]
    return cached


def _scales(ctx: BuildContext) -> dict[tuple[int, str], assessment.TransitionScale]:
    return assessment.transition_scales(ctx.extract)


#: The pure parts of a growth table: the median's histogram, and the mean's count and sum.
GROWTH_TABLE_PARTS = 3


def _growth_table(level: str) -> Builder:
    def build(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
        scored = _growth_scored(ctx)
        ids = ctx.growth_schools if level == "school_id" else ctx.lists.district_ids
        keys: dict[str, list[object]] = {level: list(ids), "subject": list(schema.SUBJECTS)}
        if ctx.accounting == "zcdp":  # rho in three equal parts, each pure at sqrt(2 rho / 3) (zCDP adds up)
            median_eps = assessment.part_epsilon(amount, GROWTH_TABLE_PARTS, "zcdp")
            mean_eps = 2 * median_eps  # noisy_mean halves it: its count and its sum at the same epsilon
        else:  # pure epsilon: half for the median, half for the mean
            median_eps = mean_eps = amount / 2
        mgp = queries.noisy_percentiles(
            scored,
            keys,
            "sgp_floor",
            Bins(assessment.SGP_EDGES),
            [0.5],
            median_eps,
            seed=privacy.seed_for(seed, 1),
            max_rows_per_student=GROWTH_ROWS_PER_STUDENT,
        )
        sigma = float(
            np.mean(
                [
                    m.sigma
                    for m in assessment.fit_models(ctx.published["growth_model"], GROWTH_MODEL_PAIRS, _scales(ctx))
                ]
            )
        )
        va = queries.noisy_mean(
            scored,
            keys,
            "residual",
            -3 * sigma,
            3 * sigma,
            mean_eps,
            seed=privacy.seed_for(seed, 2),
            max_rows_per_student=GROWTH_ROWS_PER_STUDENT,
        )
        va = va.rename(columns={"mean": "value", "mean_moe95": "value_moe95"})
        va = assessment.shrink_value_added(va, residual_sd=sigma)
        long_mgp = _percentiles_long(mgp, list(keys), (0.5,)).assign(measure="median_growth_percentile")
        long_va = va[[*keys, "value", "value_moe95", "n_students", "epsilon", "flag", "flag_reason"]].assign(
            measure="value_added_points"
        )
        shrink_words = va["shrinkage"].map(
            lambda lam: (
                ""
                if pd.isna(lam) or lam >= 0.5
                else f"mostly noise: shrunk {100 * (1 - lam):.0f}% toward the state average"
            )
        )
        eb_reason = [f"{r}; {w}" if r and w else (r or w) for r, w in zip(va["flag_reason"], shrink_words, strict=True)]
        eb_flag = np.where(shrink_words != "", "unreliable", va["flag"])
        long_eb = va[[*keys, "n_students", "epsilon"]].assign(
            measure="value_added_points_eb",
            value=va["value_eb"],
            value_moe95=va["value_eb_moe95"].fillna(va["value_moe95"]),
            flag=eb_flag,
            flag_reason=eb_reason,
        )
        out = pd.concat([long_mgp, long_va, long_eb], ignore_index=True)
        out["epsilon"] = amount if ctx.accounting == "epsilon" else 0.0  # under zCDP the manifest's rho
        return out

    return build


def _growth_model(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
    return assessment.dp_growth_model(
        ctx.growth_pairs, amount, GROWTH_MODEL_PAIRS, seed, _scales(ctx), accounting=ctx.accounting
    )


# ---------------------------------------------------------------------------
# Graduation: one set of measurements, consistent direct and model-based figures
# ---------------------------------------------------------------------------

#: Levels at which each graduation rate is measured (each student once per level).
GRADUATION_LEVELS: tuple[str, ...] = ("school", "district", "district_pooled", "state")
#: Share of the graduation measurements' budget per (measure, level), in rho on a zCDP lineage and in
#: epsilon on a pure-epsilon one. The 4-year rate is the headline; the district pooled level buys the
#: small districts' pooled figures; the state level is cheap because its cells are large.
GRADUATION_LEVEL_SHARES: dict[str, float] = {
    "acgr_4yr/school": 0.26,
    "acgr_4yr/district": 0.26,
    "acgr_4yr/district_pooled": 0.21,
    "acgr_4yr/state": 0.02,
    "acgr_5yr/school": 0.07,
    "acgr_5yr/district": 0.07,
    "acgr_5yr/district_pooled": 0.09,
    "acgr_5yr/state": 0.02,
}
_DERIVED = (
    "post-processing of graduation_measurements: weighted least squares across levels, rates without "
    "floor-then-divide, two-fold Fay-Herriot model-based figures (no privacy cost)"
)


def level_plan(table_amount: float, name: str = "graduation_measurements") -> dict[str, float]:
    """Split a measurement table's amount (rho or epsilon) across its levels by :data:`GRADUATION_LEVEL_SHARES`.

    >>> round(level_plan(1.0)["acgr_4yr/school"], 4)
    0.26
    """
    if name != "graduation_measurements":
        raise ValueError(f"no level plan for table {name!r}")
    total = sum(GRADUATION_LEVEL_SHARES.values())
    return {k: table_amount * v / total for k, v in GRADUATION_LEVEL_SHARES.items()}


def _observable_cohorts(ctx: BuildContext, measure: str) -> list[int]:
    last_school = ctx.extract.require_years()[0]
    return [c for c in publiclists.COHORTS if c + cohort.WINDOW_YEARS[measure] <= last_school]


def _graduation_measurements(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
    rows = _grad_rows(ctx)
    plan = ctx.plan or level_plan(amount)
    hs = ctx.lists.schools.loc[ctx.lists.schools["school_id"].isin(ctx.high_schools)]
    districts = sorted(hs["district_id"].unique())
    parts = []
    for m, (measure, (num, den)) in enumerate(_ACGR.items()):
        cohorts = _observable_cohorts(ctx, measure)
        data = rows.filter(rows["category"].isin(list(den)) & rows["cohort"].isin(cohorts or [-1]))
        data = data.mutate(outcome=ibis.cases((data["category"].isin(list(num)), "yes"), else_="no"))
        domains: dict[str, dict[str, list[Any]]] = {
            "school": {"school_id": list(ctx.high_schools), "cohort": cohorts},
            "district": {"district_id": districts, "cohort": cohorts},
            "district_pooled": {"district_id": districts},
            "state": {"cohort": cohorts},
        }
        levels: dict[str, tuple[queries.Domains, privacy.CountNoise]] = {}
        for level in GRADUATION_LEVELS:
            share = plan[f"{measure}/{level}"]
            mech = privacy.CountNoise.gaussian(share) if ctx.accounting == "zcdp" else privacy.CountNoise.laplace(share)
            levels[level] = (domains[level], mech)
        out = queries.noisy_levels(data, levels, "outcome", ("yes", "no"), privacy.seed_for(seed, m))
        parts.append(out.assign(measure=measure))
    out = pd.concat(parts, ignore_index=True)
    out["cohort"] = out["cohort"].astype("Int64")
    out["noisy_moe95"] = [
        privacy.CountNoise(k, v).moe95 for k, v in zip(out["mechanism"], out["noise_scale"], strict=True)
    ]
    out["epsilon"] = amount if ctx.accounting == "epsilon" else 0.0
    return out.assign(flag="rough", flag_reason="a raw noisy count: the graduation tables hold the estimates")


class _GraduationEstimates:
    """Direct and model-based graduation tables, computed once per build from the published measurements."""

    def __init__(self, ctx: BuildContext) -> None:
        from analytics.estimation import cohort_rates

        m = ctx.published["graduation_measurements"]
        schools = ctx.lists.schools
        hs = schools.loc[schools["school_id"].isin(ctx.high_schools)]
        leaves = hs[["district_id", "school_id"]].assign(state="state")
        districts = ctx.lists.districts
        school_cov = hs.merge(districts[["district_id", "locale"]], on="district_id")
        self.tables: dict[tuple[str, str], list[pd.DataFrame]] = {}
        for measure in _ACGR:
            rows = m[m["measure"] == measure]
            cohorts = sorted(int(c) for c in rows["cohort"].dropna().unique())
            if not cohorts:  # no cohort of this rate is observable yet in this extract: nothing to publish
                continue
            counts = cohort_rates.consistent_counts(rows, leaves, cohorts)
            for level in ("state", "district_id", "school_id"):
                direct = cohort_rates.direct_rates(counts, level)
                model = None
                if level == "district_id":  # area variance A0 + A1 h, h from the public school list's structure
                    structure = districts.join(cohort_rates.district_structure(schools), on="district_id")
                    model = cohort_rates.model_rates(
                        counts, level, structure, ["locale"], area_scales=[cohort_rates.DISTRICT_SCALE]
                    )
                elif level == "school_id":
                    model = cohort_rates.model_rates(counts, level, school_cov, ["locale", "school_level"])
                for view, frame in direct.items():
                    if model is not None and not frame.empty:
                        on = [level] + (["cohort"] if view == "cohort" else ["cohorts"] if view == "window" else [])
                        frame = frame.merge(model[view], on=on, how="left")
                    self.tables.setdefault((level, view), []).append(frame.assign(measure=measure))

    def table(self, level: str, view: str) -> pd.DataFrame:
        frames = self.tables.get((level, view), [])
        if not frames:
            key = [] if level == "state" else [level]
            view_keys = {"cohort": ["cohort"], "window": ["cohorts", "first_cohort", "last_cohort"]}.get(view, [])
            columns = [*key, *view_keys, "measure", "value", "value_moe95", "numerator", "denominator", "n_students"]
            return pd.DataFrame(columns=[*columns, "epsilon", "flag", "flag_reason"])
        out = pd.concat(frames, ignore_index=True)
        out = out.drop(columns=["known_nonempty"]).assign(epsilon=0.0)
        for col in ("numerator", "denominator", "n_students"):  # whole students for display; rates use the unrounded
            out[col] = np.rint(out[col]).astype(np.int64)
        if level == "state":
            out = out.drop(columns=["state"])
        keys = [c for c in ("district_id", "school_id", "cohort", "cohorts", "first_cohort", "last_cohort") if c in out]
        first = [*keys, "measure"]
        return out[first + [c for c in out.columns if c not in first]]


def _graduation_table(level: str, view: str) -> Builder:
    def build(ctx: BuildContext, amount: float, seed: privacy.Seed) -> pd.DataFrame:
        if "graduation_measurements" not in ctx.published:  # used alone (a notebook, a test): measure first
            ctx.published["graduation_measurements"] = _graduation_measurements(ctx, amount, seed)
        cached = getattr(ctx, "_graduation", None)
        if cached is None:
            cached = _GraduationEstimates(ctx)
            ctx._graduation = cached  # type: ignore[attr-defined]
        return cached.table(level, view)

    return build


# ---------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------

_ACGR = {"acgr_4yr": cohort.ACGR4, "acgr_5yr": cohort.ACGR5}
#: Tests a student may contribute: both subjects in each tested grade plus two repeated tested grades
#: (retention), so a student who repeats a grade keeps every test; see docs/metrics.md for the bias left.
_TESTS_PER_STUDENT = assessment.MAX_TESTS_PER_STUDENT
#: A student's tests in one cell pooled over years (a district or school and a subject): all of one subject's.
_TESTS_PER_SUBJECT = _TESTS_PER_STUDENT // len(schema.SUBJECTS)
#: A student's tests in one grade and subject: the grade once, plus every covered repeat of it.
_TESTS_PER_GRADE = 1 + assessment.REPEATED_GRADES_COVERED
_PROFICIENCY = {"proficiency_rate": ((True,), (True, False))}
_YEARS3 = len(workforce.YEARS_OUT)


def _grad_rows(ctx: BuildContext) -> ir.Table:
    return ctx.cohort.rename(category="acgr_category", district_id="acgr_district_id", school_id="acgr_school_id")


def _test_rows(ctx: BuildContext) -> ir.Table:
    return ctx.tests.mutate(category=ctx.tests["proficient"])


def _test_rows_subgroups(ctx: BuildContext) -> ir.Table:
    return _test_rows(ctx)  # the tests relation carries the subgroup columns


def _college(ctx: BuildContext) -> ir.Table:
    return ctx.college.rename(district_id="acgr_district_id")


def _work(ctx: BuildContext) -> ir.Table:
    return ctx.workforce.rename(district_id="acgr_district_id")


def _employed(ctx: BuildContext) -> ir.Table:
    w = _work(ctx)
    return w.filter(w["category"].isin(["qualifying_part", "qualifying_full"]))


def _sector_rows(ctx: BuildContext) -> ir.Table:
    e = _employed(ctx)
    return e.mutate(category=e["sector"])


_EARN_BOUNDS = {
    "earnings_2024_usd": [workforce.EARNINGS_BINS.edges[0], workforce.EARNINGS_BINS.edges[-1]],
    "bin_width_usd": 5000,
    "top_coded_at_usd": workforce.EARNINGS_TOP_USD,
}
_PSEO = (
    "PSEO: discrete Gaussian (zCDP lineage) or geometric (pure-epsilon lineage) noise on a histogram over "
    "fixed public bins, read as a monotone CDF"
)


TABLES: tuple[TableSpec, ...] = (
    # --- SSN collection
    TableSpec(
        "ssn_collection_by_district",
        "SSN collection by district, all school years",
        "Families asked for the SSN and those who declined, by the district that asked.",
        _HISTOGRAM,
        _ONE + " (each family is asked once)",
        _ssn_optout({"district_id": _districts}),
    ),
    TableSpec(
        "ssn_collection_by_district_year",
        "SSN collection by district and school year",
        "As by district, split by school year of asking (2011 = 2010-11, the first year Maine asked).",
        _HISTOGRAM,
        _ONE,
        _ssn_optout({"district_id": _districts, "school_year": _SSN_YEARS}),
    ),
    TableSpec(
        "ssn_collection_by_year",
        "SSN collection statewide, by school year",
        "Statewide families asked and declining, by school year of asking; its own query, not a sum of district cells.",
        _HISTOGRAM,
        _ONE,
        _ssn_optout({"school_year": _SSN_YEARS}),
    ),
    TableSpec(
        "match_by_district_cohort",
        "Linkage: SSN provided and found in wage records, by district and cohort",
        "Share of the adjusted cohort whose SSN was provided (coverage) and share found in Maine wage "
        "records in any quarter (match rate).",
        _HISTOGRAM,
        _ONE,
        rate_table(
            lambda c: c.match,
            {"district_id": _districts, "cohort": _COHORTS},
            coverage.MATCH_CATEGORIES,
            coverage.MATCH_MEASURES,
        ),
    ),
    # --- Graduation
    TableSpec(
        "graduation_measurements",
        "Graduation: the noisy measurements every graduation figure is computed from",
        "Students of each adjusted cohort counted once per level (school x cohort, district x cohort, district "
        "with all cohorts pooled, state x cohort) as graduates within 4 (5) years or not; raw noisy counts, "
        "never clamped. Every graduation table is computed from these alone.",
        "discrete Gaussian (OpenDP, exact) per level on a zCDP lineage, discrete Laplace on a pure-epsilon one",
        _ONE + " per level and rate (L1 and L2 sensitivity 1 per level histogram)",
        _graduation_measurements,
        bounds={"levels": list(GRADUATION_LEVELS), "measures": list(_ACGR)},
        cost="levels",
    ),
    TableSpec(
        "graduation_by_cohort",
        "Adjusted cohort graduation rate, statewide by cohort",
        "4-year and extended 5-year ACGR (ESEA 8101(23), (25)); consistent with every district and school figure.",
        _DERIVED,
        _ONE,
        _graduation_table("state", "cohort"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_district",
        "Adjusted cohort graduation rate by district and cohort",
        "Attributed to the district of the school last attended within the 4-year window. Direct figures (what "
        "happened) and model-based figures (the underlying rate, borrowing from the district's other cohorts).",
        _DERIVED,
        _ONE,
        _graduation_table("district_id", "cohort"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_district_3yr",
        "Adjusted cohort graduation rate by district, three cohorts pooled",
        "Rolling windows of three consecutive cohorts (what report cards show for small districts); direct "
        "and model-based.",
        _DERIVED,
        _ONE,
        _graduation_table("district_id", "window"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_district_pooled",
        "Adjusted cohort graduation rate by district, all cohorts pooled",
        "All observable cohorts together; direct and model-based.",
        _DERIVED,
        _ONE,
        _graduation_table("district_id", "pooled"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_school",
        "Adjusted cohort graduation rate by high school and cohort",
        "High and combined schools; the school last attended within the 4-year window. Direct and model-based.",
        _DERIVED,
        _ONE,
        _graduation_table("school_id", "cohort"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_school_3yr",
        "Adjusted cohort graduation rate by high school, three cohorts pooled",
        "Rolling windows of three consecutive cohorts; direct and model-based.",
        _DERIVED,
        _ONE,
        _graduation_table("school_id", "window"),
        depends_on=("graduation_measurements",),
        cost="none",
    ),
    TableSpec(
        "graduation_by_subgroup",
        "Adjusted cohort graduation rate by subgroup and cohort",
        "Statewide, for each subgroup of the five families.",
        _HISTOGRAM,
        f"{subgroups.ROWS_PER_STUDENT} rows per student (one per subgroup family)",
        rate_table(
            _grad_rows,
            {"subgroup": _SUBGROUPS, "cohort": _COHORTS},
            cohort.ACGR_CATEGORIES,
            _ACGR,
            rows_per_student=subgroups.ROWS_PER_STUDENT,
            by_subgroup=True,
        ),
    ),
    # --- Proficiency
    TableSpec(
        "proficiency_by_year",
        "Proficiency rate statewide by school year and subject",
        "Share of tests at achievement level 3 or 4, all tested grades of the year.",
        _HISTOGRAM,
        f"{_TESTS_PER_STUDENT} tests per student (grades 3-8 and 11, two subjects, two repeated grades)",
        rate_table(
            _test_rows,
            {"school_year": _fixed(tuple(range(2005, 2026))), "subject": _SUBJECTS},
            (True, False),
            _PROFICIENCY,
            rows_per_student=_TESTS_PER_STUDENT,
        ),
    ),
    TableSpec(
        "proficiency_by_grade",
        "Proficiency rate statewide by grade and subject, all years",
        "Share of tests at achievement level 3 or 4.",
        _HISTOGRAM,
        f"{_TESTS_PER_STUDENT} tests per student, at most {_TESTS_PER_GRADE} in one grade and subject",
        rate_table(
            _test_rows,
            {"grade": _fixed(schema.ASSESSED_GRADES), "subject": _SUBJECTS},
            (True, False),
            _PROFICIENCY,
            rows_per_student=_TESTS_PER_STUDENT,
            rows_per_bin=_TESTS_PER_GRADE,
        ),
    ),
    TableSpec(
        "proficiency_by_district",
        "Proficiency rate by district and subject, all years",
        "Tests of all years and grades, attributed to the district enrolled in that year.",
        _HISTOGRAM,
        f"{_TESTS_PER_STUDENT} tests per student, at most {_TESTS_PER_SUBJECT} in one district and subject",
        rate_table(
            _test_rows,
            {"district_id": _districts, "subject": _SUBJECTS},
            (True, False),
            _PROFICIENCY,
            rows_per_student=_TESTS_PER_STUDENT,
            rows_per_bin=_TESTS_PER_SUBJECT,
        ),
    ),
    TableSpec(
        "proficiency_by_school",
        "Proficiency rate by school and subject, all years",
        "Tests of all years and grades, attributed to the school enrolled in that year.",
        _HISTOGRAM,
        f"{_TESTS_PER_STUDENT} tests per student, at most {_TESTS_PER_SUBJECT} in one school and subject",
        rate_table(
            _test_rows,
            {"school_id": _schools, "subject": _SUBJECTS},
            (True, False),
            _PROFICIENCY,
            rows_per_student=_TESTS_PER_STUDENT,
            rows_per_bin=_TESTS_PER_SUBJECT,
        ),
    ),
    TableSpec(
        "proficiency_by_subgroup",
        "Proficiency rate by subgroup and subject, all years",
        "Statewide.",
        _HISTOGRAM,
        f"{_TESTS_PER_STUDENT * subgroups.ROWS_PER_STUDENT} rows per student (18 tests in each of 5 subgroup "
        f"families), at most {_TESTS_PER_SUBJECT} in one subgroup and subject",
        rate_table(
            _test_rows_subgroups,
            {"subgroup": _SUBGROUPS, "subject": _SUBJECTS},
            (True, False),
            _PROFICIENCY,
            rows_per_student=_TESTS_PER_STUDENT * subgroups.ROWS_PER_STUDENT,
            rows_per_bin=_TESTS_PER_SUBJECT,
            by_subgroup=True,
        ),
    ),
    # --- Growth
    TableSpec(
        "growth_model",
        "Growth model: noisy gain statistics by grade, subject and prior-score band",
        "Count, sum and sum of squares of score gains (clamped to +/-12% of the scale width, scaled to [-1, 1]) "
        "per cell; "
        "the conditional growth model is fitted from them.",
        "geometric count and Snapping sums (diffprivlib) in three equal parts: rho / 3 each, at epsilon "
        "sqrt(2 rho / 3), on a zCDP lineage; epsilon / 3 each on a pure-epsilon one",
        f"{GROWTH_MODEL_PAIRS} score pairs per student",
        _growth_model,
        bounds={
            "gain_share_of_scale": assessment.GAIN_BOUND_SHARE,
            "prior_bands": assessment.N_PRIOR_BANDS,
            "score_scales": "declared per subject and grade in the dataset's extract.json (default 200-700)",
        },
        cost="composed",
        pure_parts=len(assessment.STATISTICS),
    ),
    TableSpec(
        "growth_by_school",
        "Growth by school and subject: median growth percentile and value-added",
        "MGP (noisy median of growth percentiles) and mean residual gain in scale points, raw and "
        "empirical-Bayes shrunk.",
        _GROWTH_MECHANISM,
        f"{GROWTH_ROWS_PER_STUDENT} score pairs per student",
        _growth_table("school_id"),
        bounds={"residual_points": "+/- 3 model sigma"},
        depends_on=("growth_model",),
        cost="composed",
        pure_parts=GROWTH_TABLE_PARTS,
    ),
    TableSpec(
        "growth_by_district",
        "Growth by district and subject: median growth percentile and value-added",
        "As by school, at the district level.",
        _GROWTH_MECHANISM,
        f"{GROWTH_ROWS_PER_STUDENT} score pairs per student",
        _growth_table("district_id"),
        bounds={"residual_points": "+/- 3 model sigma"},
        depends_on=("growth_model",),
        cost="composed",
        pure_parts=GROWTH_TABLE_PARTS,
    ),
    # --- College-going
    TableSpec(
        "college_by_cohort",
        "College-going of graduates, statewide by cohort",
        "Enrolled by October 31 and within 16 months of graduation, by level and place; persistence.",
        _HISTOGRAM,
        _ONE,
        rate_table(_college, {"cohort": _COHORTS}, postsecondary.COLLEGE_CATEGORIES, postsecondary.COLLEGE_MEASURES),
    ),
    TableSpec(
        "college_by_district",
        "College-going of graduates by district, all cohorts",
        "As statewide, for each district's graduates.",
        _HISTOGRAM,
        _ONE,
        rate_table(
            _college, {"district_id": _districts}, postsecondary.COLLEGE_CATEGORIES, postsecondary.COLLEGE_MEASURES
        ),
    ),
    TableSpec(
        "college_by_subgroup",
        "College-going of graduates by subgroup, all cohorts",
        "Statewide.",
        _HISTOGRAM,
        f"{subgroups.ROWS_PER_STUDENT} rows per student",
        rate_table(
            _college,
            {"subgroup": _SUBGROUPS},
            postsecondary.COLLEGE_CATEGORIES,
            postsecondary.COLLEGE_MEASURES,
            rows_per_student=subgroups.ROWS_PER_STUDENT,
            by_subgroup=True,
        ),
    ),
    # --- Workforce
    TableSpec(
        "workforce_by_cohort",
        "Employment 1, 3 and 5 years after expected graduation, by cohort",
        "Employment among matched students, coverage, and bounds over all students.",
        _HISTOGRAM,
        f"{_YEARS3} rows per student (one per years-out)",
        rate_table(
            _work,
            {"cohort": _COHORTS, "years_out": _YEARS_OUT},
            workforce.WORKFORCE_CATEGORIES,
            workforce.WORKFORCE_MEASURES,
            rows_per_student=_YEARS3,
        ),
    ),
    TableSpec(
        "workforce_by_district",
        "Employment by district and years out, all cohorts",
        "As by cohort, for each district's cohort members.",
        _HISTOGRAM,
        f"{_YEARS3} rows per student",
        rate_table(
            _work,
            {"district_id": _districts, "years_out": _YEARS_OUT},
            workforce.WORKFORCE_CATEGORIES,
            workforce.WORKFORCE_MEASURES,
            rows_per_student=_YEARS3,
        ),
    ),
    TableSpec(
        "workforce_by_subgroup",
        "Employment by subgroup and years out, all cohorts",
        "Statewide.",
        _HISTOGRAM,
        f"{_YEARS3 * subgroups.ROWS_PER_STUDENT} rows per student",
        rate_table(
            _work,
            {"subgroup": _SUBGROUPS, "years_out": _YEARS_OUT},
            workforce.WORKFORCE_CATEGORIES,
            workforce.WORKFORCE_MEASURES,
            rows_per_student=_YEARS3 * subgroups.ROWS_PER_STUDENT,
            by_subgroup=True,
        ),
    ),
    TableSpec(
        "workforce_by_path",
        "Employment by postsecondary path and years out, all cohorts",
        "Path: 4-year, 2-year or no enrolment within 16 months of expected graduation.",
        _HISTOGRAM,
        f"{_YEARS3} rows per student",
        rate_table(
            _work,
            {"path": _fixed(workforce.PATHS), "years_out": _YEARS_OUT},
            workforce.WORKFORCE_CATEGORIES,
            workforce.WORKFORCE_MEASURES,
            rows_per_student=_YEARS3,
        ),
    ),
    TableSpec(
        "earnings_by_cohort",
        "Annual earnings of the employed (P25, median, P75), by cohort and years out",
        "2024 dollars (CPI-U); among matched students with qualifying employment.",
        _PSEO,
        f"{_YEARS3} rows per student",
        percentile_table(
            _employed,
            {"cohort": _COHORTS, "years_out": _YEARS_OUT},
            "earnings_2024",
            workforce.EARNINGS_BINS,
            workforce.EARNINGS_QUANTILES,
            _YEARS3,
        ),
        bounds=_EARN_BOUNDS,
    ),
    TableSpec(
        "earnings_by_district",
        "Annual earnings of the employed by district and years out, all cohorts",
        "2024 dollars.",
        _PSEO,
        f"{_YEARS3} rows per student",
        percentile_table(
            _employed,
            {"district_id": _districts, "years_out": _YEARS_OUT},
            "earnings_2024",
            workforce.EARNINGS_BINS,
            workforce.EARNINGS_QUANTILES,
            _YEARS3,
        ),
        bounds=_EARN_BOUNDS,
    ),
    TableSpec(
        "earnings_by_subgroup",
        "Annual earnings of the employed by subgroup and years out, all cohorts",
        "2024 dollars.",
        _PSEO,
        f"{_YEARS3 * subgroups.ROWS_PER_STUDENT} rows per student",
        percentile_table(
            _employed,
            {"subgroup": _SUBGROUPS, "years_out": _YEARS_OUT},
            "earnings_2024",
            workforce.EARNINGS_BINS,
            workforce.EARNINGS_QUANTILES,
            _YEARS3 * subgroups.ROWS_PER_STUDENT,
            by_subgroup=True,
        ),
        bounds=_EARN_BOUNDS,
    ),
    TableSpec(
        "earnings_by_path",
        "Annual earnings of the employed by postsecondary path and years out",
        "2024 dollars.",
        _PSEO,
        f"{_YEARS3} rows per student",
        percentile_table(
            _employed,
            {"path": _fixed(workforce.PATHS), "years_out": _YEARS_OUT},
            "earnings_2024",
            workforce.EARNINGS_BINS,
            workforce.EARNINGS_QUANTILES,
            _YEARS3,
        ),
        bounds=_EARN_BOUNDS,
    ),
    TableSpec(
        "industry_by_years_out",
        "Industry mix of the employed, by years out, all cohorts",
        "Share of the employed whose main employer in the year is in each NAICS sector.",
        _HISTOGRAM,
        f"{_YEARS3} rows per student",
        rate_table(
            _sector_rows,
            {"years_out": _YEARS_OUT},
            workforce.SECTORS,
            {s: ((s,), workforce.SECTORS) for s in workforce.SECTORS},
            rows_per_student=_YEARS3,
        ),
    ),
)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

#: Relative weight of each table in a release's epsilon; see docs/privacy.md.
EPSILON_SHARES: dict[str, float] = {
    "ssn_collection_by_district": 0.25,
    "ssn_collection_by_district_year": 0.15,
    "ssn_collection_by_year": 0.1,
    "match_by_district_cohort": 0.3,
    "graduation_measurements": 1.1,
    "graduation_by_cohort": 0.0,
    "graduation_by_district": 0.0,
    "graduation_by_district_3yr": 0.0,
    "graduation_by_district_pooled": 0.0,
    "graduation_by_school": 0.0,
    "graduation_by_school_3yr": 0.0,
    "graduation_by_subgroup": 0.2,
    "proficiency_by_year": 0.15,
    "proficiency_by_grade": 0.1,
    "proficiency_by_district": 0.3,
    "proficiency_by_school": 0.2,
    "proficiency_by_subgroup": 0.1,
    "growth_model": 0.4,
    "growth_by_school": 0.4,
    "growth_by_district": 0.3,
    "college_by_cohort": 0.1,
    "college_by_district": 0.3,
    "college_by_subgroup": 0.2,
    "workforce_by_cohort": 0.2,
    "workforce_by_district": 0.4,
    "workforce_by_subgroup": 0.3,
    "workforce_by_path": 0.1,
    "earnings_by_cohort": 0.2,
    "earnings_by_district": 0.3,
    "earnings_by_subgroup": 0.2,
    "earnings_by_path": 0.1,
    "industry_by_years_out": 0.1,
}
assert set(EPSILON_SHARES) == set(TABLES_BY_NAME), "every table needs an epsilon share"


# ---------------------------------------------------------------------------
# The release's design: what each table gets of the total
# ---------------------------------------------------------------------------

#: delta at which a zCDP release's total is stated as (epsilon, delta) (the Census 2020 practice).
RELEASE_DELTA = 1e-10
#: Share of a zCDP release's rho that buys the graduation measurements (the headline figures);
#: the rest goes to the pure-epsilon tables in proportion to :data:`EPSILON_SHARES`.
GRADUATION_RHO_SHARE = 0.40
#: Cell a graduation level's preview margin refers to: 50 students at a rate of 87%.
PREVIEW_CELL = (50.0, 0.87)
#: Cell a count table's preview rate margin refers to: 100 rows of the table at a rate of 50%.
PREVIEW_COUNT_CELL = (100.0, 0.5)


def default_design(total_rho: float, graduation_share: float = GRADUATION_RHO_SHARE) -> Any:
    """The default zCDP design: a :class:`analytics.estimation.design.Design` over every paid-for measurement.

    Goals are priority weights, so (design.split_total, Lagrange) rho_t is proportional to
    sqrt(w_t): each graduation level gets ``graduation_share`` x its
    :data:`GRADUATION_LEVEL_SHARES` share, and every other paid-for table (1 - ``graduation_share``) x
    its share of :data:`EPSILON_SHARES`. A 'counts' table (one histogram) then draws discrete Gaussian
    noise at rho_t (:attr:`TableSpec.l2_sensitivity`); a pure-epsilon table runs at
    epsilon_t = sqrt(2 rho_t) (Bun & Steinke 2016, Prop. 1.4). Goal names are table names, and
    ``graduation_measurements:<measure>/<level>``.
    Raises ValueError for a total that is not positive or a share outside (0, 1).

    >>> d = default_design(0.462)
    >>> round(d.total_rho, 6), round(sum(r for g, r in zip(d.goals, d.rho) if g.name.startswith("graduation_m")), 4)
    (0.462, 0.1848)
    """
    from analytics.estimation import design

    if not 0 < graduation_share < 1:
        raise ValueError("the graduation share of the total must be strictly between 0 and 1")
    levels = sum(GRADUATION_LEVEL_SHARES.values())
    paid = ("epsilon", "counts", "composed")
    pure = {n: s for n, s in EPSILON_SHARES.items() if TABLES_BY_NAME[n].cost in paid and s > 0}
    pure_total = sum(pure.values())
    n_ref, p_ref = PREVIEW_CELL
    goals = [
        design.TableGoal(
            f"graduation_measurements:{k}",
            weight=(graduation_share * v / levels) ** 2,
            reference_n=n_ref,
            reference_rate=p_ref,
            categories=2,
        )
        for k, v in GRADUATION_LEVEL_SHARES.items()
    ]
    # rho_t is proportional to sqrt(w_t) x L2_t: dividing the weight by k = L2^2 keeps each table's rho at its share
    l2 = {n: TABLES_BY_NAME[n].l2_sensitivity or 1.0 for n in pure}
    count_n, count_rate = PREVIEW_COUNT_CELL
    goals += [
        design.TableGoal(
            n,
            weight=((1 - graduation_share) * s / pure_total / l2[n]) ** 2,
            l2_sensitivity=l2[n],
            **(
                {"reference_n": count_n, "reference_rate": count_rate, "categories": 2}
                if TABLES_BY_NAME[n].cost == "counts"
                else {"pure_parts": TABLES_BY_NAME[n].pure_parts or 1}
            ),
        )
        for n, s in pure.items()
    ]
    return design.split_total(goals, total_rho)


@dataclass(frozen=True)
class ReleasePlan:
    """What each table of a release gets, in the lineage's unit, and the design behind it.

    ``amounts``: table -> what its builder receives (epsilon for pure tables; rho on a zCDP
    lineage or epsilon on a pure one for measurement and 'counts' tables; 0 for post-processing).
    ``epsilons``: table -> the pure epsilon it runs at (0 for Gaussian tables and
    post-processing; on an epsilon lineage, a measurement table's total epsilon).
    ``rhos``: table -> its zCDP cost (zCDP lineages; else empty).
    ``levels``: the measurement levels' amounts. ``design``: the zCDP design (None for epsilon).
    """

    accounting: str
    total_epsilon: float
    delta: float
    amounts: dict[str, float]
    epsilons: dict[str, float]
    rhos: dict[str, float]
    levels: dict[str, float]
    design: Any = None

    @property
    def total_rho(self) -> float:
        return float(sum(self.rhos.values()))


def plan_release(total_epsilon: float, accounting: str = "zcdp", delta: float = RELEASE_DELTA) -> ReleasePlan:
    """Split a release's total across its tables.

    On a ``zcdp`` lineage the total is ``total_epsilon`` at ``delta``, worth
    rho = accounting.epsilon_to_rho(total_epsilon, delta) (Canonne, Kamath & Steinke 2020),
    split by :func:`default_design`. On an ``epsilon`` lineage the total is pure epsilon split
    by :data:`EPSILON_SHARES`, and the graduation levels by :data:`GRADUATION_LEVEL_SHARES`.
    Raises ValueError for a total that is not a positive finite number or an unknown accounting.

    >>> plan = plan_release(6.55)
    >>> round(plan.total_rho, 4), plan.amounts["graduation_by_district"]
    (0.462, 0.0)
    """
    from analytics import accounting as acc

    if not (isinstance(total_epsilon, (int, float)) and 0 < float(total_epsilon) < float("inf")):
        raise ValueError("the release's total epsilon must be a finite number above 0.")
    names = [t.name for t in TABLES]
    if accounting == "epsilon":
        weight = sum(EPSILON_SHARES.values())
        eps = {n: round(total_epsilon * EPSILON_SHARES[n] / weight, 12) for n in names}
        levels = level_plan(eps["graduation_measurements"])
        pure = {n: (e if TABLES_BY_NAME[n].cost != "none" else 0.0) for n, e in eps.items()}
        return ReleasePlan("epsilon", float(total_epsilon), 0.0, eps, pure, {}, levels)
    if accounting != "zcdp":
        raise ValueError(f"accounting must be 'epsilon' or 'zcdp', not {accounting!r}")
    d = default_design(acc.epsilon_to_rho(float(total_epsilon), delta))
    rho_of = dict(zip((g.name for g in d.goals), d.rho, strict=True))
    levels = {k.split(":", 1)[1]: r for k, r in rho_of.items() if k.startswith("graduation_measurements:")}
    rhos = {n: 0.0 for n in names}
    amounts = {n: 0.0 for n in names}
    epsilons = {n: 0.0 for n in names}
    for n in names:
        if n in rho_of:
            rhos[n] = rho_of[n]
            if TABLES_BY_NAME[n].cost in ("counts", "composed"):  # the builder takes rho (Gaussian or parts)
                amounts[n] = rho_of[n]
            else:
                epsilons[n] = amounts[n] = round(math.sqrt(2 * rho_of[n]), 12)
    rhos["graduation_measurements"] = amounts["graduation_measurements"] = sum(levels.values())
    return ReleasePlan("zcdp", float(total_epsilon), delta, amounts, epsilons, rhos, levels, d)


def design_tradeoff(
    epsilons: Sequence[float], cells: Sequence[int] = (20, 50, 100), delta: float = RELEASE_DELTA
) -> pd.DataFrame:
    """Total privacy loss against previewed margins, for a zCDP release at each total (nothing is spent).

    One row per total epsilon (at ``delta``): ``epsilon``, ``delta``, ``rho``,
    ``graduation_rho``, then for each cell size n in ``cells`` the 95% margin (points) of a
    direct district x cohort 4-year rate of n students at 87%, measured at the school and
    district levels of a single-school district (delta method; consistency with the pooled
    and state levels only narrows it), then ``largest_count_table`` and ``largest_count_rho`` (the
    one-row-per-student count table with the most rho, and its rho) and ``count_rate_moe_n100``
    (its margin, points, on a rate of 100 students at 50%: discrete Gaussian, delta method).
    Model-based margins depend on the data (how much districts differ) and are not previewed.

    >>> row = design_tradeoff([6.55]).iloc[0]
    >>> round(float(row["rho"]), 3), bool(row["moe_n50"] > row["moe_n100"])
    (0.462, True)
    """
    from analytics import noise
    from analytics.estimation import design

    rows = []
    for eps in epsilons:
        plan = plan_release(float(eps), "zcdp", delta)
        var = 1.0 / sum(
            1.0 / noise.discrete_gaussian_variance(noise.discrete_gaussian_scale(plan.levels[f"acgr_4yr/{lv}"]))
            for lv in ("school", "district")
        )
        row: dict[str, float | str] = {
            "epsilon": float(eps),
            "delta": delta,
            "rho": plan.total_rho,
            "graduation_rho": plan.rhos["graduation_measurements"],
        }
        for n in cells:
            row[f"moe_n{n}"] = 100 * float(design.expected_rate_moe(math.sqrt(var), n, 0.87))
        name = max((n for n in plan.rhos if TABLES_BY_NAME[n].rows_per_student == 1), key=lambda n: plan.rhos[n])
        r = plan.rhos[name]
        row["largest_count_table"] = name
        row["largest_count_rho"] = r
        sd = math.sqrt(noise.discrete_gaussian_variance(noise.discrete_gaussian_scale(r)))
        row["count_rate_moe_n100"] = 100 * float(design.expected_rate_moe(sd, 100, 0.5))
        rows.append(row)
    return pd.DataFrame(rows)
