"""Page-ready views of a published release: post-processing only, never microdata.

Pages call these so that every formula a chart relies on lives here, tested,
and not in the Streamlit layer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics import privacy, publiclists
from analytics.release import Release

MEASURE_LABELS: dict[str, str] = {
    "acgr_4yr": "4-year graduation rate",
    "acgr_5yr": "5-year graduation rate",
    "proficiency_rate": "Proficient (level 3 or 4)",
    "median_growth_percentile": "Median growth percentile",
    "value_added_points": "Value-added (scale points)",
    "value_added_points_eb": "Value-added, shrunk (scale points)",
    "enrolled_by_oct31": "Enrolled in college by Oct 31",
    "enrolled_within_16_months": "Enrolled in college within 16 months",
    "enrolled_4year_by_oct31": "Enrolled at a 4-year college by Oct 31",
    "enrolled_2year_by_oct31": "Enrolled at a 2-year college by Oct 31",
    "enrolled_in_state_by_oct31": "Enrolled in Maine by Oct 31",
    "enrolled_out_of_state_by_oct31": "Enrolled outside Maine by Oct 31",
    "persistence": "Persisted to a second year",
    "employment_rate": "Employed (2+ quarters, $3,000+), of matched",
    "employment_rate_any_wages": "Any wages in the year, of matched",
    "employment_rate_full_year": "Employed all 4 quarters, of matched",
    "coverage": "Coverage: SSN provided (matched)",
    "employment_lower_bound": "Employed, if no unmatched student was",
    "employment_upper_bound": "Employed, if every unmatched student was",
    "ssn_provided_share": "SSN provided",
    "wage_match_rate": "Found in Maine wage records",
    "found_among_provided": "Found in wage records, of those with an SSN",
    "p25": "25th percentile",
    "p50": "Median",
    "p75": "75th percentile",
}
RATE_MEASURES = frozenset(
    m
    for m in MEASURE_LABELS
    if m not in {"median_growth_percentile", "value_added_points", "value_added_points_eb", "p25", "p50", "p75"}
)


def label(measure: str) -> str:
    """Words for a measure name."""
    return MEASURE_LABELS.get(measure, measure.replace("_", " "))


def latest(table: pd.DataFrame, measure: str, by: str, **cell: object) -> pd.DataFrame:
    """Rows of ``measure`` (and ``cell``) ordered by ``by``, ending with the latest figure that is not
    flagged unreliable: a headline never rests on a figure the product itself says not to compare."""
    rows = table[table["measure"] == measure]
    for k, v in cell.items():
        rows = rows[rows[k] == v]
    rows = rows[rows["value"].notna() & (rows["flag"] != "unreliable")]
    return rows.sort_values(by).reset_index(drop=True)


def change(rows: pd.DataFrame) -> dict[str, float | str]:
    """Change between the last two rows, with the 95% margin of the difference, in words.

    The two figures are independent noisy draws, so the margin of their
    difference is sqrt(moe1^2 + moe2^2).

    >>> r = pd.DataFrame({"value": [0.80, 0.88], "value_moe95": [0.03, 0.04]})
    >>> change(r)["words"]
    'up 8.0 points, more than the noise (± 5.0)'
    """
    if len(rows) < 2:
        return {"delta": math.nan, "moe95": math.nan, "words": "no earlier figure to compare"}
    a, b = rows.iloc[-2], rows.iloc[-1]
    delta = float(b["value"] - a["value"])
    moe = float(math.hypot(a["value_moe95"], b["value_moe95"]))
    points = f"{abs(delta) * 100:.1f} points"
    if abs(delta) <= moe:
        words = f"no clear change ({'+' if delta >= 0 else '-'}{points}, within the noise of ± {moe * 100:.1f})"
    else:
        words = f"{'up' if delta > 0 else 'down'} {points}, more than the noise (± {moe * 100:.1f})"
    return {"delta": delta, "moe95": moe, "words": words}


def optout_long(table: pd.DataFrame) -> pd.DataFrame:
    """An SSN collection table in the long format the charts use (value = opt-out rate).

    >>> t = pd.DataFrame({"district_id": ["D1"], "n_declined": [5], "n_asked": [50], "optout_rate": [0.1],
    ...                   "optout_rate_moe95": [0.04], "flag": ["reliable"], "flag_reason": [""]})
    >>> optout_long(t)[["measure", "value", "n_students"]].values.tolist()
    [['optout_rate', 0.1, 50]]
    """
    return table.assign(
        measure="optout_rate",
        value=table["optout_rate"],
        value_moe95=table["optout_rate_moe95"],
        n_students=table["n_asked"],
        numerator=table["n_declined"],
        denominator=table["n_asked"],
    )


def cap_words(loss: dict[str, object]) -> str:
    """A population's cap in the unit its loss is told in: "epsilon 15.6 at delta 1e-10 (rho 2)" or "epsilon 8".

    ``loss`` is a manifest's ``lineage_privacy_loss`` (unit, cap, delta). A zCDP cap is a rho;
    it is stated as the epsilon it is worth at the loss's delta (Canonne, Kamath & Steinke 2020),
    so that it compares with the epsilon borne, with the rho beside it.

    >>> cap_words({"unit": "rho", "cap": 2.0, "delta": 1e-10})
    'ε = 14.9 at δ = 1e-10 (ρ = 2)'
    >>> cap_words({"unit": "epsilon", "cap": 8.0})
    'ε = 8'
    """
    from analytics import accounting

    cap = float(loss.get("cap", math.nan))  # type: ignore[arg-type]
    if loss.get("unit") != "rho":
        return f"ε = {cap:.3g}"
    delta = float(loss.get("delta") or 1e-10)  # type: ignore[arg-type]
    return f"ε = {accounting.rho_to_epsilon(cap, delta):.3g} at δ = {delta:.0e} (ρ = {cap:.3g})"


def optout_by_county(release: Release) -> pd.DataFrame:
    """County opt-out rates: sums of the district cells of each county (post-processing).

    The margin of error re-noises the summed cells (parametric bootstrap over as
    many cells as the county has districts). Columns: county, fips, n_asked,
    n_declined, optout_rate, optout_rate_moe95, n_districts, flag, flag_reason.
    """
    from analytics.schema import MAINE_COUNTIES

    districts = release.table("districts")
    cells = release.table("ssn_collection_by_district").merge(districts, on="district_id")
    mech = release.count_noise("ssn_collection_by_district")
    rows = []
    for county, group in cells.groupby("county", sort=True):
        declined = int(group["n_declined"].sum())
        asked = int(group["n_asked"].sum())
        moe = privacy.ratio_moe95(np.array([declined]), np.array([asked - declined]), mech, cells=len(group))[0]
        rows.append(
            {
                "county": county,
                "fips": MAINE_COUNTIES[str(county)],
                "n_asked": asked,
                "n_declined": declined,
                "optout_rate": declined / asked if asked else math.nan,
                "optout_rate_moe95": float(moe),
                "n_districts": len(group),
            }
        )
    out = pd.DataFrame(rows)
    flags, reasons = privacy.reliability(out["n_asked"], out["optout_rate_moe95"], out["optout_rate"], "rate")
    return out.assign(flag=flags, flag_reason=reasons)


def optout_vs_coverage(release: Release, years_out: int = 1) -> pd.DataFrame:
    """Each district's opt-out rate beside its workforce coverage (share matched), both with margins."""
    optout = release.table("ssn_collection_by_district")[
        ["district_id", "optout_rate", "optout_rate_moe95", "n_asked", "flag"]
    ]
    work = release.table("workforce_by_district")
    cov = work[(work["measure"] == "coverage") & (work["years_out"] == years_out)][
        ["district_id", "value", "value_moe95", "denominator", "flag"]
    ]
    cov = cov.rename(
        columns={
            "value": "coverage",
            "value_moe95": "coverage_moe95",
            "denominator": "n_students",
            "flag": "coverage_flag",
        }
    )
    out = optout.merge(cov, on="district_id").merge(release.table("districts"), on="district_id")
    both = (out["flag"] != "unreliable") & (out["coverage_flag"] != "unreliable")
    return out.assign(both_reliable=both)


