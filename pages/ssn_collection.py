"""SSN collection: how many families declined, by district, year and county, and what that does to coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import views
from pages.common import (
    COLOURS,
    FLAG_WORDS,
    cached_figure,
    caterpillar,
    chart,
    county_map,
    county_optout,
    current_release,
    figure,
    interval_bars,
    load_release_cached,
    long_table,
    paged,
    pct,
    pct_moe,
    plot_text,
    point_meta,
    releases_dir,
    table_with_margins,
    trend,
    unique_labels,
    url_select,
    with_ranks,
)

release = current_release()
folder = str(releases_dir())


@st.cache_data(show_spinner=False, max_entries=8)
def derived(folder: str, release_id: str) -> dict[str, pd.DataFrame]:
    """The frames this page draws, computed once per release (post-processing of published tables only)."""
    release = load_release_cached(folder, release_id)
    districts = release.table("districts")
    districts = districts.assign(district_name=unique_labels(districts["district_name"], districts["district_id"]))
    return {
        "districts": districts,
        "by_district": views.optout_long(
            release.table("ssn_collection_by_district").merge(districts, on="district_id")
        ),
        "by_year": views.optout_long(release.table("ssn_collection_by_year")),
        "counties": views.optout_long(county_optout(folder, release_id)),
        "scatter": views.optout_vs_coverage(release, years_out=1),
    }


@cached_figure
def coverage_chart(folder: str, release_id: str) -> go.Figure:
    """Each district's opt-out rate against its wage-record coverage 1 year out, both with 95% intervals."""
    scatter = derived(folder, release_id)["scatter"]
    fig = go.Figure()
    for ok, group in scatter.groupby("both_reliable"):
        colour = COLOURS["reliable"] if ok else COLOURS["unreliable"]
        bar_colour = colour if ok else "rgba(153,153,153,0.3)"  # faint, so wide intervals do not hide the pattern
        fig.add_trace(
            go.Scatter(
                x=group["optout_rate"] * 100,
                y=group["coverage"] * 100,
                mode="markers",
                name="both figures reliable" if ok else "at least one figure unreliable",
                marker={"color": colour, "size": 8, "symbol": "circle" if ok else "circle-open"},
                meta=point_meta(["reliable" if ok else "unreliable"] * len(group), 0.0, 1.0, 100.0),
                error_x=interval_bars(group["optout_rate"], group["optout_rate_moe95"], bar_colour),
                error_y=interval_bars(group["coverage"], group["coverage_moe95"], bar_colour),
                text=group["district_name"].map(plot_text),
                hovertemplate="%{text}<br>opt-out %{x:.1f}%<br>coverage %{y:.1f}%<extra></extra>",
            )
        )
    fig.update_layout(
        height=460,
        xaxis_title="Families declining the SSN (%)",
        yaxis_title="Cohort students matched to wage records, 1 year out (%)",
        xaxis={"range": [0, min(100.0, float(scatter["optout_rate"].max()) * 100 + 10)]},
        yaxis={"range": [0, 101]},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


frames = derived(folder, release.release_id)
districts, by_district, by_year = frames["districts"], frames["by_district"], frames["by_year"]

st.title("SSN collection and opt-out")
st.markdown(
    "Maine schools ask families for each student's Social Security number so the state can follow students into "
    "the workforce. Families may decline. Where many decline, workforce figures describe fewer students and can be "
    "biased. Every figure below carries privacy noise; the bars and bands show its 95% margin of error."
)

first = by_year.iloc[0]
c1, c2, c3 = st.columns(3)
c1.metric(
    "Opt-out rate, 2010-11",
    pct(first["value"]),
    help=f"The first year of asking. Margin of error {pct_moe(first['value_moe95'])}. Noisy figure.",
)
c1.caption(f"First year of asking · {pct_moe(first['value_moe95'])}")
c2.metric("Families asked", f"{int(by_year['n_asked'].sum()):,}")
c2.caption("All school years; a sum of noisy counts")
high = by_district[(by_district["value"] - by_district["value_moe95"]) > 0.20]
c3.metric("Districts clearly above 20%", f"{len(high)}", help="Lower end of the 95% interval above 20%.")
c3.caption("Opt-out rate above 20% even at the low end of its 95% interval")

county = url_select("County", ["All counties", *sorted(districts["county"].astype(str).unique())], "county")
shown = by_district if county == "All counties" else by_district[by_district["county"] == county]

st.subheader("Opt-out rate by district, all school years")
shown = with_ranks(shown.reset_index(drop=True), "district_name")
page = paged(shown, "district_name", "ssn_districts", "districts")
chart(
    caterpillar(
        page,
        "district_name",
        "% of families asked who declined",
        rate=True,
        reference=float(first["value"]),
        reference_label="State 2010-11",
    ),
    views.reading_dots(
        shown,
        "an opt-out rate",
        "districts",
        True,
        reference=float(first["value"]),
        reference_words="the state's 2010-11 rate",
    ),
)
st.caption(
    "Rank 1 is the highest opt-out rate. Each district's rank is given as the range the noise allows (95%), from "
    "redrawing every figure from its margin; a district whose range spans most of the list cannot be placed."
)
with st.expander("Table view and download (every district)"):
    long_table(
        shown.sort_values("value", ascending=False),
        {
            "district_name": "District",
            "county": "County",
            "n_asked": "Families asked (noisy)",
            "n_declined": "Declined (noisy)",
            "rank_words": "Rank (95% interval)",
        },
        True,
        "ssn_optout_by_district.csv",
        "dl_district",
    )

st.subheader("Statewide opt-out rate by school year of asking")
st.caption(
    "Most families were first asked in 2010-11; later years are the families of new students, so they are "
    "smaller and their margins wider."
)
years = by_year.assign(label=by_year["school_year"].map(lambda y: f"{y - 1}-{str(y)[2:]}"), series="Statewide")
chart(
    trend(
        years, "label", "series", "% of families asked who declined", True, "School year in which the family was asked"
    ),
    views.reading_trend(years, "label", "series", "the opt-out rate", True, x_words="school year "),
)
with st.expander("Table view and download"):
    long_table(
        years,
        {"label": "School year", "n_asked": "Families asked (noisy)", "n_declined": "Declined (noisy)"},
        True,
        "ssn_optout_by_year.csv",
        "dl_year",
    )

st.subheader("Opt-out by county")
counties = frames["counties"]
fig3 = figure(county_map(folder, release.release_id))
left, right = st.columns([3, 2])
chart(
    fig3,
    views.reading_dots(
        counties,
        "an opt-out rate",
        "counties",
        True,
        reference=float(first["value"]),
        reference_words="the state's 2010-11 rate",
    ),
    container=left,
)
right.markdown(
    "Each county is the sum of its districts' noisy counts; its margin of error adds up their noise. "
    "The table gives every county's figure and margin, so colour carries no meaning on its own; a county whose "
    "figure is unreliable is left uncoloured (hatched grey), never shaded as if it were known."
)
with right:
    long_table(
        counties,
        {"county": "County", "n_districts": "Districts"},
        True,
        "ssn_optout_by_county.csv",
        "dl_county",
    )

st.subheader("Where more families opt out, workforce figures cover fewer students")
scatter = frames["scatter"]
fig4 = coverage_chart(folder, release.release_id)
reliable_pairs = scatter[scatter["both_reliable"]]
corr = reliable_pairs["optout_rate"].corr(reliable_pairs["coverage"]) if len(reliable_pairs) > 2 else float("nan")
chart(
    fig4,
    f"Of {len(scatter)} districts, {len(reliable_pairs)} have both figures reliable"
    + (
        f"; among them, the correlation between opt-out and coverage is {corr:.2f} "
        f"({'more opt-out goes with less coverage' if corr < 0 else 'no falling pattern'})"
        if not np.isnan(corr)
        else "; too few to read a pattern"
    )
    + ". The noise of each figure is shown by its bars.",
)
st.caption("Bars are 95% intervals of both figures; districts with an unreliable figure are hollow, with faint bars.")
with st.expander("Table view and download"):
    table_with_margins(
        scatter.assign(
            o=scatter["optout_rate"].map(pct),
            om=scatter["optout_rate_moe95"].map(pct_moe),
            c=scatter["coverage"].map(pct),
            cm=scatter["coverage_moe95"].map(pct_moe),
            f=scatter["both_reliable"].map({True: FLAG_WORDS["reliable"], False: FLAG_WORDS["unreliable"]}),
        ),
        {
            "district_name": "District",
            "o": "Opt-out",
            "om": "± opt-out",
            "c": "Coverage",
            "cm": "± coverage",
            "f": "Reliability",
        },
        "optout_vs_coverage.csv",
        key="dl_scatter",
        csv=scatter.assign(
            o=scatter["optout_rate"] * 100,
            om=scatter["optout_rate_moe95"] * 100,
            c=scatter["coverage"] * 100,
            cm=scatter["coverage_moe95"] * 100,
            f=scatter["both_reliable"].map({True: FLAG_WORDS["reliable"], False: FLAG_WORDS["unreliable"]}),
        )[["district_id", "district_name", "o", "om", "c", "cm", "f"]]
        .round(4)
        .rename(
            columns={
                "district_id": "District id",
                "district_name": "District",
                "o": "Opt-out (%)",
                "om": "Opt-out margin of error (95%, ± points)",
                "c": "Coverage (%)",
                "cm": "Coverage margin of error (95%, ± points)",
                "f": "Reliability",
            }
        ),
    )
st.caption(
    f"Release {release.release_id}. Counts are noisy and may differ slightly between tables; each table is "
    "its own privacy-protected query. See Privacy and methods."
)
