"""Workforce outcomes: employment and earnings 1, 3 and 5 years out, with coverage and opt-out bounds."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from analytics import views
from pages.common import (
    COLOURS,
    FLAG_WORDS,
    current_release,
    interval_bars,
    long_table,
    plot_text,
    unique_labels,
    url_select,
)

release = current_release()
districts = release.table("districts")
districts = districts.assign(district_name=unique_labels(districts["district_name"], districts["district_id"]))

st.title("Workforce outcomes")
st.markdown(
    "Employment and earnings in Maine wage records after expected high-school graduation. Only students whose "
    "family provided the SSN can be found (**matched**); unmatched students are never counted as not employed. "
    "Each group shows its **coverage** and the range the rate over all students could take (**bounds**)."
)
CUTS = {
    "cohort": "workforce_by_cohort",
    "district": "workforce_by_district",
    "subgroup": "workforce_by_subgroup",
    "path": "workforce_by_path",
}
EARN = {
    "cohort": "earnings_by_cohort",
    "district": "earnings_by_district",
    "subgroup": "earnings_by_subgroup",
    "path": "earnings_by_path",
}
c1, c2, c3 = st.columns(3)
with c1:
    cut = url_select("Compare by", list(CUTS), "cut", format_func=lambda c: {"path": "college path"}.get(c, c))
with c2:
    years = url_select("Years after expected graduation", [1, 3, 5], "years_out")
with c3:
    variant = url_select(
        "Employment definition",
        ["employment_rate", "employment_rate_any_wages", "employment_rate_full_year"],
        "definition",
        format_func=views.label,
    )
key = {"cohort": "cohort", "district": "district_id", "subgroup": "subgroup", "path": "path"}[cut]
work = release.table(CUTS[cut])
work = work[work["years_out"] == int(years)]
if cut == "district":
    work = work.merge(districts[["district_id", "district_name"]], on="district_id")
    key_label = "district_name"
elif cut == "cohort":
    work = work.assign(cohort_label=work["cohort"].map(views.cohort_label))
    key_label = "cohort_label"
else:
    key_label = key
rate = work[work["measure"] == variant].set_index(key_label)
lo = work[work["measure"] == "employment_lower_bound"].set_index(key_label)
hi = work[work["measure"] == "employment_upper_bound"].set_index(key_label)
cov = work[work["measure"] == "coverage"].set_index(key_label)
# cohorts and paths read in their natural order; districts and subgroups sorted by the figure
order = (rate.sort_index(ascending=False) if cut in ("cohort", "path") else rate.sort_values("value")).index.tolist()

fig = go.Figure()
fig.add_trace(
    go.Bar(
        y=[plot_text(v) for v in order],
        x=((hi.loc[order, "value"] - lo.loc[order, "value"]) * 100).tolist(),
        base=(lo.loc[order, "value"] * 100).tolist(),
        orientation="h",
        name="Bounds over all students",
        marker={"color": "rgba(0,158,115,0.25)", "pattern": {"shape": "/"}},
        hoverinfo="skip",
    )
)
for flag in ("reliable", "rough", "unreliable"):
    g = rate.loc[[i for i in order if rate.loc[i, "flag"] == flag]]
    if g.empty:
        continue
    fig.add_trace(
        go.Scatter(
            x=g["value"] * 100,
            y=[plot_text(v) for v in g.index],
            mode="markers",
            name=f"Matched students: {FLAG_WORDS[flag]}",
            marker={"color": COLOURS[flag], "size": 9, "symbol": "circle" if flag == "reliable" else "circle-open"},
            error_x=interval_bars(g["value"], g["value_moe95"], COLOURS[flag]),
            customdata=(cov.loc[g.index, "value"] * 100)
            .to_frame()
            .assign(reason=g["flag_reason"].fillna("").map(plot_text))
            .to_numpy(),
            hovertemplate="%{y}: %{x:.1f}%<br>coverage %{customdata[0]:.0f}%<br>%{customdata[1]}<extra></extra>",
        )
    )
fig.update_layout(
    height=max(360, 22 * len(order) + 140),
    xaxis_title=f"{views.label(variant)} (%)",
    xaxis={"range": [0, 100]},
    barmode="overlay",
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    margin={"l": 10, "r": 10, "t": 60, "b": 10},
)
st.plotly_chart(fig, width="stretch")
with st.expander("Table view and download"):
    shown = work[work["measure"].isin([variant, "coverage", "employment_lower_bound", "employment_upper_bound"])]
    long_table(
        shown.assign(measure_words=shown["measure"].map(views.label)),
        {key_label: cut.title(), "measure_words": "Measure", "denominator": "Students (noisy)"},
        True,
        f"workforce_{cut}_{years}y.csv",
        "dl_work",
    )

st.subheader("Annual earnings of the employed (2024 dollars)")
earn = views.with_earnings_text(release.table(EARN[cut]))
earn = earn[earn["years_out"] == int(years)]
if cut == "district":
    earn = earn.merge(districts[["district_id", "district_name"]], on="district_id")
elif cut == "cohort":
    earn = earn.assign(cohort_label=earn["cohort"].map(views.cohort_label))
fig2 = go.Figure()
for i, (q, colour) in enumerate((("p25", "#56B4E9"), ("p50", "#0072B2"), ("p75", "#CC79A7"))):
    g = earn[earn["measure"] == q].set_index(key_label).reindex(order)
    top = g["top_coded"].fillna(False).astype(bool)
    fig2.add_trace(
        go.Scatter(
            x=g["value"],
            y=[plot_text(v) for v in order],
            mode="markers",
            name=views.label(q),
            marker={
                "color": colour,
                "size": 9,
                # a top-coded percentile is at least the top edge: an arrow pointing right, no error bar
                "symbol": [("triangle-right" if t else ["circle", "diamond", "square"][i]) for t in top],
            },
            error_x={
                "type": "data",
                "array": g["value_moe95"].where(~top, 0).tolist(),
                "color": colour,
                "thickness": 1.2,
            },
            customdata=g["shown_as"].fillna("—").to_numpy(),
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
fig2.update_layout(
    height=max(360, 22 * len(order) + 140),
    xaxis_title="Annual earnings, 2024 dollars",
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    margin={"l": 10, "r": 10, "t": 60, "b": 10},
)
st.plotly_chart(fig2, width="stretch")
st.caption(
    "Percentiles by the Census PSEO method (noisy histogram of $5,000 bins). Earnings of $100,000 and more "
    "fall in an open top bin: a percentile that lands there is top-coded and shown as \u2265 $100,000 (a "
    "right-pointing triangle), never as an exact figure. Dollars converted with CPI-U annual averages to 2024."
)
with st.expander("Table view and download"):
    long_table(
        earn.assign(value=earn["value"], measure_words=earn["measure"].map(views.label)),
        {
            key_label: cut.title(),
            "measure_words": "Percentile",
            "shown_as": "Published as",
            "top_coded": "Top-coded",
            "n_students": "Employed (noisy)",
        },
        False,
        f"earnings_{cut}_{years}y.csv",
        "dl_earn",
    )
