"""Ledger administration (stewards only): a population's cap, allocations, per-query maximum, and the ledger."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.ledger import Ledger, LedgerError, LedgerTamperedError
from pages.common import current_release, show_error
from pages.signin import require

KIND_WORDS = {
    "lineage": "population registered",
    "cap": "cap changed",
    "allocation": "allocation set",
    "policy": "per-query maximum set",
    "extract": "extract attached",
    "release": "release published",
    "spend": "privacy spent",
}


def spender_words(scope: str | None) -> str:
    """Who spent, in words: public releases, a named researcher, or a steward act."""
    if not scope:
        return ""
    if scope == "public":
        return "public releases"
    return f"researcher {scope.split(':', 1)[1]}" if scope.startswith("researcher:") else scope


user = require("administer")
st.title("Privacy budgets and ledger")

try:
    ledger = Ledger.default()
    names = ledger.lineages()
except LedgerError as exc:
    show_error(str(exc))
    st.stop()
if not names:
    st.info("No student population is registered yet: `python -m analytics lineage register NAME --cap EPSILON ...`.")
    st.stop()
viewed = current_release().manifest.get("lineage")
name = st.selectbox(
    "Student population (lineage)",
    names,
    index=names.index(viewed) if viewed in names else 0,
    help="Defaults to the population of the release shown in the sidebar.",
)
status = ledger.status(name)
unit = "ε" if status.unit == "epsilon" else "ρ"
eps_now, delta_now = status.epsilon_at()
st.caption(f"{status.description}")
c1, c2, c3 = st.columns(3)
c1.metric(f"Cap ({unit})", f"{status.cap:g}", help="The most privacy loss any one student may bear, ever.")
c2.metric(f"Spent by everyone ({unit})", f"{status.spent:g}", help="Public releases and all researchers together.")
c3.metric(f"Left under the cap ({unit})", f"{status.remaining:g}")

st.subheader("Allocations")
st.dataframe(
    pd.DataFrame(
        [
            {"Spender": spender_words(scope), f"Allocated ({unit})": allocated, f"Spent ({unit})": spent}
            for scope, (allocated, spent) in status.allocations.items()
        ],
        columns=["Spender", f"Allocated ({unit})", f"Spent ({unit})"],
    ),
    hide_index=True,
)
st.caption(
    f"Allocations may add up to more than the cap; the cap is checked at every spend. One researcher query may "
    f"cost at most {unit} = {status.max_query:g}."
)

with st.form("set_allocation"):
    st.markdown("**Set an allocation**")
    scope_kind = st.radio("For", ["a researcher", "public releases"], horizontal=True)
    who = st.text_input("Researcher's user name (for a researcher)")
    amount = st.number_input(f"Allocation ({unit})", min_value=0.0, max_value=float(status.cap), value=0.0, step=0.5)
    if st.form_submit_button("Set allocation"):
        scope = "public" if scope_kind == "public releases" else f"researcher:{who.strip()}"
        try:
            ledger.set_allocation(name, scope, float(amount), principal=user.name)
        except (LedgerError, ValueError) as exc:
            show_error(f"Refused: {exc}")
        else:
            st.success(f"{scope}: allocation {unit} = {amount:g}, recorded in the ledger.")

with st.form("set_limits"):
    st.markdown("**Change the cap or the per-query maximum**")
    new_cap = st.number_input(f"Cap ({unit})", min_value=0.0, value=float(status.cap), step=0.5)
    new_max = st.number_input(f"Most one query may cost ({unit})", min_value=0.0, value=float(status.max_query))
    if st.form_submit_button("Save"):
        try:
            if new_cap != status.cap:
                ledger.set_cap(name, float(new_cap), principal=user.name)
            if new_max != status.max_query:
                ledger.set_max_query(name, float(new_max), principal=user.name)
        except (LedgerError, ValueError) as exc:
            show_error(f"Refused: {exc}")
        else:
            st.success("Saved in the ledger.")

st.subheader("Extracts and releases")
st.dataframe(
    pd.DataFrame(
        [{"Extract": x.number, "Label": x.label, "Attached (UTC)": x.attached_at[:10]} for x in status.extracts],
        columns=["Extract", "Label", "Attached (UTC)"],
    ),
    hide_index=True,
)
st.caption("Extracts are attached from the command line: `python -m analytics lineage attach NAME DIR --user YOU`.")

st.subheader("Full ledger of this population")

try:
    head = ledger.verify()
    st.success(f"The ledger verifies: {head.n_entries} entries; chain, seal and anchor intact.")
except LedgerTamperedError as exc:
    show_error(str(exc))
st.dataframe(
    pd.DataFrame(
        [
            {
                "Entry": e.entry_id,
                "When (UTC)": e.created_at[:19].replace("T", " "),
                "Kind": KIND_WORDS.get(e.kind, e.kind),
                "Who": e.principal,
                "Spender": spender_words(e.scope),
                f"Spent ({unit})": f"{e.charge:g}" if e.kind == "spend" and e.charge is not None else "",
                f"Limit set ({unit})": f"{e.amount:g}"
                if e.kind in ("lineage", "cap", "allocation", "policy") and e.amount is not None
                else "",
                "What": (e.query or {}).get("table")
                or (e.query or {}).get("population")
                or e.detail.get("label")
                or e.detail.get("release_id")
                or "",
            }
            for e in ledger.history(lineage=name)
        ]
    ),
    hide_index=True,
    width="stretch",
)
