"""Accuracy per unit of privacy of the default release, against the generator's planted truth.

    python -m benchmarks.accuracy [--students N] [--replications R]

Prints figures (not a timed test). Without ``--students`` it runs the bundled sample (20,000
students, ``data/sample``) and a generated dataset of 200,000 students (seed 2010); with
``--students 20000`` only the sample, with any other N a generated dataset of N students.

Two measurements per dataset, both at the default design (``catalog.plan_release(6.55)`` on a
zCDP lineage: rho 0.462, epsilon 6.55 at delta 1e-10):

(a) **The release itself.** A steward registers the dataset as a zCDP lineage in a temporary
    ledger and builds the release (the real path: metrics, OpenDP noise, ledger). Its direct
    graduation figures are checked against the realised 4-year graduation rate of each cell in
    the generator's ``truth/students.parquet``: coverage, bias by cell-size band, usable
    figures, median margins, beside what n<10 suppression would show.
(b) **Replications against the planted underlying rate.** The generator plants each cohort
    student's probability of a 4-year diploma (``p_graduate``, ``p_graduate_4yr`` and the
    ``graduation_school_id`` whose effect enters it, in ``truth/students.parquet``). Every
    replication draws fresh school graduation effects from their planted distribution
    (``truth/parameters.json``), each student's outcome from their probability, and the noise at
    the release's levels and rho (seeded numpy generators: reproducible, not private), on the
    dataset's own students and cells, and runs the release's own estimation
    (:mod:`analytics.estimation.cohort_rates`). Direct figures are checked against the drawn
    (realised) rates; model-based ones against the planted underlying rate of the cell: the
    mean, over its students, of what their schools (high school and grade 3-8 growth effects)
    produce for a typical student of the locale (:func:`planted_probabilities`), without the
    luck of which students happen to be in a small cohort. Redrawing the effects is what the model's
    intervals promise (coverage on average over areas); coverage with the dataset's own effects
    held fixed is printed too.

A figure is **usable** when its stated 95% margin is at most 10 points and the coverage of its
kind (direct or model-based) in its cell-size band, measured in (b), is at least 93%.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import RegularGridInterpolator

from analytics import catalog, lineage, privacy
from analytics.config import SAMPLE_DATA_DIR
from analytics.estimation import cohort_rates
from analytics.release import build_release, load_release
from analytics.validate import load_dataset

TOTAL_EPSILON = 6.55
BANDS = (1, 5, 10, 15, 30, 60)
USABLE = cohort_rates.USABLE_MOE
COVERAGE_FLOOR = 0.93
SAMPLE_STUDENTS = 20_000
#: Seed of the release built in (a): a fixed seed makes the printed usable counts reproducible.
RELEASE_SEED = 2010


# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------


def cohort_students(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Students of the 4-year adjusted cohorts whose window is over, with planted probabilities; and the schools.

    Columns: school_id (ACGR school), district_id, cohort, graduated (0/1), p_graduate,
    p_graduate_4yr, graduation_school_id (see :mod:`analytics.synth`).
    """
    truth = pd.read_parquet(data_dir / "truth" / "students.parquet")
    schools = pd.read_parquet(data_dir / "schools.parquet")
    over = truth["graduated_4yr"].notna() & truth["removed_from_cohort"].notna()
    t = truth[over & ~truth["removed_from_cohort"].fillna(False).astype(bool)]
    out = pd.DataFrame(
        {
            "school_id": t["acgr_school_id"].to_numpy(),
            "cohort": t["cohort"].astype(int).to_numpy(),
            "graduated": t["graduated_4yr"].astype(bool).astype(int).to_numpy(),
            "p_graduate": t["p_graduate"].to_numpy(float),
            "p_graduate_4yr": t["p_graduate_4yr"].to_numpy(float),
            "graduation_school_id": t["graduation_school_id"].to_numpy(),
            "graduation_logit_schools": t["graduation_logit_schools"].to_numpy(float),
        }
    )
    return out.merge(schools[["school_id", "district_id"]], on="school_id"), schools


