"""The researcher table builder: custom noisy tables, paid from a researcher's allocation.

A researcher picks a population, a measure (count, rate, bounded mean or
percentiles), group-by dimensions and filters from public lists, and an
epsilon. :func:`preview` tells the cost and the margin of error to expect
before anything is spent; :func:`run` spends from the researcher's allocation
on the extract's student population (ledger scope ``researcher:<name>`` on the
extract's lineage), or returns the stored answer free when the same researcher
asked the same question of the same extract before, and refuses, spending
nothing, when the request is malformed, above the lineage's per-query maximum,
or beyond the allocation or the lineage's cap. The same API backs the page and
the CLI (``python -m analytics query``).

One question has one key: :meth:`TableRequest.canonical` sorts the group-by
dimensions and filters and replaces every filter value by its spelling in the
public list (``"true"``, ``1`` and ``True`` are one value), so re-wording a
request never buys fresh noise.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analytics import lineage, privacy, publiclists, queries, schema
from analytics.auth import User
from analytics.catalog import BuildContext
from analytics.ledger import Ledger, SpendResult
from analytics.metrics import workforce
from analytics.validate import Dataset

MEASURES: tuple[str, ...] = ("count", "rate", "mean", "percentile")
Domain = Callable[[BuildContext], list[object]]

_SUBGROUP_DIMS: dict[str, Domain] = {
    "sex": lambda _c: list(schema.SEXES),
    "race_ethnicity": lambda _c: list(schema.RACE_ETHNICITY),
    "economically_disadvantaged": lambda _c: [True, False],
    "english_learner": lambda _c: [True, False],
    "disability": lambda _c: [True, False],
}
_COHORT: dict[str, Domain] = {"cohort": lambda _c: list(publiclists.COHORTS)}
_DISTRICT: dict[str, Domain] = {"district_id": lambda c: list(c.lists.district_ids)}
_YEARS_OUT: dict[str, Domain] = {"years_out": lambda _c: list(workforce.YEARS_OUT)}
_PATH: dict[str, Domain] = {"path": lambda _c: list(workforce.PATHS)}


@dataclass(frozen=True)
class Population:
    """A set of students (or student-years) a researcher can tabulate."""

    name: str
    description: str
    rows: Callable[[BuildContext], ir.Table]
    dimensions: Mapping[str, Domain]
    outcomes: Mapping[str, str]
    values: Mapping[str, tuple[float, float, str]]
    #: the dimension along which a student has several rows (its domain size bounds rows per student)
    repeats_along: str | None = None


def _cohort_rows(ctx: BuildContext) -> ir.Table:
    c = ctx.cohort.rename(district_id="acgr_district_id")
    return c.mutate(
        graduated_4yr=c["acgr_category"] == "grad4", graduated_5yr=c["acgr_category"].isin(["grad4", "grad5"])
    )


def _graduate_rows(ctx: BuildContext) -> ir.Table:
    g = ctx.college.rename(district_id="acgr_district_id")
    return g.mutate(
        enrolled_by_oct31=g["category"].startswith("fall"), enrolled_within_16_months=g["category"] != "none"
    )


def _work_rows(ctx: BuildContext) -> ir.Table:
    w = ctx.workforce.rename(district_id="acgr_district_id")
    return w.mutate(
        employed=w["category"].isin(["qualifying_part", "qualifying_full"]),
        any_wages=w["category"].isin(["some_wages", "qualifying_part", "qualifying_full"]),
    )


def _matched_rows(ctx: BuildContext) -> ir.Table:
    w = _work_rows(ctx)
    return w.filter(w["matched"])


def _employed_rows(ctx: BuildContext) -> ir.Table:
    w = _work_rows(ctx)
    return w.filter(w["employed"])


POPULATIONS: dict[str, Population] = {
    p.name: p
    for p in (
        Population(
            "adjusted_cohort",
            "Students of a grade-9 cohort, adjusted (ESEA); attributed district.",
            _cohort_rows,
            {**_COHORT, **_DISTRICT, **_SUBGROUP_DIMS},
            {
                "graduated_4yr": "diploma within 4 years",
                "graduated_5yr": "diploma within 5 years (denominator: the 4-year adjusted cohort)",
            },
            {},
        ),
        Population(
            "graduates",
            "Cohort students with a regular diploma within 5 years.",
            _graduate_rows,
            {**_COHORT, **_DISTRICT, **_SUBGROUP_DIMS},
            {
                "enrolled_by_oct31": "enrolled by October 31 after graduating",
                "enrolled_within_16_months": "enrolled within 16 months",
            },
            {},
        ),
        Population(
            "workforce_all",
            "Adjusted-cohort students 1, 3 and 5 years after expected graduation (matched or not).",
            _work_rows,
            {**_COHORT, **_YEARS_OUT, **_DISTRICT, **_PATH, **_SUBGROUP_DIMS},
            {"matched": "SSN provided, so findable in wage records (coverage)"},
            {},
            "years_out",
        ),
        Population(
            "workforce_matched",
            "As workforce_all, only students whose SSN was provided.",
            _matched_rows,
            {**_COHORT, **_YEARS_OUT, **_DISTRICT, **_PATH, **_SUBGROUP_DIMS},
            {"employed": "2+ quarters with wages and $3,000+ in the year", "any_wages": "any wages in the year"},
            {"earnings_2024": (0.0, 100_000.0, "annual wages, 2024 dollars (zero when none)")},
            "years_out",
        ),
        Population(
            "employed",
            "Matched students with qualifying employment in the year.",
            _employed_rows,
            {**_COHORT, **_YEARS_OUT, **_DISTRICT, **_PATH, **_SUBGROUP_DIMS},
            {},
            {"earnings_2024": (0.0, 100_000.0, "annual wages, 2024 dollars")},
            "years_out",
        ),
    )
}


class RequestError(ValueError):
    """A table request that cannot be answered as asked; the message says what to change."""


#: No request may ask for more than this, whatever the lineage's policy (which is usually far lower).
MAX_EPSILON_ANY_QUERY = 2.0
#: Below this, a count's 95% margin is tens of thousands of students: refused as pure noise.
MIN_EPSILON_ANY_QUERY = 1e-4


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RequestError(f"the {name} must be a number")
    number = float(value)
    if not np.isfinite(number):
        raise RequestError(f"the {name} must be a finite number")
    return number


def _canonical_text(value: object) -> str:
    """One spelling per public-list value: booleans and their words, numbers without trailing zeros."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    lowered = text.lower()
    if lowered in ("true", "yes", "y"):
        return "true"
    if lowered in ("false", "no", "n"):
        return "false"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if np.isfinite(number) and number.is_integer() else text