def peers(release: Release, district_id: str) -> list[str]:
    """Districts of the same locale and a similar size (noisy families asked, within a factor of 2)."""
    districts = release.table("districts")
    sizes = release.table("ssn_collection_by_district").set_index("district_id")["n_asked"]
    me = districts.set_index("district_id").loc[district_id]
    size = max(float(sizes.get(district_id, 0)), 1.0)
    same = districts[(districts["locale"] == me["locale"]) & (districts["district_id"] != district_id)]
    ok = same["district_id"].map(lambda d: 0.5 <= max(float(sizes.get(d, 0)), 1.0) / size <= 2.0)
    return same.loc[ok, "district_id"].tolist()


def earnings_text(value: float, top_coded: bool = False) -> str:
    """Words for an earnings percentile: top-coded ones (in the open top bin) read as at least the top edge.

    PSEO publishes a percentile that lands in the open top bin as ">= top"
    (Census CES-WP-19-13); it is never shown as a number inside that bin.

    >>> earnings_text(100_000.0, True), earnings_text(43_125.0), earnings_text(float("nan"))
    ('>= $100,000', '$43,125', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{'>= ' if top_coded else ''}${value:,.0f}"


def with_earnings_text(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``shown_as`` (see :func:`earnings_text`) to a percentile table; ``top_coded`` defaults to False."""
    top = table["top_coded"].fillna(False).astype(bool) if "top_coded" in table else pd.Series(False, table.index)
    return table.assign(top_coded=top, shown_as=[earnings_text(v, t) for v, t in zip(table["value"], top, strict=True)])


