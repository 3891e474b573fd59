"""Accuracy per unit of privacy: today's pure-epsilon geometric tables vs zCDP + consistency + Fay-Herriot.

    python -m benchmarks.accuracy_design [--replications R] [--scale S]

Prints figures (not a timed test). Uses only the new modules (analytics.noise,
analytics.accounting, analytics.estimation) on synthetic counts: the cell sizes are the
bundled sample's high-school x cohort adjusted cohorts (from data/sample/truth), scaled by
``--scale``; the planted graduation probability of a school is logistic(c + its planted
graduation effect), with c chosen so the statewide rate matches the sample's. Each
replication draws every student's outcome (4-year graduate, 5th-year graduate, removed in
year 5, not graduated) and then the noise, from seeded numpy generators (``TestRng``: the
simulation must be reproducible; a release would draw from OpenDP).

(a) today: district x cohort x outcome and district x outcome (pooled) histograms, each with
    two-sided geometric noise at epsilon 0.4, counts floored at 0, rate = floored numerator /
    floored total, margin from the parametric bootstrap the release uses.
(b) proposed: the four graduation tables that (a)'s release spends epsilon 1.1 of 6.55 on
    (by cohort, by district, pooled, by school) are replaced by one hierarchy measured with
    discrete Gaussian noise at school, district, county and state x cohort x outcome, with
    the same share (1.1 / 6.55) of the total rho that is worth epsilon 6.55 at delta 1e-10,
    so a release whose every table took its epsilon share as a rho share would total
    exactly epsilon 6.55 at delta 1e-10. Counts are made consistent by tree WLS, rates are
    formed without flooring, and Fay-Herriot (adjusted REML, Prasad-Rao MSE) borrows
    strength from locale, cohort and the district's other cohorts.

Truth: the direct estimates' noise-only intervals are checked against the realised rate of
the simulated students; the Fay-Herriot intervals (which include sampling variance) against
the planted probability.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analytics import accounting, noise
from analytics.config import SAMPLE_DATA_DIR
from analytics.estimation import consistency, design, rates, small_area

CURRENT_EPSILON = 0.4
TOTAL_EPSILON, DELTA = 6.55, 1e-10
GRADUATION_SHARE = (0.1 + 0.4 + 0.3 + 0.3) / TOTAL_EPSILON
#: priority weights of the levels measured in (b) (school, district, county, state)
LEVEL_WEIGHTS = {"school_id": 1.0, "district_id": 2.0, "district_pooled": 1.0, "county": 0.25, "state": 0.1}
OUTCOMES = ("grad4", "grad5", "removed5", "not_graduated")
#: split of the students who do not graduate in 4 years among the other outcomes
OTHER_SPLIT = (0.35, 0.05, 0.60)
USABLE = 0.10


@dataclass(frozen=True)
class Cells:
    sizes: np.ndarray  # (schools, cohorts) adjusted-cohort students
    p_school: np.ndarray  # (schools,) planted probability of a 4-year diploma
    leaves: pd.DataFrame  # state, county, district_id, school_id, locale (one row per school)


def load_cells(scale: float) -> Cells:
    truth, sample = SAMPLE_DATA_DIR / "truth", SAMPLE_DATA_DIR
    con = duckdb.connect()
    counts = con.sql(
        f"""
        SELECT acgr_school_id AS school_id, CAST(cohort AS INTEGER) AS cohort, count(*) AS n,
               avg(graduated_4yr::INTEGER) AS realised
        FROM '{truth / "students.parquet"}'
        WHERE cohort IS NOT NULL AND NOT removed_from_cohort GROUP BY ALL
        """
    ).df()
    schools = con.sql(
        f"""
        SELECT s.school_id, s.district_id, d.county, d.locale, t.graduation_effect
        FROM '{sample / "schools.parquet"}' s
        JOIN '{sample / "districts.parquet"}' d USING (district_id)
        JOIN '{truth / "schools.parquet"}' t USING (school_id)
        WHERE s.school_id IN (SELECT DISTINCT acgr_school_id FROM '{truth / "students.parquet"}'
                              WHERE cohort IS NOT NULL)
        ORDER BY s.school_id
        """
    ).df()
    cohorts = np.sort(counts["cohort"].unique())
    wide = counts.pivot_table(index="school_id", columns="cohort", values="n", fill_value=0)
    wide = wide.reindex(index=schools["school_id"], columns=cohorts, fill_value=0)
    sizes = np.rint(wide.to_numpy(dtype=float) * scale).astype(np.int64)
    effect = schools["graduation_effect"].to_numpy()
    target = float((counts["n"] * counts["realised"]).sum() / counts["n"].sum())
    lo, hi = -10.0, 10.0
    for _ in range(100):  # intercept so the student-weighted planted rate equals the sample's
        mid = (lo + hi) / 2
        p = 1 / (1 + np.exp(-(mid + effect)))
        lo, hi = (mid, hi) if (sizes.sum(1) * p).sum() / sizes.sum() < target else (lo, mid)
    p_school = 1 / (1 + np.exp(-(lo + effect)))
    leaves = schools[["county", "district_id", "school_id", "locale"]].assign(state="ME")
    return Cells(sizes, p_school, leaves)


def draw_outcomes(cells: Cells, rng: np.random.Generator) -> np.ndarray:
    """(schools, cohorts, 4) counts of each outcome."""
    n = cells.sizes
    grad4 = rng.binomial(n, cells.p_school[:, None])
    rest = rng.multinomial(n - grad4, OTHER_SPLIT)
    return np.concatenate([grad4[..., None], rest], axis=-1)


def to_districts(cells: Cells, school_values: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    codes, districts = pd.factorize(cells.leaves["district_id"], sort=True)
    out = np.zeros((len(districts), *school_values.shape[1:]))
    np.add.at(out, codes, school_values)
    return out, pd.Index(districts)


def current_release(counts: np.ndarray, eps: float, rng: noise.TestRng) -> tuple[np.ndarray, np.ndarray]:
    """Today's rate: geometric noise per outcome cell, floor at 0, divide; bootstrap margin. counts (..., 4)."""
    scale = noise.discrete_laplace_scale(eps)
    noisy = noise.add_discrete_laplace(counts.astype(np.int64), scale, rng)
    num = np.clip(noisy[..., 0], 0, None).astype(float).ravel()
    oth = np.clip(noisy[..., 1:].sum(-1), 0, None).astype(float).ravel()
    den = num + oth
    rate = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
    draws = 400
    bank = noise.add_discrete_laplace(np.zeros((draws, 4), dtype=np.int64), scale, rng)
    sim_num = np.clip(num[:, None] + bank[None, :, 0], 0, None)
    sim_den = sim_num + np.clip(oth[:, None] + bank[None, :, 1:].sum(-1), 0, None)
    sim = np.divide(sim_num, sim_den, out=np.full_like(sim_num, np.nan), where=sim_den > 0)
    dev = np.where(np.isnan(sim - rate[:, None]), 1.0, np.abs(sim - rate[:, None]))
    moe = np.minimum(np.quantile(dev, 0.95, axis=1), 1.0)
    return rate.reshape(counts.shape[:-1]), moe.reshape(counts.shape[:-1])