@dataclass(frozen=True)
class TableRequest:
    """What a researcher asks for. Everything here is public: no data value chooses anything."""

    population: str
    measure: str
    group_by: tuple[str, ...]
    epsilon: float
    outcome: str | None = None
    filters: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    lower: float | None = None
    upper: float | None = None
    quantiles: tuple[float, ...] = (0.25, 0.5, 0.75)

    def checked(self) -> TableRequest:
        """Validate against the population's public lists; return a normalised request."""
        pop = POPULATIONS.get(self.population)
        if pop is None:
            raise RequestError(f"population must be one of {', '.join(POPULATIONS)}, not {self.population!r}")
        if self.measure not in MEASURES:
            raise RequestError(f"measure must be one of {', '.join(MEASURES)}, not {self.measure!r}")
        if not self.group_by:
            raise RequestError("pick at least one group-by dimension")
        for d in (*self.group_by, *self.filters):
            if d not in pop.dimensions:
                raise RequestError(f"{d!r} is not a dimension of {pop.name}; use {', '.join(pop.dimensions)}")
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float)):
            raise RequestError("epsilon must be a number")
        if not (np.isfinite(self.epsilon) and MIN_EPSILON_ANY_QUERY <= self.epsilon <= MAX_EPSILON_ANY_QUERY):
            raise RequestError(
                f"epsilon must be above 0: between {MIN_EPSILON_ANY_QUERY:g} (below it every answer is pure noise) "
                f"and {MAX_EPSILON_ANY_QUERY:g} (the steward's per-query maximum may be lower)"
            )
        lower, upper = self.lower, self.upper
        if self.measure == "rate" and self.outcome not in pop.outcomes:
            raise RequestError(f"a rate needs an outcome of {pop.name}: {', '.join(pop.outcomes) or 'none'}")
        if self.measure in ("mean", "percentile"):
            if self.outcome is None or self.outcome not in pop.values:
                raise RequestError(f"a {self.measure} needs a value of {pop.name}: {', '.join(pop.values) or 'none'}")
            lo, hi, _ = pop.values[self.outcome]
            lower = lo if lower is None else _finite("lower bound", lower)
            upper = hi if upper is None else _finite("upper bound", upper)
            if not lo <= lower < upper <= hi:
                raise RequestError(
                    f"the bounds of {self.outcome} must satisfy {lo:g} <= lower < upper <= {hi:g} (its public range)"
                )
        if self.measure == "count" and self.outcome is not None:
            raise RequestError("a count takes no outcome")
        quantiles: tuple[float, ...] = ()
        if self.measure == "percentile":
            quantiles = tuple(sorted({_finite("quantile", q) for q in self.quantiles}))
            if not quantiles or len(quantiles) > 9 or not all(0 < q < 1 for q in quantiles):
                raise RequestError("quantiles must be 1 to 9 numbers strictly between 0 and 1 (0.5 is the median)")
        if len(set(self.group_by)) != len(self.group_by):
            raise RequestError("each group-by dimension may be named once")
        for d, values in self.filters.items():
            if not isinstance(values, (tuple, list)) or not values:
                raise RequestError(f"filter {d!r} needs at least one value")
        filters = {k: tuple(sorted(v, key=str)) for k, v in sorted(self.filters.items())}
        return TableRequest(
            self.population,
            self.measure,
            tuple(sorted(self.group_by)),
            float(self.epsilon),
            self.outcome,
            filters,
            lower,
            upper,
            quantiles,
        )

    def canonical(self, ctx: BuildContext) -> TableRequest:
        """:meth:`checked`, with every filter value replaced by its spelling in the public list.

        Raises:
            RequestError: a filter value is not in the dimension's public list.
        """
        req = self.checked()
        pop = POPULATIONS[req.population]
        filters: dict[str, tuple[Any, ...]] = {}
        for d, values in req.filters.items():
            domain = pop.dimensions[d](ctx)
            by_text = {_canonical_text(v): v for v in domain}
            chosen = []
            for v in values:
                match = by_text.get(_canonical_text(v))
                if match is None:
                    raise RequestError(f"filter {d!r}: {str(v)[:40]!r} is not in the public list of {d}")
                chosen.append(match)
            filters[d] = tuple(sorted(set(chosen), key=str))
        return TableRequest(
            req.population,
            req.measure,
            req.group_by,
            req.epsilon,
            req.outcome,
            filters,
            req.lower,
            req.upper,
            req.quantiles,
        )

    def query(self) -> dict[str, Any]:
        """The normalised question put to the ledger."""
        d = asdict(self.checked())
        d["filters"] = {
            k: [v if isinstance(v, (bool, int, float, str)) else str(v) for v in vals]
            for k, vals in d["filters"].items()
        }
        return {"kind": "researcher_table", "version": 1, **d}