def cohort_label(cohort: int) -> str:
    """Words for a cohort: '2011 (class of 2014)'."""
    return f"{cohort} (class of {cohort + 3})"


COHORTS = publiclists.COHORTS


# ---------------------------------------------------------------------------
# Charts that cannot mislead: plain words, rank intervals, clipped intervals
# ---------------------------------------------------------------------------

#: What a measure means, in a sentence a family or a board member can read (docs/metrics.md).
MEASURE_EXPLANATIONS: dict[str, str] = {
    "median_growth_percentile": (
        "Each student's growth percentile (1-99) compares this year's score with students who had the same earlier "
        "scores; 50 is typical growth. A school's figure is the middle one of its students (Colorado growth model: "
        "below 35 low, 35-65 typical, above 65 high)."
    ),
    "value_added_points_eb": (
        "How many scale points more (or fewer) a school's students scored than students with the same earlier "
        "scores statewide, pulled toward 0 in proportion to how little data the school has (empirical-Bayes "
        "shrinkage): 0 means the data cannot tell the school from the state average."
    ),
    "value_added_points": (
        "How many scale points more (or fewer) a school's students scored than students with the same earlier "
        "scores statewide, before any shrinkage."
    ),
    "employment_lower_bound": (
        "The employment rate over all students if none of the students without a wage-record match (SSN not "
        "given, or work not covered) was employed: the lowest the true rate could be."
    ),
    "employment_upper_bound": (
        "The employment rate over all students if every student without a wage-record match was employed: the "
        "highest the true rate could be."
    ),
    "coverage": "The share of the students whose wage records can be looked up at all (their family gave the SSN).",
}

#: Measures whose labels read better in longer words on a chart legend.
PLAIN_LABELS: dict[str, str] = {
    "employment_lower_bound": "Lowest possible (no unmatched student employed)",
    "employment_upper_bound": "Highest possible (every unmatched student employed)",
}


def explain(measure: str) -> str:
    """A sentence saying what ``measure`` means ('' when its label says it all).

    >>> explain("median_growth_percentile").startswith("Each student's growth percentile")
    True
    """
    return MEASURE_EXPLANATIONS.get(measure, "")


def plain_label(measure: str) -> str:
    """Words for a measure on a chart: :data:`PLAIN_LABELS` where the short label puzzles readers, else :func:`label`.

    >>> plain_label("employment_lower_bound")
    'Lowest possible (no unmatched student employed)'
    """
    return PLAIN_LABELS.get(measure, label(measure))


