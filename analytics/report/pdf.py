"""The grant report's PDF summary: title page, charts with clipped error bars, the linkage table."""

from __future__ import annotations

import math
import textwrap
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import IO, Any

import numpy as np
import pandas as pd

from analytics.release import Release
from analytics.report.methodology import _created, _epsilon_total, _fmt_eps
from analytics.report.tables import BLUE, GREEN, GREY, REPORT_TITLE, VERMILLION, ReportTable, _with_districts
from analytics.views import label, rank_intervals, rank_words

# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------

_PAGE = (11.0, 8.5)
_PROTECTION = (
    "How the figures are protected. Every number in this report was computed from student records and then had a "
    "small amount of random noise added before it was published (differential privacy). The noise is large enough "
    "that nobody can tell from the published figures whether any one student's records were used, and small "
    "enough that figures for large groups stay accurate. Each figure comes with a 95% margin of error that "
    "describes this noise only (not sampling or data-quality error). Figures whose margin is too wide to compare "
    "are flagged unreliable and drawn as hollow markers. The total privacy loss of the release is epsilon {eps}; "
    "smaller is more private. Counts from different tables are separate noisy answers and need not add up."
)


@lru_cache(maxsize=1)
def _font_codepoints() -> frozenset[int]:
    """Code points the default matplotlib font can draw."""
    from matplotlib import font_manager, ft2font

    font = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties()))
    return frozenset(font.get_charmap())


def pdf_text(value: Any, limit: int = 90) -> str:
    r"""Text from the data as the PDF draws it: one line, no control characters, at most ``limit``
    characters, and ``?`` for characters the font cannot draw (mathtext is off while the PDF is drawn).

    >>> pdf_text("Birch\u200bwater $x^{$ School\n")
    'Birchwater $x^{$ School'
    """
    text = "".join(ch for ch in str(value)[: 4 * limit] if unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    drawable = _font_codepoints()
    return "".join(ch if ch == " " or ord(ch) in drawable else "?" for ch in text)


def _pct(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value * 100:.1f}%"


def _clipped_err(value: np.ndarray, moe: np.ndarray) -> np.ndarray:
    """Error bars of rates, truncated at 0% and 100%."""
    return np.vstack([np.minimum(moe, value), np.minimum(moe, 1 - value)]).clip(min=0)


def _series(
    ax: Any,
    x: np.ndarray,
    rows: pd.DataFrame,
    color: str,
    name: str,
    horizontal: bool = False,
    linestyle: str = "-",
) -> None:
    """Points with error bars cut to 0-100%; only reliable points solid; the line joins only figures that are
    present and not unreliable, so it never crosses a gap or passes through an unreliable figure."""
    value = rows["value"].to_numpy(float)
    moe = rows["value_moe95"].to_numpy(float)
    flags = rows["flag"].to_numpy()
    if not horizontal:
        order = np.argsort(x, kind="stable")
        joined = np.where(np.isfinite(value) & (flags != "unreliable"), value, np.nan)[order]
        ax.plot(x[order], joined, color=color, linewidth=1.2, linestyle=linestyle, label=name)
    ok = np.isfinite(value)
    x, value, moe, flags = x[ok], value[ok], np.nan_to_num(moe[ok]), flags[ok]
    hollow = flags != "reliable"
    err = _clipped_err(value, moe)
    for mask, face in ((~hollow, color), (hollow, "white")):
        if not mask.any():
            continue
        kwargs = dict(fmt="o", color=color, markerfacecolor=face, markeredgecolor=color, capsize=3, markersize=6)
        if horizontal:
            ax.errorbar(value[mask], x[mask], xerr=err[:, mask], **kwargs)
        else:
            ax.errorbar(x[mask], value[mask], yerr=err[:, mask], **kwargs)


def _chart_page(title: str, caption: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    ax = fig.add_axes((0.1, 0.2, 0.85, 0.68))
    fig.text(0.1, 0.93, title, fontsize=15, fontweight="bold")
    fig.text(0.1, 0.04, textwrap.fill(caption, 130), fontsize=9, va="bottom")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))