def _domains(req: TableRequest, ctx: BuildContext) -> dict[str, list[object]]:
    pop = POPULATIONS[req.population]
    out = {}
    for d in req.group_by:
        full = pop.dimensions[d](ctx)
        allowed = req.filters.get(d)
        out[d] = [v for v in full if allowed is None or v in allowed or str(v) in map(str, allowed)]
    return out


def rows_per_student(req: TableRequest) -> int:
    """How many rows one student can contribute to the table (the sensitivity multiplier)."""
    pop = POPULATIONS[req.population]
    if pop.repeats_along is None:
        return 1
    kept = req.filters.get(pop.repeats_along)
    return len(kept) if kept else len(workforce.YEARS_OUT)


def preview(req: TableRequest, cell_sizes: Sequence[int] = (20, 100, 1000)) -> pd.DataFrame:
    """Cost and expected 95% margin of error for hypothetical cells, before anything is spent.

    Uses no data: the cell sizes are the researcher's guesses.
    """
    req = req.checked()
    k = rows_per_student(req)
    rows = []
    for n in cell_sizes:
        if req.measure == "count":
            moe = privacy.expected_moe95("count", req.epsilon, n, max_cells_per_student=k)
            shown = f"± {moe:.0f} students"
        elif req.measure == "rate":
            moe = privacy.expected_moe95("rate", req.epsilon / k, n)
            shown = f"± {moe * 100:.1f} points (at a 50% rate)"
        else:
            lo, hi = float(req.lower or 0.0), float(req.upper or 1.0)
            moe = privacy.expected_moe95("mean", req.epsilon / k, n, lower=lo, upper=hi)
            shown = f"± {moe:,.1f} (mean of values in [{lo:g}, {hi:g}]; a median is wider)"
        rows.append({"students in a cell": n, "epsilon": req.epsilon, "expected 95% margin": shown})
    return pd.DataFrame(rows)