def ordinal(n: int) -> str:
    """English ordinal of a positive integer.

    >>> [ordinal(i) for i in (1, 2, 3, 4, 11, 12, 13, 21, 102, 111)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd', '111th']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def clip_interval(
    value: pd.Series | np.ndarray, moe95: pd.Series | np.ndarray, lower: float | None, upper: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval ``value ± moe95`` cut to the possible range ``[lower, upper]`` (None: unbounded).

    A rate lies in [0, 1]; an amount of money or a count is never below 0.

    >>> lo, hi = clip_interval(np.array([0.05, 0.97]), np.array([0.1, 0.1]), 0.0, 1.0)
    >>> lo.round(2).tolist(), hi.round(2).tolist()
    ([0.0, 0.87], [0.15, 1.0])
    """
    v = np.asarray(value, dtype=float)
    m = np.asarray(moe95, dtype=float)
    lo, hi = v - m, v + m
    if lower is not None:
        lo, hi = np.maximum(lo, lower), np.maximum(hi, lower)
    if upper is not None:
        lo, hi = np.minimum(lo, upper), np.minimum(hi, upper)
    return lo, hi


def rank_intervals(
    value: pd.Series | np.ndarray,
    moe95: pd.Series | np.ndarray,
    *,
    draws: int = 2000,
    seed: int = 20141,
    coverage: float = 0.95,
) -> pd.DataFrame:
    """Each unit's rank (1 = highest value) with the range of ranks its noise allows.

    Post-processing of published figures only: every figure is redrawn ``draws``
    times from a normal distribution with standard deviation ``moe95 / 1.96``
    centred on the published value, the units are ranked in each draw, and the
    central ``coverage`` share of each unit's ranks is its rank interval (the
    simulation method of Goldstein and Spiegelhalter 1996, "League tables and their
    limitations"; a normal approximation to the privacy noise, whose exact
    distribution differs a little in the tails). Units without a value get no rank.

    Returns:
        A frame aligned with the input (same length and order) with columns
        ``rank`` (rank of the published value), ``rank_low``, ``rank_high`` (the
        best and worst plausible ranks; ints as floats, NaN without a value) and
        ``n_ranked`` (how many units were ranked).

    >>> r = rank_intervals(np.array([0.9, 0.5, 0.1]), np.array([0.01, 0.01, 0.01]))
    >>> r[["rank", "rank_low", "rank_high"]].astype(int).values.tolist()
    [[1, 1, 1], [2, 2, 2], [3, 3, 3]]
    >>> r = rank_intervals(np.array([0.52, 0.50, 0.48]), np.array([0.3, 0.3, 0.3]))
    >>> (r["rank_low"].tolist(), r["rank_high"].tolist())
    ([1.0, 1.0, 1.0], [3.0, 3.0, 3.0])
    """
    v = np.asarray(value, dtype=float)
    m = np.nan_to_num(np.asarray(moe95, dtype=float), nan=0.0)
    ok = ~np.isnan(v)
    out = pd.DataFrame({"rank": np.nan, "rank_low": np.nan, "rank_high": np.nan}, index=range(len(v)))
    n = int(ok.sum())
    out["n_ranked"] = n
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    sims = v[ok][None, :] + rng.standard_normal((draws, n)) * (m[ok] / 1.96)[None, :]
    # rank 1 = highest: count how many units beat each one in each draw
    ranks = (-sims).argsort(axis=1).argsort(axis=1) + 1
    tail = (1.0 - coverage) / 2 * 100
    out.loc[ok, "rank"] = (pd.Series(-v[ok]).rank(method="min")).to_numpy()
    out.loc[ok, "rank_low"] = np.floor(np.percentile(ranks, tail, axis=0))
    out.loc[ok, "rank_high"] = np.ceil(np.percentile(ranks, 100 - tail, axis=0))
    return out


def rank_words(rank_low: float, rank_high: float, n_ranked: int) -> str:
    """A rank interval in words.

    >>> rank_words(12, 40, 150), rank_words(3, 3, 150), rank_words(1, 150, 150), rank_words(float("nan"), 1, 3)
    ('between 12th and 40th of 150', '3rd of 150', 'anywhere from 1st to 150th of 150', 'no rank (no figure)')
    """
    if pd.isna(rank_low) or pd.isna(rank_high):
        return "no rank (no figure)"
    lo, hi = int(rank_low), int(rank_high)
    if lo == hi:
        return f"{ordinal(lo)} of {n_ranked}"
    if lo == 1 and hi == n_ranked:
        return f"anywhere from 1st to {ordinal(hi)} of {n_ranked}"
    return f"between {ordinal(lo)} and {ordinal(hi)} of {n_ranked}"


