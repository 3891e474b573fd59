"""Overview: statewide headline figures with trends, what changed, and how the figures are protected."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import privacy, views
from pages.common import chart, current_release, escape_markdown, long_table, pct, pct_moe, trend

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


def _why_none(table: pd.DataFrame, measure: str, **cell: object) -> str:
    """Why a headline has no figure: no rows at all, or every figure flagged unreliable."""
    rows = table[table["measure"] == measure]
    for k, v in cell.items():
        rows = rows[rows[k] == v]
    if rows.empty or rows["value"].isna().all():
        return "No figure yet: no cohort in this release has reached this point."
    return (
        f"No figure shown: all {len(rows)} published figures are flagged unreliable (fewer than about "
        f"{privacy.SMALL_CELL_STUDENTS} students or a margin wider than {privacy.UNRELIABLE_RATE_MOE * 100:.0f} "
        "points), so none is fit for a headline. The charts below still show them, hollow."
    )


HEADLINES = [
    ("4-year graduation rate", grad, "acgr_4yr", "cohort", {}),
    ("In college by Oct 31", college, "enrolled_by_oct31", "cohort", {}),
    ("Employed 1 year out", work, "employment_rate", "cohort", {"years_out": 1}),
    ("Math: proficient", prof, "proficiency_rate", "school_year", {"subject": "math"}),
]
cols = st.columns(len(HEADLINES) + 1)
for col, (title, table, measure, by, cell) in zip(cols, HEADLINES, strict=False):
    rows = views.latest(table, measure, by, **cell)
    if rows.empty:
        col.metric(title, "—", help=_why_none(table, measure, **cell))
        col.caption(_why_none(table, measure, **cell))
        continue
    last = rows.iloc[-1]
    moved = views.change(rows)
    when = (
        "cohort " + views.cohort_label(int(last[by]))
        if by == "cohort"
        else f"school year {int(last[by]) - 1}-{str(int(last[by]))[2:]}"
    )
    col.metric(title, pct(last["value"]), help=f"{when}; margin of error {pct_moe(last['value_moe95'])}.")
    col.caption(f"{when.capitalize()} · {pct_moe(last['value_moe95'])}. Since the previous one: {moved['words']}.")
first = ssn.iloc[0]
first_year = f"{int(first['school_year']) - 1}-{str(int(first['school_year']))[2:]}"
cols[-1].metric(
    "Declined the SSN",
    pct(first["optout_rate"]),
    help=f"Families asked in {first_year}, the first year of asking; margin {pct_moe(first['optout_rate_moe95'])}.",
)
cols[-1].caption(
    f"In {first_year}, the first year of asking · {pct_moe(first['optout_rate_moe95'])}. Workforce figures cover "
    "only students whose SSN was provided."
)

st.subheader("Graduation by cohort")
g = grad.assign(series=grad["measure"].map(views.label), cohort_label=grad["cohort"].map(views.cohort_label))
chart(
    trend(g, "cohort", "series", "% of the adjusted cohort", True, "Cohort (year entering grade 9)"),
    views.reading_trend(g, "cohort", "series", "the rate", True, x_words="cohort "),
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
c = college[college["measure"].isin(["enrolled_by_oct31", "enrolled_within_16_months"])]
c = c.assign(series=c["measure"].map(views.label))
left, right = st.columns(2)
left.markdown("**College enrolment of graduates**")
chart(
    trend(c, "cohort", "series", "% of graduates", True, "Cohort"),
    views.reading_trend(c, "cohort", "series", "the rate", True, x_words="cohort "),
    container=left,
)
with right:
    st.markdown("**Employment in Maine wage records**")
    years = (
        st.segmented_control(
            "Years after expected graduation (this chart)",
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
w = w.assign(series=w["measure"].map(views.plain_label))
chart(
    trend(w, "cohort", "series", "% of students", True, "Cohort"),
    views.reading_trend(w, "cohort", "series", "the rate", True, x_words="cohort "),
    container=right,
)
right.caption(
    "Employment is measured on matched students (SSN provided). "
    + escape_markdown(views.explain("employment_lower_bound"))
    + " "
    + escape_markdown(views.explain("employment_upper_bound"))
)
with st.expander("Table view and download"):
    both = pd.concat([c, w], ignore_index=True)
    both = both.assign(cohort_label=both["cohort"].map(views.cohort_label))
    long_table(
        both,
        {"cohort_label": "Cohort", "series": "Measure", "denominator": "Students (noisy)"},
        True,
        f"college_and_work_{years}y_by_cohort.csv",
        "dl_work",
    )

st.subheader("How these figures are protected")
loss = release.manifest["lineage_privacy_loss"]
st.markdown(
    f"Each figure was computed from student records and then had random noise added (differential "
    f"privacy), so no figure, or combination of figures, reveals whether any one student is in the data. "
    f"This release spent a privacy loss of ε = {release.manifest['epsilon_total']:g} across all its tables; "
    f"when it was published, each student of this population had borne at most ε = {loss['epsilon']:g} of a "
    f"cap of {views.cap_words(loss)}. Small groups are published rather than hidden, drawn hollow when the noise "
    "is large. "
    "See **Privacy and methods**, or **For families** for the same in plain words."
)
