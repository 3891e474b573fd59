"""Exact aggregates, computed inside the engine: contribution bounding and histograms over public domains.

This is the first seam of every noisy table (exact aggregates -> mechanism ->
post-processing -> release). Each function takes a relation of per-student rows
(an Ibis table on the configured engine, or a pandas frame for small inputs),
bounds every student's contribution inside the engine, aggregates there, and
returns only the aggregated cells as pandas, laid over the full public domain so
empty cells are present (with 0) and keys outside the public lists are dropped.

Contribution bounding (:func:`bound`) keeps at most ``max_rows`` rows per
student, chosen by a fixed hash order of the row's own content (MD5 of a
canonical text of its values), so whether a row survives depends only on that
student's rows: adding or removing another student never changes it
(neighbour-stable), and DuckDB and Spark keep the same rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from analytics.engine import as_relation, execute

Domains = Mapping[str, Sequence[object]]
_log: contextvars.ContextVar[list[pd.DataFrame] | None] = contextvars.ContextVar("exact_log", default=None)
#: Numbers enter the bounding hash in fixed point to this many decimals, so engines and dtypes agree.
_FLOAT_DIGITS = 6


@contextlib.contextmanager
def recording() -> Iterator[list[pd.DataFrame]]:
    """Collect every exact aggregate computed inside the block, in order (for engine parity checks).

    The frames are exact (no noise): use only in tests and benchmarks, never publish them.
    """
    log: list[pd.DataFrame] = []
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)


def aggregate(expr: ir.Table) -> pd.DataFrame:
    """Run an aggregating relation on its engine and return the (small) result as pandas."""
    out = execute(expr)
    log = _log.get()
    if log is not None:
        log.append(out.copy())
    return out


def _text(value: ir.Value) -> ir.StringValue:
    """One text per value, the same on every engine and dtype: numbers and booleans as fixed-point digits.

    Each value is written with its length in front (``5:x|y|z``), and NULL as ``-``, so the
    text is read back unambiguously; numbers become the integer round(x * 10**6), so values
    that agree to 6 decimals (and -0.0 and 0.0) give the same text and rank as interchangeable.
    """
    dtype = value.type()
    if dtype.is_boolean():
        value = value.cast("int8")
    if dtype.is_boolean() or dtype.is_numeric():  # 2015, 2015.0 and an int32 2015 give one text
        text = (value.cast("float64") * 10**_FLOAT_DIGITS).round().cast("int64").cast("string")
    else:
        text = value.cast("string")
    return (text.length().cast("string") + ":" + text).fill_null("-")


def canonical_text(rows: ir.Table, columns: Sequence[str] | None = None) -> ir.StringValue:
    """The row's values as one text, columns in name order, separated by ``|``."""
    names = sorted(columns if columns is not None else rows.columns)
    return ibis.literal("|").join([_text(rows[c]) for c in names])