def _fmt(value: float, rate: bool, money: bool = False) -> str:
    if pd.isna(value):
        return "no figure"
    if rate:
        return f"{value * 100:.1f}%"
    if money:
        return f"${value:,.0f}"
    return f"{value:.1f}"


def _moe_words(moe95: float, rate: bool, money: bool = False) -> str:
    if pd.isna(moe95):
        return ""
    if rate:
        return f"± {moe95 * 100:.1f} points"
    return f"± ${moe95:,.0f}" if money else f"± {moe95:.1f}"


def reading_trend(
    df: pd.DataFrame, x: str, series: str, what: str, rate: bool, money: bool = False, x_words: str = ""
) -> str:
    """One sentence reading a trend chart: each series' first and last figure it may be compared on, and
    whether the change between them is larger than their combined noise.

    ``df`` has columns ``x``, ``series``, ``value``, ``value_moe95`` and ``flag``;
    unreliable and missing figures are left out of the comparison and counted.

    >>> d = pd.DataFrame({"c": [2011, 2012, 2013], "s": "State", "value": [0.80, 0.5, 0.88],
    ...                   "value_moe95": [0.03, 0.4, 0.04], "flag": ["reliable", "unreliable", "reliable"]})
    >>> print(reading_trend(d, "c", "s", "the graduation rate", True))
    State: the graduation rate went from 80.0% (2011) to 88.0% (2013), up more than the noise
    (± 5.0 points); 1 unreliable or missing figure left out.
    """
    parts = []
    for name, group in df.groupby(series, sort=False):
        group = group.sort_values(x)
        usable = group[group["value"].notna() & (group["flag"] != "unreliable")]
        left_out = len(group) - len(usable)
        note = f"; {left_out} unreliable or missing figure{'s' if left_out != 1 else ''} left out" if left_out else ""
        if len(usable) == 0:
            parts.append(f"{name}: no figure reliable enough to read")
            continue
        a, b = usable.iloc[0], usable.iloc[-1]
        if len(usable) == 1:
            parts.append(
                f"{name}: {what} was {_fmt(b['value'], rate, money)} ({_moe_words(b['value_moe95'], rate, money)}) "
                f"in {x_words}{b[x]}, the only figure reliable enough to read{note}"
            )
            continue
        delta = float(b["value"] - a["value"])
        noise = float(math.hypot(a["value_moe95"], b["value_moe95"]))
        if abs(delta) > noise:
            verdict = f"{'up' if delta > 0 else 'down'} more than the noise ({_moe_words(noise, rate, money)})"
        else:
            verdict = f"a change within the noise ({_moe_words(noise, rate, money)}), so no clear change"
        parts.append(
            f"{name}: {what} went from {_fmt(a['value'], rate, money)} ({x_words}{a[x]}) to "
            f"{_fmt(b['value'], rate, money)} ({x_words}{b[x]}), {verdict}{note}"
        )
    return ". ".join(parts) + "."


