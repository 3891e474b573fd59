"""SSN collection: how many families declined, by district and by year, with margins of error."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from pages.common import COLOURS, FLAG_WORDS, current_release, interval_bars, pct, pct_moe, table_with_margins

release = current_release()
districts = release.table("districts")
by_district = release.table("ssn_collection_by_district").merge(districts, on="district_id")
by_year = release.table("ssn_collection_by_year")

st.title("SSN collection and opt-out")
st.markdown(
    "Maine schools ask families for each student's Social Security number so the state can follow "
    "students into the workforce. Families may decline. Where many decline, workforce figures "
    "describe fewer students and can be biased. Every figure below carries privacy noise; the bars "
    "and bands show its 95% margin of error."
)

first = by_year.iloc[0]
all_asked = int(by_year["n_asked"].sum())
c1, c2, c3 = st.columns(3)
c1.metric(
    "Opt-out rate in the first year of asking (2010-11)",
    pct(first["optout_rate"]),
    help=f"Margin of error {pct_moe(first['optout_rate_moe95'])}. Noisy figure.",
)
c2.metric("Families asked, all years (noisy)", f"{all_asked:,}")
high = by_district[(by_district["optout_rate"] - by_district["optout_rate_moe95"] > 0.20)]
c3.metric(
    "Districts where opt-out is clearly above 20%", f"{len(high)}", help="Lower end of the 95% interval above 20%."
)

counties = ["All counties", *sorted(districts["county"].unique())]
county = st.query_params.get("county", "All counties")
county = st.selectbox("County", counties, index=counties.index(county) if county in counties else 0, key="county")
if county == "All counties":
    st.query_params.pop("county", None)
else:
    st.query_params["county"] = county
shown = by_district if county == "All counties" else by_district[by_district["county"] == county]
shown = shown.sort_values("optout_rate", ascending=True, na_position="first")

st.subheader("Opt-out rate by district, all school years")
x_max = float(min(100.0, ((shown["optout_rate"] + shown["optout_rate_moe95"]).max() * 100) + 2))
fig = go.Figure()
for flag, group in shown.groupby("flag", sort=False):
    fig.add_trace(
        go.Scatter(
            x=group["optout_rate"] * 100,
            y=group["district_name"],
            mode="markers",
            name=FLAG_WORDS[flag],
            marker={"color": COLOURS[flag], "size": 8, "symbol": "circle" if flag == "reliable" else "circle-open"},
            error_x=interval_bars(group["optout_rate"], group["optout_rate_moe95"], COLOURS[flag]),
            customdata=group[["n_asked", "flag_reason"]].assign(moe=group["optout_rate_moe95"] * 100),
            hovertemplate="%{y}: %{x:.1f}% ± %{customdata[2]:.1f} pts<br>%{customdata[0]:,} families asked"
            "<br>%{customdata[1]}<extra></extra>",
        )
    )
fig.update_layout(
    height=max(360, 16 * len(shown) + 120),
    xaxis_title="Families declining to give the SSN (% of those asked)",
    yaxis_title=None,
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": "Reliability: "},
    margin={"l": 10, "r": 10, "t": 40, "b": 10},
    xaxis={"range": [0, x_max]},
    yaxis={"categoryorder": "array", "categoryarray": shown["district_name"].tolist()},
)
st.plotly_chart(fig, width="stretch")
with st.expander("Table view and download"):
    table_with_margins(
        shown.assign(
            rate=shown["optout_rate"].map(pct),
            moe=shown["optout_rate_moe95"].map(pct_moe),
            flag_words=shown["flag"].map(FLAG_WORDS),
        ),
        {
            "district_name": "District",
            "county": "County",
            "n_asked": "Families asked (noisy)",
            "n_declined": "Declined (noisy)",
            "rate": "Opt-out rate",
            "moe": "Margin of error (95%)",
            "flag_words": "Reliability",
            "flag_reason": "Why",
        },
        "ssn_optout_by_district.csv",
        key="dl_district",
    )

st.subheader("Statewide opt-out rate by school year of asking")
st.caption(
    "Most families were first asked in 2010-11; later years are the families of new students, "
    "so they are smaller and their margins wider."
)
years = by_year.assign(label=by_year["school_year"].map(lambda y: f"{y - 1}-{str(y)[2:]}"))
fig2 = go.Figure()
fig2.add_trace(
    go.Scatter(
        x=years["label"],
        y=(years["optout_rate"] + years["optout_rate_moe95"]).clip(upper=1) * 100,
        mode="lines",
        line={"width": 0},
        showlegend=False,
        hoverinfo="skip",
    )
)
fig2.add_trace(
    go.Scatter(
        x=years["label"],
        y=(years["optout_rate"] - years["optout_rate_moe95"]).clip(lower=0) * 100,
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        fillcolor="rgba(0,114,178,0.18)",
        name="95% margin of error",
    )
)
for flag, group in years.groupby("flag", sort=False):
    fig2.add_trace(
        go.Scatter(
            x=group["label"],
            y=group["optout_rate"] * 100,
            mode="markers",
            name=FLAG_WORDS[flag],
            marker={"color": COLOURS[flag], "size": 9, "symbol": "circle" if flag == "reliable" else "circle-open"},
            customdata=group[["optout_rate_moe95", "n_asked", "flag_reason"]],
            hovertemplate="%{x}: %{y:.1f}% ± %{customdata[0]:.1%}<br>%{customdata[1]:,} families asked"
            "<br>%{customdata[2]}<extra></extra>",
        )
    )
fig2.update_layout(
    height=380,
    xaxis_title="School year in which the family was asked",
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    yaxis_title="Declined (% of families asked)",
    yaxis={"rangemode": "tozero"},
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
)
st.plotly_chart(fig2, width="stretch")
with st.expander("Table view and download"):
    table_with_margins(
        years.assign(
            rate=years["optout_rate"].map(pct),
            moe=years["optout_rate_moe95"].map(pct_moe),
            flag_words=years["flag"].map(FLAG_WORDS),
        ),
        {
            "label": "School year",
            "n_asked": "Families asked (noisy)",
            "n_declined": "Declined (noisy)",
            "rate": "Opt-out rate",
            "moe": "Margin of error (95%)",
            "flag_words": "Reliability",
            "flag_reason": "Why",
        },
        "ssn_optout_by_year.csv",
        key="dl_year",
    )
st.caption(
    f"Release {release.release_id}. Counts are noisy and may differ slightly between tables; "
    "each table is its own privacy-protected query. See Privacy and methods."
)
