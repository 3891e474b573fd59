"""Noise instead of suppression: what an n<10 rule would have hidden in the same table, and what is published."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import views
from pages.common import (
    COLOURS,
    FLAG_WORDS,
    cached_figure,
    chart,
    current_release,
    download_csv,
    interval_bars,
    load_release_cached,
    pct,
    pct_moe,
    plot_text,
    point_meta,
    releases_dir,
    symbols,
    table_with_margins,
    unique_labels,
    url_select,
)

release = current_release()
folder = str(releases_dir())
districts = release.table("districts")
districts = districts.assign(district_name=unique_labels(districts["district_name"], districts["district_id"]))

st.title("Noise instead of suppression")
st.markdown(
    "Most state report cards hide every figure about fewer than 10 students, and then hide more figures so the "
    "hidden ones cannot be worked out by subtraction. This release hides nothing: it adds random noise to every "
    "figure and publishes each one with its margin of error and a reliability flag. Below, for the same table, is "
    "what a suppression rule would have hidden and what is published instead."
)

TABLES = {
    "graduation": "4-year graduation rate, district by cohort",
    "optout": "SSN opt-out rate, by district (all school years)",
}
c1, c2 = st.columns([3, 1])
with c1:
    which = url_select("Table", list(TABLES), "table", format_func=TABLES.__getitem__)
with c2:
    threshold = url_select(
        "Hide groups under", [5, 10, 15, 30], "min_n", default=10, format_func=lambda n: f"{n} students"
    )
complementary = st.checkbox(
    "Also hide cells that would give a hidden one away (complementary suppression)", value=True, key="compl"
)

N_WORDS = {"graduation": "students in the cohort (noisy)", "optout": "families asked (noisy)"}
n_words, cell_words = N_WORDS[which], {"graduation": "Cohort", "optout": "Years"}[which]


@st.cache_data(show_spinner=False, max_entries=32)
def compared_cells(folder: str, release_id: str, which: str, threshold: int, complementary: bool) -> pd.DataFrame:
    """The chosen table of a release, cell by cell, with what an n < threshold rule would hide (cached per choice)."""
    release = load_release_cached(folder, release_id)
    districts = release.table("districts")
    districts = districts.assign(district_name=unique_labels(districts["district_name"], districts["district_id"]))
    if which == "graduation":
        t = release.table("graduation_by_district")
        # the figure each cell shows on the other pages: direct, or model-based where the direct one is too noisy
        t = views.shown_estimates(t[t["measure"] == "acgr_4yr"].reset_index(drop=True))
        t = t.merge(districts[["district_id", "district_name", "county"]], on="district_id")
        t = t.assign(n=t["denominator"], cell=t["cohort"].map(views.cohort_label), row=t["district_id"])
    else:
        t = release.table("ssn_collection_by_district").merge(
            districts[["district_id", "district_name", "county"]], on="district_id"
        )
        t = views.optout_long(t)
        # one cell per district: the state total is published, so a single hidden district could be recovered from it
        t = t.assign(n=t["n_asked"], cell="all school years", row="state")
    t = t.reset_index(drop=True)
    return views.suppression_comparison(t, "n", "row", threshold=threshold, complementary=complementary)


@cached_figure
def sizes_chart(folder: str, release_id: str, which: str, threshold: int, complementary: bool) -> go.Figure:
    """Every published figure against its group's noisy size, the cells the rule hides in orange."""
    compared = compared_cells(folder, release_id, which, threshold, complementary)
    shown = compared[compared["value"].notna()]
    fig = go.Figure()
    for hidden, group in shown.groupby("hidden"):
        colour = COLOURS["rough"] if hidden else COLOURS["reliable"]
        fig.add_trace(
            go.Scatter(
                x=group["n"].clip(lower=1),
                y=group["value"] * 100,
                mode="markers",
                name=("hidden by the rule, published here" if hidden else "shown under both"),
                marker={"color": colour, "size": 7, "symbol": symbols(group["flag"]), "opacity": 0.8},
                error_y={
                    **interval_bars(group["value"], group["value_moe95"], "rgba(120,120,120,0.18)"),
                    "thickness": 0.8,
                    "width": 0,
                },
                meta=point_meta(group["flag"], 0.0, 1.0, 100.0),
                text=group["district_name"].map(plot_text),
                customdata=np.stack(
                    [group["cell"].astype(str), group["value_moe95"] * 100, group["flag"].map(FLAG_WORDS)], axis=1
                ),
                hovertemplate="%{text}, %{customdata[0]}<br>%{x:,.0f} (noisy): %{y:.1f}% ± %{customdata[1]:.1f}"
                "<br>%{customdata[2]}<extra></extra>",
            )
        )
    fig.add_vline(
        x=threshold,
        line_dash="dash",
        line_color="#555555",
        annotation_text=f"n = {threshold}",
        annotation_position="top right",
    )
    fig.update_layout(
        height=460,
        xaxis={
            "type": "log",
            "title": f"Size of the group: {N_WORDS[which]}, log scale",
            "range": [-0.05, math.log10(max(float(shown["n"].max()), 20.0)) + 0.1],
        },
        yaxis={"range": [0, 100], "title": "Published figure (%)"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


compared = compared_cells(folder, release.release_id, which, int(threshold), complementary)
summary = views.suppression_summary(compared.assign(row=compared["district_id"]), "row")

st.caption(
    f"Cell sizes are the release's noisy counts of {n_words}: the true counts are never shown, so a cell near "
    f"{threshold} might fall on the other side of the line under the true count."
)
m1, m2, m3 = st.columns(3)
m1.metric("Figures a suppression rule hides", f"{summary['hidden']:,} of {summary['cells']:,}")
m1.caption(f"{summary['primary']:,} under {threshold} students, {summary['complementary']:,} to protect them")
# districts with a figure here that the rule would blank entirely (a district with no high school has none either way)
by_district = compared.groupby("district_id")
with_figure = by_district["value"].apply(lambda v: bool(v.notna().any()))
blanked = int((with_figure & by_district["hidden"].all()).sum())
m2.metric("Districts the rule leaves with no figure", f"{blanked:,} of {int(with_figure.sum()):,}")
m2.caption("Districts with a figure in this release that the rule hides entirely: their families would see nothing")
shown = compared[compared["value"].notna()]
flags = shown["flag"].value_counts()
m3.metric("Figures this release publishes", f"{len(shown):,} of {summary['cells']:,}")
m3.caption(
    f"{flags.get('reliable', 0):,} reliable, {flags.get('rough', 0):,} rough, {flags.get('unreliable', 0):,} "
    f"unreliable (hollow); {summary['cells'] - len(shown):,} cells have no figure (a noisy count of zero students)"
)

fig = sizes_chart(folder, release.release_id, which, int(threshold), complementary)
hidden_shown = shown[shown["hidden"]]
hidden_ok = int((hidden_shown["flag"] != "unreliable").sum())
chart(
    fig,
    f"{len(hidden_shown):,} of the {len(shown):,} published figures would be hidden by an n < {threshold} rule "
    + ("with complementary suppression" if complementary else "")
    + f"; {hidden_ok:,} of those hidden figures are reliable enough to compare here, the rest are published with "
    f"margins of up to {pct_moe(hidden_shown['value_moe95'].max()) if len(hidden_shown) else '± 0 pts'} and "
    "flagged unreliable.",
)
st.caption(
    "Each dot is one published figure with its 95% interval (grey bars); orange dots are the figures the rule "
    "would hide, hollow dots are unreliable. Graduation cells show the figure the other pages show: the direct "
    "one, or the model-based one where the direct one is too noisy. Cells with no figure are not drawn."
)

st.subheader("One district, cell by cell")
names = districts.set_index("district_id")["district_name"]
ids = sorted(compared["district_id"].unique(), key=names.__getitem__)
# default: the district with the most hidden cells, where the difference shows most
most = compared.groupby("district_id")["hidden"].sum().idxmax()
district = url_select("District", ids, "district", default=most, format_func=lambda d: str(names[d]))
mine = compared[compared["district_id"] == district].sort_values("cell")
view = mine.assign(
    under_rule=np.where(
        mine["suppressed"] == "primary",
        f"hidden (*): under {threshold}",
        np.where(
            mine["suppressed"] == "complementary", "hidden (*): would give a hidden cell away", mine["value"].map(pct)
        ),
    ),
    published=mine["value"].map(lambda v: pct(v) if not pd.isna(v) else "no figure (noisy count 0)"),
    margin=mine["value_moe95"].map(pct_moe),
    flag_words=mine["flag"].map(FLAG_WORDS),
)
table_with_margins(
    view,
    {
        "cell": cell_words,
        "n": "Size (noisy)",
        "under_rule": f"Under an n<{threshold} rule",
        "published": "Published by this release",
        "margin": "Margin of error (95%)",
        "flag_words": "Reliability",
    },
    f"suppression_{which}_{district}.csv",
    "dl_one",
    csv=mine.assign(
        value_pct=(mine["value"] * 100).round(4),
        moe_pct=(mine["value_moe95"] * 100).round(4),
        flag_words=mine["flag"].map(FLAG_WORDS),
    )[["district_id", "district_name", "cell", "n", "suppressed", "value_pct", "moe_pct", "flag_words"]].rename(
        columns={
            "district_id": "District id",
            "district_name": "District",
            "cell": cell_words,
            "n": "Size (noisy)",
            "suppressed": f"Hidden under n<{threshold} (primary or complementary)",
            "value_pct": "Published value (%)",
            "moe_pct": "Margin of error (95%, ± points)",
            "flag_words": "Reliability",
        }
    ),
)
with st.expander("Every cell of the table (download)"):
    full = compared.assign(
        value_pct=(compared["value"] * 100).round(4),
        moe_pct=(compared["value_moe95"] * 100).round(4),
        flag_words=compared["flag"].map(FLAG_WORDS),
    )[["district_id", "district_name", "county", "cell", "n", "suppressed", "value_pct", "moe_pct", "flag_words"]]
    full = full.rename(
        columns={
            "district_id": "District id",
            "district_name": "District",
            "county": "County",
            "cell": cell_words,
            "n": "Size (noisy)",
            "suppressed": f"Hidden under n<{threshold} (primary or complementary)",
            "value_pct": "Published value (%)",
            "moe_pct": "Margin of error (95%, ± points)",
            "flag_words": "Reliability",
        }
    )
    st.caption(f"{len(full):,} cells; numbers as numbers, margins in their own column.")
    download_csv(full, f"suppression_{which}_all.csv", "dl_all")
