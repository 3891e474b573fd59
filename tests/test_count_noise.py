"""Count tables under zCDP: discrete Gaussian noise calibrated to the histogram's L2 sensitivity.

A count table is one histogram of students over (cell, category). Each student keeps at most
k rows in all and c rows in any one bin (:func:`analytics.exact.histogram`), so one student
moves the exact counts by a vector of non-negative integers with L1 norm <= k and L2 norm
<= :func:`analytics.exact.histogram_l2_sensitivity` (k, c). The discrete Gaussian is calibrated
to that L2 norm (rho = D2^2 / (2 sigma^2)); the tests check the bound on hostile neighbours
(duplicated rows, a student piling rows into one bin), that it is attained (so it is not loose
by construction), the noise's variance, and what a release records and charges.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analytics import catalog, exact, noise, privacy, queries, release
from tests.test_release_zcdp import built  # noqa: F401  (module fixture: a zCDP release of 2,000 students)


def _hostile_rows(seed: int, students: int = 40) -> pd.DataFrame:
    """Rows of students in (year, subject) cells, with duplicates and students who pile rows into one or two cells."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(students):
        piled = i % 7 == 0  # every seventh student puts all their rows in one bin
        split = i % 7 == 3  # and another in two cells, alternately, all in one category
        n = 24 if split else int(rng.integers(1, 25))
        for j in range(n):
            year = 2015 if piled or (split and j % 2) else 2014 if split else int(rng.integers(2011, 2016))
            subject = "math" if piled or (split and j % 2) else "ela" if split else str(rng.choice(["math", "ela"]))
            ok = True if piled or split else bool(rng.random() < 0.6)
            rows.append({"student_key": f"K{i:04d}", "year": year, "subject": subject, "ok": ok})
    return pd.DataFrame(rows)


DOMAINS = {"year": list(range(2011, 2016)), "subject": ["math", "ela"]}


@pytest.mark.parametrize(("k", "c"), [(1, 1), (4, 1), (6, 2), (18, 9), (5, 5)])
def test_a_neighbour_moves_the_histogram_by_at_most_its_l1_and_l2_sensitivity(k: int, c: int) -> None:
    rows = _hostile_rows(seed=k * 10 + c)
    full = exact.histogram(rows, DOMAINS, "ok", [True, False], k, max_per_bin=c)["n"].to_numpy()
    l2 = exact.histogram_l2_sensitivity(k, c)
    largest = 0.0
    for victim in rows["student_key"].unique():
        part = exact.histogram(rows[rows.student_key != victim], DOMAINS, "ok", [True, False], k, max_per_bin=c)
        diff = full - part["n"].to_numpy()
        assert (diff >= 0).all()
        assert diff.sum() <= k
        assert diff.max() <= c
        assert math.sqrt(float((diff**2).sum())) <= l2 + 1e-9
        largest = max(largest, math.sqrt(float((diff**2).sum())))
    assert largest == pytest.approx(l2)  # the piled students reach the bound: it is the sensitivity, not a guess


def test_the_per_bin_bound_is_what_keeps_a_piled_student_within_the_l2_sensitivity() -> None:
    piled = pd.DataFrame({"student_key": ["KPILE"] * 6, "year": [2015] * 6, "subject": ["math"] * 6, "ok": [True] * 6})
    others = _hostile_rows(seed=5, students=10)
    rows = pd.concat([others, piled], ignore_index=True)
    for c, expected in ((1, 1), (3, 3), (6, 6)):
        full = exact.histogram(rows, DOMAINS, "ok", [True, False], 6, max_per_bin=c)["n"].to_numpy()
        part = exact.histogram(others, DOMAINS, "ok", [True, False], 6, max_per_bin=c)["n"].to_numpy()
        assert int((full - part).max()) == expected
    with pytest.raises(ValueError, match="max_per_bin"):
        exact.histogram(rows, DOMAINS, "ok", [True, False], 2, max_per_bin=3)


