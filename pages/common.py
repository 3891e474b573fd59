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

import copy
import functools
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

from analytics import config, views
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
    if len(text) <= _MEMO_CHARS:
        return _text_cap_short(text, limit)
    return _text_cap(text, limit)


#: Texts up to this length are capped once and remembered (names repeat on every rerun); longer ones never are.
_MEMO_CHARS = 1000


@functools.lru_cache(maxsize=65_536)
def _text_cap_short(text: str, limit: int) -> str:
    return _text_cap(text, limit)


def _text_cap(text: str, limit: int) -> str:
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # enough to fill the cap after dropping invisible characters
    text = "".join(" " if ch in "\t\n\r" else ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n\r")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def map_distinct(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """``values.map(func)`` for a column that repeats itself: ``func`` runs once per distinct present value.

    Missing cells (None, NaN) are kept as they are, never passed to ``func``.

    >>> map_distinct(pd.Series(["a\\nb", "a\\nb", None]), text_cap).tolist()
    ['a b', 'a b', None]
    """
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(distinct) + 1, dtype=object)
    mapped[:-1] = [func(v) for v in distinct]
    out = mapped[codes]
    missing = codes == -1
    if missing.any():
        out[missing] = values.to_numpy(dtype=object)[missing]
    return pd.Series(out, index=values.index, dtype=object)


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
            out[col] = map_distinct(out[col], lambda v: neutralise(text_cap(v, 1000)))
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A table as Parquet: numbers keep their types; text columns (capped) are stored as strings, missing as null.

    >>> import io
    >>> pd.read_parquet(io.BytesIO(parquet_bytes(pd.DataFrame({"rate": [0.5, None], "n": [3, 4]})))).dtypes.tolist()
    [dtype('float64'), dtype('int64')]
    """
    import io

    out = frame.copy()
    out.columns = [text_cap(c, CELL_CAP) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = map_distinct(out[col], lambda v: text_cap(v, 1000)).where(lambda c: c.notna(), None)
    buf = io.BytesIO()
    out.to_parquet(buf, index=False)
    return buf.getvalue()


def download_csv(frame: pd.DataFrame, file_name: str, key: str, label: str = "Download this table (CSV)") -> None:
    """Download buttons for ``frame`` as CSV (:func:`csv_bytes`, opens in a spreadsheet) and as Parquet.

    The bytes are made with the page (a deferred callable did not start the download in headless
    Chromium: tests/test_browser.py); tables here are small, so this costs milliseconds.
    """
    c1, c2 = st.columns(2)
    c1.download_button(label, csv_bytes(frame), file_name=file_name, mime="text/csv", key=key)
    c2.download_button(
        "Same table as Parquet",
        parquet_bytes(frame),
        file_name=file_name.rsplit(".", 1)[0] + ".parquet",
        mime="application/vnd.apache.parquet",
        key=f"{key}_parquet",
    )


def releases_dir() -> Path:
    return config.analytics_home() / "releases"


@st.cache_resource(show_spinner=False, max_entries=8)
def load_release_cached(folder: str, release_id: str) -> Release:
    """A release read once per server and shared by every session: treat it as read-only.

    Pages get their own view of it from :func:`current_release`.
    """
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
    """The release chosen in the sidebar (default: newest), read once per server and cached by id.

    Returns this rerun's own view of the shared release: its own manifest and shallow copies of the
    tables (copy-on-write), so a page that changes a frame never changes what other sessions see.
    """
    manifests = _manifests(str(releases_dir()))
    ids = [m["release_id"] for m in manifests]
    wanted = st.query_params.get("release")
    release_id = wanted if wanted in ids else ids[0]
    return private_view(load_release_cached(str(releases_dir()), release_id))


def private_view(release: Release) -> Release:
    """``release`` with its own manifest and shallow (copy-on-write) copies of its tables; costs well under 1 ms."""
    return Release(
        release_id=release.release_id,
        path=release.path,
        manifest=copy.deepcopy(release.manifest),
        tables={name: frame.copy(deep=False) for name, frame in release.tables.items()},
    )


def release_picker() -> None:
    """Sidebar list of releases; the choice lives in the URL so a view can be shared."""
    manifests = _manifests(str(releases_dir()))
    if not manifests:
        return
    ids = [m["release_id"] for m in manifests]
    labels = {m["release_id"]: str(m.get("label", m["release_id"])) for m in manifests}
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
    picked = next(m for m in manifests if m["release_id"] == chosen)
    st.sidebar.caption(
        f"{escape_markdown(text_cap(labels[chosen], 200))}: privacy loss ε = {float(picked['epsilon_total']):g} "
        "for this release."
    )


def interval_bars(
    value: pd.Series,
    moe: pd.Series,
    colour: str,
    *,
    lower: float | None = 0.0,
    upper: float | None = 1.0,
    scale: float = 100.0,
) -> dict[str, object]:
    """Plotly error bars for ``value ± moe`` cut to the possible range ``[lower, upper]``, drawn in ``scale`` units.

    The defaults are a rate shown in percent (0-100%); an amount passes ``upper=None``
    (or the top-coding edge) and ``scale=1``. No interval leaves the possible range.
    """
    lo, hi = views.clip_interval(value, moe, lower, upper)
    v = np.asarray(value, dtype=float)
    return {
        "type": "data",
        "symmetric": False,
        "array": np.nan_to_num((hi - v) * scale, nan=0.0).tolist(),
        "arrayminus": np.nan_to_num((v - lo) * scale, nan=0.0).tolist(),
        "color": colour,
        "thickness": 1.5,
        "width": 3,
    }


def point_meta(flags: pd.Series | list[str], lower: float | None, upper: float | None, scale: float) -> dict[str, Any]:
    """What a browser check needs to verify a trace: each point's flag and the possible range in drawn units.

    Every data trace on these pages carries it as Plotly ``meta``; tests/test_browser.py
    reads it to check that no unreliable point is solid or joined by a line and no
    interval leaves the range.
    """
    return {
        "flags": [str(f) for f in flags],
        "lower": None if lower is None else lower * scale,
        "upper": None if upper is None else upper * scale,
    }


def symbols(flags: pd.Series | list[str], solid: str = "circle") -> list[str]:
    """Marker symbols: solid only for reliable figures, hollow (``-open``) for every other flag."""
    return [solid if f == "reliable" else f"{solid}-open" for f in flags]


def pct(x: float) -> str:
    """A rate as a percentage; an unbiased noisy figure outside 0-100% says so in words (its value is kept)."""
    if pd.isna(x):
        return "—"
    text = f"{x * 100:.1f}%"
    if x > 1:
        return f"{text} (over 100%: noise)"
    if x < 0:
        return f"{text} (below 0%: noise)"
    return text


def pct_moe(x: float) -> str:
    return "—" if pd.isna(x) else f"± {x * 100:.1f} pts"


def _shown_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns capped for display (a 20 MB name must not reach the browser)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = map_distinct(out[col], lambda v: v if not isinstance(v, str) else text_cap(v))
    return out


def table_with_margins(
    df: pd.DataFrame, columns: dict[str, str], file_name: str, key: str, csv: pd.DataFrame | None = None
) -> None:
    """Show exactly ``columns`` (source -> label) with the flag in words, and a CSV download.

    The download is ``csv`` when given (numbers as numbers, margins in their own
    columns), else the shown columns.
    """
    shown = df[list(columns)].rename(columns=columns)
    st.dataframe(_shown_text_cached(shown), hide_index=True, width="stretch")
    download_csv(shown if csv is None else csv, file_name, key)


@st.cache_data(show_spinner=False, max_entries=256)
def _shown_text_cached(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`_shown_text`, cached by the table's content (hashing a table is cheaper than capping its text)."""
    return _shown_text(frame)


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


def chart(fig: go.Figure, reading: str, key: str | None = None, container: Any = None) -> None:
    """Draw ``fig`` (full width, no Plotly logo) with its reading in words just below it.

    The reading is one plain sentence generated from the numbers and their noise,
    so a screen reader (or a reader in a hurry) gets what the chart shows.
    """
    where = container if container is not None else st
    where.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    where.caption(f"Reading: {escape_markdown(text_cap(reading, 1500))}")


@st.cache_data(show_spinner=False, max_entries=64)
def _rank_table(value: tuple[float, ...], moe95: tuple[float, ...]) -> pd.DataFrame:
    """Rank intervals of published figures, cached by the figures themselves (post-processing only)."""
    return views.rank_intervals(np.array(value, dtype=float), np.array(moe95, dtype=float))


def with_ranks(df: pd.DataFrame, name_col: str) -> pd.DataFrame:
    """``df`` (one row per unit with ``value`` and ``value_moe95``) plus its rank interval in words (``rank_words``).

    Rank 1 is the highest value; the interval comes from redrawing every figure
    from its published margin (:func:`analytics.views.rank_intervals`).
    """
    ranks = _rank_table(tuple(df["value"].astype(float)), tuple(df["value_moe95"].astype(float)))
    words = [
        views.rank_words(lo, hi, int(n))
        for lo, hi, n in zip(ranks["rank_low"], ranks["rank_high"], ranks["n_ranked"], strict=True)
    ]
    return df.assign(rank_low=ranks["rank_low"].to_numpy(), rank_high=ranks["rank_high"].to_numpy(), rank_words=words)


def paged(df: pd.DataFrame, name_col: str, key: str, noun: str, page_size: int = 25) -> pd.DataFrame:
    """A search box and a page picker over a long list sorted by value (highest first); returns the rows to draw.

    Long lists are drawn one page at a time so a chart stays short enough for its
    axis to stay on screen; the table view below the chart keeps every row.
    """
    ordered = df.sort_values("value", ascending=False, na_position="last")
    if len(ordered) <= page_size:
        return ordered
    c1, c2 = st.columns([3, 2])
    find = c1.text_input(f"Find {noun} by name", key=f"{key}_find", max_chars=80, placeholder="Part of a name")
    if find.strip():
        wanted = text_cap(find, 80).casefold()
        ordered = ordered[ordered[name_col].astype(str).str.casefold().str.contains(wanted, regex=False)]
    n = len(ordered)
    pages = max(1, -(-n // page_size))
    starts = list(range(0, max(n, 1), page_size))
    start = c2.selectbox(
        f"{noun.capitalize()} shown (highest first)",
        starts,
        key=f"{key}_page",
        format_func=lambda s: f"{s + 1}-{min(s + page_size, n)} of {n}",
        disabled=pages == 1,
    )
    return ordered.iloc[start : start + page_size] if start < n else ordered.iloc[0:0]


def figure(spec: dict[str, Any]) -> go.Figure:
    """A fresh figure from a spec that came out of a validated figure (``Figure.to_dict()``), without validating again.

    Building and validating a Plotly figure costs tens of milliseconds; the builders below cache
    their specs (plain dicts, copied per use) and every rerun rebuilds the figure from its spec.
    """
    return go.Figure(spec, _validate=False)


def cached_figure(build: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """``build`` with its validated spec cached by its arguments (DataFrames are hashed by content).

    The cache holds plain dicts, never a figure object shared across sessions; each call gets a new figure.
    """

    def spec_of(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return build(*args, **kwargs).to_dict()

    spec_of.__qualname__ = spec_of.__name__ = f"spec_of_{build.__qualname__}"  # one cache per builder
    spec = st.cache_data(show_spinner=False, max_entries=256)(spec_of)

    @functools.wraps(build)
    def cached(*args: Any, **kwargs: Any) -> go.Figure:
        return figure(spec(*args, **kwargs))

    return cached


@cached_figure
def caterpillar(
    df: pd.DataFrame,
    name_col: str,
    unit: str,
    rate: bool,
    reference: float | None = None,
    reference_label: str = "State",
    lower: float | None = None,
    upper: float | None = None,
) -> go.Figure:
    """Sorted dots with 95% intervals (clipped to the possible range); reliable solid, others hollow; one row per unit.

    A rate's interval is cut to 0-100%; an amount's to ``[lower, upper]`` (default:
    not below 0). When ``df`` has ``rank_words`` (:func:`with_ranks`) the hover gives
    each unit's rank interval, never a bare rank.
    """
    k = _scale(rate)
    lo_b, hi_b = (0.0, 1.0) if rate else (0.0 if lower is None else lower, upper)
    shown = df.sort_values("value", na_position="first")
    shown = shown.assign(**{name_col: shown[name_col].map(plot_text)})
    ranks = shown["rank_words"] if "rank_words" in shown else pd.Series("", index=shown.index)
    fig = go.Figure()
    for flag in ("reliable", "rough", "unreliable"):
        group = shown[shown["flag"] == flag]
        if group.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=group["value"] * k,
                y=group[name_col],
                mode="markers",
                name=FLAG_WORDS[flag],
                error_x=interval_bars(
                    group["value"], group["value_moe95"], COLOURS[flag], lower=lo_b, upper=hi_b, scale=k
                ),
                marker={"color": COLOURS[flag], "size": 8, "symbol": symbols(group["flag"])},
                meta=point_meta(group["flag"], lo_b, hi_b, k),
                customdata=np.stack(
                    [
                        group["value_moe95"] * k,
                        group["n_students"].fillna(0) if "n_students" in group else np.zeros(len(group)),
                        group["flag_reason"].fillna("").map(plot_text),
                        ranks.loc[group.index].map(lambda r: f"<br>rank {r}" if r else ""),
                    ],
                    axis=1,
                ),
                hovertemplate="%{y}: %{x:.1f} ± %{customdata[0]:.1f} "
                + plot_text(unit)
                + "<br>%{customdata[1]:,.0f} students (noisy)%{customdata[3]}<br>%{customdata[2]}<extra></extra>",
            )
        )
    if reference is not None and not pd.isna(reference):
        fig.add_vline(
            x=reference * k,
            line_dash="dash",
            line_color=COLOURS["state"],
            annotation_text=f"{plot_text(reference_label)} {reference * k:.1f}",
            annotation_position="top right",
        )
    fig.update_layout(
        height=max(320, 22 * len(shown) + 150),
        xaxis_title=plot_text(unit),
        yaxis_title=None,
        yaxis={"categoryorder": "array", "categoryarray": shown[name_col].tolist(), "automargin": True},
        legend={"orientation": "h", "yanchor": "top", "y": -0.01, "x": 0},
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    fig.update_xaxes(side="top", mirror="allticks", ticks="outside", showline=True)
    if rate:
        fig.update_xaxes(range=[0, 100])
    return fig


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and end (exclusive) of each run of True in ``mask``.

    >>> _runs(np.array([True, True, False, True, False, True, True, True]))
    [(0, 2), (3, 4), (5, 8)]
    """
    runs, start = [], None
    for i, ok in enumerate(mask):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


@cached_figure
def trend(
    df: pd.DataFrame,
    x: str,
    series: str,
    unit: str,
    rate: bool,
    x_title: str,
    lower: float | None = None,
    upper: float | None = None,
    domain: list[Any] | None = None,
) -> go.Figure:
    """Lines over ``x`` for each value of ``series``, with 95% bands that never cross a gap or an unreliable figure.

    Every series is laid on the full ``domain`` of ``x`` (default: every ``x`` in
    ``df``), so a missing figure stays a gap. The line and band join only figures
    that are present and not flagged unreliable; an unreliable figure is a hollow
    dot with a faint interval and no line to it; reliable dots are solid, others
    hollow. Intervals are cut to the possible range (0-100% for a rate; for an
    amount ``[lower, upper]``, by default not below 0).
    """
    k = _scale(rate)
    lo_b, hi_b = (0.0, 1.0) if rate else (0.0 if lower is None else lower, upper)
    xs = list(domain) if domain is not None else sorted(df[x].dropna().unique().tolist())
    fig = go.Figure()
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00"]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for i, (raw_name, group) in enumerate(df.groupby(series, sort=False)):
        name = plot_text(raw_name)
        group = group.drop_duplicates(x).set_index(x).reindex(xs)
        flags = group["flag"].fillna("missing")
        value = group["value"].astype(float)
        moe = group["value_moe95"].astype(float)
        present = value.notna().to_numpy()
        usable = present & (flags != "unreliable").to_numpy()
        colour = palette[i % len(palette)]
        lo, hi = views.clip_interval(value, moe, lo_b, hi_b)
        band_x: list[Any] = []
        band_y: list[float | None] = []
        covered = np.zeros(len(xs), dtype=bool)
        for a, b in _runs(usable):
            if b - a < 2:
                continue
            covered[a:b] = True
            band_x += xs[a:b] + xs[a:b][::-1] + [None]
            band_y += list(hi[a:b] * k) + list(lo[a:b][::-1] * k) + [None]
        if band_x:
            fig.add_trace(
                go.Scatter(
                    x=band_x,
                    y=band_y,
                    mode="lines",
                    line={"width": 0},
                    fill="toself",
                    fillcolor=_rgba(colour, 0.15),
                    showlegend=False,
                    hoverinfo="skip",
                    legendgroup=name,
                    meta={"role": "band", **point_meta([], lo_b, hi_b, k)},
                )
            )
        # one line trace, broken (None) at every gap and every unreliable figure
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[v * k if ok else None for v, ok in zip(value, usable, strict=True)],
                mode="lines",
                connectgaps=False,
                line={"color": colour, "dash": dashes[i % len(dashes)]},
                name=name,
                legendgroup=name,
                hoverinfo="skip",
                meta={"role": "line", **point_meta(["reliable" if u else "missing" for u in usable], lo_b, hi_b, k)},
            )
        )
        pts = np.flatnonzero(present)
        if len(pts) == 0:
            continue
        pf = flags.iloc[pts]
        faint = _rgba(colour, 0.35)
        # a dot covered by a band needs no bar; an isolated or unreliable one gets its (clipped) interval
        bars = interval_bars(value.iloc[pts], moe.iloc[pts], faint, lower=lo_b, upper=hi_b, scale=k)
        bars["array"] = [0.0 if covered[j] else v for j, v in zip(pts, bars["array"], strict=True)]  # type: ignore[call-overload]
        bars["arrayminus"] = [0.0 if covered[j] else v for j, v in zip(pts, bars["arrayminus"], strict=True)]  # type: ignore[call-overload]
        fig.add_trace(
            go.Scatter(
                x=[xs[j] for j in pts],
                y=value.iloc[pts] * k,
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=False,
                error_y=bars,
                marker={"size": 8, "color": colour, "symbol": symbols(pf)},
                meta=point_meta(pf, lo_b, hi_b, k),
                customdata=np.stack([moe.iloc[pts] * k, pf.map(FLAG_WORDS).fillna("")], axis=1),
                hovertemplate="%{fullData.name}<br>%{x}: %{y:.1f} ± %{customdata[0]:.1f} "
                + plot_text(unit)
                + "<br>%{customdata[1]}<extra></extra>",
            )
        )
    fig.update_layout(
        height=380,
        xaxis_title=plot_text(x_title),
        yaxis_title=plot_text(unit),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    if rate:
        # 0-100%, widened only to show a noisy figure outside it (a direct graduation rate can be: its words say so)
        shown = df["value"].astype(float).dropna() * k
        top = max(100.0, float(shown.max()) + 3) if len(shown) else 100.0
        bottom = min(0.0, float(shown.min()) - 3) if len(shown) else 0.0
        fig.update_yaxes(range=[bottom, top])
    elif lo_b is not None:
        fig.update_yaxes(rangemode="tozero")
    if any(isinstance(v, str) for v in xs):
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=xs)  # "2010-11" is a school year
    else:
        fig.update_xaxes(dtick=1)
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def long_table(df: pd.DataFrame, columns: dict[str, str], rate: bool, file_name: str, key: str) -> None:
    """Table view of long-format rows: value and margin side by side, flag in words, plus CSV download.

    The CSV keeps the value and its margin as numbers in their own columns (percent
    for rates), with any district or school id beside the name.
    """
    ids = [c for c in ID_COLUMNS if c in df.columns and c not in columns]
    ranks = [c for c in ("rank_low", "rank_high") if c in df.columns]
    used = list(dict.fromkeys([*ids, *columns, "value", "value_moe95", "flag", "flag_reason", *ranks]))
    shown, csv = _long_frames(df[used], columns, rate)
    st.dataframe(shown, hide_index=True, width="stretch")
    download_csv(csv, file_name, key)


@st.cache_data(show_spinner=False, max_entries=256)
def _long_frames(df: pd.DataFrame, columns: dict[str, str], rate: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table :func:`long_table` shows (text capped) and the one it offers for download, cached by content."""
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
    if "rank_low" in df and "rank_high" in df:
        csv = csv.drop(columns=[c for c in csv.columns if c == columns.get("rank_words")])
        csv["Rank, best plausible (1 = highest)"] = df["rank_low"].to_numpy()
        csv["Rank, worst plausible"] = df["rank_high"].to_numpy()
    shown_columns = {
        **columns,
        "value_shown": "Value",
        "moe_shown": "Margin of error (95%)",
        "flag_words": "Reliability",
        "flag_reason": "Why",
    }
    return _shown_text(view[list(shown_columns)].rename(columns=shown_columns)), csv


@st.cache_data(show_spinner=False)
def maine_counties_geojson() -> dict[str, Any]:
    """The shipped Census county outlines of Maine (no CDN), each ring an (n, 2) array of longitude, latitude.

    Arrays, not lists of pairs: Plotly copies a figure's data several times on every rerun, and
    copying 16 arrays is a thousand times cheaper than copying 11,000 small lists. They are written
    to the browser as the same nested lists.
    """
    import json

    geojson = json.loads((config.REFERENCE_DIR / "maine_counties.geojson").read_text(encoding="utf-8"))
    for feature in geojson["features"]:
        geometry = feature["geometry"]
        if geometry["type"] == "Polygon":
            geometry["coordinates"] = [np.asarray(ring, dtype=float) for ring in geometry["coordinates"]]
        elif geometry["type"] == "MultiPolygon":
            geometry["coordinates"] = [
                [np.asarray(ring, dtype=float) for ring in polygon] for polygon in geometry["coordinates"]
            ]
    return geojson


def _outlines(geojson: dict[str, Any], fips: pd.Series) -> dict[str, Any]:
    """Only the outlines a trace colours: each county's shape travels to the browser once, not once per trace."""
    wanted = set(fips.astype(str))
    return {**geojson, "features": [f for f in geojson["features"] if str(f.get("id")) in wanted]}


@st.cache_data(show_spinner=False, max_entries=32)
def graduation_view(folder: str, release_id: str, level: str, view: str, measure: str = "acgr_4yr") -> pd.DataFrame:
    """:func:`analytics.views.graduation` of a release, cached by release id and view."""
    return views.graduation(load_release_cached(folder, release_id), level, view, measure)


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
    counties = counties.assign(
        rate_pct=counties["optout_rate"] * 100,
        moe_pct=counties["optout_rate_moe95"] * 100,
        county_label=counties["county"].map(plot_text),
    )
    known = counties[counties["flag"] != "unreliable"]
    fig = px.choropleth_map(
        known,
        geojson=_outlines(maine_counties_geojson(), known["fips"]),
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
    for trace in fig.data:
        trace.meta = point_meta(known["flag"], 0.0, 1.0, 100.0)
    unknown = counties[counties["flag"] == "unreliable"]
    if len(unknown):
        # an unreliable county is left uncoloured: a light fill with a heavy outline, never a shade of the scale
        fig.add_trace(
            go.Choroplethmap(
                geojson=_outlines(maine_counties_geojson(), unknown["fips"]),
                locations=unknown["fips"],
                z=[0] * len(unknown),
                colorscale=[[0, "rgba(230,230,230,0.6)"], [1, "rgba(230,230,230,0.6)"]],
                showscale=False,
                marker={"line": {"color": "#555555", "width": 2}},
                name="unreliable: not coloured",
                meta={"hollow": True, **point_meta(unknown["flag"], 0.0, 1.0, 100.0)},
                text=unknown["county_label"],
                customdata=np.stack([unknown["rate_pct"], unknown["moe_pct"]], axis=1),
                hovertemplate="%{text}: %{customdata[0]:.1f}% ± %{customdata[1]:.1f} (unreliable)<extra></extra>",
            )
        )
    fig.update_layout(height=520, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    return fig.to_dict()