def proposed_design(k_cohorts: int) -> design.Design:
    total = accounting.epsilon_to_rho(TOTAL_EPSILON, DELTA) * GRADUATION_SHARE
    goals = [design.TableGoal(level, weight=w) for level, w in LEVEL_WEIGHTS.items()]
    return design.split_total(goals, total)


def proposed_release(cells: Cells, counts: np.ndarray, plan: design.Design, rng: noise.TestRng) -> dict:
    h = consistency.Hierarchy.from_frame(cells.leaves, ["state", "county", "district_id", "school_id"])
    # true counts at each level of the hierarchy, (nodes, cohorts, outcomes)
    level_counts = {}
    for level in h.levels:
        codes = pd.Index(h.keys[h.index(level)]).get_indexer(cells.leaves[level])
        agg = np.zeros((h.size(level), *counts.shape[1:]), dtype=np.int64)
        np.add.at(agg, codes, counts)
        level_counts[level] = agg
    k = counts.shape[1]
    est: list[consistency.TreeEstimate] = []
    for o in range(len(OUTCOMES)):
        measurements = []
        for level in h.levels:
            sigma = plan.sigma(level)
            noisy = noise.add_discrete_gaussian(level_counts[level][..., o], sigma, rng)
            var = noise.discrete_gaussian_variance(sigma)
            measurements.append(consistency.LevelMeasurement(level, noisy.astype(float), var))
        # district x outcome pooled over cohorts: its own query (a student is in one pooled cell)
        sigma = plan.sigma("district_pooled")
        pooled = noise.add_discrete_gaussian(level_counts["district_id"][..., o].sum(1, keepdims=True), sigma, rng)
        var = noise.discrete_gaussian_variance(sigma)
        measurements.append(consistency.LevelMeasurement("district_id", pooled.astype(float), var, np.ones((1, k))))
        est.append(consistency.tree_wls(h, measurements, k=k))
    out = {}
    for label, weights in (("cohort", None), ("pooled", np.ones(k))):
        parts = []
        for e in est:
            if weights is None:
                parts.append((e.values("district_id"), e.variances("district_id")))
            else:
                v, var = e.combined("district_id", weights)
                parts.append((v[:, None], var[:, None]))
        num, var_num = parts[0]
        den = sum(p[0] for p in parts)
        var_den = sum(p[1] for p in parts)
        out[label] = (num, den, var_num, var_den)
    return out


