"""Researcher table builder: pick a question, see its privacy cost and margins, confirm, download."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from analytics import builder, config, lineage
from analytics.catalog import BuildContext
from analytics.ledger import Ledger, LedgerError
from analytics.validate import Dataset, DataValidationError, load_dataset
from pages.common import csv_bytes, current_release, show_error
from pages.signin import require

user = require("query")
st.title("Table builder")
st.markdown(
    "Build a custom table. Every answer is noisy and costs privacy from **your allocation**; asking the "
    "same question again returns the same answer for free."
)


@st.cache_resource(show_spinner="Loading and validating the dataset")
def _context(folder: str) -> tuple[Dataset, BuildContext]:
    ds = load_dataset(Path(folder))
    # Always DuckDB here, whatever ANALYTICS_ENGINE says: a web request never starts Spark or stages
    # the extract for a cluster (the `query` command takes --engine spark for that).
    return ds, BuildContext(ds.source, engine="duckdb")


try:
    dataset, ctx = _context(str(config.data_dir()))
except DataValidationError as exc:
    show_error(str(exc))
    st.stop()
try:
    ledger = Ledger.default()
    attached = lineage.resolve(ledger, dataset.source, dataset.path)
    status = ledger.status(attached.lineage)
except LedgerError as exc:
    show_error(str(exc))
    st.stop()
allocation, spent = status.allocations.get(user.budget_scope, (0.0, 0.0))
remaining = max(0.0, min(allocation - spent, status.remaining))
unit = "ε" if status.unit == "epsilon" else "ρ"
st.caption(
    f"Data: extract {attached.number} ({attached.label}) of the student population **{attached.lineage}** "
    f"({status.description}). Your allocation: {unit} = {allocation:g}; remaining {unit} = {remaining:g}; one "
    f"query may ask for at most ε = {status.max_query_epsilon:.3g}"
    + (f" ({unit} = {status.max_query:g})." if unit != "ε" else ".")
)
viewed = current_release().manifest.get("lineage")
if viewed != attached.lineage:
    st.warning(
        f"The dashboard is showing a release of another population ({viewed}); this builder queries "
        f"{attached.lineage}, set by the server's ANALYTICS_DATA_DIR."
    )

POPULATION_WORDS = {
    "adjusted_cohort": "Grade-9 cohort (adjusted)",
    "graduates": "High-school graduates",
    "workforce_all": "Cohort students in the workforce years (matched or not)",
    "workforce_matched": "Cohort students matched to wage records (SSN provided)",
    "employed": "Students with qualifying employment",
}
MEASURE_WORDS = {
    "count": "Number of students",
    "rate": "Share of students (rate)",
    "mean": "Average",
    "percentile": "Median and percentiles",
}
DIMENSION_WORDS = {
    "cohort": "Cohort",
    "district_id": "District",
    "years_out": "Years after expected graduation",
    "path": "College path",
    "sex": "Sex",
    "race_ethnicity": "Race and ethnicity",
    "economically_disadvantaged": "Economic disadvantage",
    "english_learner": "English learner",
    "disability": "Disability (IDEA)",
}


def _words(table: dict[str, str]) -> Callable[[str], str]:
    return lambda name: table.get(name, name.replace("_", " ").capitalize())


population = st.selectbox(
    "Population",
    list(builder.POPULATIONS),
    key="population",
    format_func=_words(POPULATION_WORDS),
    help="Who is counted. Descriptions below.",
)
pop = builder.POPULATIONS[population]
st.caption(pop.description)
measure = st.selectbox("Measure", list(builder.MEASURES), key="measure", format_func=_words(MEASURE_WORDS))
outcome = None
if measure == "rate":
    outcome = st.selectbox(
        "Outcome (share of students for whom it is true)",
        list(pop.outcomes) or ["—"],
        key="outcome",
        format_func=lambda o: str(pop.outcomes.get(o, o)).capitalize(),
    )
elif measure in ("mean", "percentile"):
    outcome = st.selectbox(
        "Value",
        list(pop.values) or ["—"],
        key="value",
        format_func=lambda v: str(pop.values[v][2]).capitalize() if v in pop.values else v,
    )
group_by = st.multiselect(
    "Group by (public lists only)",
    list(pop.dimensions),
    default=["cohort"],
    key="group_by",
    format_func=_words(DIMENSION_WORDS),
)
filters: dict[str, tuple[object, ...]] = {}
if "cohort" in pop.dimensions:
    cohorts = st.multiselect("Cohorts (empty: all)", pop.dimensions["cohort"](ctx), key="f_cohort")
    if cohorts:
        filters["cohort"] = tuple(cohorts)
if "years_out" in pop.dimensions:
    years = st.multiselect(
        "Years after expected graduation (empty: 1, 3 and 5; each counts a student again)",
        pop.dimensions["years_out"](ctx),
        key="f_years",
    )
    if years:
        filters["years_out"] = tuple(years)
epsilon = st.number_input(
    "Privacy cost ε",
    min_value=0.01,
    max_value=float(max(status.max_query_epsilon, 0.01)),
    value=float(min(0.25, status.max_query_epsilon)),
    step=0.05,
    key="epsilon",
)

request = builder.TableRequest(
    population, measure, tuple(group_by), float(epsilon), outcome if outcome != "—" else None, filters
)
try:
    checked = request.checked()
except builder.RequestError as exc:
    show_error(f"Not ready: {exc}.")
    st.stop()

st.subheader("Before you run it")
st.markdown(
    f"Cost: **ε = {checked.epsilon:g}** from your allocation (remaining ε = {remaining:g}). "
    f"Each student counts in at most {builder.rows_per_student(checked)} row(s). Expected margins of error "
    "for cells of these sizes (a guess: nothing about the data is read):"
)
st.dataframe(builder.preview(checked), hide_index=True)
confirm = st.checkbox(f"I understand this spends ε = {checked.epsilon:g} unless it was asked before", key="confirm")
if st.button("Run the query", disabled=not confirm, type="primary", key="run"):
    try:
        st.session_state["last_result"] = builder.run(checked, dataset, user, ledger, ctx=ctx)
    except (LedgerError, builder.RequestError) as exc:
        show_error(str(exc))
    else:
        st.rerun()  # so the allocation shown above is the one after this spend

result = st.session_state.get("last_result")
if result is not None:
    st.subheader("Result")
    spent = "the stored answer, free" if result.spend.reused else f"spent {unit} = {result.spend.charged:g}"
    st.success(f"Done: {spent}. Every value has its 95% margin of error and a reliability flag in words.")
    st.dataframe(result.table, hide_index=True, width="stretch")
    buf = io.BytesIO()
    result.table.to_parquet(buf, index=False)
    c1, c2, c3 = st.columns(3)
    c1.download_button("CSV", csv_bytes(result.table), "table.csv", "text/csv", key="dl_csv")
    c2.download_button("Parquet", buf.getvalue(), "table.parquet", "application/octet-stream", key="dl_parquet")
    c3.download_button(
        "JSON sidecar",
        json.dumps(result.sidecar, indent=2, default=str).encode(),
        "table.json",
        "application/json",
        key="dl_json",
    )

st.subheader("Your history")
mine = ledger.history(lineage=attached.lineage, scope=user.budget_scope)
if mine:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When (UTC)": e.created_at[:19].replace("T", " "),
                    "What": "query" if e.kind == "spend" else "allocation set",
                    f"Amount ({unit})": e.charge if e.kind == "spend" else e.amount,
                    "Query": "; ".join(
                        f"{DIMENSION_WORDS.get(k, k.replace('_', ' '))}: "
                        + (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v))
                        for k, v in (e.query or {}).items()
                        if k not in ("kind", "version") and v not in (None, [], {}) and not isinstance(v, dict)
                    )[:200]
                    or "—",
                }
                for e in mine
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("No spends or allocations yet.")