def reading_dots(
    df: pd.DataFrame,
    what: str,
    unit_words: str,
    rate: bool,
    reference: float | None = None,
    reference_words: str = "the state",
    money: bool = False,
) -> str:
    """One sentence reading a dot chart of units (districts, schools, groups) with 95% intervals.

    Counts the units whose whole interval lies above or below ``reference`` (a
    difference larger than the noise), those that cannot be told from it, and the
    unreliable ones; without a reference it gives the range of the reliable figures.
    A rate of exactly 0% or 100% (a floored noisy count) is never counted as clearly different.

    >>> d = pd.DataFrame({"value": [0.2, 0.5, 0.9, 0.6], "value_moe95": [0.05, 0.3, 0.05, 0.05],
    ...                   "flag": ["reliable", "unreliable", "reliable", "reliable"]})
    >>> print(reading_dots(d, "the opt-out rate", "districts", True, reference=0.5))
    Of 4 districts with a figure, 2 have the opt-out rate clearly above the state (50.0%), 1 clearly below,
    1 cannot be told apart from it; 1 figure is unreliable (hollow).
    """
    shown = df[df["value"].notna()]
    n = len(shown)
    unreliable = int((shown["flag"] == "unreliable").sum())
    tail = (
        f"; {unreliable} figure{' is' if unreliable == 1 else 's are'} unreliable (hollow)"
        if unreliable
        else "; every figure is reliable"
    )
    if n == 0:
        return f"No {unit_words} has a figure for {what}."
    if reference is not None and not pd.isna(reference):
        lo, hi = clip_interval(shown["value"], shown["value_moe95"], 0.0 if rate else None, 1.0 if rate else None)
        # a rate shown as exactly 0% or 100% is a floored noisy count (privacy.reliability), not an estimate
        # whose interval can be read: it is never "clearly" above or below anything
        comparable = ~shown["value"].isin([0.0, 1.0]).to_numpy() if rate else np.ones(n, dtype=bool)
        above, below = int(((lo > reference) & comparable).sum()), int(((hi < reference) & comparable).sum())
        same = n - above - below
        return (
            f"Of {n} {unit_words} with a figure, {above} {'has' if above == 1 else 'have'} {what} clearly above "
            f"{reference_words} ({_fmt(reference, rate, money)}), {below} clearly below, {same} cannot be told apart "
            f"from it{tail}."
        )
    ok = shown[shown["flag"] != "unreliable"]
    if ok.empty:
        return f"{n} {unit_words} have a figure for {what}, none reliable enough to compare{tail}."
    top, bottom = ok.loc[ok["value"].idxmax()], ok.loc[ok["value"].idxmin()]
    return (
        f"Among the {len(ok)} reliable {unit_words}, {what} ranges from {_fmt(bottom['value'], rate, money)} "
        f"({_moe_words(bottom['value_moe95'], rate, money)}) to {_fmt(top['value'], rate, money)} "
        f"({_moe_words(top['value_moe95'], rate, money)}){tail}."
    )


# ---------------------------------------------------------------------------
# Differential privacy beside small-cell suppression
# ---------------------------------------------------------------------------

#: The minimum cell size most state education agencies use (NCES 2011-603, SLDS Technical Brief 3).
SUPPRESSION_MIN_N = 10


def suppression_comparison(
    table: pd.DataFrame,
    n_col: str,
    row_key: str,
    threshold: int = SUPPRESSION_MIN_N,
    complementary: bool = True,
) -> pd.DataFrame:
    """What an n < ``threshold`` suppression rule would have hidden in a published table, cell by cell.

    Post-processing of a release only. The cell sizes are the release's **noisy**
    counts (``n_col``): the true counts are never read, so a cell near the threshold
    may fall on either side of it. Primary suppression hides every cell whose count is
    below ``threshold`` (a cell without a figure counts as size 0). With
    ``complementary``, a row (grouped by ``row_key``) left with exactly one hidden
    cell also hides its smallest remaining cell, so the hidden one cannot be
    recovered by subtracting the others from the row's published total (PTAC,
    "Frequently asked questions: disclosure avoidance", 2012; NCES 2011-603). Rows
    with a single cell have no complement to hide.

    Returns:
        ``table`` with ``suppressed`` ("primary", "complementary" or "") and
        ``hidden`` (bool) added.

    >>> t = pd.DataFrame({"d": ["A", "A", "A", "B"], "n": [5, 40, 50, 8]})
    >>> suppression_comparison(t, "n", "d")["suppressed"].tolist()
    ['primary', 'complementary', '', 'primary']
    """
    n = pd.to_numeric(table[n_col], errors="coerce").fillna(0)
    primary = n < threshold
    reason = pd.Series(np.where(primary, "primary", ""), index=table.index)
    if complementary:
        keys = table[row_key]
        by_row = primary.groupby(keys, sort=False)
        lone = (by_row.transform("sum") == 1) & (by_row.transform("size") > 1)  # rows with one hidden cell
        rest = n[lone & ~primary]
        # each such row's smallest shown cell (the first one on a tie) is hidden with it
        reason.loc[rest.groupby(keys[rest.index], sort=False).idxmin().to_numpy()] = "complementary"
    return table.assign(suppressed=reason.to_numpy(), hidden=(reason != "").to_numpy())


