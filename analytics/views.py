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


def optout_by_county(release: Release) -> pd.DataFrame:
    """County opt-out rates: sums of the district cells of each county (post-processing).

    The margin of error re-noises the summed cells (parametric bootstrap over as
    many cells as the county has districts). Columns: county, fips, n_asked,
    n_declined, optout_rate, optout_rate_moe95, n_districts, flag, flag_reason.
    """
    from analytics.schema import MAINE_COUNTIES

    districts = release.table("districts")
    cells = release.table("ssn_collection_by_district").merge(districts, on="district_id")
    eps = float(release.manifest["tables"]["ssn_collection_by_district"]["epsilon"])
    rows = []
    for county, group in cells.groupby("county", sort=True):
        declined = int(group["n_declined"].sum())
        asked = int(group["n_asked"].sum())
        moe = privacy.ratio_moe95(np.array([declined]), np.array([asked - declined]), eps, cells=len(group))[0]
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
    and the direct ones kept as ``direct_value``/``direct_moe95``. A table without model
    columns is returned with every row 'direct'. Never invents a figure: where neither
    exists the row keeps NaN and the direct reason.

    >>> t = pd.DataFrame({"value": [0.9, 0.8], "value_moe95": [0.03, 0.4], "flag": ["reliable", "unreliable"],
    ...                   "flag_reason": ["", "wide"], "model_value": [0.88, 0.85], "model_moe95": [0.02, 0.07],
    ...                   "model_flag": ["reliable", "reliable"], "model_reason": ["", ""]})
    >>> shown_estimates(t)[["value", "estimate"]].values.tolist()
    [[0.9, 'direct'], [0.85, 'model-based']]
    """
    out = table.assign(direct_value=table["value"], direct_moe95=table["value_moe95"])
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


def latest_window(rows: pd.DataFrame) -> str:
    """The label of the newest 3-cohort window in rows of a ``*_3yr`` table ('' when none)."""
    if "last_cohort" not in rows or rows.empty:
        return ""
    return str(rows.loc[rows["last_cohort"].idxmax(), "cohorts"])
