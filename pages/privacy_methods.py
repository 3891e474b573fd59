"""Privacy and methods: the release's manifest in words, the ledger of spends, and what each flag means."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import privacy, views
from analytics.ledger import Ledger, LedgerError, LineageError
from pages.common import FLAG_WORDS, current_release, show_error

release = current_release()
m = release.manifest
loss = m["lineage_privacy_loss"]

st.title("Privacy and methods")
st.markdown(
    f"""
**How the figures are protected.** Every number on these pages is computed from student records and
then has random noise added (differential privacy), so that no figure, and no combination of figures,
reveals whether any one student is in the data. The protection is counted per **student**: each
student's rows in every table together count as one.

This release ({m["label"]}) spent a privacy loss of **ε = {m["epsilon_total"]:g}**. Privacy loss is counted
per **student population** (here: {m["dataset_description"]}), over every extract, release and researcher
query together. When this release was published, the students of this population had borne at most
**ε = {loss["epsilon"]:.3g}** in all, under a **cap of {views.cap_words(loss)}** that no spender can pass.
Asking the same question again returns the same published answer and costs nothing, so refreshing or
downloading never weakens the protection.

**Margins of error.** Every figure has a 95% margin of error: the range within which the noise-free
figure lies 95 times out of 100. It covers the privacy noise only; it is not a sampling margin, and it
does not cover the effect of capping extreme values (stated as bounds below).
"""
)

st.subheader("What each table cost")
zcdp = m.get("release_privacy_loss", {}).get("unit") == "rho"
rows = []
for info in m["tables"].values():
    cell_noise = info.get("noise", {}).get("moe95_per_cell")
    derived = info.get("derived_from")
    cost = float(info.get("rho") or 0.0) if zcdp else float(info.get("epsilon") or 0.0)
    rows.append(
        {
            "Table": info["title"],
            f"Privacy loss ({'ρ' if zcdp else 'ε'})": f"{cost:.3g}" if not derived else f"0 (from {derived[0]})",
            "Noise per count (±, 95%)": "—" if cell_noise is None else f"{float(cell_noise):.0f}",
            "Each student counts at most": str(info.get("contribution_bound", "—")),
            "Noise": info.get("mechanism", "none (public list)"),
            "Value bounds": ", ".join(f"{k}: {v}" for k, v in info.get("bounds", {}).items()) or "—",
            "Rows": info["rows"],
        }
    )
st.dataframe(pd.DataFrame(rows).sort_values("Table"), hide_index=True, width="stretch", height=560)
st.caption(
    "ρ (rho) is the zero-concentrated measure of privacy loss: the tables' ρ add up to the release's total, "
    "stated above as ε at δ. Post-processing tables (computed from other published tables) cost nothing."
    if zcdp
    else "Pure ε: the tables' ε add up to the release's total."
)


st.subheader("What the reliability flags mean")
st.markdown(
    f"""
- **{FLAG_WORDS["reliable"]}**: at least about {privacy.SMALL_CELL_STUDENTS} students, and a margin of error
  within {privacy.UNRELIABLE_RATE_MOE * 100:.0f} percentage points for a rate (within
  {privacy.UNRELIABLE_RELATIVE_MOE * 100:.0f}% of a count, {privacy.UNRELIABLE_RELATIVE_MOE_AMOUNT * 100:.0f}%
  of an amount).
- **{FLAG_WORDS["rough"]}**: fewer than about {privacy.SMALL_CELL_STUDENTS} students; the figure is shown but
  small groups swing from year to year.
- **{FLAG_WORDS["unreliable"]}**: the margin of error is wider than the limits above; the figure is shown,
  drawn hollow and grey, but should not be compared with others.

Unlike the usual rule of hiding groups under 10 students, no figure is hidden: small districts are
published with noise and a flag, so the reader sees both the figure and how far to trust it.
"""
)

st.subheader("Margin of error by group size at this release's settings")
eps_rate = release.count_noise("ssn_collection_by_district")
sizes = [20, 100, 1000]
st.dataframe(
    pd.DataFrame(
        {
            "Students in the group": sizes,
            "Count: ± students": [privacy.expected_moe95("count", eps_rate, n) for n in sizes],
            "Rate near 50%: ± points": [round(privacy.expected_moe95("rate", eps_rate, n) * 100, 1) for n in sizes],
            "Rate near 10%: ± points": [
                round(privacy.expected_moe95("rate", eps_rate, n, rate=0.1) * 100, 1) for n in sizes
            ],
        }
    ),
    hide_index=True,
)
_ssn = m["tables"]["ssn_collection_by_district"]
st.caption(
    f"For a table that spends ρ = {float(_ssn.get('rho') or 0):.3g} (discrete Gaussian noise), as the district "
    "opt-out table does."
    if eps_rate.kind == "gaussian"
    else f"For a table that spends ε = {float(_ssn['epsilon']):.3g}, as the district opt-out table does."
)

st.subheader("The privacy ledger of this student population")
try:
    ledger = Ledger.default()
    status = ledger.status(m["lineage"])
    entries = ledger.history(lineage=m["lineage"])
except LineageError:
    st.info("This machine's ledger does not hold this population: the release was built elsewhere.")
except LedgerError as exc:
    show_error(f"The ledger cannot be read: {exc}")
else:
    eps_now, delta_now = status.epsilon_at()
    researchers = sum(spent for scope, (_, spent) in status.allocations.items() if scope.startswith("researcher:"))
    st.markdown(
        f"Now: **ε = {eps_now:.3g}** (at δ = {delta_now:.0e}) borne by each student at most. Counted as "
        f"{status.unit}: {status.spent:.3g} spent of a cap of {status.cap:.3g} ({status.remaining:.3g} left); "
        f"public releases {status.allocations.get('public', (0.0, 0.0))[1]:.3g} {status.unit}, researchers' tables "
        f"together {researchers:.3g} {status.unit}."
    )
    kinds = {
        "lineage": "population registered",
        "cap": "cap changed",
        "allocation": "allocation set",
        "policy": "per-query maximum set",
        "extract": "extract attached",
        "release": "release published",
    }
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Entry": e.entry_id,
                    "When (UTC)": e.created_at[:19].replace("T", " "),
                    "What": (e.query or {}).get("table") or (e.query or {}).get("population") or "table"
                    if e.kind == "spend"
                    else kinds[e.kind],
                    "Spender": "public releases"
                    if e.scope == "public"
                    else ("a researcher" if (e.scope or "").startswith("researcher:") else "steward"),
                    f"Spent ({status.unit})": f"{e.charge:g}" if e.kind == "spend" and e.charge is not None else "",
                    f"Limit set ({status.unit})": f"{e.amount:g}"
                    if e.kind in ("lineage", "cap", "allocation", "policy") and e.amount is not None
                    else "",
                }
                for e in entries
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Every entry chains the hash of the one before it and the ledger is sealed with a key kept apart from it; "
        f"this release is ledger entry {m['ledger']['entry_id']}."
    )

st.caption(f"Release {release.release_id}. Code version {m['code_version']}.")
