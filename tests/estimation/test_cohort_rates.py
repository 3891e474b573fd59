"""From noisy cohort measurements to published rates: consistency, empty cells, small-cell bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import privacy
from analytics.estimation import cohort_rates, rates

COHORTS = [2015, 2016, 2017]


def _measurements(yes: np.ndarray, no: np.ndarray, leaves: pd.DataFrame, sigma: float, seed: int) -> pd.DataFrame:
    """Noisy counts of schools (rows of ``yes``/``no``) at every level, in the format of queries.noisy_levels."""
    mech = privacy.CountNoise("gaussian", sigma)
    frames = []
    for c, (category, arr) in enumerate((("yes", yes), ("no", no))):
        dist = pd.DataFrame(arr).groupby(leaves["district_id"].to_numpy()).sum()
        for i, (level, frame, key) in enumerate(
            (
                ("school", pd.DataFrame(arr, index=leaves["school_id"]), "school_id"),
                ("district", dist, "district_id"),
            )
        ):
            noisy = mech.add(frame.to_numpy(), seed + 10 * c + i)
            long = pd.DataFrame(noisy, index=frame.index, columns=COHORTS).stack().rename("noisy").reset_index()
            long.columns = [key, "cohort", "noisy"]
            frames.append(long.assign(level=level, category=category, variance=mech.variance))
        frames.append(
            pd.DataFrame({"district_id": dist.index, "noisy": mech.add(dist.to_numpy().sum(1), seed + 10 * c + 3)})
            .assign(level="district_pooled", category=category, variance=mech.variance)
        )  # fmt: skip
        frames.append(
            pd.DataFrame({"cohort": COHORTS, "noisy": mech.add(arr.sum(0), seed + 10 * c + 4)})
            .assign(level="state", category=category, variance=mech.variance)
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _leaves(n_districts: int = 30) -> pd.DataFrame:
    schools = [(f"D{d:02d}", f"S{d:02d}{s}") for d in range(n_districts) for s in range(1 + d % 2)]
    return pd.DataFrame(schools, columns=["district_id", "school_id"]).assign(state="state")


def _district_counts(outcome_seed: int, noise_seed: int) -> cohort_rates.CohortCounts:
    """Consistent counts of 30 districts (5-59 students a cohort, rate 0.85) under noise of sigma 2."""
    leaves = _leaves(30)
    rng = np.random.default_rng(outcome_seed)
    n = rng.integers(5, 60, (len(leaves), 3))
    yes = rng.binomial(n, 0.85)
    return cohort_rates.consistent_counts(_measurements(yes, n - yes, leaves, 2.0, noise_seed), leaves, COHORTS)


def test_levels_add_up_exactly() -> None:
    leaves = _leaves()
    rng = np.random.default_rng(1)
    n = rng.integers(0, 40, (len(leaves), 3))
    yes = rng.binomial(n, 0.85)
    counts = cohort_rates.consistent_counts(_measurements(yes, n - yes, leaves, 2.0, 5), leaves, COHORTS)
    schools = counts.yes.values("school_id")
    by_district = pd.DataFrame(schools).groupby(leaves["district_id"].to_numpy()).sum().to_numpy()
    assert np.allclose(by_district, counts.yes.values("district_id"))
    assert np.allclose(counts.yes.values("district_id").sum(0), counts.yes.values("state")[0])
    pooled_n, *_ = counts.combined("district_id", np.ones(3))
    assert np.allclose(pooled_n, counts.yes.values("district_id").sum(1))


def test_an_empty_cell_is_rarely_published_and_never_as_a_coin_toss() -> None:
    leaves = _leaves(40)
    rng = np.random.default_rng(2)
    n = rng.integers(5, 60, (len(leaves), 3))
    n[::3] = 0  # every third school is empty in every cohort
    published = empty = 0
    for seed in range(10):
        yes = rng.binomial(n, 0.85)
        counts = cohort_rates.consistent_counts(_measurements(yes, n - yes, leaves, 2.0, 100 * seed), leaves, COHORTS)
        direct = cohort_rates.direct_rates(counts, "school_id")["cohort"]
        cov = leaves[["school_id"]].assign(locale="Rural")
        model = cohort_rates.model_rates(counts, "school_id", cov, ["locale"])["cohort"]
        is_empty = (n == 0).ravel()
        empty += int(is_empty.sum())
        published += int(direct["value"].notna().to_numpy()[is_empty].sum())
        model = model.set_index(["school_id", "cohort"]).loc[
            list(zip(direct["school_id"], direct["cohort"], strict=True))
        ]
        assert (
            model["model_value"].notna().to_numpy()[is_empty].sum()
            <= direct["value"].notna().to_numpy()[is_empty].sum() + 0.05 * is_empty.sum()
        )
    # the publication rule passes an empty cell with probability 2.5% (one-sided z = 1.96); allow 3 s.e.
    assert published / empty <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / empty)


def test_decorrelated_rule_removes_small_cell_selection_bias() -> None:
    """Publishing on the noisy denominator biases small cells down; the decorrelated size statistic does not."""
    rng = np.random.default_rng(3)
    cells, sigma, p = 200_000, 2.0, 0.87
    n = rng.integers(1, 10, cells)
    yes = rng.binomial(n, p)
    n_hat = yes + rng.normal(0, sigma, cells)
    d_hat = n_hat + (n - yes) + rng.normal(0, sigma, cells)
    v_n, v_d = np.full(cells, sigma**2), np.full(cells, 2 * sigma**2)
    realised = yes / n
    plain = rates.rate_estimates(n_hat, d_hat, v_n, v_d)
    fixed = rates.rate_estimates(n_hat, d_hat, v_n, v_d, reference_rate=p)
    bias_plain = np.nanmean(plain["rate"] - realised)
    bias_fixed = np.nanmean(fixed["rate"] - realised)
    # what remains is about -lambda E[(R - p)^2] with lambda ~ 0.96 and Var(R) <= p(1 - p) / 1: under 2 points here
    assert abs(bias_fixed) < 0.02 < abs(bias_plain)
    ok = fixed["published"].to_numpy()
    covered = (fixed["lower"] <= realised) & (realised <= fixed["upper"])
    assert covered[ok].mean() > 0.93


def test_schools_per_level_counts_the_schools_a_graduate_passes_through() -> None:
    """1 / s = mean over elementary, middle, high of 1 / (schools serving that level); Combined serves all three."""
    schools = pd.DataFrame(
        {
            "district_id": ["A", "B", "B", "B", "C", "C", "C", "C", "C", "C", "D", "D"],
            "school_level": ["Combined", "Elementary", "Middle", "High", "Elementary", "Elementary", "Elementary",
                             "Middle", "Middle", "High", "Elementary", "Combined"],
        }
    )  # fmt: skip
    s = cohort_rates.schools_per_level(schools)
    assert s["A"] == 1.0  # one combined school: three effects whole
    assert s["B"] == 1.0  # one school per level: the same, though it has three schools
    assert np.isclose(s["C"], 3 / (1 / 3 + 1 / 2 + 1))
    assert np.isclose(s["D"], 3 / (1 / 2 + 1 + 1))
    with pytest.raises(ValueError, match="school_level"):
        cohort_rates.schools_per_level(schools.drop(columns="school_level"))


def test_area_size_that_does_not_vary_gives_the_one_variance_model_and_a_size_below_one_is_refused() -> None:
    counts = _district_counts(4, 7)
    cov = pd.DataFrame({"district_id": counts.keys("district_id"), "locale": "Rural"})
    one = cohort_rates.model_rates(counts, "district_id", cov, ["locale"])["pooled"]
    same = cohort_rates.model_rates(counts, "district_id", cov.assign(s=2.0), ["locale"], area_size="s")["pooled"]
    pd.testing.assert_frame_equal(one, same)
    sizes = np.where(np.arange(len(cov)) % 2 == 0, 1.0, 4.0)
    hetero = cohort_rates.model_rates(counts, "district_id", cov.assign(s=sizes), ["locale"], area_size="s")
    assert hetero["pooled"]["model_value"].notna().all()
    with pytest.raises(ValueError, match="at least 1"):
        cohort_rates.model_rates(counts, "district_id", cov.assign(s=0.5), ["locale"], area_size="s")
    with pytest.raises(ValueError, match="lack a row"):
        cohort_rates.model_rates(counts, "district_id", cov.assign(s=np.nan), ["locale"], area_size="s")


def test_district_structure_reads_the_growth_path_and_the_diploma_schools() -> None:
    """Growth (1/n_E + 1/n_M + 2 c / n_E) / 4, c: one school serves grades 3-8; diploma 1 / (High + Combined)."""
    levels = {
        "K12": ["Combined"],  # one school carries grades 3-8 whole: 1
        "K8": ["Elementary", "High"],  # the elementary school serves K-8: 1, like K12
        "two K8": ["Elementary", "Elementary", "High"],  # (1/2 + 1/2 + 2/2) / 4
        "K5 6-12": ["Elementary", "Combined"],  # two schools, one per stage: (1 + 1) / 4
        "K5 6-8 9-12": ["Elementary", "Middle", "High"],  # the same
        "large": ["Elementary"] * 3 + ["Middle"] * 2 + ["High"] * 2,  # (1/3 + 1/2) / 4, diploma 1/2
    }
    schools = pd.DataFrame(
        [(d, lv) for d, lvs in levels.items() for lv in lvs], columns=["district_id", "school_level"]
    )
    out = cohort_rates.district_structure(schools)
    expected_growth = {"K12": 1.0, "K8": 1.0, "two K8": 0.5, "K5 6-12": 0.5, "K5 6-8 9-12": 0.5, "large": 5 / 24}
    expected_diploma = {d: 0.5 if d == "large" else 1.0 for d in levels}
    for d in levels:
        assert np.isclose(out.loc[d, "growth_concentration"], expected_growth[d]), d
        assert np.isclose(out.loc[d, "inverse_diploma_schools"], expected_diploma[d]), d
        assert np.isclose(out.loc[d, cohort_rates.DISTRICT_SCALE], (expected_growth[d] + expected_diploma[d]) / 2)
    with pytest.raises(ValueError, match="school_level"):
        cohort_rates.district_structure(schools.drop(columns="school_level"))


def test_area_scales_reduce_to_the_area_size_path_and_drop_what_is_not_identified() -> None:
    """A scale column h = 1 / s is the area_size path; a constant or collinear column is left out; negatives refused."""
    counts = _district_counts(5, 8)
    sizes = np.where(np.arange(30) % 3 == 0, 1.0, np.where(np.arange(30) % 3 == 1, 2.0, 4.0))
    cov = pd.DataFrame({"district_id": counts.keys("district_id"), "locale": "Rural", "s": sizes, "h": 1 / sizes})
    by_size = cohort_rates.model_rates(counts, "district_id", cov, ["locale"], area_size="s")["pooled"]
    by_scale = cohort_rates.model_rates(counts, "district_id", cov, ["locale"], area_scales=["h"])["pooled"]
    pd.testing.assert_frame_equal(by_size, by_scale)
    collinear = cov.assign(h2=3 * cov["h"] + 1, flat=0.5)
    dropped = cohort_rates.model_rates(counts, "district_id", collinear, ["locale"], area_scales=["h", "h2", "flat"])
    pd.testing.assert_frame_equal(by_scale, dropped["pooled"])
    with pytest.raises(ValueError, match="must not be negative"):
        cohort_rates.model_rates(counts, "district_id", cov.assign(h=-cov["h"]), ["locale"], area_scales=["h"])


@pytest.mark.slow
def test_area_variance_on_the_logit_scale_covers_low_rate_areas() -> None:
    """Effects planted on the logit: low-rate areas vary more in rate, and one A on the rate scale misses them.

    Two locales at logit 0.4 and 2.6 (rates 60% and 93%), area effects N(0, 0.5^2) on the logit:
    on the rate scale their variance is about (p (1 - p))^2 0.25, 0.0144 against 0.0010, so one A
    fitted over both (about their mean) states the low-rate areas' variance at half its size, and
    their pooled intervals cover well under 93%. With the variance scaled by (p~ (1 - p~))^2 from
    the first fit (``logit_scale``, the default) they cover within 3 binomial standard errors of
    95% over 30 replications x 30 areas (900 intervals: standard error 0.7 points).
    """
    leaves = _leaves(60).drop_duplicates("district_id").reset_index(drop=True)
    cov = pd.DataFrame({"district_id": leaves["district_id"], "locale": np.where(np.arange(60) % 2 == 0, "A", "B")})
    mu = np.where(cov["locale"] == "A", 0.4, 2.6)
    low = (cov["locale"] == "A").to_numpy()
    hits: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for r in range(30):
        rng = np.random.default_rng(100 + r)
        theta = 1 / (1 + np.exp(-(mu + rng.normal(0, 0.5, 60))))
        n = rng.integers(30, 60, (60, 3))
        yes = rng.binomial(n, theta[:, None])
        counts = cohort_rates.consistent_counts(_measurements(yes, n - yes, leaves, 2.0, 1000 * r), leaves, COHORTS)
        for logit in (True, False):
            pooled = cohort_rates.model_rates(counts, "district_id", cov, ["locale"], logit_scale=logit)["pooled"]
            hit = (pooled["model_lower"] <= theta) & (theta <= pooled["model_upper"])
            hits[logit].append(hit.to_numpy()[low])
    scaled, one = np.mean(hits[True]), np.mean(hits[False])
    assert abs(scaled - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 900)
    assert one < 0.93


def test_an_extract_with_no_area_to_fit_gets_no_model_and_no_crash() -> None:
    """A tiny extract can leave no area with a usable direct figure: the release must say so, not stop."""
    leaves = _leaves(4)
    zero = np.zeros((len(leaves), 3), dtype=int)
    counts = cohort_rates.consistent_counts(_measurements(zero, zero, leaves, 0.3, 3), leaves, COHORTS)
    keys = counts.keys("district_id")
    cov = pd.DataFrame({"district_id": keys, "locale": ["Rural", "Town"] * (len(keys) // 2)})
    pooled = cohort_rates.model_rates(counts, "district_id", cov, ["locale"])["pooled"]
    assert pooled["model_value"].isna().all()
    assert (pooled["model_reason"] == cohort_rates.TOO_FEW_REASON).all()
    x_area = np.column_stack([np.ones(4), [0.0, 1.0, 0.0, 1.0]])
    assert cohort_rates._identified(x_area, np.zeros(4, dtype=bool)).shape == (4, 1)