def realised_cells(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Realised 4-year adjusted cohort counts by school x cohort from the planted truth; and the schools."""
    students, schools = cohort_students(data_dir)
    by = students.groupby(["school_id", "district_id", "cohort"])
    cells = by.agg(n=("graduated", "size"), grads=("graduated", "sum"))
    return cells.reset_index(), schools


def truth_at(cells: pd.DataFrame, level: str, cohorts: list[int] | None) -> pd.DataFrame:
    """Realised n and rate per (level key[, cohort]) over ``cohorts`` (None: per cohort)."""
    if cohorts is None:
        out = cells.groupby([level, "cohort"])[["n", "grads"]].sum().reset_index()
    else:
        out = cells[cells["cohort"].isin(cohorts)].groupby(level)[["n", "grads"]].sum().reset_index()
    return out.assign(realised=(out["grads"] / out["n"].where(out["n"] > 0)).astype(float))


# ---------------------------------------------------------------------------
# (a) the release
# ---------------------------------------------------------------------------


def build(data_dir: Path, work: Path, seed: int | None = RELEASE_SEED) -> tuple[object, float]:
    """Register ``data_dir`` as a zCDP lineage in a temporary ledger and build its default release.

    ``seed`` (default :data:`RELEASE_SEED`) draws the release's noise from a seeded generator
    through the ledger's ``allow_seeded_noise`` path, so that two runs print the same usable
    counts (the figures are then reproducible, not private: a benchmark only); None draws it
    from OpenDP's exact samplers as a real release does.
    """
    from tests.accounting import STEWARD, new_ledger

    ledger = new_ledger(work / "accounting", seeded=seed is not None)
    lineage.register(
        ledger, STEWARD, "benchmark", cap=1.0, description="benchmark", public_allocation=1.0, accounting="zcdp"
    )
    ds = load_dataset(data_dir)
    lineage.attach(ledger, STEWARD, "benchmark", ds.source, label="benchmark extract")
    started = time.perf_counter()
    build_release(
        data_dir, work / "releases", user=STEWARD, epsilon=TOTAL_EPSILON, ledger=ledger, dataset=ds, seed=seed
    )
    return load_release(work / "releases"), time.perf_counter() - started


def band_of(n: np.ndarray) -> np.ndarray:
    edges = [*BANDS, np.inf]
    labels = np.array([f"{lo}+" if hi == np.inf else f"{lo}-{int(hi) - 1}" for lo, hi in itertools.pairwise(edges)])
    idx = np.searchsorted(np.asarray(BANDS), np.asarray(n), side="right") - 1
    return np.where(np.asarray(n) >= 1, labels[np.clip(idx, 0, len(labels) - 1)], "0")


# ---------------------------------------------------------------------------
# (b) replications against the planted underlying rate
# ---------------------------------------------------------------------------


def planted_effects(data_dir: Path, rng: np.random.Generator | None) -> pd.Series:
    """Each school's graduation effect (logit): the planted one (``rng`` None) or a fresh draw of its distribution.

    A fresh draw takes N(0, school_graduation_effect_sd^2) from ``truth/parameters.json``: the
    model-based intervals claim coverage over the distribution of area effects (Prasad & Rao
    1990: the mean squared error is over the model), so each replication draws the areas anew.
    """
    effects = pd.read_parquet(data_dir / "truth" / "schools.parquet").set_index("school_id")["graduation_effect"]
    if rng is None:
        return effects
    params = json.loads((data_dir / "truth" / "parameters.json").read_text(encoding="utf-8"))
    sd = float(params["graduation"]["school_graduation_effect_sd"])
    return pd.Series(rng.normal(0.0, sd, len(effects)), index=effects.index)


def growth_shifts(
    students: pd.DataFrame, schools: pd.DataFrame, data_dir: Path, rng: np.random.Generator | None
) -> np.ndarray:
    """Per student: a shift of the growth part of their logit that redraws their district's growth effects, (n,).

    The growth part (``graduation_logit_schools`` minus the high school's graduation effect)
    comes from the grade 3-8 schools' planted growth effects; redrawing those would need every
    student's school path, so a fresh draw gives each district the mean growth part of another
    district with as many schools (a random permutation within those groups) in place of its
    own. ``rng`` None: no shift (the dataset's own).

    "As many schools" means the same schools by level (e.g. two elementary, one middle and one
    high school): a district of an elementary school and a high school (the elementary serves
    grades K-8, so one school's growth effect acts in every grade 3-8) carries about twice the
    growth variance of one of an elementary and a combined 6-12 school (measured on the sample's
    planted effects: 0.142 against 0.067 on the logit), so permuting among districts of equal
    school counts alone would blur the two.
    """
    if rng is None:
        return np.zeros(len(students))
    planted = pd.read_parquet(data_dir / "truth" / "schools.parquet").set_index("school_id")["graduation_effect"]
    growth = students["graduation_logit_schools"] - planted.reindex(students["graduation_school_id"]).to_numpy()
    mean = growth.groupby(students["district_id"].to_numpy()).mean()
    structure = schools.groupby("district_id")["school_level"].agg(lambda lv: "+".join(sorted(lv))).reindex(mean.index)
    fresh = mean.copy()
    for _structure, group in mean.groupby(structure.to_numpy()):
        fresh[group.index] = rng.permutation(group.to_numpy())
    return (fresh - mean).reindex(students["district_id"]).to_numpy()


def planted_probabilities(
    students: pd.DataFrame, effects: pd.Series, locale: pd.Series, data_dir: Path, shift: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(each cohort student's planted P(4-year diploma), the planted underlying rate of their schools), (n,) each.

    A student's probability is the generator's: expit(g) x (1 - expit(f)), with g the graduation
    logit and f the fifth-year one. Both split into the student's own part (achievement they
    brought, program status) and the part their schools planted (``graduation_logit_schools``:
    the graduation effect of their high school, here ``effects``, plus the grade 3-8 growth
    effects carried to grade 8, which also enter f through achievement; ``shift`` moves the
    growth part, see :func:`growth_shifts`). The underlying rate of
    a student's schools is what those schools produce for a typical student of the district's
    locale: the mean, over all cohort students of that locale, of the probability with their own
    part and this student's schools' part (the mean of each factor on a grid of 512 values,
    plus their covariance on a coarse grid from 2,000 of the locale's students). It is what
    a model-based figure estimates: the rate the schools produce, without the luck of which
    students (of which make-up) happen to be in one small cohort.
    """
    params = json.loads((data_dir / "truth" / "parameters.json").read_text(encoding="utf-8"))["graduation"]
    to_fifth = float(params["fifth_year_achievement_coef"]) / float(params["prior_achievement_coef"])
    planted = pd.read_parquet(data_dir / "truth" / "schools.parquet").set_index("school_id")["graduation_effect"]
    school = students["graduation_school_id"].to_numpy()
    p = students["p_graduate"].to_numpy(float)
    fifth = 1 - students["p_graduate_4yr"].to_numpy(float) / p
    schools_part = students["graduation_logit_schools"].to_numpy(float)
    growth = schools_part - planted.reindex(school).to_numpy()
    own = np.log(p / (1 - p)) - schools_part
    own_fifth = np.log(fifth / (1 - fifth)) - to_fifth * growth
    growth = growth if shift is None else growth + shift
    schools_part = growth + effects.reindex(school).to_numpy()

    def expit(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    p_student = expit(own + schools_part) * (1 - expit(own_fifth + to_fifth * growth))
    student_locale = locale.reindex(students["district_id"]).to_numpy()
    rate = np.empty(len(students))
    grid1 = np.linspace(schools_part.min() - 1e-9, schools_part.max() + 1e-9, 512)
    grid2 = np.linspace(growth.min() - 1e-9, growth.max() + 1e-9, 512)
    coarse1, coarse2 = np.linspace(grid1[0], grid1[-1], 24), np.linspace(grid2[0], grid2[-1], 12)
    pick = np.random.default_rng(0)
    for loc in np.unique(student_locale):
        pop = np.flatnonzero(student_locale == loc)
        x = expit(own[pop][None, :] + grid1[:, None]).mean(axis=1)
        y = 1 - expit(own_fifth[pop][None, :] + to_fifth * grid2[:, None]).mean(axis=1)
        # E[XY] = E[X] E[Y] + Cov(X, Y): the covariance on a coarse grid from 2,000 of the locale's students
        sub = pick.choice(pop, size=min(2000, len(pop)), replace=False)
        xs = expit(own[sub][None, :] + coarse1[:, None])  # (24, s)
        ys = 1 - expit(own_fifth[sub][None, :] + to_fifth * coarse2[:, None])  # (12, s)
        cov = (xs[:, None, :] * ys[None, :, :]).mean(axis=2) - xs.mean(axis=1)[:, None] * ys.mean(axis=1)[None, :]
        interp = RegularGridInterpolator((coarse1, coarse2), cov)
        c1, c2 = schools_part[pop], growth[pop]
        rate[pop] = np.interp(c1, grid1, x) * np.interp(c2, grid2, y) + interp(np.column_stack([c1, c2]))
    return p_student, rate


def simulated_measurements(
    yes: np.ndarray, no: np.ndarray, hs: pd.DataFrame, cohorts: list[int], plan: dict[str, float], seed: int
) -> pd.DataFrame:
    """The 4-year rate's measurements at the release's levels and rho, in the format of queries.noisy_levels."""
    frames = []
    districts = sorted(hs["district_id"].unique())
    for c, (category, arr) in enumerate((("yes", yes), ("no", no))):
        by_district = pd.DataFrame(arr).groupby(hs["district_id"].to_numpy()).sum().reindex(districts)
        exact = {
            "school": (pd.DataFrame(arr, index=hs["school_id"].to_numpy(), columns=cohorts), "school_id"),
            "district": (pd.DataFrame(by_district.to_numpy(), index=districts, columns=cohorts), "district_id"),
        }
        for i, (level, (frame, key)) in enumerate(exact.items()):
            mech = privacy.CountNoise.gaussian(plan[f"acgr_4yr/{level}"])
            noisy = mech.add(frame.to_numpy(), seed + 10 * c + i)
            long = pd.DataFrame(noisy, index=frame.index, columns=cohorts).stack().rename("noisy").reset_index()
            long.columns = [key, "cohort", "noisy"]
            frames.append(long.assign(level=level, category=category, variance=mech.variance))
        mech = privacy.CountNoise.gaussian(plan["acgr_4yr/district_pooled"])
        pooled = mech.add(by_district.to_numpy().sum(axis=1), seed + 10 * c + 3)
        frames.append(
            pd.DataFrame({"district_id": districts, "noisy": pooled}).assign(
                level="district_pooled", category=category, variance=mech.variance
            )
        )
        mech = privacy.CountNoise.gaussian(plan["acgr_4yr/state"])
        frames.append(
            pd.DataFrame({"cohort": cohorts, "noisy": mech.add(arr.sum(axis=0), seed + 10 * c + 4)}).assign(
                level="state", category=category, variance=mech.variance
            )
        )
    return pd.concat(frames, ignore_index=True)


def replicate(data_dir: Path, replications: int, redraw_effects: bool = True) -> pd.DataFrame:
    """One row per (replication, level, view, cell): n, realised, planted, direct and model-based figures.

    Each replication draws every cohort student's 4-year outcome from their planted probability
    (:func:`planted_probabilities`: with ``redraw_effects``, fresh school effects from the planted
    distribution each replication; else the dataset's own), then noise at the release's levels
    and rho, and runs the release's estimation. ``realised`` is the drawn rate of the cell,
    ``underlying`` the mean planted probability of its students.
    """
    students, schools = cohort_students(data_dir)
    districts = pd.read_parquet(data_dir / "districts.parquet")
    districts = districts.join(cohort_rates.district_structure(schools), on="district_id")
    structure = district_structures(schools)
    hs = schools[schools["school_level"].isin(["High", "Combined"])].sort_values("school_id").reset_index(drop=True)
    cohorts = sorted(int(c) for c in students["cohort"].unique())
    k = len(cohorts)
    row = pd.Index(hs["school_id"]).get_indexer(students["school_id"])
    if (row < 0).any():
        raise ValueError("truth/students.parquet: an ACGR school is not a high or combined school")
    cell = row * k + pd.Index(cohorts).get_indexer(students["cohort"])
    sizes = np.bincount(cell, minlength=len(hs) * k).reshape(len(hs), k)
    plan = catalog.plan_release(TOTAL_EPSILON).levels
    leaves = hs[["district_id", "school_id"]].assign(state="state")
    school_cov = hs.merge(districts[["district_id", "locale"]], on="district_id")
    locale = districts.set_index("district_id")["locale"]
    out = []
    for r in range(replications):
        rng = np.random.default_rng(9000 + r)
        effects = planted_effects(data_dir, rng if redraw_effects else None)
        shift = growth_shifts(students, schools, data_dir, rng if redraw_effects else None)
        p_student, expected = planted_probabilities(students, effects, locale, data_dir, shift)
        drawn = rng.random(len(p_student)) < p_student
        yes = np.bincount(cell, weights=drawn, minlength=len(hs) * k).reshape(len(hs), k).astype(np.int64)
        p_sum = np.bincount(cell, weights=expected, minlength=len(hs) * k).reshape(len(hs), k)
        m = simulated_measurements(yes, sizes - yes, hs, cohorts, plan, 100_000 * (r + 1))
        counts = cohort_rates.consistent_counts(m, leaves, cohorts)
        for level, cov, cats, scales in (
            ("district_id", districts, ["locale"], [cohort_rates.DISTRICT_SCALE]),
            ("school_id", school_cov, ["locale", "school_level"], []),
        ):
            group = hs[level].to_numpy()
            n_cell = pd.DataFrame(sizes).groupby(group).sum().reindex(counts.keys(level)).to_numpy()
            y_cell = pd.DataFrame(yes).groupby(group).sum().reindex(counts.keys(level)).to_numpy()
            p_cell = pd.DataFrame(p_sum).groupby(group).sum().reindex(counts.keys(level)).to_numpy()
            direct = cohort_rates.direct_rates(counts, level)
            model = cohort_rates.model_rates(counts, level, cov, cats, area_scales=scales)
            views = {
                "cohort": (np.eye(k), direct["cohort"], model["cohort"]),
                "pooled": (np.ones((1, k)), direct["pooled"], model["pooled"]),
                "latest 3": (np.r_[np.zeros(k - 3), np.ones(3)][None], *_latest(direct, model, cohorts)),
            }
            area = counts.keys(level)
            kind = (
                structure.reindex(area).to_numpy()
                if level == "district_id"
                else hs.set_index("school_id").reindex(area)["school_level"].to_numpy()
            )
            for view, (weights, d, mo) in views.items():
                n_true = (n_cell @ weights.T).ravel()
                if view == "cohort":  # direct frames are key-major; model frames cohort-major
                    mo = mo.set_index([level, "cohort"]).loc[list(zip(d[level], d["cohort"], strict=True))]
                    mo = mo.reset_index()
                realised = (y_cell @ weights.T).ravel() / np.where(n_true > 0, n_true, np.nan)
                underlying = (p_cell @ weights.T).ravel() / np.where(n_true > 0, n_true, np.nan)
                out.append(
                    pd.DataFrame(
                        {
                            "replication": r,
                            "level": level,
                            "view": view,
                            "area": np.repeat(area, len(d) // len(area)),
                            "structure": np.repeat(kind, len(d) // len(area)),
                            "n": n_true,
                            "realised": realised,
                            "underlying": underlying,
                            "direct": d["value"].to_numpy(),
                            "direct_moe": d["value_moe95"].to_numpy(),
                            "direct_lower": d["value_lower"].to_numpy(),
                            "direct_upper": d["value_upper"].to_numpy(),
                            "model": mo["model_value"].to_numpy(),
                            "model_moe": mo["model_moe95"].to_numpy(),
                            "model_lower": mo["model_lower"].to_numpy(),
                            "model_upper": mo["model_upper"].to_numpy(),
                        }
                    )
                )
    return pd.concat(out, ignore_index=True)


def district_structures(schools: pd.DataFrame) -> pd.Series:
    """Each district's school structure from the public list, e.g. 'Elementary+High' (a K-8 and a high school)."""
    return schools.groupby("district_id")["school_level"].agg(lambda lv: "+".join(sorted(set(lv)))).rename("structure")


def coverage_by_structure(sim: pd.DataFrame) -> pd.DataFrame:
    """Model-based coverage and standardised-error spread per (level, view, school structure), over replications.

    A district's structure is its set of school levels (:func:`district_structures`), a school's its
    level. ``sd_z`` is the standard deviation of (estimate - truth) / (margin / 1.96): about 1 when the
    stated margins are the right size, above 1 when they are too narrow for that structure.
    """
    rows = []
    for (level, view, kind), g in sim.groupby(["level", "view", "structure"], sort=False):
        t, est = g["underlying"].to_numpy(), g["model"].to_numpy()
        pub = np.isfinite(est) & np.isfinite(t)
        if not pub.any():
            continue
        hit = (g["model_lower"].to_numpy() <= t) & (t <= g["model_upper"].to_numpy())
        z = (est - t)[pub] / (g["model_moe"].to_numpy()[pub] / cohort_rates.Z95)
        rows.append(
            {"level": level, "view": view, "structure": kind, "areas": g["area"].nunique(), "figures": int(pub.sum()),
             "coverage": round(float(hit[pub].mean()), 3),
             "sd_z": round(float(z.std(ddof=1)), 2) if pub.sum() > 1 else np.nan,
             "median_moe_points": round(100 * float(np.median(g["model_moe"].to_numpy()[pub])), 1)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _latest(direct: dict, model: dict, cohorts: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    label = f"{cohorts[-3]}-{cohorts[-1]}"
    d = direct["window"][direct["window"]["cohorts"] == label].reset_index(drop=True)
    m = model["window"][model["window"]["cohorts"] == label].reset_index(drop=True)
    return d, m


def coverage_by_band(sim: pd.DataFrame) -> pd.DataFrame:
    """Coverage, bias (points) and published share per (level, view, kind, band), over replications."""
    rows = []
    for (level, view), g in sim.groupby(["level", "view"], sort=False):
        band = band_of(g["n"].to_numpy())
        for kind, truth in (("direct", "realised"), ("model", "underlying")):
            t = g[truth].to_numpy()
            est = g[kind].to_numpy()
            pub = np.isfinite(est) & np.isfinite(t)
            hit = (g[f"{kind}_lower"].to_numpy() <= t) & (t <= g[f"{kind}_upper"].to_numpy())
            for b in [*dict.fromkeys(band_of(np.array(BANDS)))]:
                sel = pub & (band == b)
                cells = int((band == b).sum())
                rows.append(
                    {
                        "level": level, "view": view, "kind": kind, "band": b, "cells": cells,
                        "published": sel.sum() / max(cells, 1),
                        "coverage": hit[sel].mean() if sel.any() else np.nan,
                        "bias_points": 100 * (est[sel] - t[sel]).mean() if sel.any() else np.nan,
                        "median_moe_points": 100 * np.median(g[f"{kind}_moe"].to_numpy()[sel]) if sel.any() else np.nan,
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def usable_counts(release: object, cells: pd.DataFrame, cover: pd.DataFrame) -> pd.DataFrame:
    """Usable figures per headline view in the release, beside what n<10 suppression would show."""
    rows = []
    cohorts = sorted(int(c) for c in cells["cohort"].unique())
    latest = f"{cohorts[-3]}-{cohorts[-1]}"
    specs = (
        ("district_id", "cohort", "graduation_by_district", None),
        ("district_id", "pooled", "graduation_by_district_pooled", None),
        ("district_id", "latest 3", "graduation_by_district_3yr", latest),
        ("school_id", "cohort", "graduation_by_school", None),
        ("school_id", "latest 3", "graduation_by_school_3yr", latest),
    )
    for level, view, table, window in specs:
        t = release.table(table)  # type: ignore[attr-defined]
        t = t[t["measure"] == "acgr_4yr"]
        if window is not None:
            t = t[t["cohorts"] == window]
        truth = truth_at(cells, level, None if view == "cohort" else (cohorts if view == "pooled" else cohorts[-3:]))
        on = [level, "cohort"] if view == "cohort" else [level]
        if view == "cohort":
            t = t.astype({"cohort": int})
        merged = t.merge(truth, on=on, how="left").fillna({"n": 0})
        band = band_of(merged["n"].to_numpy())
        out = {"level": level.replace("_id", ""), "view": view, "cells": len(merged),
               "shown by n<10 suppression": int((merged["n"] >= 10).sum())}  # fmt: skip
        either = pd.Series(False, index=merged.index)
        for kind, col in (("direct", "value"), ("model", "model_value")):
            moe_col = "value_moe95" if kind == "direct" else "model_moe95"
            ok = cover[(cover["level"] == level) & (cover["view"] == view) & (cover["kind"] == kind)]
            passing = set(ok.loc[ok["coverage"] >= COVERAGE_FLOOR, "band"])
            usable = merged[col].notna() & (merged[moe_col] <= USABLE) & pd.Series(band).isin(passing).to_numpy()
            out[f"usable {kind}"] = int(usable.sum())
            either = usable | either
            out[f"median margin {kind} (pts)"] = round(100 * float(np.nanmedian(merged[moe_col])), 1)
            if kind == "direct":
                real = merged["realised"].to_numpy(dtype=float)
                pub = merged[col].notna() & np.isfinite(real)
                hit = (merged["value_lower"] <= real) & (real <= merged["value_upper"])
                out["direct coverage vs truth"] = round(float(hit[pub].mean()), 3)
                out["empty cells with a figure"] = int(((merged["n"] == 0) & merged[col].notna()).sum())
            else:
                out["empty cells with a model figure"] = int(((merged["n"] == 0) & merged[col].notna()).sum())
        out["usable (either)"] = int(either.sum())
        rows.append(out)
    return pd.DataFrame(rows)


def usable_over_replications(sim: pd.DataFrame, cover: pd.DataFrame) -> pd.DataFrame:
    """Usable figures per (level, view) in each replication of ``sim``: mean, standard deviation, min and max.

    The rule is the one of :func:`usable_counts` (margin <= 10 points, the band's coverage in
    ``cover`` >= 93%, for the direct or the model-based figure), applied to every replication's
    estimates instead of the one release: the spread says how much a single release's count
    owes to its noise draw, so that a met/not-met verdict near the target can be read as such.
    """
    rows = []
    for (level, view), g in sim.groupby(["level", "view"], sort=False):
        _band, either = _usable_either(g, cover, level, view)
        per = either.groupby(g["replication"]).sum()
        rows.append(
            {"level": level.replace("_id", ""), "view": view, "replications": len(per), "mean": round(per.mean(), 1),
             "sd": round(per.std(ddof=1), 1) if len(per) > 1 else np.nan, "min": per.min(), "max": per.max()}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _usable_either(g: pd.DataFrame, cover: pd.DataFrame, level: str, view: str) -> tuple[pd.Series, pd.Series]:
    """Each simulated figure's cell-size band, and whether it is usable as direct or as model-based figure."""
    band = pd.Series(band_of(g["n"].to_numpy()), index=g.index)
    either = pd.Series(False, index=g.index)
    for kind in ("direct", "model"):
        ok = cover[(cover["level"] == level) & (cover["view"] == view) & (cover["kind"] == kind)]
        passing = set(ok.loc[ok["coverage"] >= COVERAGE_FLOOR, "band"])
        either |= np.isfinite(g[kind]) & (g[f"{kind}_moe"] <= USABLE) & band.isin(passing)
    return band, either


def usable_share_by_band(sim: pd.DataFrame, cover: pd.DataFrame, level: str, view: str) -> pd.DataFrame:
    """Per cell-size band of one (level, view): areas usable (either kind) in every replication, in none, in some.

    The areas in "some" are the ones whose side of the 10-point line depends on the draw: they make
    the spread of :func:`usable_over_replications`.
    """
    g = sim[(sim["level"] == level) & (sim["view"] == view)]
    band, either = _usable_either(g, cover, level, view)
    share = either.groupby(g["area"]).mean()
    area_band = band.groupby(g["area"]).first()
    margin = g["model_moe"].groupby(g["area"]).median()
    rows = []
    for b, areas in share.groupby(area_band):
        rows.append(
            {"band": b, "areas": len(areas), "usable in every draw": int((areas == 1).sum()),
             "in none": int((areas == 0).sum()), "in some": int(((areas > 0) & (areas < 1)).sum()),
             "mean usable": round(float(areas.sum()), 1),
             "median model margin (pts)": round(100 * float(margin.reindex(areas.index).median()), 1)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, index: bool = False) -> str:
    """A pipe table (pandas' to_markdown needs the optional tabulate package)."""
    f = frame.reset_index() if index else frame
    cells = [[("" if isinstance(v, float) and np.isnan(v) else str(v)) for v in row] for row in f.to_numpy()]
    lines = ["| " + " | ".join(map(str, f.columns)) + " |", "|" + "---|" * len(f.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def run(data_dir: Path, label: str, replications: int) -> None:
    print(f"\n## {label}\n")
    with tempfile.TemporaryDirectory() as tmp:
        release, seconds = build(data_dir, Path(tmp))
        loss = release.manifest["release_privacy_loss"]  # type: ignore[attr-defined]
        print(
            f"Release built in {seconds:.0f} s: rho {loss['rho']:.4f} = epsilon {loss['epsilon']:.3f} at delta "
            f"{loss['delta']:g} ({loss['conversion']})."
        )
        cells, _schools = realised_cells(data_dir)
        started = time.perf_counter()
        sim = replicate(data_dir, replications)
        cover = coverage_by_band(sim)
        print(f"{replications} replications against planted truth in {time.perf_counter() - started:.0f} s.\n")
        print("Usable 4-year graduation figures in the release (margin <= 10 points, band coverage >= 93%):\n")
        print(markdown(usable_counts(release, cells, cover)))
    print("\nCoverage, bias and median margin by cell-size band (replications; direct vs realised rate, "
          "model-based vs planted underlying rate):\n")  # fmt: skip
    table = cover.assign(
        published=lambda t: t["published"].round(2),
        coverage=lambda t: t["coverage"].round(3),
        bias_points=lambda t: t["bias_points"].round(2),
        median_moe_points=lambda t: t["median_moe_points"].round(1),
    )
    print(markdown(table))
    print("\nModel-based coverage by school structure (district: its set of school levels; school: its level):\n")
    by_structure = coverage_by_structure(sim)
    print(markdown(by_structure[by_structure["level"] == "district_id"]))
    overall = sim.groupby(["level", "view"], sort=False).apply(_overall, include_groups=False)
    print("\nOverall coverage (replications):\n")
    print(markdown(overall.round(3), index=True))
    fixed = replicate(data_dir, replications, redraw_effects=False)
    print("\nUsable 4-year graduation figures (either kind) per replication with this dataset's own planted effects "
          "(outcomes and noise redrawn; the release above is one such draw):\n")  # fmt: skip
    print(markdown(usable_over_replications(fixed, cover)))
    print(
        "\nDistrict pooled rates by cell-size band: districts usable in every one of those draws, in none, in some:\n"
    )
    print(markdown(usable_share_by_band(fixed, cover, "district_id", "pooled")))
    print("\nOverall coverage with this dataset's own planted school effects held fixed (coverage given these areas; "
          "model-based intervals promise it on average over areas, not for each extreme area):\n")  # fmt: skip
    held = fixed.groupby(["level", "view"], sort=False).apply(_overall, include_groups=False)
    print(markdown(held.round(3), index=True))


def _overall(g: pd.DataFrame) -> pd.Series:
    out = {}
    for kind, truth in (("direct", "realised"), ("model", "underlying")):
        t = g[truth].to_numpy()
        pub = np.isfinite(g[kind].to_numpy()) & np.isfinite(t)
        hit = (g[f"{kind}_lower"].to_numpy() <= t) & (t <= g[f"{kind}_upper"].to_numpy())
        out[f"{kind} coverage"] = hit[pub].mean()
        out[f"{kind} bias (pts)"] = 100 * (g[kind].to_numpy()[pub] - t[pub]).mean()
    return pd.Series(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=None, help="one dataset of N students (20000: the sample)")
    parser.add_argument("--replications", type=int, default=20)
    args = parser.parse_args()
    sizes = [SAMPLE_STUDENTS, 200_000] if args.students is None else [args.students]
    for n in sizes:
        if n == SAMPLE_STUDENTS:
            run(SAMPLE_DATA_DIR, "Bundled sample (20,000 students)", args.replications)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            from analytics.synth import generate

            generate(Path(tmp), n_students=n, seed=2010)
            run(Path(tmp), f"Generated dataset, {n:,} students (seed 2010)", args.replications)


if __name__ == "__main__":
    main()