def test_gaussian_scale_follows_the_l2_sensitivity_and_laplace_the_l1() -> None:
    for k, c in ((1, 1), (18, 1), (18, 9), (90, 9)):
        g = privacy.CountNoise.for_histogram("zcdp", 0.02, k, c)
        assert g.kind == "gaussian"
        assert g.scale == pytest.approx(exact.histogram_l2_sensitivity(k, c) / math.sqrt(2 * 0.02))
        lap = privacy.CountNoise.for_histogram("epsilon", 0.2, k, c)
        assert lap.kind == "laplace" and lap.scale == pytest.approx(k / 0.2)
    # at the same rho (a pure table at epsilon is charged epsilon^2 / 2) the Gaussian's spread is
    # sqrt(2) k / D2 times smaller: 6x for 18 rows in distinct bins
    rho = 0.02
    lap_sd = math.sqrt(privacy.CountNoise.for_histogram("epsilon", math.sqrt(2 * rho), 18).variance)
    gau_sd = math.sqrt(privacy.CountNoise.for_histogram("zcdp", rho, 18, 1).variance)
    assert lap_sd / gau_sd == pytest.approx(6.0, rel=0.02)
    for bad in ((0, 1), (3, 4), (2.5, 1)):
        with pytest.raises(ValueError):
            privacy.CountNoise.for_histogram("zcdp", 0.1, *bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="accounting"):
        privacy.CountNoise.for_histogram("renyi", 0.1, 1)


def test_gaussian_histogram_noise_has_the_stated_variance() -> None:
    """Seeded: the spread of noisy minus exact counts over 4,000 bins matches sigma^2 within chi-square limits."""
    rows = pd.DataFrame({"student_key": [f"K{i:05d}" for i in range(3000)], "cell": np.arange(3000) % 2000,
                         "ok": np.arange(3000) % 3 == 0})  # fmt: skip
    domains = {"cell": list(range(2000))}
    exact_n = exact.histogram(rows, domains, "ok", [True, False], 1)["n"].to_numpy()
    hist = queries.noisy_histogram(rows, domains, "ok", [True, False], 0.01, 1, seed=7, accounting="zcdp")
    assert hist.mechanism.kind == "gaussian" and hist.epsilon == 0.0
    err = hist.noisy.ravel() - exact_n
    n = err.size
    ratio = float(np.mean(err.astype(float) ** 2)) / hist.mechanism.variance
    # mean of n squared normals / sigma^2 has sd sqrt(2 / n): a 5-sd band
    assert abs(ratio - 1) < 5 * math.sqrt(2 / n)
    assert abs(float(err.mean())) < 5 * math.sqrt(hist.mechanism.variance / n)


