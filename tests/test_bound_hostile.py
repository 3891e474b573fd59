"""Differential checks of the one-key, QUALIFY-filtered :func:`analytics.exact.bound` (an attacker's, session 7).

The bound must keep, row for row, what the two-key definition keeps (ranked by ``row_number() over
(partition by key, within order by md5(text), text)`` in a ``_pos`` column, filtered afterwards; where an
identity does not tell a student's rows apart, the whole row's text breaks the tie), on hostile inputs: NULLs,
'|' and ':' inside values, non-ASCII and long texts, -0.0, booleans, identical rows, identities that do or do
not tell rows apart, ``within`` columns with NULLs, and bounds of 1 to many. DuckDB rewrites the new
filter into a per-group top-N (``top_n_window_elimination``: arg_min over the sort key, then a semi-join on
``rowid`` for base tables or a struct payload otherwise), which has had wrong-result bugs upstream (duplicate
payload rows collapsed, NULL order keys dropped): each case is run on an in-memory table, a DuckDB base table
(rowid path) and a relation made by a join (duplicate payloads, no rowid), with the rewrite on and off.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from analytics import exact
from analytics.engine import as_relation, duckdb_backend


def two_key_bound(
    rows: pd.DataFrame | Any,
    max_rows: int,
    key: str = "student_key",
    identity: Sequence[str] | None = None,
    within: Sequence[str] = (),
) -> Any:
    """The two-key definition (a ``_pos`` column, filtered afterwards; ties of a repeated identity by the whole row)."""
    t = as_relation(rows)
    within = list(within)
    t = t.filter(t[key].notnull())
    if exact.most_rows_per_student(t, key, within) <= max_rows:
        return t
    text = exact.canonical_text(t, identity)
    keys = [text.hexdigest("md5"), text]
    if identity is not None and exact.most_rows_per_student(t, key, list(identity)) > 1:
        keys.append(exact.canonical_text(t))
    order = ibis.window(group_by=[t[key], *(t[c] for c in within)], order_by=keys)
    ranked = t.mutate(_pos=ibis.row_number().over(order))
    return ranked.filter(ranked["_pos"] < max_rows).drop("_pos")


def _norm(v: object) -> object:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ("NULL",)
    if isinstance(v, float) and v.is_integer():
        # an integer column with NULLs comes back as floats; and -0.0 as 0.0: DuckDB's top-N rewrite (struct
        # payload) returns a kept double -0.0 as 0.0, equal as a number (see the xfail test at the end)
        return ("i", int(v))
    if isinstance(v, float):
        return ("f", repr(v))  # -0.0 and 0.0 told apart
    if isinstance(v, (np.bool_, bool)):
        return ("b", bool(v))
    if isinstance(v, (np.integer, int)):
        return ("i", int(v))
    return ("s", str(v))


def _bag(be: Any, expr: Any, columns: Sequence[str]) -> Counter[tuple[object, ...]]:
    """The kept rows as a bag of exact values (-0.0 told from 0.0)."""
    df = be.to_pyarrow(expr).to_pandas()
    return Counter(tuple(_norm(v) for v in r) for r in df[list(columns)].astype(object).itertuples(index=False))


def _text_bag(be: Any, expr: Any) -> Counter[str]:
    """The kept rows as a bag of their canonical texts: rows the ranking cannot tell apart count as one kind."""
    df = be.to_pyarrow(expr.select(_t=exact.canonical_text(expr))).to_pandas()
    return Counter(df["_t"])


TEXTS = ["a", "a|b", "a:b", "1:a", "1:a|1:b", "é", "ß", "😀", "-", "", "x" * 300, None, "A", "a ", "\t"]


def _hostile(seed: int, students: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(students):
        n = int(rng.choice([1, 2, 3, 7, 40]))
        sk: object = None if i == students - 1 else f"K{i:02d}"  # rows of no one
        base = {
            "student_key": sk,
            "code": TEXTS[int(rng.integers(len(TEXTS)))],
            "score": float(rng.choice([0.0, -0.0, 1.5, -2.25, 1e6, 0.1234564])),
            "flag": bool(rng.random() < 0.5),
            "year": int(rng.choice([2015, 2016])),
            "bin": None if rng.random() < 0.2 else int(rng.integers(0, 3)),
        }
        for _ in range(n):
            r = dict(base)
            if rng.random() < 0.6:  # else an identical row of the same student
                r["code"] = TEXTS[int(rng.integers(len(TEXTS)))]
                r["score"] = float(rng.choice([0.0, -0.0, 1.5, -2.25, 1e6, 0.1234564]))
                r["flag"] = bool(rng.random() < 0.5)
                r["year"] = int(rng.choice([2015, 2016]))
                r["bin"] = None if rng.random() < 0.2 else int(rng.integers(0, 3))
            recs.append(r)
    df = pd.DataFrame(recs)
    df["bin"] = df["bin"].astype("Int64")
    return df


def _relations(be: Any, df: pd.DataFrame, name: str) -> dict[str, Any]:
    """The same rows as an in-memory table, a base table, and a join that repeats payloads (no rowid)."""
    be.con.register(f"{name}_df", df)
    be.con.execute(f"create or replace table {name} as select * from {name}_df")
    be.con.execute(f"create or replace table {name}_one as select 1 as j")
    joined = be.sql(f"select d.* from {name} d join {name}_one o on o.j = 1")
    return {"memtable": as_relation(df), "table": be.table(name), "join": joined}


CASES = [
    (mr, ident, within)
    for mr in (1, 2, 5, 50)
    for ident in (None, ("code",), ("code", "score", "flag", "year", "bin"))
    for within in ((), ("bin",), ("bin", "flag"))
]


FAST_CASES = [(mr, ident, within) for mr in (1, 5) for ident in (None, ("code",)) for within in ((), ("bin",))]


@pytest.mark.parametrize(
    ("seed", "cases"),
    [(0, FAST_CASES), *(pytest.param(s, CASES, marks=pytest.mark.slow) for s in range(6))],
)
def test_bound_keeps_the_two_key_definitions_rows_on_hostile_inputs(seed: int, cases: list[Any]) -> None:
    """Bags of canonical texts: rows the ranking cannot tell apart (-0.0 and 0.0 alike) count as one kind."""
    df = _hostile(seed)
    be = duckdb_backend()
    for kind, rel in _relations(be, df, f"h{seed}").items():
        for mr, ident, within in cases:
            ident_l = list(ident) if ident else None
            be.con.execute("SET disabled_optimizers = ''")
            new = _text_bag(be, exact.bound(rel, mr, identity=ident_l, within=within))
            old = _text_bag(be, two_key_bound(rel, mr, identity=ident_l, within=within))
            be.con.execute("SET disabled_optimizers = 'top_n_window_elimination'")
            new_plain = _text_bag(be, exact.bound(rel, mr, identity=ident_l, within=within))
            be.con.execute("SET disabled_optimizers = ''")
            where = f"{kind} max_rows={mr} identity={ident} within={within}"
            assert new == old, where
            assert new_plain == new, where


def _worlds(df: pd.DataFrame, victim: str, seed: int) -> dict[str, pd.DataFrame]:
    """The victim alone, and with hostile neighbours: a student with 400 rows in one bin, a clone of the victim."""
    rng = np.random.default_rng(100 + seed)
    heavy = pd.DataFrame(
        {
            "student_key": ["KHEAVY"] * 400,
            "code": [TEXTS[int(i)] for i in rng.integers(len(TEXTS), size=400)],
            "score": 1.5,
            "flag": True,
            "year": 2015,
            "bin": pd.array([1] * 400, dtype="Int64"),
        }
    )
    clone = df[df.student_key == victim].assign(student_key="KCLONE")
    others = [s for s in df["student_key"].dropna().unique() if s != victim]
    return {
        "alone": df[df.student_key == victim],
        "all": df,
        "plus heavy": pd.concat([df, heavy], ignore_index=True),
        "plus heavy, clone, shuffled": pd.concat([heavy, clone, df], ignore_index=True).sample(
            frac=1, random_state=seed
        ),
        "minus one": df[df.student_key != others[0]],
    }


def _kept_by_world(worlds: dict[str, pd.DataFrame], victim: str, seed: int, mr: int, ident: Any, within: Any) -> dict:
    be = duckdb_backend()
    kept = {}
    for name, world in worlds.items():
        for kind, rel in _relations(be, world.reset_index(drop=True), f"w{seed}").items():
            out = exact.bound(rel, mr, identity=ident, within=within)
            kept[f"{name} ({kind})"] = _bag(be, out.filter(out.student_key == victim), list(world.columns))
    return kept


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in (1, 2))])
def test_a_students_kept_rows_do_not_depend_on_other_students(seed: int) -> None:
    """Neighbour stability with hostile neighbours, ranking by the whole row or by an identity that some
    students (the victim among them, in some seeds) repeat."""
    df = _hostile(seed, students=10)
    victim = str(df["student_key"].dropna().iloc[0])
    worlds = _worlds(df, victim, seed)
    for ident in (None, ["code"]):
        for mr in (1, 2, 5, 50):
            for within in ((), ("bin",), ("bin", "flag")):
                kept = _kept_by_world(worlds, victim, seed, mr, ident, within)
                first = next(iter(kept.values()))
                for name, k in kept.items():
                    assert k == first, (name, ident, mr, within, k - first, first - k)


def test_with_an_identity_that_tells_each_students_rows_apart_kept_rows_do_not_depend_on_other_students() -> None:
    """Where every student's rows differ in the identity (what validation's key guarantees), the victim keeps
    the same rows whoever else is there (the neighbours here respect the identity too)."""
    df = _hostile(3, students=10).drop_duplicates(["student_key", "code"])
    victim = str(df["student_key"].dropna().iloc[0])
    worlds = {k: w.drop_duplicates(["student_key", "code"]) for k, w in _worlds(df, victim, 3).items()}
    for mr in (1, 2, 5):
        kept = _kept_by_world(worlds, victim, 3, mr, ["code"], ())
        first = next(iter(kept.values()))
        assert all(k == first for k in kept.values()), mr


def test_one_neighbour_whose_identity_repeats_does_not_change_the_rows_other_students_keep() -> None:
    """A student with two rows alike in the identity is ranked with the whole row as the tie-break, after the
    identity's own order: adding them must not change which rows any other student keeps (until session 7 the
    fallback ranked everyone by the whole row as soon as one such student was present)."""
    victim = pd.DataFrame({"student_key": ["V"] * 7, "code": list("abcdefg"), "score": [float(i) for i in range(7)]})
    hostile = pd.DataFrame({"student_key": ["H", "H"], "code": ["a", "a"], "score": [1.0, 2.0]})
    be = duckdb_backend()
    kept = []
    for world in (victim, pd.concat([victim, hostile], ignore_index=True)):
        out = exact.bound(as_relation(world), 1, identity=["code"])
        kept.append(_bag(be, out.filter(out.student_key == "V"), list(world.columns)))
    assert kept[0] == kept[1]


@pytest.mark.parametrize(("k", "c"), [(1, 1), (3, 1), (6, 2), (18, 9)])
def test_histogram_neighbours_stay_within_l1_and_l2_on_engine_relations(k: int, c: int) -> None:
    """The L1/L2 neighbour fuzz of tests/test_count_noise.py, on DuckDB relations the top-N rewrite treats
    differently (a base table: rowid semi-join; a join: struct payload) and with hostile neighbours."""
    from tests.test_count_noise import DOMAINS, _hostile_rows

    rows = _hostile_rows(seed=k * 10 + c, students=25)
    rows = pd.concat([rows, rows[rows.student_key == "K0003"]], ignore_index=True)  # a student's rows twice
    be = duckdb_backend()
    l2 = exact.histogram_l2_sensitivity(k, c)

    def hist(df: pd.DataFrame, kind: str) -> np.ndarray:
        rel = _relations(be, df.reset_index(drop=True), "hist")[kind]
        return exact.histogram(rel, DOMAINS, "ok", [True, False], k, max_per_bin=c)["n"].to_numpy()

    for kind in ("table", "join"):
        full = hist(rows, kind)
        for victim in rows["student_key"].unique()[::3]:
            diff = full - hist(rows[rows.student_key != victim], kind)
            assert (diff >= 0).all() and diff.sum() <= k and diff.max() <= c, (kind, victim)
            assert math.sqrt(float((diff**2).sum())) <= l2 + 1e-9, (kind, victim)


@pytest.mark.xfail(strict=True, reason="DuckDB 2.0.1's top-N rewrite returns a kept double -0.0 as 0.0")
def test_bound_returns_the_kept_values_bit_for_bit() -> None:
    """Fails on DuckDB 2.0.1 (harmless: -0.0 == 0.0 in every count, bin and sum). Where the relation has no rowid
    (an in-memory table, a join), DuckDB's top_n_window_elimination carries the kept rows through
    ``arg_min(struct_pack(...), key, n)`` (two or more payload columns), which turns a double -0.0 into 0.0;
    the old ROW_NUMBER filter, or the rewrite switched off, keeps -0.0."""
    df = pd.DataFrame(
        {"student_key": ["A"] * 3 + ["B"] * 5, "score": [-0.0, 1.0, 2.0] + [-0.0] * 5, "c": list("abcdefgh")}
    )
    be = duckdb_backend()
    kept = be.to_pyarrow(exact.bound(as_relation(df), 4)).to_pandas()
    assert sorted(repr(v) for v in kept.loc[kept.student_key == "A", "score"]) == ["-0.0", "1.0", "2.0"]


def test_a_column_named_as_a_ranking_column_is_refused_not_overwritten() -> None:
    rows = pd.DataFrame({"student_key": ["a", "a", "a"], "_rank_text": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="_rank_text"):
        exact.bound(rows, 1)
