"""Shared page helpers: finding and caching the release, query-string filters, tables with margins.

Pages read only published releases. Loading is cached per (folder, release id),
so switching pages and filters never re-reads files.

Everything that comes from the data is shown as text, never as markup: names are
capped in length (:func:`text_cap`), escaped for Plotly's HTML-like labels
(:func:`plot_text`) and for Streamlit markdown (:func:`escape_markdown`,
:func:`show_error`); CSV downloads are neutralised against spreadsheet formulas
like the grant report workbook, keep numbers as numbers and start with a UTF-8
byte-order mark (:func:`csv_bytes`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import config
from analytics.release import Release, build_sample_release, list_releases, load_release
from analytics.report import neutralise

#: Colour-blind-safe palette (Okabe-Ito); meaning is never carried by colour alone.
COLOURS = {"reliable": "#0072B2", "rough": "#E69F00", "unreliable": "#999999", "state": "#009E73"}
FLAG_WORDS = {
    "reliable": "reliable",
    "rough": "rough (small group)",
    "unreliable": "unreliable: do not compare",
}


#: Longest name shown in a chart label, a selectbox or a table cell (longer ones end in "…").
LABEL_CAP, CELL_CAP = 60, 200
#: Columns that identify a unit; a CSV download puts them beside the unit's name.
ID_COLUMNS = {"district_id": "District id", "school_id": "School id"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:=&\"'%^])")


def text_cap(value: object, limit: int = CELL_CAP) -> str:
    r"""``value`` as one line of plain text: control and invisible characters dropped, at most ``limit`` characters.

    >>> text_cap("Birchwater\u202e School\n", 40)
    'Birchwater School'
    >>> text_cap("x" * 10, 5)
    'xxxx…'
    """
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # enough to fill the cap after dropping invisible characters
    text = "".join(" " if ch in "\t\n\r" else ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n\r")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unique_labels(names: pd.Series, ids: pd.Series, limit: int = LABEL_CAP) -> pd.Series:
    """Names capped for display; a capped name shared by several ids gets its id appended.

    >>> unique_labels(pd.Series(["A", "A", "B"]), pd.Series(["1", "2", "3"])).tolist()
    ['A (1)', 'A (2)', 'B']
    """
    capped = names.map(lambda v: text_cap(v, limit))
    ids_text = ids.map(lambda v: text_cap(v, 20))
    n_ids = pd.Series(ids_text.to_numpy(), index=capped.to_numpy()).groupby(level=0).nunique()
    clash = capped.map(n_ids).fillna(1).to_numpy() > 1
    return capped.where(~clash, capped + " (" + ids_text + ")")


def plot_text(value: object, limit: int = LABEL_CAP + 30) -> str:
    """A label for Plotly: capped and HTML-escaped, so ``<a href=...>`` shows as text, not a link.

    >>> plot_text('<a href="javascript:x">Birchwater</a>')
    '&lt;a href="javascript:x"&gt;Birchwater&lt;/a&gt;'
    """
    return html.escape(text_cap(value, limit), quote=False)


def escape_markdown(text: str) -> str:
    r"""Backslash-escape every character Streamlit markdown could read as syntax (links, LaTeX, HTML, colours).

    >>> escape_markdown("[x](javascript:y) $a$")
    '\\[x\\]\\(javascript\\:y\\) \\$a\\$'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def show_error(message: str) -> None:
    """An error banner whose text is shown as plain text (markdown escaped, line breaks kept)."""
    lines = [escape_markdown(text_cap(line, 2000)) for line in str(message).splitlines()[:200]]
    st.error("  \n".join(lines))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    r"""A table as CSV for spreadsheets: UTF-8 with a byte-order mark, numbers as numbers, text neutralised.

    Text cells that a spreadsheet could run as a formula (leading ``= + - @``, tab or
    carriage return) get a leading quote, as in the grant report workbook.

    >>> csv_bytes(pd.DataFrame({"name": ["=1+1", "Birchwater"], "rate": [0.5, None]}))
    b"\xef\xbb\xbfname,rate\n'=1+1,0.5\nBirchwater,\n"
    """
    out = frame.copy()
    out.columns = [neutralise(text_cap(c, CELL_CAP)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: v if v is None or (isinstance(v, float) and pd.isna(v)) else neutralise(text_cap(v, 1000))
            )
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


def download_csv(frame: pd.DataFrame, file_name: str, key: str, label: str = "Download this table (CSV)") -> None:
    """A download button for :func:`csv_bytes` of ``frame``."""
    st.download_button(label, csv_bytes(frame), file_name=file_name, mime="text/csv", key=key)


def releases_dir() -> Path:
    return config.analytics_home() / "releases"


@st.cache_data(show_spinner=False, max_entries=8)
def load_release_cached(folder: str, release_id: str) -> Release:
    return load_release(Path(folder), release_id)


@st.cache_data(show_spinner=False, ttl=10)
def _manifests(folder: str) -> list[dict[str, Any]]:
    """Manifests of the releases in ``folder``, newest first: one folder scan per 10 s, not several per rerun."""
    return list_releases(Path(folder))


def ensure_release() -> None:
    """Build a release of the bundled sample on first start, with visible progress."""
    if _manifests(str(releases_dir())):
        return
    with st.status("First start: building a privacy-protected release of the bundled sample data", expanded=True) as s:
        bar = st.progress(0.0)

        def progress(message: str, fraction: float) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        result = build_sample_release(releases_dir(), progress=progress)
        s.update(label=f"Release {result.release_id} is ready", state="complete", expanded=False)
    _manifests.clear()


def current_release() -> Release:
    """The release chosen in the sidebar (default: newest), cached by id."""
    manifests = _manifests(str(releases_dir()))
    ids = [m["release_id"] for m in manifests]
    wanted = st.query_params.get("release")
    release_id = wanted if wanted in ids else ids[0]
    return load_release_cached(str(releases_dir()), release_id)


def release_picker() -> None:
    """Sidebar list of releases; the choice lives in the URL so a view can be shared."""
    manifests = _manifests(str(releases_dir()))
    if not manifests:
        return
    ids = [m["release_id"] for m in manifests]
    labels = {m["release_id"]: f"{m.get('label', m['release_id'])} · ε={m['epsilon_total']:g}" for m in manifests}
    wanted = st.query_params.get("release")
    index = ids.index(wanted) if wanted in ids else 0
    chosen = st.sidebar.selectbox(
        "Release",
        ids,
        index=index,
        format_func=labels.__getitem__,
        help="Published releases, newest first. Every figure comes from the chosen one.",
    )
    if chosen != ids[0] or "release" in st.query_params:
        st.query_params["release"] = chosen


def interval_bars(rate: pd.Series, moe: pd.Series, colour: str) -> dict[str, object]:
    """Plotly error bars (in percent) for rates, clipped to 0-100% so no interval leaves the possible range."""
    upper = (rate + moe).clip(upper=1.0) - rate
    lower = rate - (rate - moe).clip(lower=0.0)
    return {
        "type": "data",
        "symmetric": False,
        "array": (upper * 100).tolist(),
        "arrayminus": (lower * 100).tolist(),
        "color": colour,
        "thickness": 1.5,
        "width": 3,
    }


def pct(x: float) -> str:
    return "—" if pd.isna(x) else f"{x * 100:.1f}%"


def pct_moe(x: float) -> str:
    return "—" if pd.isna(x) else f"± {x * 100:.1f} pts"


def _shown_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns capped for display (a 20 MB name must not reach the browser)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: v if not isinstance(v, str) else text_cap(v))
    return out