def test_rate_margins_cover_95_percent_under_gaussian_noise() -> None:
    """The bootstrap margin of a rate read off a Gaussian histogram covers the exact rate 93-97% of the time."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(20, 400, 600)
    rates = rng.uniform(0.1, 0.9, 600)
    keys, cells, oks = [], [], []
    for i, (n, p) in enumerate(zip(sizes, rates, strict=True)):
        keys += [f"K{i:04d}{j:04d}" for j in range(n)]
        cells += [i] * n
        oks += list(np.arange(n) < round(n * p))
    rows = pd.DataFrame({"student_key": keys, "cell": cells, "ok": oks})
    truth = rows.groupby("cell")["ok"].mean().to_numpy()
    out = queries.noisy_rate(rows, {"cell": list(range(600))}, "ok", 0.005, seed=3, accounting="zcdp")
    hit = np.abs(out["rate"].to_numpy() - truth) <= out["rate_moe95"].to_numpy()
    assert 0.93 <= hit.mean() <= 0.97, f"coverage {hit.mean():.3f}"


def test_count_tables_declare_their_bounds_and_the_design_keeps_each_tables_share() -> None:
    counts = [t for t in catalog.TABLES if t.cost == "counts"]
    assert len(counts) >= 20
    for t in counts:
        k, c = t.rows_per_student, t.rows_per_bin
        assert k is not None and c is not None and 1 <= c <= k
        stated = int(t.contribution_bound.split()[0])
        assert stated == k, f"{t.name}: the contribution bound in words says {stated}, the histogram keeps {k}"
    plan = catalog.plan_release(6.55)
    paid = ("counts", "epsilon", "composed")
    share = {n: s for n, s in catalog.EPSILON_SHARES.items() if catalog.TABLES_BY_NAME[n].cost in paid}
    rest = plan.total_rho * (1 - catalog.GRADUATION_RHO_SHARE)
    for n, s in share.items():  # every non-graduation table's rho is its share, whatever its sensitivity
        assert plan.rhos[n] == pytest.approx(rest * s / sum(share.values()), rel=1e-9)
        if catalog.TABLES_BY_NAME[n].cost in ("counts", "composed"):
            assert plan.amounts[n] == plan.rhos[n] and plan.epsilons[n] == 0.0


def test_a_zcdp_release_records_the_noise_of_every_count_table_and_charges_its_rho(built) -> None:  # noqa: F811
    _data, ledger, result = built
    manifest = json.loads((result.release_dir / release.MANIFEST).read_text())
    spends = {e.query["table"]: e for e in ledger.history("zcdp-test") if e.kind == "spend" and e.query}
    for t in catalog.TABLES:
        info = manifest["tables"][t.name]
        if t.cost != "counts":
            assert "noise" not in info
            continue
        noise = info["noise"]
        assert noise["kind"] == "gaussian" and noise["rows_per_student"] == t.rows_per_student
        assert noise["scale"] == pytest.approx(t.l2_sensitivity / math.sqrt(2 * info["rho"]))
        assert spends[t.name].rho == pytest.approx(info["rho"]) and info["epsilon"] == 0.0
        assert spends[t.name].query["accounting"] == "zcdp"
    rel = release.load_release(result.release_dir.parent, result.release_id)
    mech = rel.count_noise("ssn_collection_by_district")
    recorded = manifest["tables"]["ssn_collection_by_district"]["noise"]
    assert mech.kind == "gaussian" and mech.variance == pytest.approx(recorded["variance"])
    with pytest.raises(ValueError, match="no noisy counts"):
        rel.count_noise("graduation_by_district")


def _renyi_discrete_gaussian(shift: int, sigma: float, alpha: float) -> float:
    """D_alpha(N_Z(shift, sigma^2) || N_Z(0, sigma^2)), summed over the support numerically."""
    x = np.arange(-int(60 * sigma) - abs(shift), int(60 * sigma) + abs(shift) + 1)
    log_p = np.log(np.clip(noise.discrete_gaussian_pmf(x - shift, sigma), 1e-300, None))
    log_q = np.log(np.clip(noise.discrete_gaussian_pmf(x, sigma), 1e-300, None))
    terms = alpha * log_p + (1 - alpha) * log_q
    top = terms.max()
    return float((top + np.log(np.exp(terms - top).sum())) / (alpha - 1))


@pytest.mark.parametrize(("k", "c"), [(4, 1), (18, 9)])
def test_the_charged_rho_bounds_the_renyi_divergence_between_hostile_neighbours(k: int, c: int) -> None:
    """For every neighbour (one student and all their rows removed) the noisy histograms' Renyi divergence,
    computed from the discrete Gaussian's own pmf bin by bin, stays within alpha x the rho charged;
    without the per-bin bound the piled students break it."""
    rho = 0.05
    mech = privacy.CountNoise.for_histogram("zcdp", rho, k, c)
    rows = _hostile_rows(seed=k + c, students=30)

    def worst(per_bin: int) -> float:
        full = exact.histogram(rows, DOMAINS, "ok", [True, False], k, max_per_bin=per_bin)["n"].to_numpy()
        out = 0.0
        for victim in rows["student_key"].unique():
            part = exact.histogram(rows[rows.student_key != victim], DOMAINS, "ok", [True, False], k,
                                   max_per_bin=per_bin)["n"].to_numpy()  # fmt: skip
            shifts = (full - part)[full != part]
            for alpha in (2.0, 8.0):
                d = sum(_renyi_discrete_gaussian(int(s), mech.scale, alpha) for s in shifts)
                out = max(out, d / alpha)
        return out

    assert worst(c) <= rho * (1 + 1e-6)
    if c < k:
        assert worst(k) > rho  # a student piling k rows into one bin is what the per-bin bound stops


def test_the_skip_check_never_reuses_another_extracts_count() -> None:
    """Ibis compares operations by structure: the same SQL on two extracts gives equal relations. The check
    that skips bounding must not carry extract A's "at most one row per student" over to extract B
    (an attacker's finding: B's histogram came out [45, 20] with k = 1)."""
    import duckdb

    from analytics.engine import duckdb_backend

    sql = "SELECT student_key, district_id, declined FROM ssn_collection"
    make = "create table ssn_collection as select 'K'||i as student_key, 'D1' as district_id, i % 2 = 0 as declined"
    a, b = duckdb.connect(":memory:"), duckdb.connect(":memory:")
    for con in (a, b):
        con.execute(make + " from range(40) r(i)")
    b.execute("insert into ssn_collection select 'K0', 'D1', true from range(25)")  # one student with 26 rows
    dom = {"district_id": ["D1"]}
    rel_a = duckdb_backend(a).sql(sql)
    assert exact.histogram(rel_a, dom, "declined", [True, False], 1)["n"].tolist() == [20, 20]
    rel_b = duckdb_backend(b).sql(sql)
    assert rel_a.op() == rel_b.op()  # what made the reuse possible
    assert exact.histogram(rel_b, dom, "declined", [True, False], 1)["n"].tolist() == [20, 20]
    b.execute("insert into ssn_collection select 'K1', 'D1', true from range(5)")  # the same relation, new rows
    assert exact.histogram(rel_b, dom, "declined", [True, False], 1)["n"].tolist() == [20, 20]


def test_a_rate_floored_at_zero_is_flagged_in_words_not_read_as_reliable() -> None:
    """A noisy numerator at or below zero publishes 0%: a floor, not an estimate (newcomer's finding: a district
    trend sentence read "went from 7.1% to 0.0%" off such a cell flagged reliable)."""
    n, moe = np.array([147.0, 147.0, 147.0]), np.array([0.099, 0.05, 0.06])
    flags, reasons = privacy.reliability(n, moe, np.array([0.0, 0.07, 1.0]), "rate")
    assert flags == ["unreliable", "reliable", "unreliable"]
    assert reasons[0].startswith("shown as 0% because the noisy count fell to zero or below")
    assert reasons[2].startswith("shown as 100% because the noisy count of the rest fell to zero or below")
    assert not privacy.reliability(n[:1], moe[:1], np.array([0.0]), "count")[1][0].startswith("shown as")


def test_subgroup_copies_are_bounded_as_if_counted_row_by_row() -> None:
    """The skip-check reads a subgroup expansion's bounds off the rows it copies (exact.labelled_copies); the
    histogram must equal the one computed from the copies materialised and counted directly, including for a
    student with too many rows in one cell and students with missing subgroup values (whose copies must not meet)."""
    from analytics.engine import execute
    from analytics.metrics import subgroups

    rng = np.random.default_rng(4)
    rows = []
    for i in range(60):
        n = 14 if i == 0 else int(rng.integers(1, 8))  # student 0: 14 math tests, above the 9 a cell keeps
        for _ in range(n):
            rows.append(
                {"student_key": f"K{i:03d}", "subject": "math" if i == 0 else str(rng.choice(["math", "ela"])),
                 "ok": bool(rng.random() < 0.5), "sex": None if i % 5 == 0 else str(rng.choice(["F", "M"])),
                 "race_ethnicity": None if i % 5 == 0 else "White", "economically_disadvantaged": None if i % 4 == 0
                 else bool(rng.random() < 0.4), "english_learner": False, "disability": bool(rng.random() < 0.2)}
            )  # fmt: skip
    base = pd.DataFrame(rows)
    domains = {"subgroup": list(subgroups.SUBGROUPS), "subject": ["math", "ela"]}
    k, c = 9 * subgroups.ROWS_PER_STUDENT, 4  # a cell keeps 4 of a student's 9 rows a family
    expanded = subgroups.expand_subgroups(exact.bound(base, 9))
    materialised = execute(expanded)  # a plain frame: counted directly, no shortcut
    via_base = exact.histogram(expanded, domains, "ok", [True, False], k, max_per_bin=c)["n"].to_numpy()
    direct = exact.histogram(materialised, domains, "ok", [True, False], k, max_per_bin=c)["n"].to_numpy()
    assert (via_base == direct).all()
    missing = materialised["subgroup"].str.endswith("(missing)")
    assert missing.any() and materialised.loc[missing, "subgroup"].nunique() > 1  # each family its own label
    for victim in ("K000", "K005", "K010"):
        part = exact.histogram(
            subgroups.expand_subgroups(exact.bound(base[base.student_key != victim], 9)), domains, "ok",
            [True, False], k, max_per_bin=c,
        )["n"].to_numpy()  # fmt: skip
        diff = via_base - part
        assert diff.max() <= c and diff.sum() <= k
        assert math.sqrt(float((diff**2).sum())) <= exact.histogram_l2_sensitivity(k, c) + 1e-9


def test_the_subgroup_shortcut_and_the_walk_up_never_undercount_a_students_rows() -> None:
    """Two attacker findings: (a) the same expansion on two extracts compares equal in Ibis, so extract B's
    copies were checked against extract A's rows and bounding was skipped (L2 22.4 where the noise assumed
    2.24); (b) a projection with ``unnest`` repeats rows yet passed for a pass-through."""
    import ibis

    from analytics.engine import as_relation, duckdb_backend, execute
    from analytics.metrics import subgroups

    def extract(rows_for_s1: int) -> object:
        be = duckdb_backend()
        person = {"sex": "F", "race_ethnicity": "Asian", "economically_disadvantaged": True, "english_learner": False,
                  "disability": False, "cohort": 2020, "category": "grad"}  # fmt: skip
        recs = [{"student_key": "S1", **person}] * rows_for_s1 + [{"student_key": f"T{i}", **person} for i in range(3)]
        be.con.register("df", pd.DataFrame(recs))
        be.con.execute("create table students as select * from df")
        return be

    heavy, light = extract(10), extract(1)
    u_heavy = subgroups.expand_subgroups(heavy.table("students"))  # type: ignore[attr-defined]
    u_light = subgroups.expand_subgroups(light.table("students"))  # type: ignore[attr-defined]
    assert u_heavy.op() == u_light.op()
    doms = {"subgroup": list(subgroups.SUBGROUPS), "cohort": [2020]}
    lazy = exact.histogram(u_heavy, doms, "category", ["grad"], 5, max_per_bin=1)["n"].to_numpy()
    direct = exact.histogram(execute(u_heavy), doms, "category", ["grad"], 5, max_per_bin=1)["n"].to_numpy()
    assert (lazy == direct).all()
    assert exact._most_rows_upstream(u_heavy, "student_key") == exact.most_rows_per_student(u_heavy) == 50

    rows = as_relation(pd.DataFrame({"student_key": ["A", "B"], "cell": [1, 1], "ok": [True, True]}))
    repeated = rows.mutate(rep=ibis.literal(list(range(8))).unnest())
    assert exact._most_rows_upstream(repeated, "student_key") == 8
    counted = exact.histogram(repeated, {"cell": [1]}, "ok", [True, False], 1)["n"].tolist()
    assert counted == [2, 0]  # one row each, as the bound of 1 says


def test_growth_tables_split_their_rho_into_parts_that_add_up_in_zcdp(built, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A growth table's pure parts (median histogram; mean's count and sum; the model's count and two sums)
    each run at sqrt(2 rho / 3) on a zCDP lineage: three parts of rho / 3 add up to the rho charged (they
    ran at epsilon / 2, / 4 and / 3 of epsilon = sqrt(2 rho), using a third to a half of it)."""
    from analytics.metrics import assessment
    from analytics.validate import load_dataset

    seen: dict[str, list[float]] = {"median": [], "mean": []}
    real_pct, real_mean = queries.noisy_percentiles, queries.noisy_mean

    def pct(rows, domains, value, bins, quantiles, epsilon, **kw):  # type: ignore[no-untyped-def]
        seen["median"].append(epsilon)
        return real_pct(rows, domains, value, bins, quantiles, epsilon, **kw)

    def mean(rows, domains, value, lower, upper, epsilon, **kw):  # type: ignore[no-untyped-def]
        seen["mean"].append(epsilon)
        return real_mean(rows, domains, value, lower, upper, epsilon, **kw)

    monkeypatch.setattr(queries, "noisy_percentiles", pct)
    monkeypatch.setattr(queries, "noisy_mean", mean)
    plan = catalog.plan_release(6.55)
    for name in ("growth_model", "growth_by_school", "growth_by_district"):
        spec = catalog.TABLES_BY_NAME[name]
        assert spec.cost == "composed" and plan.amounts[name] == plan.rhos[name] and plan.epsilons[name] == 0.0
    data, _ledger, _result = built
    with catalog.BuildContext(load_dataset(data).source, "zcdp", plan.levels) as ctx:
        model = catalog.TABLES_BY_NAME["growth_model"].build(ctx, plan.amounts["growth_model"], 1)
        ctx.published["growth_model"] = model
        catalog.TABLES_BY_NAME["growth_by_district"].build(ctx, plan.amounts["growth_by_district"], 2)
    part_model = math.sqrt(2 * plan.rhos["growth_model"] / 3)
    assert model["sum_noise_scale"].iloc[0] == pytest.approx(catalog.GROWTH_MODEL_PAIRS / part_model)
    assert (model["epsilon"] == 0.0).all()
    part = math.sqrt(2 * plan.rhos["growth_by_district"] / 3)
    assert seen["median"] == [pytest.approx(part)] and seen["mean"] == [pytest.approx(2 * part)]  # halved inside
    assert 3 * part**2 / 2 == pytest.approx(plan.rhos["growth_by_district"])
    assert assessment.part_epsilon(0.3, 3, "epsilon") == pytest.approx(0.1)


def test_a_floored_rate_is_never_read_as_clearly_below_the_state() -> None:
    """Attacker's wording finding: the district sentence counted a 0% (a floored noisy count) as clearly below."""
    from analytics import views

    d = pd.DataFrame({"value": [0.0, 0.02, 0.3], "value_moe95": [0.05, 0.01, 0.05],
                      "flag": ["unreliable", "reliable", "reliable"]})  # fmt: skip
    sentence = views.reading_dots(d, "the opt-out rate", "districts", True, reference=0.1)
    assert "1 has the opt-out rate clearly above" in sentence and ", 1 clearly below, 1 cannot be told" in sentence