def _legend(ax: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="", color="black", markerfacecolor="white"))
    labels.append("hollow: not reliable (rough or unreliable)")
    for color, words in extra:
        handles.append(Line2D([], [], linewidth=8, color=color, alpha=0.35))
        labels.append(words)
    ax.legend(handles, labels, loc="best", fontsize=9, framealpha=0.9, edgecolor="#dddddd")


def _cohort_axis(ax: Any, cohorts: Sequence[int]) -> None:
    ax.set_xticks(list(cohorts))
    ax.set_xticklabels([str(c) for c in cohorts])
    ax.set_xlabel("Grade-9 cohort (spring year of first grade-9 enrolment; class of = cohort + 3)")


def _rate_by_cohort(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    return table[table["measure"] == measure].sort_values("cohort", kind="stable")


def _pdf_pages(release: Release, linkage: ReportTable) -> list[Any]:
    from matplotlib.figure import Figure

    eps = _fmt_eps(_epsilon_total(release))
    created = _created(release)
    figs: list[Any] = []

    title = Figure(figsize=_PAGE)
    title.text(0.08, 0.82, REPORT_TITLE, fontsize=20, fontweight="bold")
    subtitle = "Summary of the annual report package (the workbook and the CSV files hold every table)"
    title.text(0.08, 0.76, subtitle, fontsize=12)
    facts = [
        f"Release: {pdf_text(release.release_id, 60)}",
        f"Release created: {created.strftime('%Y-%m-%d %H:%M UTC')}",
        f"Dataset: {pdf_text(release.manifest.get('dataset_description', ''), 90)}",
        f"Code version: {pdf_text(release.manifest.get('code_version', ''), 60)}",
        f"Total privacy loss of the release: epsilon {eps}",
    ]
    for i, line in enumerate(facts):
        title.text(0.08, 0.66 - i * 0.045, line, fontsize=12)
    title.text(0.08, 0.40, textwrap.fill(_PROTECTION.format(eps=eps), 115), fontsize=11, va="top", linespacing=1.5)
    figs.append(title)

    grad = release.table("graduation_by_cohort")
    fig, ax = _chart_page(
        "Statewide graduation rate by cohort",
        "Adjusted cohort graduation rate, 4-year and extended 5-year (ESEA 8101(23), (25)), statewide. Error bars: 95% "
        "margin of error of the privacy noise. Source: graduation_by_cohort.",
    )
    g4, g5 = _rate_by_cohort(grad, "acgr_4yr"), _rate_by_cohort(grad, "acgr_5yr")
    _series(ax, g4["cohort"].to_numpy(float), g4, BLUE, "4-year graduation rate")
    _series(ax, g5["cohort"].to_numpy(float), g5, VERMILLION, "5-year graduation rate")
    _cohort_axis(ax, sorted(set(g4["cohort"]) | set(g5["cohort"])))
    ax.set_ylabel("Graduation rate (% of the adjusted cohort)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    figs.append(fig)

    college = release.table("college_by_cohort")
    fig, ax = _chart_page(
        "College-going of graduates by cohort",
        "Share of graduates (regular diploma within 5 years) enrolled in college by October 31 after graduation and "
        "within 16 months (EDFacts). Enrolment records cover about 94% of undergraduates: lower bounds. "
        "Source: college_by_cohort.",
    )
    c16, coct = _rate_by_cohort(college, "enrolled_within_16_months"), _rate_by_cohort(college, "enrolled_by_oct31")
    _series(ax, c16["cohort"].to_numpy(float), c16, BLUE, label("enrolled_within_16_months"))
    _series(ax, coct["cohort"].to_numpy(float), coct, GREEN, label("enrolled_by_oct31"))
    _cohort_axis(ax, sorted(set(c16["cohort"]) | set(coct["cohort"])))
    ax.set_ylabel("Graduates enrolled in college (% of graduates)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    figs.append(fig)

    work = release.table("workforce_by_cohort")
    work = work[work["years_out"] == 1]
    fig, ax = _chart_page(
        "Employment 1 year after expected graduation, with the opt-out bounds",
        "Blue: employed (2+ quarters with wages, $3,000+ in the year) among matched students, whose family provided "
        "the SSN. Grey band and points: the rate over all students if no unmatched student was employed (lower) or "
        "if every one was (upper); the band is wider where more families declined. Source: workforce_by_cohort.",
    )
    emp = _rate_by_cohort(work, "employment_rate")
    low, high = _rate_by_cohort(work, "employment_lower_bound"), _rate_by_cohort(work, "employment_upper_bound")
    band = low[["cohort", "value"]].merge(high[["cohort", "value"]], on="cohort", suffixes=("_lo", "_hi"))
    band = band[np.isfinite(band["value_lo"]) & np.isfinite(band["value_hi"])]
    ax.fill_between(
        band["cohort"].to_numpy(float),
        band["value_lo"].to_numpy(float),
        band["value_hi"].to_numpy(float),
        color=GREY,
        alpha=0.35,
        linewidth=0,
    )
    _series(ax, low["cohort"].to_numpy(float), low, GREY, "Bound: no unmatched student employed", linestyle="--")
    _series(ax, high["cohort"].to_numpy(float), high, GREY, "Bound: every unmatched student employed", linestyle=":")
    _series(ax, emp["cohort"].to_numpy(float), emp, BLUE, "Employed, of matched students")
    _cohort_axis(ax, sorted(set(emp["cohort"])))
    ax.set_ylabel("Employed 1 year out (% of students)")
    _percent_axis(ax.yaxis)
    _legend(ax, [(GREY, "between the bounds")])
    figs.append(fig)

    figs.append(_optout_by_district_page(release))
    figs.append(_optout_by_year_page(release))
    figs.append(_linkage_page(linkage))
    return figs


def _optout_by_district_page(release: Release, top: int = 25) -> Any:
    df = _with_districts(release.table("ssn_collection_by_district"), release)
    df = df[np.isfinite(df["optout_rate"].astype(float))].reset_index(drop=True)
    # a ranking of noisy figures is shown only with its rank intervals, and only over figures fit to compare
    ranks = rank_intervals(df["optout_rate"], df["optout_rate_moe95"])
    df = df.assign(rank_low=ranks["rank_low"], rank_high=ranks["rank_high"], n_ranked=ranks["n_ranked"])
    df = df[df["flag"] != "unreliable"]
    df = df.sort_values(["optout_rate", "district_id"], ascending=[False, True], kind="stable").head(top)
    df = df.iloc[::-1].reset_index(drop=True)  # highest at the top
    fig, ax = _chart_page(
        f"SSN opt-out rate: the {len(df)} highest among districts with a figure fit to compare",
        "Families who declined to provide the student's SSN / families asked, all school years, by the district that "
        "asked. Error bars: 95% margin of error, truncated at 0% and 100%. Districts flagged unreliable are left out "
        "of this list; each label gives the district's rank as the range its noise allows (95%, by redrawing every "
        "district's figure from its margin), not a single place. Source: ssn_collection_by_district.",
    )
    ax.set_position((0.42, 0.2, 0.53, 0.68))
    rows = df.assign(value=df["optout_rate"], value_moe95=df["optout_rate_moe95"])
    y = np.arange(len(rows), dtype=float)
    _series(ax, y, rows, VERMILLION, "Opt-out rate", horizontal=True)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [
            f"{pdf_text(n, 44)} ({pdf_text(i, 16)}): {rank_words(lo, hi, int(k))}"
            for n, i, lo, hi, k in zip(
                rows["district_name"],
                rows["district_id"],
                rows["rank_low"],
                rows["rank_high"],
                rows["n_ranked"],
                strict=True,
            )
        ],
        fontsize=7,
    )
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlim(0, 1)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Opt-out rate (% of families asked who declined to provide the SSN)")
    _percent_axis(ax.xaxis)
    _legend(ax)
    return fig


def _optout_by_year_page(release: Release) -> Any:
    df = release.table("ssn_collection_by_year").sort_values("school_year", kind="stable")
    fig, ax = _chart_page(
        "Statewide SSN opt-out rate by school year",
        "Families who declined / families asked, statewide, by school year of asking (2011 = 2010-11, the first "
        "year Maine asked). Its own noisy query, not a sum of district figures. Source: ssn_collection_by_year.",
    )
    rows = df.assign(value=df["optout_rate"], value_moe95=df["optout_rate_moe95"])
    _series(ax, df["school_year"].to_numpy(float), rows, VERMILLION, "Opt-out rate")
    years = [int(v) for v in df["school_year"]]
    ax.set_xticks(years)
    ax.set_xticklabels([f"{y - 1}-{str(y)[-2:]}" for y in years], fontsize=8)
    ax.set_xlabel("School year of asking")
    ax.set_ylabel("Opt-out rate (% of families asked)")
    _percent_axis(ax.yaxis)
    _legend(ax)
    return fig


def _linkage_page(linkage: ReportTable) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    fig.text(0.05, 0.93, "Linkage and match rates by cohort (statewide)", fontsize=15, fontweight="bold")
    f = linkage.frame
    rates = (
        "4-year graduation rate",
        "Enrolled in college within 16 months",
        "SSN provided (linkable to wage records)",
    )
    headers = ["Cohort", "Adjusted cohort\n(noisy count)", *(textwrap.fill(r, 22) for r in rates)]
    cells = []
    for _, r in f.iterrows():
        row = [str(r["Cohort"]), _count_text(r["Adjusted cohort (noisy count)"])]
        for name in rates:
            value = float(r[name]) if pd.notna(r[name]) else math.nan
            moe = float(r[f"{name}, margin of error (95%)"]) if pd.notna(r[f"{name}, margin of error (95%)"]) else 0.0
            flag = str(r[f"{name}, reliability"])
            row.append(f"{_pct(value)} ± {moe * 100:.1f}" + ("" if flag == "Reliable" else f" ({flag.lower()})"))
        cells.append(row)
    ax = fig.add_axes((0.05, 0.18, 0.9, 0.7))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=headers, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.5)
    for (i, _j), cell in table.get_celld().items():
        if i == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#e8f1f8")
            cell.set_height(cell.get_height() * 2)
    caption = (
        "Rates in percent with the 95% margin of error of the privacy noise, in percentage points; figures not "
        "flagged reliable say so in brackets. The adjusted cohort is a noisy count. SSN provided: share of the "
        "cohort that can be linked to Maine wage records (1 year out). Sources: graduation_by_cohort, "
        "college_by_cohort, workforce_by_cohort."
    )
    fig.text(0.05, 0.04, textwrap.fill(caption, 140), fontsize=9, va="bottom")
    return fig


def _count_text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def _write_pdf(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    linkage = next(t for t in tables if t.key.endswith("linkage_and_match_rates"))
    import matplotlib

    metadata = {
        "Title": f"{REPORT_TITLE} (release {pdf_text(release.release_id, 60)})",
        "Subject": "Differentially private figures of a statewide longitudinal data system",
        "Creator": "analytics.report",
        "CreationDate": _created(release),
    }
    # Data-derived text is drawn literally: "$...$" in a name is not matplotlib mathtext.
    with matplotlib.rc_context({"text.parse_math": False}), PdfPages(fh, metadata=metadata) as pdf:
        for fig in _pdf_pages(release, linkage):
            pdf.savefig(fig)
