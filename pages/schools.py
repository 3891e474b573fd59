"""School effectiveness: graduation, proficiency and growth by school, with intervals that show overlap."""

from __future__ import annotations

import streamlit as st

from analytics import views
from pages.common import caterpillar, current_release, escape_markdown, long_table, text_cap, unique_labels, url_select

release = current_release()
schools = release.table("schools")
districts = release.table("districts")
names = schools.merge(districts[["district_id", "district_name", "county"]], on="district_id")
names = names.assign(
    label=unique_labels(
        names["school_name"].map(lambda v: text_cap(v, 50))
        + " — "
        + names["district_name"].map(lambda v: text_cap(v, 40)),
        names["school_id"],
        limit=92,
    )
)

st.title("School effectiveness")
st.markdown(
    "Schools sorted by their figure, each with its 95% interval. Where two intervals overlap, the data "
    "cannot tell the schools apart. Hollow grey dots are unreliable: small schools or wide margins."
)

MEASURES = {
    "Graduation rate, 4-year (3 cohorts pooled)": ("graduation_by_school_3yr", "acgr_4yr", True),
    "Graduation rate, 4-year (single cohorts)": ("graduation_by_school", "acgr_4yr", True),
    "Proficiency rate (all years)": ("proficiency_by_school", "proficiency_rate", True),
    "Median growth percentile": ("growth_by_school", "median_growth_percentile", False),
    "Value-added, shrunk (scale points)": ("growth_by_school", "value_added_points_eb", False),
}
c1, c2, c3 = st.columns(3)
with c1:
    choice = url_select("Measure", list(MEASURES), "measure")
table_name, measure, rate = MEASURES[choice]
t = release.table(table_name)
t = views.shown_estimates(t[t["measure"] == measure])
t = t.merge(names[["school_id", "label", "county", "district_id"]], on="school_id")
with c2:
    counties = ["All counties", *sorted(districts["county"].astype(str).unique())]
    county = url_select("County", counties, "county")
if county != "All counties":
    t = t[t["county"] == county]
with c3:
    if "cohorts" in t:
        t = t[t["cohorts"] == views.latest_window(t)]
        st.caption(f"Cohorts {views.latest_window(t)}")
    if "cohort" in t:
        cohort = url_select(
            "Cohort", sorted(t["cohort"].unique()), "cohort", default=2018, format_func=views.cohort_label
        )
        t = t[t["cohort"] == cohort]
    if "subject" in t:
        subject = url_select(
            "Subject", ["math", "ela"], "subject", format_func=lambda s: s.upper() if s == "ela" else s.title()
        )
        t = t[t["subject"] == subject]

unit = "%" if rate else ("growth percentile" if measure == "median_growth_percentile" else "scale points")
state = t.loc[t["flag"] == "reliable", "value"].median() if measure != "value_added_points_eb" else 0.0
st.caption(
    f"{len(t)} schools · dashed line: median of the reliable schools shown"
    + (" (value-added is relative to the state, 0)" if measure == "value_added_points_eb" else "")
)
if measure == "value_added_points_eb":
    growth = release.table("growth_by_school")
    in_view = growth["school_id"].isin(t["school_id"]) & (growth["subject"] == subject)
    st.info(
        "**What the shrunk figure is.** "
        + escape_markdown(views.explain(measure))
        + " It is each school's measured value-added multiplied by the share of it the data can trust, which "
        "is small where a school's figure is mostly privacy noise. "
        + escape_markdown(views.value_added_words(growth[in_view]))
    )
if "model_value" in t:
    n_model = int((t["estimate"] == "model-based").sum())
    st.caption(
        f"{len(t) - n_model} direct and {n_model} model-based figures. " + " ".join(views.ESTIMATE_WORDS.values())
    )
# value-added is relative to the state and can be negative: its intervals are not cut at 0
reach = float((t["value"].abs() + t["value_moe95"]).max()) if measure.startswith("value_added") and len(t) else 0.0
st.plotly_chart(
    caterpillar(
        t,
        "label",
        unit,
        rate,
        reference=state,
        reference_label="Median",
        lower=-reach if measure.startswith("value_added") else None,
    ),
    width="stretch",
)
with st.expander("Table view and download"):
    long_table(
        t.sort_values("value", ascending=False),
        {"label": "School", "estimate": "Figure", "n_students": "Students (noisy)"},
        rate,
        f"schools_{measure}.csv",
        "dl_schools",
    )