def table_with_margins(
    df: pd.DataFrame, columns: dict[str, str], file_name: str, key: str, csv: pd.DataFrame | None = None
) -> None:
    """Show exactly ``columns`` (source -> label) with the flag in words, and a CSV download.

    The download is ``csv`` when given (numbers as numbers, margins in their own
    columns), else the shown columns.
    """
    shown = df[list(columns)].rename(columns=columns)
    st.dataframe(_shown_text(shown), hide_index=True, width="stretch")
    download_csv(shown if csv is None else csv, file_name, key)


def url_select(
    label: str,
    options: list[Any],
    key: str,
    default: object = None,
    format_func: Callable[[Any], str] = str,
) -> Any:
    """A selectbox whose choice lives in the URL query string (``?key=value``), so views can be shared."""
    wanted = st.query_params.get(key)
    by_text = {str(o): o for o in options}
    fallback = options.index(default) if default in options else 0
    index = options.index(by_text[wanted]) if wanted in by_text else fallback
    chosen = st.selectbox(label, options, index=index, key=key, format_func=lambda o: text_cap(format_func(o), 100))
    st.query_params[key] = str(chosen)
    return chosen


def _scale(rate: bool) -> float:
    return 100.0 if rate else 1.0


def caterpillar(
    df: pd.DataFrame,
    name_col: str,
    unit: str,
    rate: bool,
    reference: float | None = None,
    reference_label: str = "State",
) -> go.Figure:
    """Sorted dots with 95% intervals; reliable solid, others hollow and grey; one row per unit."""
    k = _scale(rate)
    shown = df.sort_values("value", na_position="first")
    shown = shown.assign(**{name_col: shown[name_col].map(plot_text)})
    fig = go.Figure()
    for flag in ("reliable", "rough", "unreliable"):
        group = shown[shown["flag"] == flag]
        if group.empty:
            continue
        err = (
            interval_bars(group["value"], group["value_moe95"], COLOURS[flag])
            if rate
            else {"type": "data", "array": group["value_moe95"].tolist(), "color": COLOURS[flag], "thickness": 1.5}
        )
        fig.add_trace(
            go.Scatter(
                x=group["value"] * k,
                y=group[name_col],
                mode="markers",
                name=FLAG_WORDS[flag],
                error_x=err,
                marker={"color": COLOURS[flag], "size": 8, "symbol": "circle" if flag == "reliable" else "circle-open"},
                customdata=np.stack(
                    [
                        group["value_moe95"] * k,
                        group["n_students"].fillna(0),
                        group["flag_reason"].fillna("").map(plot_text),
                    ],
                    axis=1,
                ),
                hovertemplate="%{y}: %{x:.1f} ± %{customdata[0]:.1f} "
                + unit
                + "<br>%{customdata[1]:,.0f} students (noisy)<br>%{customdata[2]}<extra></extra>",
            )
        )
    if reference is not None and not pd.isna(reference):
        fig.add_vline(
            x=reference * k,
            line_dash="dash",
            line_color=COLOURS["state"],
            annotation_text=f"{reference_label} {reference * k:.1f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        height=max(320, 18 * len(shown) + 140),
        xaxis_title=unit,
        yaxis_title=None,
        yaxis={"categoryorder": "array", "categoryarray": shown[name_col].tolist()},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    if rate:
        fig.update_xaxes(range=[0, 100])
    return fig


def trend(df: pd.DataFrame, x: str, series: str, unit: str, rate: bool, x_title: str) -> go.Figure:
    """Lines over ``x`` for each value of ``series``, with 95% bands; flagged points hollow."""
    k = _scale(rate)
    fig = go.Figure()
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00"]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for i, (raw_name, group) in enumerate(df.groupby(series, sort=False)):
        name = plot_text(raw_name)
        group = group.sort_values(x)
        colour = palette[i % len(palette)]
        upper = (group["value"] + group["value_moe95"]).clip(upper=1.0 if rate else None) * k
        lower = (group["value"] - group["value_moe95"]).clip(lower=0.0 if rate else None) * k
        fig.add_trace(
            go.Scatter(
                x=group[x],
                y=upper,
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=group[x],
                y=lower,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_rgba(colour, 0.15),
                showlegend=False,
                hoverinfo="skip",
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=group[x],
                y=group["value"] * k,
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": colour, "dash": dashes[i % len(dashes)]},
                marker={
                    "size": 8,
                    "color": colour,
                    "symbol": ["circle" if f == "reliable" else "circle-open" for f in group["flag"]],
                },
                customdata=np.stack([group["value_moe95"] * k, group["flag"].map(FLAG_WORDS)], axis=1),
                hovertemplate="%{fullData.name}<br>%{x}: %{y:.1f} ± %{customdata[0]:.1f} "
                + plot_text(unit)
                + "<br>%{customdata[1]}<extra></extra>",
            )
        )
    fig.update_layout(
        height=380,
        xaxis_title=x_title,
        yaxis_title=unit,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    if rate:
        fig.update_yaxes(rangemode="tozero")
    if df[x].dtype == object or str(df[x].dtype).startswith("str"):
        fig.update_xaxes(type="category")  # "2010-11" is a school year, not a date
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def long_table(df: pd.DataFrame, columns: dict[str, str], rate: bool, file_name: str, key: str) -> None:
    """Table view of long-format rows: value and margin side by side, flag in words, plus CSV download.

    The CSV keeps the value and its margin as numbers in their own columns (percent
    for rates), with any district or school id beside the name.
    """
    k = _scale(rate)
    unit = "%" if rate else ""
    view = df.assign(
        value_shown=df["value"].map(lambda v: "—" if pd.isna(v) else f"{v * k:.1f}{unit}"),
        moe_shown=df["value_moe95"].map(lambda v: "—" if pd.isna(v) else f"± {v * k:.1f}"),
        flag_words=df["flag"].map(FLAG_WORDS),
    )
    ids = {c: label for c, label in ID_COLUMNS.items() if c in df.columns and c not in columns}
    csv = df[list(ids) + list(columns)].rename(columns={**ids, **columns})
    csv[f"Value{' (%)' if rate else ''}"] = (df["value"] * k).round(4).to_numpy()
    csv[f"Margin of error (95%{', ± points' if rate else ', ±'})"] = (df["value_moe95"] * k).round(4).to_numpy()
    csv["Reliability"] = df["flag"].map(FLAG_WORDS).to_numpy()
    csv["Why"] = df["flag_reason"].to_numpy()
    table_with_margins(
        view,
        {
            **columns,
            "value_shown": "Value",
            "moe_shown": "Margin of error (95%)",
            "flag_words": "Reliability",
            "flag_reason": "Why",
        },
        file_name,
        key,
        csv=csv,
    )


@st.cache_data(show_spinner=False)
def maine_counties_geojson() -> dict[str, Any]:
    """The shipped Census county outlines of Maine (no CDN)."""
    import json

    return json.loads((config.REFERENCE_DIR / "maine_counties.geojson").read_text(encoding="utf-8"))


@st.cache_data(show_spinner=False, max_entries=8)
def county_optout(folder: str, release_id: str) -> pd.DataFrame:
    """County opt-out rates of a release, cached by release id."""
    from analytics.views import optout_by_county

    return optout_by_county(load_release_cached(folder, release_id))


@st.cache_data(show_spinner=False, max_entries=8)
def county_map(folder: str, release_id: str) -> dict[str, Any]:
    """The county opt-out map of a release as a plain figure dict (cached; a fresh figure is made per use)."""
    import plotly.express as px

    counties = county_optout(folder, release_id)
    fig = px.choropleth_map(
        counties.assign(
            rate_pct=counties["optout_rate"] * 100,
            moe_pct=counties["optout_rate_moe95"] * 100,
            county_label=counties["county"].map(plot_text),
        ),
        geojson=maine_counties_geojson(),
        locations="fips",
        color="rate_pct",
        color_continuous_scale="Cividis",
        map_style="white-bg",
        center={"lat": 45.3, "lon": -69.2},
        zoom=5.4,
        opacity=0.9,
        hover_name="county_label",
        hover_data={"fips": False, "county_label": False, "rate_pct": ":.1f", "moe_pct": ":.1f", "n_districts": True},
        labels={"rate_pct": "Declined (%)", "moe_pct": "± (pts)", "n_districts": "Districts"},
    )
    fig.update_layout(height=520, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    return fig.to_dict()
