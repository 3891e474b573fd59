"""Overview: statewide headline figures with trends, what changed, and how the figures are protected."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import views
from pages.common import current_release, long_table, pct, pct_moe, trend

release = current_release()
grad = release.table("graduation_by_cohort")
college = release.table("college_by_cohort")
work = release.table("workforce_by_cohort")
prof = release.table("proficiency_by_year")
ssn = release.table("ssn_collection_by_year")

st.title("Maine students from school to work")
st.markdown(
    "Statewide figures from the linked K-12, college and wage records. Every figure carries privacy "
    "noise; **±** gives its 95% margin of error. A cohort is the year students first entered grade 9."
)

headlines = [
    ("4-year graduation rate", views.latest(grad, "acgr_4yr", "cohort"), "cohort"),
    ("In college by Oct 31 after graduating", views.latest(college, "enrolled_by_oct31", "cohort"), "cohort"),
    (
        "Employed 1 year after expected graduation",
        views.latest(work, "employment_rate", "cohort", years_out=1),
        "cohort",
    ),
    ("Math tests at proficient", views.latest(prof, "proficiency_rate", "school_year", subject="math"), "school_year"),
]
cols = st.columns(len(headlines) + 1)
for col, (title, rows, by) in zip(cols, headlines, strict=False):
    if rows.empty:
        col.metric(title, "—")
        continue
    last = rows.iloc[-1]
    moved = views.change(rows)
    when = (
        views.cohort_label(int(last[by]))
        if by == "cohort"
        else f"school year {int(last[by]) - 1}-{str(int(last[by]))[2:]}"
    )
    col.metric(title, pct(last["value"]), help=f"{when}; margin of error {pct_moe(last['value_moe95'])}.")
    col.caption(f"{when}: {pct_moe(last['value_moe95'])}. Since the previous one: {moved['words']}.")
first = ssn.iloc[0]
cols[-1].metric(
    "Families declining to give the SSN, 2010-11",
    pct(first["optout_rate"]),
    help=f"Margin of error {pct_moe(first['optout_rate_moe95'])}.",
)
cols[-1].caption(
    f"{pct_moe(first['optout_rate_moe95'])}. Workforce figures cover only students whose SSN was provided."
)

st.subheader("Graduation by cohort")
g = grad.assign(series=grad["measure"].map(views.label), cohort_label=grad["cohort"].map(views.cohort_label))
st.plotly_chart(
    trend(g, "cohort", "series", "% of the adjusted cohort", True, "Cohort (year entering grade 9)"), width="stretch"
)
with st.expander("Table view and download"):
    long_table(
        g,
        {"cohort_label": "Cohort", "series": "Measure", "denominator": "Students (noisy)"},
        True,
        "graduation_by_cohort.csv",
        "dl_grad",
    )

st.subheader("College and work after high school")
years = (
    st.segmented_control(
        "Years after expected graduation",
        [1, 3, 5],
        default=1,
        key="years_out",
        format_func=lambda y: f"{y} year{'s' if y > 1 else ''}",
    )
    or 1
)
w = work[
    (work["years_out"] == years)
    & work["measure"].isin(["employment_rate", "employment_lower_bound", "employment_upper_bound"])
]
w = w.assign(series=w["measure"].map(views.label))
c = college[college["measure"].isin(["enrolled_by_oct31", "enrolled_within_16_months"])]
c = c.assign(series=c["measure"].map(views.label))
left, right = st.columns(2)
left.plotly_chart(trend(c, "cohort", "series", "% of graduates", True, "Cohort"), width="stretch")
right.plotly_chart(trend(w, "cohort", "series", "% of students", True, "Cohort"), width="stretch")
right.caption(
    "Employment is measured on matched students (SSN provided). The two bounds show the rate over "
    "all students if every unmatched student was, or was not, employed."
)
with st.expander("Table view and download"):
    both = pd.concat([c, w], ignore_index=True)
    both = both.assign(cohort_label=both["cohort"].map(views.cohort_label))
    long_table(
        both,
        {"cohort_label": "Cohort", "series": "Measure", "denominator": "Students (noisy)"},
        True,
        "college_and_work_by_cohort.csv",
        "dl_work",
    )

st.subheader("How these figures are protected")
st.markdown(
    f"Each figure was computed from student records and then had random noise added (differential "
    f"privacy), so no figure, or combination of figures, reveals whether any one student is in the data. "
    f"This release spent a privacy loss of ε = {release.manifest['epsilon_total']:g} across all its tables. "
    "Small groups are published rather than hidden, with a flag in words when the noise is large. "
    "See **Privacy and methods** for the details."
)
