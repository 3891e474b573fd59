"""Workforce outcomes: employment and earnings 1, 3 and 5 years out, with coverage and opt-out bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import views
from analytics.metrics.workforce import EARNINGS_TOP_USD
from pages.common import (
    COLOURS,
    FLAG_WORDS,
    cached_figure,
    chart,
    current_release,
    escape_markdown,
    interval_bars,
    long_table,
    paged,
    plot_text,
    point_meta,
    symbols,
    unique_labels,
    url_select,
    with_ranks,
)


@cached_figure
def employment_chart(
    order: list[object],
    rate: pd.DataFrame,
    lo: pd.DataFrame,
    hi: pd.DataFrame,
    cov: pd.DataFrame,
    variant: str,
    ranked: bool,
) -> go.Figure:
    """Matched students' rate (dots) inside the possible range over all students (hatched bar), one row per unit."""
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=[plot_text(v) for v in order],
            x=((hi.loc[order, "value"] - lo.loc[order, "value"]) * 100).tolist(),
            base=(lo.loc[order, "value"] * 100).tolist(),
            orientation="h",
            name="Possible range over all students (bounds)",
            marker={"color": "rgba(0,158,115,0.25)", "pattern": {"shape": "/"}},
            hoverinfo="skip",
        )
    )
    for flag in ("reliable", "rough", "unreliable"):
        g = rate.loc[[i for i in order if rate.loc[i, "flag"] == flag]]
        if g.empty:
            continue
        rank_text = g["rank_words"].map(lambda r: f"<br>rank {r}") if ranked else g["flag"].map(lambda _f: "")
        fig.add_trace(
            go.Scatter(
                x=g["value"] * 100,
                y=[plot_text(v) for v in g.index],
                mode="markers",
                name=f"Matched students: {FLAG_WORDS[flag]}",
                marker={"color": COLOURS[flag], "size": 9, "symbol": symbols(g["flag"])},
                error_x=interval_bars(g["value"], g["value_moe95"], COLOURS[flag]),
                meta=point_meta(g["flag"], 0.0, 1.0, 100.0),
                customdata=np.stack(
                    [
                        (cov.loc[g.index, "value"] * 100).to_numpy(),
                        g["flag_reason"].fillna("").map(plot_text).to_numpy(),
                        (g["value_moe95"] * 100).to_numpy(),
                        rank_text.to_numpy(),
                    ],
                    axis=1,
                ),
                hovertemplate="%{y}: %{x:.1f}% ± %{customdata[2]:.1f}<br>coverage %{customdata[0]:.0f}%"
                "%{customdata[3]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    fig.update_layout(
        height=max(360, 24 * len(order) + 150),
        xaxis_title=f"{plot_text(views.label(variant))} (%)",
        xaxis={"range": [0, 100], "side": "top", "mirror": "allticks", "showline": True},
        yaxis={"automargin": True},
        barmode="overlay",
        legend={"orientation": "h", "yanchor": "top", "y": -0.01, "x": 0},
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    return fig


@cached_figure
def earnings_chart(earn: pd.DataFrame, key_label: str, order: list[object]) -> go.Figure:
    """Earnings percentiles (P25, P50, P75) of the units in ``order``; top-coded ones as right-pointing triangles."""
    fig2 = go.Figure()
    for i, (q, colour) in enumerate((("p25", "#56B4E9"), ("p50", "#0072B2"), ("p75", "#CC79A7"))):
        g = earn[earn["measure"] == q].drop_duplicates(key_label).set_index(key_label).reindex(order)
        g = g[g["value"].notna()]
        if g.empty:
            continue
        top = g["top_coded"].fillna(False).astype(bool)
        base = ["circle", "diamond", "square"][i]
        # a top-coded percentile is at least the top edge: an arrow pointing right, no error bar
        shapes = [
            ("triangle-right" if t else base) + ("" if f == "reliable" else "-open")
            for t, f in zip(top, g["flag"], strict=True)
        ]
        bars = interval_bars(
            g["value"], g["value_moe95"].where(~top, 0), colour, lower=0.0, upper=EARNINGS_TOP_USD, scale=1.0
        )
        fig2.add_trace(
            go.Scatter(
                x=g["value"],
                y=[plot_text(v) for v in g.index],
                mode="markers",
                name=views.label(q),
                marker={"color": colour, "size": 9, "symbol": shapes},
                error_x={**bars, "thickness": 1.2},
                meta=point_meta(g["flag"], 0.0, EARNINGS_TOP_USD, 1.0),
                customdata=np.stack(
                    [g["shown_as"].fillna("—").to_numpy(), g["flag"].map(FLAG_WORDS).to_numpy()], axis=1
                ),
                hovertemplate="%{y}: %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    fig2.update_layout(
        height=max(360, 24 * len(order) + 150),
        xaxis_title="Annual earnings, 2024 dollars",
        xaxis={"range": [0, EARNINGS_TOP_USD * 1.05], "side": "top", "mirror": "allticks", "showline": True},
        yaxis={"automargin": True, "categoryorder": "array", "categoryarray": [plot_text(v) for v in order]},
        legend={"orientation": "h", "yanchor": "top", "y": -0.01, "x": 0},
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    return fig2


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
CUT_WORDS = {"cohort": "Cohort", "district": "District", "subgroup": "Student group", "path": "College path"}
EARN = {
    "cohort": "earnings_by_cohort",
    "district": "earnings_by_district",
    "subgroup": "earnings_by_subgroup",
    "path": "earnings_by_path",
}
c1, c2, c3 = st.columns(3)
with c1:
    cut = url_select("Compare by", list(CUTS), "cut", format_func=CUT_WORDS.__getitem__)
with c2:
    years = url_select(
        "Years after expected graduation (both charts)",
        [1, 3, 5],
        "years_out",
        format_func=lambda y: f"{y} year{'s' if y > 1 else ''}",
    )
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
ranked = cut in ("district", "subgroup")
rate_rows = work[work["measure"] == variant]
if ranked:
    rate_rows = with_ranks(rate_rows.reset_index(drop=True), key_label)
rate = rate_rows.set_index(key_label)
lo = work[work["measure"] == "employment_lower_bound"].set_index(key_label)
hi = work[work["measure"] == "employment_upper_bound"].set_index(key_label)
cov = work[work["measure"] == "coverage"].set_index(key_label)

st.subheader(f"{views.label(variant)}, {years} year{'s' if int(years) > 1 else ''} out")
if cut == "district":
    page_rows = paged(rate_rows, key_label, "wf_districts", "districts")
    order = page_rows.sort_values("value", na_position="first")[key_label].tolist()
elif cut == "subgroup":
    order = rate_rows.sort_values("value", na_position="first")[key_label].tolist()
else:  # cohorts and paths read in their natural order
    order = rate.sort_index(ascending=False).index.tolist()

fig = employment_chart(order, rate.loc[order], lo.loc[order], hi.loc[order], cov.loc[order], variant, ranked)
chart(
    fig,
    views.reading_dots(
        rate_rows,
        views.label(variant).lower(),
        {"district": "districts", "subgroup": "student groups", "path": "college paths"}.get(cut, "cohorts"),
        True,
    ),
)
st.caption(
    escape_markdown(
        "Dots are matched students, with their 95% interval; the hatched bar is the possible range over all students. "
        + views.explain("employment_lower_bound")
        + " "
        + views.explain("employment_upper_bound")
        + (
            " Rank intervals (in the table and on hover) show how far the noise lets a district's place move."
            if ranked
            else ""
        )
    )
)
with st.expander("Table view and download (every row)"):
    shown = work[work["measure"].isin([variant, "coverage", "employment_lower_bound", "employment_upper_bound"])]
    if ranked:
        shown = shown.merge(rate_rows[[key_label, "rank_words", "rank_low", "rank_high"]], on=key_label, how="left")
        other = shown["measure"] != variant
        shown["rank_words"] = shown["rank_words"].where(~other, "")
        shown.loc[other, ["rank_low", "rank_high"]] = np.nan
    cols = {key_label: CUT_WORDS[cut], "measure_words": "Measure", "denominator": "Students (noisy)"}
    long_table(
        shown.assign(measure_words=shown["measure"].map(views.plain_label)),
        {**cols, **({"rank_words": "Rank (95% interval)"} if ranked else {})},
        True,
        f"workforce_{cut}_{years}y.csv",
        "dl_work",
    )

st.subheader(f"Annual earnings of the employed, {years} year{'s' if int(years) > 1 else ''} out (2024 dollars)")
earn = views.with_earnings_text(release.table(EARN[cut]))
earn = earn[earn["years_out"] == int(years)]
if cut == "district":
    earn = earn.merge(districts[["district_id", "district_name"]], on="district_id")
elif cut == "cohort":
    earn = earn.assign(cohort_label=earn["cohort"].map(views.cohort_label))
fig2 = earnings_chart(earn[earn[key_label].isin(order)], key_label, order)
median = earn[earn["measure"] == "p50"]
chart(
    fig2,
    views.reading_dots(
        median[median[key_label].isin(order)] if cut == "district" else median,
        "median earnings",
        {"district": "districts shown", "subgroup": "student groups", "path": "college paths"}.get(cut, "cohorts"),
        False,
        money=True,
    ),
)
st.caption(
    "Percentiles by the Census PSEO method (noisy histogram of $5,000 bins). Earnings of $100,000 and more "
    "fall in an open top bin: a percentile that lands there is top-coded and shown as \u2265 $100,000 (a "
    "right-pointing triangle), never as an exact figure. Intervals are cut at $0 and at the top edge. Hollow "
    "marks are not reliable. Dollars converted with CPI-U annual averages to 2024."
)
with st.expander("Table view and download (every row)"):
    long_table(
        earn.assign(value=earn["value"], measure_words=earn["measure"].map(views.label)),
        {
            key_label: CUT_WORDS[cut],
            "measure_words": "Percentile",
            "shown_as": "Published as",
            "top_coded": "Top-coded",
            "n_students": "Employed (noisy)",
        },
        False,
        f"earnings_{cut}_{years}y.csv",
        "dl_earn",
    )