def bound(
    rows: pd.DataFrame | ir.Table,
    max_rows: int,
    key: str = "student_key",
    identity: Sequence[str] | None = None,
    within: Sequence[str] = (),
) -> ir.Table:
    """Keep at most ``max_rows`` rows per ``key`` (per ``key`` and value of the ``within`` columns; a lazy relation).

    Rows are ranked within each student by the MD5 of their canonical text (an MD5 tie
    between different texts by the text itself; rows with the same text are interchangeable)
    and the first ``max_rows`` are kept. With ``identity`` (columns that tell a student's rows
    apart, such as a table's key without the student) only those columns are hashed: a rule of
    the same kind (a fixed hash order of the student's own values) at a fraction of the cost,
    though it keeps other rows than hashing the whole row would. Whether they do tell them
    apart is checked (once per underlying relation); if any student has two rows alike in the
    identity, every row's sort key gets the whole row's text appended. That only orders rows
    whose identity texts are equal (the 32 hex digits and the identity text come first), so a
    student whose identities differ keeps the same rows whoever else is in the data. When
    no student has more than ``max_rows`` rows (one cheap aggregate finds out) the
    relation is returned as it is: the ranking would keep every row anyway, so the
    result is the same and the hashing and sorting are saved.
    With ``within`` (e.g. a histogram's bin columns) the bound applies to each student's rows
    alike in those columns, ranked by the same rule.
    Raises ValueError when ``max_rows`` < 1, ``key`` (or an ``identity`` or ``within`` column) is not
    a column, ``identity`` is empty, or the rows hold a column named as one :func:`bound` adds
    (``_rank_text``, ``_rank_tie``), which would be overwritten.

    >>> df = pd.DataFrame({"student_key": ["a", "a", "a", "b"], "v": [1, 2, 3, 4]})
    >>> len(execute(bound(df, max_rows=2)))
    3
    >>> len(execute(bound(df.assign(bin=[0, 0, 1, 0]), max_rows=1, within=["bin"])))
    3
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    t = as_relation(rows)
    if key not in t.columns:
        raise ValueError(f"rows lack the column {key!r} that identifies a student")
    within = list(within)
    if any(c not in t.columns for c in within):
        raise ValueError(f"rows lack the column(s) {[c for c in within if c not in t.columns]!r} to bound within")
    if identity is not None:
        identity = list(identity)
        missing = [c for c in identity if c not in t.columns]
        if missing or not identity:
            raise ValueError(f"rows lack the identity column(s) {missing!r}" if missing else "identity is empty")
    if any(c in t.columns for c in _RANK_COLUMNS):
        raise ValueError(f"rows may not hold a column named {' or '.join(map(repr, _RANK_COLUMNS))} (bound uses them)")
    t = t.filter(t[key].notnull())  # a row with no student is no one's: never counted
    if _most_rows_upstream(t, key, within) <= max_rows:
        return t
    # The text is computed once, and the sort has one key: the MD5's 32 hex digits followed by the
    # text orders rows exactly as (MD5, text) does, at under half the cost of sorting on two keys.
    texts = {"_rank_text": canonical_text(t, identity)}
    if identity is not None and _most_rows_upstream(t, key, identity) > 1:
        # Some student has two rows alike in the identity: the whole row breaks such ties. It is appended
        # after the identity's text, so it never reorders rows whose identities differ, and the rows a
        # student with distinct identities keeps do not depend on whether such a student is present.
        texts["_rank_tie"] = canonical_text(t)
    t = t.mutate(**texts)
    rank_key = t["_rank_text"].hexdigest("md5") + t["_rank_text"]
    if "_rank_tie" in texts:
        rank_key = rank_key + t["_rank_tie"]
    order = ibis.window(group_by=[t[key], *(t[c] for c in within)], order_by=[rank_key])
    # Filtering on the window itself (QUALIFY where the engine has it) lets DuckDB keep the first
    # rows of each student without sorting all of them.
    return t.filter(ibis.row_number().over(order) < max_rows).drop(*texts)  # Ibis numbers rows from 0


#: Columns :func:`bound` adds while ranking (and drops again).
_RANK_COLUMNS = ("_rank_text", "_rank_tie")


def most_rows_per_student(rows: pd.DataFrame | ir.Table, key: str = "student_key", within: Sequence[str] = ()) -> int:
    """The largest number of rows any one student has in ``rows`` (0 when empty). Never published.

    With ``within``: the largest number a student has with the same values of those columns.
    """
    t = as_relation(rows)
    per = t.group_by([key, *within]).aggregate(_n=t.count())
    got = execute(per.aggregate(most=per["_n"].max()))
    value = got["most"].iloc[0] if len(got) else None
    return 0 if value is None or pd.isna(value) else int(value)


_most_rows_memo: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], int]] = weakref.WeakKeyDictionary()


def _most_rows_upstream(rows: ir.Table, key: str, within: Sequence[str] = ()) -> int:
    """An upper bound on the rows any student has in ``rows`` (alike in ``within``), found once per relation.

    Projections keep a relation's rows and filters drop some, so the most rows per student of the
    relation they start from bounds theirs: the check runs once on that relation (the release's
    materialised cohort, tests, pairs...) however many tables select from it. Only a relation
    whose rows cannot change under the same name is remembered: a table the engine materialised
    (:meth:`analytics.engine.Engine.cache`, uniquely named) or an in-memory table. Ibis compares
    operations by structure, not by data (two DuckDB connections' SQL over different extracts are
    equal), so anything else is counted afresh every time.
    """
    columns = (key, *within)
    op = rows.op()
    while isinstance(op, ops.Filter) or (isinstance(op, ops.Project) and _passes_through(op, columns)):
        op = op.parent
    entry = _labelled.get(op)
    if entry is not None and entry[0]() is op:
        _ref, base, label, copies = entry
        rest = tuple(c for c in within if c != label)
        if all(c in base.columns for c in (key, *rest)):
            most = _most_rows_upstream(base, key, rest)
            return most if label in within else most * copies
    root = op.to_expr()
    if any(c not in root.columns for c in columns) or not _immutable(op):
        return most_rows_per_student(rows, key, within)
    memo = _most_rows_memo.setdefault(op, {})
    if columns not in memo:
        memo[columns] = most_rows_per_student(root, key, within)
    return memo[columns]


#: Relations made of labelled copies of another (:func:`labelled_copies`): op -> (the op itself, base, label
#: column, copies). Ibis operations compare by structure, so the same expansion on another extract finds this
#: entry too: it is used only for the very object it was recorded for.
_labelled: weakref.WeakKeyDictionary[Any, tuple[weakref.ref[Any], ir.Table, str, int]] = weakref.WeakKeyDictionary()


def labelled_copies(union: ir.Table, base: ir.Table, label: str, copies: int) -> ir.Table:
    """Record that ``union`` is ``copies`` copies of every row of ``base``, each with a ``label`` no other copy shares.

    The caller vouches for that structure (e.g. :func:`analytics.metrics.subgroups.expand_subgroups`:
    one copy per subgroup family, labels prefixed by the family). Then a student's rows in
    ``union`` alike in ``label`` and other columns are at most their rows in ``base`` alike in
    those other columns, and their rows in all are ``copies`` times those in ``base``: the check
    of :func:`bound` reads both off ``base``, where it is remembered, instead of counting the
    copies. Returns ``union``.
    """
    if label not in union.columns or copies < 1:
        raise ValueError("labelled_copies: the label must be a column of the copies and copies at least 1")
    op = union.op()
    _labelled[op] = (weakref.ref(op), base, label, int(copies))
    return union


#: Name prefix of the tables Ibis materialises for ``cache`` (unique, never rewritten).
_CACHED_PREFIX = "ibis_cached_"


def _immutable(op: Any) -> bool:
    """Whether ``op`` names rows that stay the same for as long as the operation lives."""
    if isinstance(op, ops.InMemoryTable):
        return True
    return isinstance(op, ops.DatabaseTable) and str(op.name).startswith(_CACHED_PREFIX)


def _passes_through(project: ops.Project, columns: Sequence[str]) -> bool:
    """Whether ``project`` selects each of ``columns`` unchanged from its parent (not renamed or computed)
    and keeps its parent's rows one for one (no ``unnest`` among its values, which would repeat them)."""
    if any(value.find(ops.Unnest) for value in project.values.values()):
        return False
    for c in columns:
        value = project.values.get(c)
        if not (isinstance(value, ops.Field) and value.name == c and value.rel == project.parent):
            return False
    return True