def fay_herriot_rates(direct: pd.DataFrame, den: np.ndarray, var_rate: np.ndarray, frame: pd.DataFrame, numeric, cat):
    """FH on the planted probability: D_i = noise variance of the direct rate + p_ref (1 - p_ref) / n_hat."""
    p_ref = float(np.nansum(direct["rate"] * den) / np.nansum(np.where(direct["published"], den, 0)))
    d = var_rate + small_area.sampling_variance(p_ref, np.maximum(den, 1.0))
    d = np.where(direct["published"], d, np.inf)
    x = small_area.covariate_matrix(frame, cat, numeric)
    fit = small_area.fay_herriot(direct["rate"].to_numpy(), d, x)
    # second pass: sampling variance from the model's own smoothed rate instead of the state mean
    d2 = var_rate + small_area.sampling_variance(np.clip(fit.synthetic, 0.01, 0.99), np.maximum(den, 1.0))
    d2 = np.where(direct["published"], d2, np.inf)
    fit = small_area.fay_herriot(direct["rate"].to_numpy(), d2, x)
    return fit


def run(replications: int, scale: float) -> None:
    cells = load_cells(scale)
    k = cells.sizes.shape[1]
    plan = proposed_design(k)
    loss = plan.privacy_loss(DELTA)
    total_rho = accounting.epsilon_to_rho(TOTAL_EPSILON, DELTA)
    n_dc, districts = to_districts(cells, cells.sizes.astype(float))
    n_pool = n_dc.sum(1)
    p_dc = to_districts(cells, cells.sizes * cells.p_school[:, None])[0] / np.where(n_dc > 0, n_dc, 1)
    p_pool = (n_dc * p_dc).sum(1) / n_pool
    locale = cells.leaves.drop_duplicates("district_id").set_index("district_id").loc[districts, "locale"]

    print(
        f"Cells: {len(districts)} districts x {k} cohorts, {int(cells.sizes.sum()):,} adjusted-cohort students "
        f"(sample x {scale:g}); {int((n_dc >= 10).sum())} district x cohort cells and "
        f"{int((n_pool >= 10).sum())} districts have n >= 10 (what n<10 suppression shows)"
    )
    print(
        f"(b) total rho worth epsilon {TOTAL_EPSILON} at delta {DELTA:g}: {total_rho:.4f} "
        f"({accounting.CONVERSION}); graduation hierarchy gets {GRADUATION_SHARE:.1%} = rho {loss.rho:.4f}"
    )
    print(plan.preview()[["table", "rho", "sigma", "count_moe95"]].to_string(index=False, float_format="%.4f"))

    acc: dict[str, list] = {key: [] for key in ("a_dc", "a_pool", "b_dc", "b_pool", "fh_dc", "fh_pool")}
    for r in range(replications):
        rng = noise.TestRng(1000 + r)
        outcomes = draw_outcomes(cells, rng.generator)
        dist_counts, _ = to_districts(cells, outcomes)
        realised_dc = np.divide(dist_counts[..., 0], n_dc, out=np.full(n_dc.shape, np.nan), where=n_dc > 0)
        realised_pool = dist_counts[..., 0].sum(1) / n_pool
        # (a) today's release
        rate_a, moe_a = current_release(dist_counts, CURRENT_EPSILON, rng)
        rate_ap, moe_ap = current_release(dist_counts.sum(1), CURRENT_EPSILON, rng)
        acc["a_dc"].append((n_dc.ravel(), realised_dc.ravel(), rate_a.ravel(), moe_a.ravel()))
        acc["a_pool"].append((n_pool, realised_pool, rate_ap, moe_ap))
        # (b) zCDP + WLS + rates + FH
        est = proposed_release(cells, outcomes, plan, rng)
        for label, n_true, realised, planted in (
            ("dc", n_dc.ravel(), realised_dc.ravel(), p_dc.ravel()),
            ("pool", n_pool, realised_pool, p_pool),
        ):
            num, den, var_num, var_den = (a.ravel() for a in est["cohort" if label == "dc" else "pooled"])
            direct = rates.rate_estimates(num, den, var_num, var_den)
            acc[f"b_{label}"].append((n_true, realised, direct["rate"].to_numpy(), direct["moe"].to_numpy()))
            var_rate = (direct["moe"].to_numpy() / 1.959963984540054) ** 2
            if label == "dc":
                # small-area input: linearised rates around the district's other cohorts, with the
                # cell's size taken from the district's pooled size times the cohort's statewide share
                pooled_num, pooled_den = (a.ravel() for a in est["pooled"][:2])
                d_num, d_den = pooled_num.repeat(k) - num, pooled_den.repeat(k) - den
                state_share = den.reshape(-1, k).sum(0) / den.sum()
                ref_den = np.maximum(np.outer(pooled_den, state_share).ravel(), 1.0)
                loo = np.divide(d_num, d_den, out=np.full_like(d_num, np.nan), where=d_den > 5)
                loo_ok = np.isfinite(loo)
                loo = np.clip(np.where(loo_ok, loo, np.nanmean(loo)), 0.01, 0.99)
                lin, lin_var = rates.linearised_rates(num, den, var_num, var_den, loo, ref_den)
                frame = pd.DataFrame(
                    {
                        "locale": np.repeat(locale.to_numpy(), k),
                        "cohort": np.tile(np.arange(k), len(districts)).astype(str),
                        "loo": loo,
                        "loo_missing": (~loo_ok).astype(float),
                    }
                )
                numeric = ["loo", "loo_missing"] if (~loo_ok).any() else ["loo"]
                x = small_area.covariate_matrix(frame, ["locale", "cohort"], numeric)
                d_var = lin_var + small_area.sampling_variance(loo, ref_den)
                fit = small_area.fay_herriot(lin, d_var, x)
            else:
                frame = pd.DataFrame({"locale": locale.to_numpy(), "log_n": np.log(np.maximum(den, 1.0))})
                fit = fay_herriot_rates(direct, den, var_rate, frame, ["log_n"], ["locale"])
            lo, hi = np.clip(fit.lower, 0, 1), np.clip(fit.upper, 0, 1)
            acc[f"fh_{label}"].append((n_true, planted, np.clip(fit.estimate, 0, 1), fit.moe, lo, hi))

    print(f"\n{replications} replications; margins are medians over cells with n >= 1 and replications.")
    print("| estimate | target | median 95% margin (pts) | usable (margin <= 10 pts), mean per release | coverage |")
    print("|---|---|---|---|---|")
    for key, label in (
        ("a_dc", "(a) district x cohort, geometric eps 0.4, floor-then-divide"),
        ("b_dc", "(b) district x cohort, direct (zCDP + WLS, no floor)"),
        ("fh_dc", "(b) district x cohort, Fay-Herriot"),
        ("a_pool", "(a) district pooled, geometric eps 0.4, floor-then-divide"),
        ("b_pool", "(b) district pooled, direct (zCDP + WLS, no floor)"),
        ("fh_pool", "(b) district pooled, Fay-Herriot"),
    ):
        rows = acc[key]
        n = np.concatenate([r[0] for r in rows])
        truth = np.concatenate([r[1] for r in rows])
        est = np.concatenate([r[2] for r in rows])
        moe = np.concatenate([r[3] for r in rows])
        if key.startswith("fh"):
            lo = np.concatenate([r[4] for r in rows])
            hi = np.concatenate([r[5] for r in rows])
        else:
            lo, hi = np.clip(est - moe, 0, 1), np.clip(est + moe, 0, 1)
        real = n >= 1
        ok = real & np.isfinite(est)
        usable = (ok & (moe <= USABLE)).sum() / replications
        covered = ((lo <= truth) & (truth <= hi))[ok].mean()
        target = "planted p" if key.startswith("fh") else "realised rate"
        print(
            f"| {label} | {target} | {np.nanmedian(np.where(real, moe, np.nan)) * 100:.1f} | "
            f"{usable:.0f} of {int(real.sum() / replications)} | {covered:.1%} |"
        )
    print("\nBias of published rates by cell-size band (points; mean estimate - realised rate):")
    for key in ("a_dc", "b_dc"):
        rows = acc[key]
        table = rates.bias_by_size_band(
            np.concatenate([r[0] for r in rows]),
            np.concatenate([r[1] for r in rows]),
            np.concatenate([r[2] for r in rows]),
        )
        table["published"] = (table["published"] / replications).round(0)
        table["cells"] = (table["cells"] / replications).round(0)
        print(key, table.to_string(index=False, float_format="%.1f"))
    print(
        "fh_dc (vs planted p)",
        rates.bias_by_size_band(
            np.concatenate([r[0] for r in acc["fh_dc"]]),
            np.concatenate([r[1] for r in acc["fh_dc"]]),
            np.concatenate([r[2] for r in acc["fh_dc"]]),
        )
        .assign(cells=lambda t: t["cells"] / replications, published=lambda t: t["published"] / replications)
        .to_string(index=False, float_format="%.1f"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sample's cell sizes (10 = Maine scale)")
    args = parser.parse_args()
    run(args.replications, args.scale)


if __name__ == "__main__":
    main()
