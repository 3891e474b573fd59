"""The privacy engine, tested adversarially and statistically.

Empirical privacy: run each statistic thousands of times (seeded) on a dataset D
and on D' = D minus one student (all of that student's rows), bin the outputs,
and check P[bin | D] <= e^eps * P[bin | D'] + tol in both directions. The
tolerance comes from Hoeffding's inequality with a union bound over bins and
both datasets: each estimated probability is within
t = sqrt(ln(4 K / alpha) / (2 N)) of the truth with probability 1 - alpha, so a
true ratio bound implies p_D_hat <= e^eps p_D'_hat + t (1 + e^eps). Such a test
can show a violation, never prove privacy; a deliberately broken mechanism
(noise scale halved) shows it can fail.

Calibration: over many seeded cells the stated 95% margin of error covers the
value the mechanism was asked to protect 93-97% of the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from analytics import exact, privacy, queries
from analytics.engine import as_relation, execute
from analytics.privacy import Bins

EPSILON = 1.0
RUNS = 1500
ALPHA = 1e-3


def _students(n: int, **cols: object) -> pd.DataFrame:
    return pd.DataFrame({"student_key": [f"K{i:07d}" for i in range(n)], **cols})


def _empirical_excess(outputs_d: np.ndarray, outputs_d2: np.ndarray, edges: np.ndarray, epsilon: float) -> float:
    """Largest amount by which binned outputs break the DP inequality beyond the tolerance (<= 0 passes)."""

    def probs(x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), edges[0] - 1, x)  # NaN outputs get a bin of their own
        idx = np.clip(np.searchsorted(edges, x, side="right"), 0, len(edges))
        return np.bincount(idx, minlength=len(edges) + 1) / len(x)

    p, q = probs(outputs_d), probs(outputs_d2)
    k = len(p)
    t = math.sqrt(math.log(4 * k / ALPHA) / (2 * min(len(outputs_d), len(outputs_d2))))
    tol = t * (1 + math.exp(epsilon))
    excess = max(float(np.max(p - math.exp(epsilon) * q)), float(np.max(q - math.exp(epsilon) * p)))
    return excess - tol


@pytest.fixture
def exact_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each distinct exact result is computed once per test; every run still draws its own noise.

    The exact work (bounding, joins, the histogram over the public domain) is a deterministic
    function of the rows and the query, so computing it once and redrawing the noise gives every
    run the output distribution it would have had; only the engine time (about 30 ms a query,
    100 s a test) goes. A pandas frame is handed to the engine as the same in-memory table each
    time, so the relations built on it compare equal (Ibis operations compare by structure).
    """
    tables: dict[int, tuple[pd.DataFrame, object]] = {}
    real_relation = exact.as_relation

    def as_relation(rows: object) -> object:
        if not isinstance(rows, pd.DataFrame):
            return real_relation(rows)
        if id(rows) not in tables:
            tables[id(rows)] = (rows, real_relation(rows))  # the frame is kept, so its id is not reused
        return tables[id(rows)][1]

    def once(function: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        results: dict[tuple[object, str], pd.DataFrame] = {}

        def cached(rows: object, *args: object, **kwargs: object) -> pd.DataFrame:
            relation = as_relation(rows)
            key = (relation.op(), repr((args, sorted(kwargs.items()))))  # type: ignore[attr-defined]
            if key not in results:
                results[key] = function(relation, *args, **kwargs)
            return results[key].copy()

        return cached

    for module in (exact, queries):
        monkeypatch.setattr(module, "as_relation", as_relation)
    for name in ("aggregate", "counts", "histogram", "clamped_sums"):
        monkeypatch.setattr(exact, name, once(getattr(exact, name)))


def _run(
    stat: Callable[[pd.DataFrame, int], float], d: pd.DataFrame, d2: pd.DataFrame, runs: int = RUNS
) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([stat(d, seed) for seed in range(runs)], dtype=float)
    b = np.array([stat(d2, 10_000_000 + seed) for seed in range(runs)], dtype=float)
    return a, b


def _drop_student(df: pd.DataFrame, key: str) -> pd.DataFrame:
    return df[df["student_key"] != key].reset_index(drop=True)


# ---- the statistics under test, each on a dataset and its neighbour -------------------------


def _count_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = _students(8, district=["A"] * 6 + ["B"] * 2)
    # the removed student has rows in both districts: bounding keeps one of them
    heavy = pd.DataFrame({"student_key": ["KHEAVY01"] * 4, "district": ["A", "A", "B", "B"]})
    full = pd.concat([d, heavy], ignore_index=True)
    return full, _drop_student(full, "KHEAVY01")


#: the district in which bounding kept the removed student: the cell that differs between D and D'
_KEPT = (
    execute(exact.bound(_count_data()[0].drop_duplicates(), 1)).query("student_key == 'KHEAVY01'")["district"].item()
)


def _count_stat(df: pd.DataFrame, seed: int) -> float:
    out = queries.noisy_count(df, {"district": ["A", "B"]}, EPSILON, max_cells_per_student=1, seed=seed)
    return float(out.set_index("district").loc[_KEPT, "n_students"])


def _rate_stat(df: pd.DataFrame, seed: int) -> float:
    return float(queries.noisy_rate(df, {"district": ["A"]}, "graduated", EPSILON, seed=seed)["rate"].iloc[0])


def _rate_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = _students(4, district="A", graduated=[True] * 3 + [False])
    return d, _drop_student(d, "K0000000")


def _mean_stat(df: pd.DataFrame, seed: int) -> float:
    out = queries.noisy_mean(df, {"district": ["A"]}, "score", 0.0, 100.0, EPSILON, seed=seed)
    return float(out["mean"].iloc[0])


def _mean_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = _students(20, district="A", score=[100.0] + [50.0] * 19)
    return d, _drop_student(d, "K0000000")


MEDIAN_BINS = Bins((0.0, 25.0, 50.0, 75.0, 100.0))


def _median_stat(df: pd.DataFrame, seed: int) -> float:
    out = queries.noisy_percentiles(df, {"district": ["A"]}, "earnings", MEDIAN_BINS, [0.5], EPSILON, seed=seed)
    return float(out["p50"].iloc[0])


def _median_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = _students(5, district="A", earnings=[95.0] * 3 + [5.0] * 2)
    return d, _drop_student(d, "K0000000")


CASES = {
    "count": (_count_stat, _count_data, np.arange(-0.5, 20, 1.0)),
    "rate": (_rate_stat, _rate_data, np.linspace(0, 1, 41)),
    "mean": (_mean_stat, _mean_data, np.linspace(0, 100, 21)),
    "median": (_median_stat, _median_data, np.linspace(0, 100, 21)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.usefixtures("exact_once")
def test_empirical_privacy_holds_on_neighbours(name: str) -> None:
    stat, data, edges = CASES[name]
    d, d2 = data()
    a, b = _run(stat, d, d2)
    assert not np.allclose(a, a[0]), "the statistic drew no noise"
    excess = _empirical_excess(a, b, edges, EPSILON)
    assert excess <= 0, f"{name}: P[out | D] exceeds e^eps P[out | D'] by {excess:.3f} beyond the tolerance"


def _halved_scale_geometric(
    counts: np.ndarray, epsilon: float, sensitivity: int = 1, seed: privacy.Seed = None
) -> np.ndarray:
    return _real_geometric(counts, 2 * epsilon, sensitivity, seed)


def _quarter_scale_geometric(
    counts: np.ndarray, epsilon: float, sensitivity: int = 1, seed: privacy.Seed = None
) -> np.ndarray:
    return _real_geometric(counts, 4 * epsilon, sensitivity, seed)


_real_geometric = privacy.geometric_noise_counts
_real_for_histogram = privacy.CountNoise.for_histogram


def _shrunk_histogram_noise(factor: float) -> classmethod:
    """CountNoise.for_histogram with the scale divided by ``factor``: a histogram's noise, broken."""

    def for_histogram(cls: type, *args: object, **kwargs: object) -> privacy.CountNoise:
        real = _real_for_histogram(*args, **kwargs)
        return privacy.CountNoise(real.kind, real.scale / factor)

    return classmethod(for_histogram)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["count", "rate", "median"])
@pytest.mark.usefixtures("exact_once")
def test_empirical_test_catches_a_broken_mechanism(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A rate of 4 students sits near the test's power at half the noise (excess +0.15 alone, negative in
    # one full-suite run): it is checked at a quarter of the noise, the others at half.
    broken = _quarter_scale_geometric if name == "rate" else _halved_scale_geometric
    monkeypatch.setattr(privacy, "geometric_noise_counts", broken)  # noisy_count's noise
    monkeypatch.setattr(privacy.CountNoise, "for_histogram", _shrunk_histogram_noise(4.0 if name == "rate" else 2.0))
    stat, data, edges = CASES[name]
    d, d2 = data()
    a, b = _run(stat, d, d2)
    assert _empirical_excess(a, b, edges, EPSILON) > 0, f"{name}: shrinking the noise scale went unnoticed"


def _broken_bounding(rows: pd.DataFrame, max_rows: int, key: str = "student_key") -> object:
    return as_relation(rows)


@pytest.mark.slow
@pytest.mark.usefixtures("exact_once")
def test_empirical_test_catches_missing_contribution_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A student with rows in many cells must be bounded; without it the count leaks."""
    monkeypatch.setattr(exact, "bound", _broken_bounding)
    d = _students(3, district="A")
    heavy = pd.DataFrame({"student_key": ["KHEAVY01"] * 4, "district": ["A", "B", "C", "D"]})
    full = pd.concat([d, heavy], ignore_index=True)

    def total(df: pd.DataFrame, seed: int) -> float:
        out = queries.noisy_count(df, {"district": ["A", "B", "C", "D"]}, EPSILON, seed=seed)
        return float(out["n_students"].sum())

    a, b = _run(total, full, _drop_student(full, "KHEAVY01"), runs=1500)
    assert _empirical_excess(a, b, np.arange(-0.5, 25, 2.0), EPSILON) > 0


# ---- contribution bounding, deterministic ---------------------------------------------------


def test_neighbour_changes_each_count_histogram_by_at_most_the_bound() -> None:
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "student_key": [f"K{i % 50:04d}" for i in range(400)],  # 8 rows per student
            "year": rng.integers(2011, 2016, 400),
        }
    )
    domains = {"year": list(range(2011, 2016))}
    for k in (1, 2, 3):
        full = exact.histogram(rows.drop_duplicates().assign(c=1), domains, "c", [1], k)["n"]
        for victim in ("K0000", "K0007", "K0049"):
            nb = rows[rows.student_key != victim].drop_duplicates()
            part = exact.histogram(nb.assign(c=1), domains, "c", [1], k)["n"]
            assert int(np.abs(full.to_numpy() - part.to_numpy()).sum()) <= k


def test_group_keys_come_from_the_public_list() -> None:
    rows = _students(3, district=["A", "A", "SECRET"])
    out = queries.noisy_count(rows, {"district": ["A", "B"]}, 1.0, seed=1)
    assert out["district"].tolist() == ["A", "B"]  # B is empty but published; SECRET is not a key


# ---- margins of error: calibration -----------------------------------------------------------


def _coverage(estimate: np.ndarray, truth: np.ndarray, moe: np.ndarray) -> float:
    return float(np.mean(np.abs(estimate - truth) <= moe))


def test_count_moe_covers_95_percent() -> None:
    cells = [f"c{i}" for i in range(4000)]
    rows = pd.DataFrame({"student_key": [f"K{i:07d}" for i in range(4000 * 50)], "cell": np.repeat(cells, 50)})
    out = queries.noisy_count(rows, {"cell": cells}, epsilon=0.1, seed=11)
    # counts are clamped at 0 only below 0, far from 50
    cover = _coverage(out["n_students"].to_numpy(), np.full(4000, 50), out["n_students_moe95"].to_numpy())
    assert 0.93 <= cover <= 0.97, cover


def test_count_moe_is_exact_for_the_geometric_distribution() -> None:
    for eps in (0.1, 0.5, 1.0, 2.0):
        k = privacy.geometric_moe95(eps)
        alpha = math.exp(-eps)
        assert 1 - 2 * alpha ** (k + 1) / (1 + alpha) >= 0.95
        assert k == 0 or 1 - 2 * alpha**k / (1 + alpha) < 0.95


def test_rate_moe_covers_95_percent() -> None:
    n_cells, n = 3000, 200
    cells = [f"c{i}" for i in range(n_cells)]
    rng = np.random.default_rng(5)
    yes = rng.integers(60, 180, n_cells)  # true rates from 0.3 to 0.9
    graduated = np.concatenate([np.r_[np.ones(y, bool), np.zeros(n - y, bool)] for y in yes])
    rows = pd.DataFrame(
        {"student_key": [f"K{i:07d}" for i in range(n_cells * n)], "cell": np.repeat(cells, n), "graduated": graduated}
    )
    out = queries.noisy_rate(rows, {"cell": cells}, "graduated", epsilon=0.5, seed=12)
    cover = _coverage(out["rate"].to_numpy(), yes / n, out["rate_moe95"].to_numpy())
    assert 0.93 <= cover <= 0.97, cover


def test_mean_moe_covers_95_percent() -> None:
    n_cells, n = 2000, 100
    cells = [f"c{i}" for i in range(n_cells)]
    rng = np.random.default_rng(6)
    scores = rng.uniform(0, 100, n_cells * n)
    rows = pd.DataFrame(
        {"student_key": [f"K{i:07d}" for i in range(n_cells * n)], "cell": np.repeat(cells, n), "score": scores}
    )
    truth = scores.reshape(n_cells, n).mean(axis=1)
    out = queries.noisy_mean(rows, {"cell": cells}, "score", 0.0, 100.0, epsilon=1.0, seed=13)
    cover = _coverage(out["mean"].to_numpy(), truth, out["mean_moe95"].to_numpy())
    assert 0.93 <= cover <= 0.97, cover


def test_snapping_moe_covers_95_percent_of_sums() -> None:
    rng = np.random.default_rng(8)
    true_sums = rng.uniform(1000, 5000, 4000)
    noisy = privacy.snapping_noise_sums(true_sums, 0.5, 100.0, 0.0, 1e7, seed=14)
    moe = privacy.snapping_moe95(0.5, 100.0, 0.0, 1e7)
    cover = _coverage(noisy, true_sums, np.full(4000, moe))
    assert 0.93 <= cover <= 0.97, cover
    assert moe > privacy.laplace_moe95(100.0 / 0.5)  # the rounding grid widens the interval


def test_percentile_moe_covers_95_percent() -> None:
    """The median of the noise-free histogram is what the mechanism protects; its MOE covers it."""
    n_cells, n = 1500, 300
    cells = [f"c{i}" for i in range(n_cells)]
    rng = np.random.default_rng(7)
    earnings = rng.lognormal(np.log(25_000), 0.6, n_cells * n)
    rows = pd.DataFrame(
        {"student_key": [f"K{i:07d}" for i in range(n_cells * n)], "cell": np.repeat(cells, n), "earnings": earnings}
    )
    bins = Bins(tuple(float(x) for x in range(0, 102_500, 2_500)))
    out = queries.noisy_percentiles(rows, {"cell": cells}, "earnings", bins, [0.5], epsilon=1.0, seed=15)
    exact_hist = np.stack([np.bincount(bins.assign(e), minlength=40) for e in earnings.reshape(n_cells, n)])
    truth = privacy.percentiles_from_histogram(exact_hist, bins.edges, [0.5])[:, 0]
    cover = _coverage(out["p50"].to_numpy(), truth, out["p50_moe95"].to_numpy())
    assert 0.93 <= cover <= 0.97, cover


# ---- post-processing and flags ----------------------------------------------------------------


def test_post_processing_keeps_results_sane() -> None:
    rows = _students(5, district="A", graduated=[True, True, False, False, False])
    out = queries.noisy_rate(rows, {"district": ["A", "B", "C"]}, "graduated", epsilon=0.05, seed=2)
    assert (out["n_yes"] >= 0).all() and (out["n_students"] >= out["n_yes"]).all()
    rates = out["rate"].dropna()
    assert ((rates >= 0) & (rates <= 1)).all()
    assert (out.loc[out["rate"].isna(), "flag"] == "unreliable").all()


def test_small_cells_are_flagged_in_words() -> None:
    rows = _students(12, district="A", graduated=[True] * 9 + [False] * 3)
    out = queries.noisy_rate(rows, {"district": ["A"]}, "graduated", epsilon=1.0, seed=4)
    assert out["flag"].iloc[0] in {"rough", "unreliable"}
    assert "fewer than about 30 students" in out["flag_reason"].iloc[0]
    big = _students(2000, district="A", graduated=[True] * 1500 + [False] * 500)
    assert queries.noisy_rate(big, {"district": ["A"]}, "graduated", 1.0, seed=4)["flag"].iloc[0] == "reliable"


def test_seeded_runs_repeat_and_unseeded_runs_differ() -> None:
    rows = _students(100, district="A")
    a = queries.noisy_count(rows, {"district": ["A"]}, 0.1, seed=9)
    b = queries.noisy_count(rows, {"district": ["A"]}, 0.1, seed=9)
    assert a.equals(b)
    draws = {int(queries.noisy_count(rows, {"district": ["A"]}, 0.1)["n_students"].iloc[0]) for _ in range(20)}
    assert len(draws) > 1


def test_which_rows_are_kept_does_not_depend_on_dtypes_or_column_order() -> None:
    rows = pd.DataFrame(
        {"student_key": ["a"] * 6 + ["b"], "year": list(range(2015, 2022)), "flag": [True, False] * 3 + [True]}
    )
    variants = [
        rows,
        rows.astype({"year": "int32"}),
        rows.astype({"year": "float64", "flag": "int64"}),
        rows[["flag", "year", "student_key"]],
    ]
    kept = [sorted(execute(exact.bound(v, 3))["year"].astype(int)) for v in variants]
    assert all(k == kept[0] for k in kept) and len(kept[0]) == 4


@pytest.mark.parametrize("within", [(), ("bin",)])
def test_bound_keeps_the_first_rows_by_md5_then_text_with_ties_and_repeats(within: tuple[str, ...]) -> None:
    """The one-key sort (MD5 hex digits, then the text) keeps what ranking by (MD5, text) keeps, row for row."""
    rng = np.random.default_rng(7)
    n = 400
    rows = pd.DataFrame(
        {
            "student_key": rng.choice([f"K{i:03d}" for i in range(25)], n),
            "year": rng.choice([2015, 2016, 2017], n),
            "bin": rng.choice([0, 1], n),
            "code": rng.choice(["a", "a|b", "ab", None], n),  # a '|' inside a value, and NULLs
        }
    )
    rows = pd.concat([rows, rows.iloc[:40]], ignore_index=True)  # identical rows of one student
    rel = as_relation(rows)
    text = exact.canonical_text(rel)
    ranked = execute(rel.mutate(_text=text, _md5=text.hexdigest("md5")))
    expected = (
        ranked.sort_values(["_md5", "_text"], kind="stable")
        .groupby(["student_key", *within], dropna=False)
        .head(3)
        .drop(columns=["_text", "_md5"])
    )
    kept = execute(exact.bound(rows, 3, within=within))
    assert len(kept) < len(rows)

    def rows_of(df: pd.DataFrame) -> list[tuple[object, ...]]:
        return sorted(tuple("NULL" if pd.isna(v) else v for v in r) for r in df[list(rows.columns)].to_numpy())

    assert rows_of(kept) == rows_of(expected)


def test_bound_by_identity_hashes_only_those_columns_and_ignores_other_students() -> None:
    rows = pd.DataFrame(
        {
            "student_key": ["a"] * 6 + ["b"] * 2,
            "school_year": [2015, 2016, 2017, 2015, 2016, 2017, 2015, 2016],
            "subject": ["ela"] * 3 + ["math"] * 3 + ["ela", "math"],
            "score": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    ident = ("school_year", "subject")
    kept = execute(exact.bound(rows, 2, identity=ident))
    mine = kept[kept["student_key"] == "a"][["school_year", "subject"]]
    # the same rows whatever the other columns hold, and whoever else is in the data
    other = execute(exact.bound(rows.assign(score=rows["score"] * -3).iloc[:6], 2, identity=ident))
    assert sorted(map(tuple, mine.to_numpy())) == sorted(map(tuple, other[["school_year", "subject"]].to_numpy()))
    assert (kept.groupby("student_key").size() <= 2).all() and len(kept) == 4
    # the rank is the MD5 of the identity's canonical text, as bound() documents
    rel = as_relation(rows)
    hashed = rel.mutate(h=exact.canonical_text(rel, ident).hexdigest("md5"))
    first = execute(hashed.filter(hashed["student_key"] == "a").order_by("h")).head(2)
    assert sorted(map(tuple, first[["school_year", "subject"]].to_numpy())) == sorted(map(tuple, mine.to_numpy()))
    with pytest.raises(ValueError, match="identity"):
        exact.bound(rows, 2, identity=("term",))
