"""Ledger administration (stewards only): allocations, the public budget, and the full ledger."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import config
from analytics.ledger import Ledger, LedgerTamperedError
from analytics.validate import validate_dataset
from pages.signin import require

user = require("administer")
st.title("Privacy budgets and ledger")
report = validate_dataset(config.data_dir())
if report.fingerprint is None:
    st.error(report.text())
    st.stop()
fp = report.fingerprint
ledger = Ledger.default()
st.caption(
    f"Dataset {config.data_dir()} · fingerprint {fp[:16]} · total privacy loss so far "
    f"ε = {ledger.total_spent(fp).epsilon:g}"
)

st.subheader("Set a budget")
with st.form("set_budget"):
    scope_kind = st.radio("Budget", ["researcher allocation", "public releases"], horizontal=True)
    name = st.text_input("Researcher name (for an allocation)")
    epsilon = st.number_input("Total ε", min_value=0.0, max_value=100.0, value=1.0, step=0.5)
    if st.form_submit_button("Set"):
        scope = "public" if scope_kind == "public releases" else f"researcher:{name.strip()}"
        try:
            ledger.set_budget(scope, fp, float(epsilon), set_by=user.name)
            st.success(f"{scope}: budget ε = {epsilon:g}, recorded in the ledger.")
        except ValueError as exc:
            st.error(f"Refused: {exc}")

scopes = sorted({e.scope for e in ledger.history(dataset_fingerprint=fp)})
st.subheader("Budgets")
st.dataframe(
    pd.DataFrame(
        [
            {
                "Budget": s,
                "Total ε": ledger.budget(s, fp),
                "Spent ε": ledger.spent(s, fp),
                "Remaining ε": ledger.remaining(s, fp),
            }
            for s in scopes
        ]
    ),
    hide_index=True,
)

st.subheader("Full ledger")
try:
    head = ledger.verify()
    st.success(f"The hash chain is intact: {head.n_entries} entries, head {head.head_hash[:16]}.")
except LedgerTamperedError as exc:
    st.error(str(exc))
entries = ledger.history(dataset_fingerprint=fp)
st.dataframe(
    pd.DataFrame(
        [
            {
                "Id": e.entry_id,
                "When (UTC)": e.created_at[:19].replace("T", " "),
                "Kind": e.kind,
                "Who": e.principal,
                "Budget": e.scope,
                "ε": e.epsilon if e.kind == "spend" else e.epsilon_total,
                "What": (e.query or {}).get("table") or (e.query or {}).get("population") or "",
                "Hash": e.entry_hash[:12],
            }
            for e in entries
        ]
    ),
    hide_index=True,
    width="stretch",
)