def suppression_summary(compared: pd.DataFrame, row_key: str) -> dict[str, int]:
    """Counts for the comparison: cells, cells hidden (primary, complementary), rows left with no figure at all,
    and how the published figures are flagged.

    >>> t = suppression_comparison(pd.DataFrame({"d": ["A", "A", "B"], "n": [5, 40, 8],
    ...     "flag": ["unreliable", "reliable", "unreliable"]}), "n", "d")
    >>> suppression_summary(t, "d")
    {'cells': 3, 'hidden': 3, 'primary': 2, 'complementary': 1, 'rows': 2, 'rows_all_hidden': 2,
     'reliable': 1, 'rough': 0, 'unreliable': 2}
    """
    per_row = compared.groupby(row_key)["hidden"].all()
    flags = compared["flag"].value_counts()
    return {
        "cells": len(compared),
        "hidden": int(compared["hidden"].sum()),
        "primary": int((compared["suppressed"] == "primary").sum()),
        "complementary": int((compared["suppressed"] == "complementary").sum()),
        "rows": int(per_row.size),
        "rows_all_hidden": int(per_row.sum()),
        "reliable": int(flags.get("reliable", 0)),
        "rough": int(flags.get("rough", 0)),
        "unreliable": int(flags.get("unreliable", 0)),
    }


def likelihood_bound_words(epsilon: float) -> str:
    """The differential-privacy likelihood bound e^epsilon, written for a parent.

    epsilon-DP means any conclusion is at most e^epsilon times more likely with one
    person's records than without them (Dwork & Roth 2014, section 2.3).

    >>> likelihood_bound_words(6.55), likelihood_bound_words(1.1)
    ('699', '3.0')
    """
    ratio = math.exp(min(float(epsilon), 50.0))
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"


# ---------------------------------------------------------------------------
# Direct and model-based figures (graduation tables)
# ---------------------------------------------------------------------------

#: What each kind of figure is, in words a page shows beside it.
ESTIMATE_WORDS: dict[str, str] = {
    "direct": "Direct: what happened, from this group's own noisy counts (margin: privacy noise).",
    "model-based": (
        "Model-based: the underlying rate, borrowing strength from the same district's other cohorts and from "
        "districts of the same locale (margin: privacy noise, a small cohort's luck and the model's error)."
    ),
}
#: Which graduation table holds each view of a level.
GRADUATION_VIEWS: dict[tuple[str, str], str] = {
    ("district_id", "3 cohorts pooled"): "graduation_by_district_3yr",
    ("district_id", "single cohorts"): "graduation_by_district",
    ("district_id", "all cohorts pooled"): "graduation_by_district_pooled",
    ("school_id", "3 cohorts pooled"): "graduation_by_school_3yr",
    ("school_id", "single cohorts"): "graduation_by_school",
}


def shown_estimates(table: pd.DataFrame) -> pd.DataFrame:
    """Pick, row by row, the figure a page shows: the direct one when its margin is usable, else the model-based one.

    Rows of a graduation table (``value``/``value_moe95``/``flag``/``flag_reason`` direct,
    ``model_*`` model-based) come back with those four columns holding the chosen figure,
    ``estimate`` ('direct' or 'model-based'), ``estimate_words`` (:data:`ESTIMATE_WORDS`)
    and the direct ones kept as ``direct_value``/``direct_moe95``/``direct_flag``/``direct_reason``.
    A table without model columns is returned with every row 'direct'. Never invents a figure: where neither
    exists the row keeps NaN and the direct reason.

    >>> t = pd.DataFrame({"value": [0.9, 0.8], "value_moe95": [0.03, 0.4], "flag": ["reliable", "unreliable"],
    ...                   "flag_reason": ["", "wide"], "model_value": [0.88, 0.85], "model_moe95": [0.02, 0.07],
    ...                   "model_flag": ["reliable", "reliable"], "model_reason": ["", ""]})
    >>> shown_estimates(t)[["value", "estimate"]].values.tolist()
    [[0.9, 'direct'], [0.85, 'model-based']]
    """
    out = table.assign(
        direct_value=table["value"],
        direct_moe95=table["value_moe95"],
        direct_flag=table["flag"],
        direct_reason=table["flag_reason"],
    )
    if "model_value" not in table:
        return out.assign(estimate="direct", estimate_words=ESTIMATE_WORDS["direct"])
    direct_ok = table["value"].notna() & (table["value_moe95"] <= privacy.UNRELIABLE_RATE_MOE)
    model_better = table["model_value"].notna() & (
        table["value"].isna() | (table["model_moe95"] < table["value_moe95"])
    )
    use_model = ~direct_ok & model_better
    kind = np.where(use_model, "model-based", "direct")
    return out.assign(
        value=np.where(use_model, table["model_value"], table["value"]),
        value_moe95=np.where(use_model, table["model_moe95"], table["value_moe95"]),
        flag=np.where(use_model, table["model_flag"], table["flag"]),
        flag_reason=np.where(use_model, table["model_reason"], table["flag_reason"]),
        estimate=kind,
        estimate_words=[ESTIMATE_WORDS[k] for k in kind],
    )


