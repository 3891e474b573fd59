"""SSN collection: how many families declined, by district and by year, with margins of error."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analytics import views
from pages.common import (
    COLOURS,
    FLAG_WORDS,
    county_optout,
    current_release,
    interval_bars,
    maine_counties_geojson,
    pct,
    pct_moe,
    releases_dir,
    table_with_margins,
)

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

st.subheader("Opt-out by county")
counties = county_optout(str(releases_dir()), release.release_id)
geojson = maine_counties_geojson()
fig3 = px.choropleth_map(
    counties.assign(rate_pct=counties["optout_rate"] * 100, moe_pct=counties["optout_rate_moe95"] * 100),
    geojson=geojson,
    locations="fips",
    color="rate_pct",
    color_continuous_scale="Cividis",
    map_style="white-bg",
    center={"lat": 45.3, "lon": -69.2},
    zoom=5.4,
    opacity=0.9,
    hover_name="county",
    hover_data={"fips": False, "rate_pct": ":.1f", "moe_pct": ":.1f", "n_districts": True},
    labels={"rate_pct": "Declined (%)", "moe_pct": "± (pts)", "n_districts": "Districts"},
)
fig3.update_layout(height=520, margin={"l": 0, "r": 0, "t": 0, "b": 0})
left, right = st.columns([3, 2])
left.plotly_chart(fig3, width="stretch")
right.markdown("Each county is the sum of its districts' noisy counts; its margin of error adds up their noise.")
right.dataframe(
    counties.assign(
        rate=counties["optout_rate"].map(pct),
        moe=counties["optout_rate_moe95"].map(pct_moe),
        flag_words=counties["flag"].map(FLAG_WORDS),
    )[["county", "rate", "moe", "flag_words"]].rename(
        columns={"county": "County", "rate": "Opt-out", "moe": "Margin (95%)", "flag_words": "Reliability"}
    ),
    hide_index=True,
    width="stretch",
)
right.download_button(
    "Download county table (CSV)",
    counties.to_csv(index=False).encode(),
    "ssn_optout_by_county.csv",
    "text/csv",
    key="dl_county",
)

st.subheader("Where more families opt out, workforce figures cover fewer students")
scatter = views.optout_vs_coverage(release, years_out=1)
fig4 = go.Figure()
for ok, group in scatter.groupby("both_reliable"):
    colour = COLOURS["reliable"] if ok else COLOURS["unreliable"]
    bar_colour = colour if ok else "rgba(153,153,153,0.3)"  # faint, so wide intervals do not hide the pattern
    fig4.add_trace(
        go.Scatter(
            x=group["optout_rate"] * 100,
            y=group["coverage"] * 100,
            mode="markers",
            name="both figures reliable" if ok else "at least one figure unreliable",
            marker={"color": colour, "size": 8, "symbol": "circle" if ok else "circle-open"},
            error_x=interval_bars(group["optout_rate"], group["optout_rate_moe95"], bar_colour),
            error_y=interval_bars(group["coverage"], group["coverage_moe95"], bar_colour),
            text=group["district_name"],
            hovertemplate="%{text}<br>opt-out %{x:.1f}%<br>coverage %{y:.1f}%<extra></extra>",
        )
    )
fig4.update_layout(
    height=460,
    xaxis_title="Families declining the SSN (%)",
    yaxis_title="Cohort students matched to wage records, 1 year out (%)",
    xaxis={"range": [0, min(100.0, float(scatter["optout_rate"].max()) * 100 + 10)]},
    yaxis={"range": [0, 101]},
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    margin={"l": 10, "r": 10, "t": 40, "b": 10},
)
st.plotly_chart(fig4, width="stretch")
st.caption("Bars are 95% intervals of both figures; districts with an unreliable figure are hollow, with faint bars.")
with st.expander("Table view and download"):
    table_with_margins(
        scatter.assign(
            o=scatter["optout_rate"].map(pct),
            om=scatter["optout_rate_moe95"].map(pct_moe),
            c=scatter["coverage"].map(pct),
            cm=scatter["coverage_moe95"].map(pct_moe),
        ),
        {"district_name": "District", "o": "Opt-out", "om": "± opt-out", "c": "Coverage", "cm": "± coverage"},
        "optout_vs_coverage.csv",
        key="dl_scatter",
    )