def full_domain(domains: Domains) -> pd.DataFrame:
    """All combinations of the public group keys, in a fixed order.

    >>> full_domain({"a": [1, 2], "b": ["x"]}).values.tolist()
    [[1, 'x'], [2, 'x']]
    """
    index = pd.MultiIndex.from_product([list(v) for v in domains.values()], names=list(domains))
    return index.to_frame(index=False)


def on_domain(counted: pd.DataFrame, domains: Domains, columns: Sequence[str]) -> pd.DataFrame:
    """Lay aggregated ``columns`` of ``counted`` over the full domain: missing cells get 0, others are dropped."""
    cells = full_domain(domains)
    keys = list(domains)
    if counted.empty:
        return cells.assign(**{c: 0 for c in columns})
    got = counted[[*keys, *columns]].copy()
    for k in keys:  # the engine's key types (int32, bool, str) aligned to the public list's
        got[k] = _aligned(got[k], cells[k])
    if got.duplicated(keys).any():
        raise ValueError(f"two engine keys fell on one public cell of {', '.join(keys)}: the key types do not match")
    out = cells.merge(got, on=keys, how="left")
    for c in columns:
        out[c] = out[c].fillna(0)
    return out


def _aligned(values: pd.Series, like: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(like):
        return values.astype("boolean").astype(object)
    if pd.api.types.is_integer_dtype(like):
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    if pd.api.types.is_float_dtype(like):
        return pd.to_numeric(values, errors="coerce")
    return values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))