def compute(req: TableRequest, ctx: BuildContext, seed: privacy.Seed = None) -> pd.DataFrame:
    """The noisy table for a checked request (spends nothing by itself: call :func:`run`)."""
    pop = POPULATIONS[req.population]
    data = pop.rows(ctx)
    for d, allowed in req.filters.items():  # values respelled from the public lists by TableRequest.canonical
        data = data.filter(data[d].isin(list(allowed)))
    domains = _domains(req, ctx)
    k = rows_per_student(req)
    if req.measure == "count":
        return queries.noisy_count(data, domains, req.epsilon, max_cells_per_student=k, seed=seed)
    if req.measure == "rate":
        return queries.noisy_rate(data, domains, str(req.outcome), req.epsilon, seed=seed, max_rows_per_student=k)
    assert req.lower is not None and req.upper is not None
    if req.measure == "mean":
        return queries.noisy_mean(
            data, domains, str(req.outcome), req.lower, req.upper, req.epsilon, seed=seed, max_rows_per_student=k
        )
    edges = tuple(float(x) for x in np.linspace(req.lower, req.upper, 21))
    return queries.noisy_percentiles(
        data,
        domains,
        str(req.outcome),
        privacy.Bins(edges),
        req.quantiles,
        req.epsilon,
        seed=seed,
        max_rows_per_student=k,
    )


@dataclass(frozen=True)
class TableResult:
    """A researcher's noisy table and what it cost."""

    table: pd.DataFrame
    sidecar: dict[str, Any]
    spend: SpendResult


def run(
    req: TableRequest,
    dataset: Dataset,
    user: User,
    ledger: Ledger | None = None,
    seed: privacy.Seed = None,
    ctx: BuildContext | None = None,
) -> TableResult:
    """Answer a request from ``user``'s allocation on the extract's lineage (or from the stored answer, free).

    Args:
        req: The request; it is checked and canonicalised here.
        dataset: The loaded extract; it must be attached to a lineage.
        user: The authenticated researcher (or steward) asking; charged to ``researcher:<name>``.
        ledger: The privacy ledger (default :meth:`Ledger.default`).
        seed: Tests only, with a ledger made with ``allow_seeded_noise=True``.
        ctx: A build context over ``dataset`` (reused by the page between queries).

    Raises:
        RequestError: the request is malformed; nothing was spent.
        LineageError: the extract is attached to no lineage; nothing was spent.
        BudgetExceededError: above the per-query maximum, the allocation or the cap; nothing was spent.
    """
    ledger = ledger or Ledger.default()
    if seed is not None and not ledger.allow_seeded_noise:
        raise ValueError("a seed is for tests only: pass a test ledger made with allow_seeded_noise=True.")
    own = ctx is None
    ctx = ctx or BuildContext(dataset.source)
    try:
        return _run(req, dataset, user, ledger, seed, ctx)
    finally:
        if own:
            ctx.close()


def _run(
    req: TableRequest, dataset: Dataset, user: User, ledger: Ledger, seed: privacy.Seed, ctx: BuildContext
) -> TableResult:
    req = req.canonical(ctx)
    try:
        dataset.extract.require_declared(str(dataset.path))
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    attached = lineage.resolve(ledger, dataset.source, dataset.path)

    def answer() -> bytes:
        buf = io.BytesIO()
        compute(req, ctx, seed).to_parquet(buf, index=False)
        return buf.getvalue()

    spend = ledger.spend_or_reuse(
        principal=user.name,
        lineage=attached.lineage,
        extract_id=attached.extract_id,
        scope=user.budget_scope,
        query=req.query(),
        epsilon=req.epsilon,
        compute=answer,
    )
    table = pd.read_parquet(io.BytesIO(spend.answer))
    sidecar = {
        "query": req.query(),
        "charged_now": spend.charged,
        "epsilon_of_answer": req.epsilon,
        "reused_stored_answer": spend.reused,
        "mechanism": "two-sided geometric (discrete Laplace) counts from OpenDP's exact sampler; diffprivlib Snapping "
        "sums for means; PSEO noisy histogram for percentiles",
        "rows_per_student": rows_per_student(req),
        "bounds": {"lower": req.lower, "upper": req.upper},
        "lineage": attached.lineage,
        "extract": {"number": attached.number, "label": attached.label},
        "ledger_entry_id": spend.entry_id,
        "researcher": user.name,
        "answered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit_of_privacy": "student",
        "margins": "95% margins of error cover the privacy noise only",
    }
    return TableResult(table, sidecar, spend)


def write_outputs(result: TableResult, out: Path) -> dict[str, Path]:
    """Write the table as CSV and Parquet with a JSON sidecar: ``<out>.csv``, ``.parquet``, ``.json``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out.with_suffix(".csv"), "parquet": out.with_suffix(".parquet"), "json": out.with_suffix(".json")}
    result.table.to_csv(paths["csv"], index=False)
    result.table.to_parquet(paths["parquet"], index=False)
    paths["json"].write_text(json.dumps(result.sidecar, indent=2, default=str), encoding="utf-8")
    return paths
