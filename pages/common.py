"""Shared page helpers: finding and caching the release, query-string filters, tables with margins.

Pages read only published releases. Loading is cached per (folder, release id),
so switching pages and filters never re-reads files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from analytics import config
from analytics.release import Release, build_release, list_releases, load_release

#: Colour-blind-safe palette (Okabe-Ito); meaning is never carried by colour alone.
COLOURS = {"reliable": "#0072B2", "rough": "#E69F00", "unreliable": "#999999", "state": "#009E73"}
FLAG_WORDS = {
    "reliable": "reliable",
    "rough": "rough (small group)",
    "unreliable": "unreliable: do not compare",
}


def releases_dir() -> Path:
    return config.analytics_home() / "releases"


@st.cache_data(show_spinner=False, max_entries=8)
def _load(folder: str, release_id: str) -> Release:
    return load_release(Path(folder), release_id)


def ensure_release() -> None:
    """Build a release of the bundled sample on first start, with visible progress."""
    if list_releases(releases_dir()):
        return
    with st.status("First start: building a privacy-protected release of the bundled sample data", expanded=True) as s:
        bar = st.progress(0.0)

        def progress(message: str, fraction: float) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        result = build_release(config.SAMPLE_DATA_DIR, releases_dir(), progress=progress)
        s.update(label=f"Release {result.release_id} is ready", state="complete", expanded=False)


def current_release() -> Release:
    """The release chosen in the sidebar (default: newest), cached by id."""
    manifests = list_releases(releases_dir())
    ids = [m["release_id"] for m in manifests]
    wanted = st.query_params.get("release")
    release_id = wanted if wanted in ids else ids[0]
    return _load(str(releases_dir()), release_id)


def release_picker() -> None:
    """Sidebar list of releases; the choice lives in the URL so a view can be shared."""
    manifests = list_releases(releases_dir())
    if not manifests:
        return
    ids = [m["release_id"] for m in manifests]
    labels = {
        m["release_id"]: f"{m['created_at'][:10]} · ε={m['epsilon_total']:g} · {m['release_id']}" for m in manifests
    }
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


def table_with_margins(df: pd.DataFrame, columns: dict[str, str], file_name: str, key: str) -> None:
    """Show exactly ``columns`` (source -> label) with the flag in words, and a CSV download of the same."""
    shown = df[list(columns)].rename(columns=columns)
    st.dataframe(shown, hide_index=True, width="stretch")
    st.download_button(
        "Download this table (CSV)",
        shown.to_csv(index=False).encode("utf-8"),
        file_name=file_name,
        mime="text/csv",
        key=key,
    )