#: Above this many values a public list is joined as a table rather than written out as ``IN (...)``:
#: Ibis compiles an IN list of 700 school ids in about 45 ms, a semi-join with the list in 3 ms.
_INLINE_VALUES = 16


def _in_domain(kept: ir.Table, domains: Domains) -> ir.Table:
    """Drop rows whose keys are not in the public lists, inside the engine (after bounding)."""
    for column, values in domains.items():
        if kept[column].type().is_boolean():  # a boolean's domain is all of it (and Ibis 12 mis-parenthesises
            continue  # IN after an inlined comparison)
        listed = list(dict.fromkeys(values))
        if len(listed) <= _INLINE_VALUES:
            kept = kept.filter(kept[column].isin(listed))
        else:
            table = ibis.memtable(pa.table({column: pa.array(listed)}))  # one type (pyarrow refuses a mix)
            # a listed value the column's type cannot hold exactly (2015.5 for a year, a time of day
            # for a date) matches nothing, as with IN; the rest are compared in the column's type
            cast = table.mutate(_as_column=table[column].try_cast(kept[column].type()))
            exact_values = cast.filter(cast["_as_column"].cast(table[column].type()) == cast[column])
            allowed = exact_values.select(exact_values["_as_column"].name(column))
            kept = kept.semi_join(allowed, column)  # NULL keys match nothing, as with IN
    return kept


def counts(
    rows: pd.DataFrame | ir.Table,
    keys: Sequence[str],
    max_rows: int,
    key: str = "student_key",
    domains: Domains | None = None,
) -> pd.DataFrame:
    """Rows per combination of ``keys`` after bounding each student to ``max_rows`` rows (present cells only).

    With ``domains``, rows whose keys are not in the public lists are dropped inside the engine.
    Result: the key columns and ``n`` (int64). Use :func:`on_domain` to lay it over a public domain.
    """
    t = as_relation(rows).select(key, *keys)
    kept = bound(t, max_rows, key)
    kept = _in_domain(kept, domains or {})
    out = aggregate(kept.group_by(list(keys)).aggregate(n=kept.count()))
    out["n"] = out["n"].astype("int64")
    return out


