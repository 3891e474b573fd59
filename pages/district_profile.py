"""District profile: one district's figures against the state and its peer districts, with trends."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import views
from pages.common import (
    FLAG_WORDS,
    current_release,
    download_csv,
    escape_markdown,
    graduation_view,
    load_release_cached,
    long_table,
    pct,
    pct_moe,
    releases_dir,
    text_cap,
    trend,
    unique_labels,
    url_select,
)

release = current_release()
folder = str(releases_dir())
districts = release.table("districts").sort_values("district_name")
names = dict(
    zip(districts["district_id"], unique_labels(districts["district_name"], districts["district_id"]), strict=True)
)

st.title("District profile")
district = url_select("District", districts["district_id"].tolist(), "district", format_func=names.__getitem__)
info = districts.set_index("district_id").loc[district]
peer_ids = views.peers(release, district)
where = f"{escape_markdown(text_cap(info['county'], 40))} County · {escape_markdown(text_cap(info['locale'], 40))}"
st.caption(
    f"{where} · compared with {len(peer_ids)} peer districts of the same locale and a similar size, and with the state."
)

grad_view = st.radio(
    "Graduation figures", ["3 cohorts pooled", "single cohorts"], horizontal=True, key="grad_view",
    help="Three cohorts pooled is what report cards show for small districts; single cohorts are noisier.",
)  # fmt: skip
grad = graduation_view(folder, release.release_id, "district_id", grad_view)
mine_grad = grad[grad["district_id"] == district]
if grad_view == "3 cohorts pooled":
    window = views.latest_window(mine_grad)
    shown = mine_grad[mine_grad["cohorts"] == window]
    st.markdown(f"**4-year graduation rate, cohorts {window} pooled**")
else:
    cohort = url_select("Cohort", sorted(mine_grad["cohort"].unique()), "cohort", format_func=views.cohort_label)
    shown = mine_grad[mine_grad["cohort"] == cohort]
    st.markdown(f"**4-year graduation rate, cohort {views.cohort_label(cohort)}**")
if len(shown):
    r = shown.iloc[0]
    st.dataframe(
        pd.DataFrame(
            {
                "Figure": ["Direct (what happened)", "Model-based (underlying rate)"],
                "Rate": [pct(r["direct_value"]), pct(r["model_value"])],
                "Margin of error": [pct_moe(r["direct_moe95"]), pct_moe(r["model_moe95"])],
                "Why not usable": [r["direct_reason"], r["model_reason"]],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    other = "model-based" if r["estimate"] == "direct" else "direct"
    st.caption(
        f"Shown in the summary below: the {r['estimate']} figure. {r['estimate_words']} {views.ESTIMATE_WORDS[other]}"
    )

ROWS = [
    ("graduation_by_district_3yr", "acgr_4yr", "graduation_by_cohort", "Graduation, 4-year (latest 3 cohorts)"),
    ("graduation_by_district_3yr", "acgr_5yr", "graduation_by_cohort", "Graduation, 5-year (latest 3 cohorts)"),
    ("proficiency_by_district", "proficiency_rate", "proficiency_by_grade", "Proficient, math (all years)"),
    ("college_by_district", "enrolled_by_oct31", "college_by_cohort", "In college by Oct 31"),
    ("workforce_by_district", "employment_rate", "workforce_by_cohort", "Employed 1 year out (of matched)"),
    ("workforce_by_district", "coverage", "workforce_by_cohort", "Coverage: SSN provided, 1 year out"),
]


@st.cache_data(show_spinner=False, max_entries=16)
def headline_cells(folder: str, release_id: str, table: str, measure: str) -> pd.DataFrame:
    """Every district's figure for one row of the summary (latest window, math, 1 year out), cached per release."""
    t = load_release_cached(folder, release_id).table(table)
    t = t[t["measure"] == measure]
    if "cohorts" in t:  # graduation: the latest window, direct or model-based figure as views chooses
        t = views.shown_estimates(t[t["cohorts"] == views.latest_window(t)])
    if "subject" in t:
        t = t[t["subject"] == "math"]
    if "years_out" in t:
        t = t[t["years_out"] == 1]
    return t


rows, numbers = [], []
for table, measure, _state_table, title in ROWS:
    cells = headline_cells(folder, release.release_id, table, measure)
    mine = cells[cells["district_id"] == district]
    peer = cells[cells["district_id"].isin(peer_ids)]
    peer_ok = peer[peer["flag"] != "unreliable"]
    value = mine["value"].iloc[0] if len(mine) else float("nan")
    rows.append(
        {
            "Measure": title,
            "This district": pct(value),
            "Margin of error": pct_moe(mine["value_moe95"].iloc[0]) if len(mine) else "—",
            "Reliability": FLAG_WORDS.get(mine["flag"].iloc[0], "") if len(mine) else "",
            "Figure": (mine["estimate"].iloc[0] if "estimate" in mine and len(mine) else "direct"),
            "Peer median (reliable peers)": pct(peer_ok["value"].median()) if len(peer_ok) else "—",
            "Why": mine["flag_reason"].iloc[0] if len(mine) else "",
        }
    )
    numbers.append(
        {
            "District id": district,
            "District": names[district],
            "Measure": title,
            "This district (%)": value * 100,
            "Margin of error (95%, ± points)": mine["value_moe95"].iloc[0] * 100 if len(mine) else float("nan"),
            "Reliability": rows[-1]["Reliability"],
            "Peer median of reliable peers (%)": peer_ok["value"].median() * 100 if len(peer_ok) else float("nan"),
            "Why": rows[-1]["Why"],
        }
    )
table = pd.DataFrame(rows)
# wide enough for a noisy figure's words ("164.8% (over 100%: noise)")
wide = st.column_config.TextColumn(width="medium")
st.dataframe(table, hide_index=True, width="stretch", column_config={"This district": wide})
safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(district))[:32]
download_csv(pd.DataFrame(numbers).round(4), f"district_{safe_id}.csv", key="dl_profile")

st.subheader("Graduation trend against the state")
local = graduation_view(folder, release.release_id, "district_id", "single cohorts")
local = local[local["district_id"] == district].assign(series=names[district])
state = release.table("graduation_by_cohort")
state = state[state["measure"] == "acgr_4yr"].assign(series="State", estimate="direct")
both = pd.concat([local, state], ignore_index=True)
st.plotly_chart(
    trend(both, "cohort", "series", "4-year graduation rate (%)", True, "Cohort (year entering grade 9)"),
    width="stretch",
)
st.caption(
    "A single district's cohort is small: where its direct figure is too noisy the trend shows the model-based "
    "figure (the district's underlying rate), so compare the bands, not the dots. A hollow dot is a figure flagged "
    "unreliable (its interval is drawn, with no line to it); a gap is a cohort with no figure. The table says which "
    "figure each cohort shows."
)
with st.expander("Table view and download"):
    long_table(
        both.assign(cohort_label=both["cohort"].map(views.cohort_label)),
        {"series": "Where", "cohort_label": "Cohort", "estimate": "Figure", "denominator": "Students (noisy)"},
        True,
        f"graduation_trend_{safe_id}.csv",
        "dl_trend",
    )

opt = release.table("ssn_collection_by_district").set_index("district_id").loc[district]
st.markdown(
    f"**SSN opt-out**: {pct(opt['optout_rate'])} of families asked declined "
    f"({pct_moe(opt['optout_rate_moe95'])}, {FLAG_WORDS[opt['flag']]}). "
    "Workforce figures here describe only students whose SSN was provided."
)