def graduation(release: Release, level: str, view: str, measure: str = "acgr_4yr") -> pd.DataFrame:
    """Graduation rows of ``level`` ('district_id' or 'school_id') in ``view`` (a key of :data:`GRADUATION_VIEWS`),
    with the figure to show chosen by :func:`shown_estimates`; 3-cohort windows keep their ``cohorts`` label.

    Raises KeyError for an unknown (level, view).
    """
    name = GRADUATION_VIEWS[(level, view)]
    t = release.table(name)
    return shown_estimates(t[t["measure"] == measure].reset_index(drop=True))


def value_added_words(rows: pd.DataFrame, unit_words: str = "schools") -> str:
    """What the shrunk value-added figures say, in words a page shows beside them.

    ``rows`` are the rows of one subject of a growth table (``growth_by_school`` or
    ``growth_by_district``) with both measures ``value_added_points`` (raw) and
    ``value_added_points_eb`` (shrunk), keyed by ``school_id`` or ``district_id``. The sentence
    says how much of the raw figures the shrinkage kept (lambda = shrunk / raw) and how many
    units are told apart from the state average (interval excluding 0); when every shrunk figure
    is 0 it says why: the raw figures vary no more than their noise explains.

    >>> r = pd.DataFrame({"school_id": ["A", "B", "A", "B"],
    ...                   "measure": ["value_added_points"] * 2 + ["value_added_points_eb"] * 2,
    ...                   "value": [40.0, -20.0, 0.0, 0.0], "value_moe95": [60.0, 60.0, 7.0, 7.0]})
    >>> value_added_words(r).startswith("Every one of the 2 schools with a figure is shrunk all the way")
    True
    """
    key = "school_id" if "school_id" in rows else "district_id"
    raw = rows[rows["measure"] == "value_added_points"].set_index(key)["value"]
    eb = rows[rows["measure"] == "value_added_points_eb"].set_index(key)
    eb = eb[eb["value"].notna()]
    n = len(eb)
    if n == 0:
        return f"No {unit_words} have a shrunk value-added figure in this release."
    if (eb["value"] == 0).all():
        return (
            f"Every one of the {n} {unit_words} with a figure is shrunk all the way to the state average (0.0): "
            "their raw figures differ from one another no more than the privacy noise and the luck of which "
            "students were tested explain, so the estimated spread of true effects is 0 and the data cannot "
            f"tell any of these {unit_words} from the state average. That is a limit of what this release can "
            f"measure, not a finding that all {unit_words} help students grow alike; the margin says how far from "
            "average each one could still be."
        )
    paired = raw.reindex(eb.index)
    usable = paired.notna() & (paired != 0)
    kept = (eb.loc[usable, "value"] / paired[usable]).median() if usable.any() else math.nan
    apart = int((eb["value"].abs() > eb["value_moe95"]).sum())
    kept_words = (
        f"keep a median {kept * 100:.0f}% of each raw figure (the rest is taken as noise)"
        if not (pd.isna(kept))
        else "are pulled toward the state average"
    )
    return (
        f"The shrunk figures {kept_words}; {apart} of the {n} {unit_words} are clearly above or below the state "
        "average (their interval leaves out 0), the others cannot be told apart from it."
    )


def latest_window(rows: pd.DataFrame) -> str:
    """The label of the newest 3-cohort window in rows of a ``*_3yr`` table ('' when none)."""
    if "last_cohort" not in rows or rows.empty:
        return ""
    return str(rows.loc[rows["last_cohort"].idxmax(), "cohorts"])