def histogram(
    rows: pd.DataFrame | ir.Table,
    domains: Domains,
    category: str,
    categories: Sequence[object],
    max_rows: int,
    key: str = "student_key",
    max_per_bin: int | None = None,
) -> pd.DataFrame:
    """Students per (cell, category), each student bounded to ``max_rows`` rows across all cells.

    A student also keeps at most ``max_per_bin`` (default ``max_rows``) rows in any one cell,
    all categories together, hence in any one (cell, category) bin (ranked by the rule of
    :func:`bound`; a rate per year counts a student once, a rate pooled over years counts each
    year's test). Bounding per cell rather than per bin is as tight for the sensitivity, and
    the check that finds nothing to bound runs once per underlying relation (its cell columns
    pass through). So one student changes the counts by a vector of
    non-negative integers at most ``max_per_bin`` each and ``max_rows`` in all: L1 sensitivity
    ``max_rows``, L2 sensitivity :func:`histogram_l2_sensitivity` (what
    :meth:`analytics.privacy.CountNoise.for_histogram` relies on).
    Result: one row per (cell, category) of the public domain, in
    :func:`full_domain` order (categories fastest), with ``n`` (int64).
    Raises ValueError when ``max_per_bin`` is not between 1 and ``max_rows``.
    """
    max_per_bin = max_rows if max_per_bin is None else max_per_bin
    if not 1 <= max_per_bin <= max_rows:
        raise ValueError(f"max_per_bin must be between 1 and max_rows ({max_rows}), got {max_per_bin}")
    full = {**domains, category: list(categories)}
    keys = list(full)
    t = as_relation(rows).select(key, *keys)
    if max_per_bin < max_rows:
        t = bound(t, max_per_bin, key, within=list(domains))
    kept = _in_domain(bound(t, max_rows, key), full)
    out = aggregate(kept.group_by(keys).aggregate(n=kept.count()))
    out = on_domain(out, full, ["n"])
    out["n"] = out["n"].astype("int64")
    return out


def histogram_l2_sensitivity(max_rows: int, max_per_bin: int | None = None) -> float:
    """Largest L2 norm of one student's contribution to a :func:`histogram` (``max_per_bin`` a bin, ``max_rows`` all).

    The sum of squares of non-negative integers x_b <= c with sum <= k is largest when as many
    bins as possible hold c: floor(k / c) c^2 + (k mod c)^2, at most k c.

    >>> histogram_l2_sensitivity(18, 1), histogram_l2_sensitivity(18, 9), histogram_l2_sensitivity(5, 2)
    (4.242640687119285, 12.727922061357855, 3.0)
    """
    max_per_bin = max_rows if max_per_bin is None else max_per_bin
    if not 1 <= max_per_bin <= max_rows:
        raise ValueError(f"max_per_bin must be between 1 and max_rows ({max_rows}), got {max_per_bin}")
    full, rest = divmod(int(max_rows), int(max_per_bin))
    return math.sqrt(full * max_per_bin**2 + rest**2)


def clamped_sums(
    rows: pd.DataFrame | ir.Table,
    domains: Domains,
    value: str,
    lower: float,
    upper: float,
    max_rows: int,
    key: str = "student_key",
) -> pd.DataFrame:
    """Per cell: rows ``n`` and the sum ``s`` of ``value`` clamped to [lower, upper], after bounding.

    Result: the full domain with ``n`` (int64) and ``s`` (float).
    """
    t = as_relation(rows).select(key, *domains, value)
    kept = _in_domain(bound(t, max_rows, key), domains)
    clamped = kept[value].cast("float64").clip(lower=lower, upper=upper)
    agg = kept.group_by(list(domains)).aggregate(n=kept.count(), s=clamped.sum())
    out = on_domain(aggregate(agg), domains, ["n", "s"])
    return out.assign(n=out["n"].astype("int64"), s=out["s"].astype(float))


def bin_index(value: ir.NumericValue, edges: Sequence[float], n_bins: int) -> ir.IntegerValue:
    """Bin of ``value`` over ascending ``edges``, clamped into bins 0..n_bins-1 (as :meth:`privacy.Bins.assign`).

    The index is the number of interior edges ``edges[1:n_bins]`` at or below the value.
    """
    inner = [float(e) for e in edges[1:n_bins]]
    if not inner:
        return ibis.literal(0, type="int64")
    terms = [(value >= e).cast("int64").fill_null(0) for e in inner]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
