"""The privacy-budget ledger: every epsilon ever spent, append-only and hash-chained.

Each published number costs privacy. This module is the one place that decides whether
a question may be answered, records what it cost, and keeps the answer so the same
question is never answered twice with fresh noise (averaging repeated noisy answers
would wash the noise out).

The ledger is a SQLite file (``ledger.sqlite3`` in :func:`analytics.config.analytics_home`
by default) with two tables:

``entries``
    One row per event, in id order: ``kind`` is ``'budget'`` (a budget was set) or
    ``'spend'`` (an answer was computed). Columns: ``id``, ``kind``, ``created_at``
    (UTC ISO 8601), ``principal`` (who spent, or who set the budget), ``scope``,
    ``dataset_fingerprint``, ``query_json`` (canonical JSON: sorted keys, no
    whitespace), ``query_key`` (sha256 of ``query_json``), ``epsilon``, ``delta``
    (both 0 for budget rows), ``epsilon_total`` (budget rows only), ``answer_sha256``
    (spend rows only), ``prev_hash`` and ``entry_hash``, where
    ``entry_hash = sha256(prev_hash + canonical JSON of the other columns)`` and the
    first entry's ``prev_hash`` is 64 zeros.
``answers``
    One row per (``dataset_fingerprint``, ``query_key``): the serialized noisy answer,
    its sha256 and the id of the spend entry that produced it.

Both tables are append-only (SQLite triggers refuse UPDATE and DELETE); the hash chain
makes a change made behind the ledger's back visible to :meth:`Ledger.verify`. Only
query descriptions and aggregate answers are stored, never student-level data.

Example:
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3")
    >>> fp = "3f2a" * 16
    >>> _ = ledger.set_budget("public", fp, 1.0, set_by="data-steward")
    >>> result = ledger.spend_or_reuse(
    ...     principal="release-builder", scope="public", dataset_fingerprint=fp,
    ...     query={"table": "acgr", "by": ["district", "cohort"]}, epsilon=0.25,
    ...     compute=lambda: b'{"cells": []}')
    >>> result.reused, result.epsilon_charged, ledger.remaining("public", fp)
    (False, 0.25, 0.75)
    >>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.config import analytics_home

__all__ = [
    "BUDGET_TOLERANCE",
    "GENESIS_HASH",
    "LEDGER_FILENAME",
    "BudgetExceededError",
    "ChainHead",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerTamperedError",
    "PrivacyLoss",
    "SpendResult",
    "normalize_query",
    "query_key",
]

#: File name of the ledger inside ``analytics_home()``.
LEDGER_FILENAME = "ledger.sqlite3"
#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
#: Slack allowed when comparing ``spent + epsilon`` with a budget (floating-point sums).
BUDGET_TOLERANCE = 1e-12

_SCHEMA_VERSION = 1
_SCOPE_RE = re.compile(r"public|researcher:\S+")
_HEX_RE = re.compile(r"[0-9a-f]+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT NOT NULL CHECK (kind IN ('budget', 'spend')),
    created_at          TEXT NOT NULL,
    principal           TEXT NOT NULL,
    scope               TEXT NOT NULL,
    dataset_fingerprint TEXT NOT NULL,
    query_json          TEXT,
    query_key           TEXT,
    epsilon             REAL NOT NULL,
    delta               REAL NOT NULL,
    epsilon_total       REAL,
    answer_sha256       TEXT,
    prev_hash           TEXT NOT NULL,
    entry_hash          TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS entries_by_dataset_scope ON entries (dataset_fingerprint, scope, kind);
CREATE TABLE IF NOT EXISTS answers (
    dataset_fingerprint TEXT NOT NULL,
    query_key           TEXT NOT NULL,
    answer              BLOB NOT NULL,
    answer_sha256       TEXT NOT NULL,
    entry_id            INTEGER NOT NULL UNIQUE REFERENCES entries (id),
    PRIMARY KEY (dataset_fingerprint, query_key)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: entries cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: entries cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS answers_no_update BEFORE UPDATE ON answers
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: answers cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS answers_no_delete BEFORE DELETE ON answers
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: answers cannot be deleted'); END;
"""

_ENTRY_COLUMNS = (
    "id, kind, created_at, principal, scope, dataset_fingerprint, query_json, query_key, "
    "epsilon, delta, epsilon_total, answer_sha256, prev_hash, entry_hash"
)


# --------------------------------------------------------------------------- errors


class LedgerError(Exception):
    """Base class of the ledger's errors."""


class BudgetExceededError(LedgerError):
    """A spend was refused because the scope's budget cannot cover it; nothing was spent.

    Attributes:
        principal: Who asked.
        scope: The budget scope asked against.
        dataset_fingerprint: The dataset asked about.
        epsilon_requested: The epsilon the query needed.
        epsilon_remaining: What was left of the budget (0 when there is no budget).
        epsilon_total: The budget in force, or ``None`` when none was ever set.
    """

    def __init__(
        self,
        *,
        principal: str,
        scope: str,
        dataset_fingerprint: str,
        epsilon_requested: float,
        epsilon_remaining: float,
        epsilon_total: float | None,
    ) -> None:
        self.principal = principal
        self.scope = scope
        self.dataset_fingerprint = dataset_fingerprint
        self.epsilon_requested = epsilon_requested
        self.epsilon_remaining = epsilon_remaining
        self.epsilon_total = epsilon_total
        asked = (
            f"{principal!r} asked for epsilon={_fmt(epsilon_requested)} under scope {scope!r} "
            f"on dataset {dataset_fingerprint[:12]}"
        )
        if epsilon_total is None:
            why = "but no budget has been set for that scope on that dataset (0 of 0 remaining)"
        else:
            why = f"but only epsilon={_fmt(epsilon_remaining)} of {_fmt(epsilon_total)} remains in that budget"
        super().__init__(f"Refused: {asked}, {why}; nothing was spent.")


class LedgerTamperedError(LedgerError):
    """The ledger file was changed behind the ledger's back.

    Attributes:
        entry_id: The first entry id at which the chain breaks (for deleted entries, the
            first missing id), or ``None`` when the problem is not tied to one entry.
        problem: What is wrong, in a sentence.
    """

    def __init__(self, entry_id: int | None, problem: str) -> None:
        self.entry_id = entry_id
        self.problem = problem
        where = f"entry {entry_id}" if entry_id is not None else "the ledger"
        super().__init__(f"Privacy ledger tampered at {where}: {problem}")


# ------------------------------------------------------------------------ dataclasses


@dataclass(frozen=True)
class SpendResult:
    """What :meth:`Ledger.spend_or_reuse` hands back.

    Attributes:
        answer: The serialized noisy answer, byte for byte as ``compute()`` produced it.
        reused: ``True`` when the answer was already stored and nothing was spent.
        entry_id: Id of the spend entry that produced (and paid for) the answer.
        epsilon_charged: Epsilon charged by this call (``0.0`` when reused).
    """

    answer: bytes
    reused: bool
    entry_id: int
    epsilon_charged: float


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger, as stored.

    Attributes:
        entry_id: Position in the chain (1, 2, 3, ... with no gaps).
        kind: ``'spend'`` or ``'budget'``.
        created_at: UTC time, ISO 8601.
        principal: Who spent (spend) or who set the budget (budget).
        scope: ``'public'`` or ``'researcher:<name>'``.
        dataset_fingerprint: Hex fingerprint of the dataset the entry is about.
        query_json: Canonical JSON of the query (spend), else ``None``.
        query_key: sha256 hex of ``query_json`` (spend), else ``None``.
        epsilon: Epsilon spent (0 for budget entries).
        delta: Delta spent (0 for budget entries).
        epsilon_total: The budget set (budget entries), else ``None``.
        answer_sha256: sha256 hex of the stored answer (spend), else ``None``.
        prev_hash: ``entry_hash`` of the previous entry (64 zeros for the first).
        entry_hash: sha256 of ``prev_hash`` + canonical JSON of the fields above.
    """

    entry_id: int
    kind: str
    created_at: str
    principal: str
    scope: str
    dataset_fingerprint: str
    query_json: str | None
    query_key: str | None
    epsilon: float
    delta: float
    epsilon_total: float | None
    answer_sha256: str | None
    prev_hash: str
    entry_hash: str

    @property
    def query(self) -> dict[str, Any] | None:
        """The query as a dict (spend entries), else ``None``."""
        return None if self.query_json is None else json.loads(self.query_json)

    def hashed_fields(self) -> dict[str, Any]:
        """The fields covered by ``entry_hash`` (everything but the two hashes)."""
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "created_at": self.created_at,
            "principal": self.principal,
            "scope": self.scope,
            "dataset_fingerprint": self.dataset_fingerprint,
            "query_json": self.query_json,
            "query_key": self.query_key,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "epsilon_total": self.epsilon_total,
            "answer_sha256": self.answer_sha256,
        }

    def computed_hash(self) -> str:
        """Recompute ``entry_hash`` from ``prev_hash`` and the stored fields."""
        payload = self.prev_hash + _canonical_json(self.hashed_fields())
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PrivacyLoss:
    """Cumulative privacy loss under sequential composition.

    Attributes:
        epsilon: Sum of the epsilons spent.
        delta: Sum of the deltas spent.
    """

    epsilon: float
    delta: float


@dataclass(frozen=True)
class ChainHead:
    """Result of a successful :meth:`Ledger.verify`.

    Attributes:
        n_entries: Number of entries verified.
        head_hash: ``entry_hash`` of the last entry (64 zeros for an empty ledger);
            publishing it alongside a release anchors the chain outside this file.
    """

    n_entries: int
    head_hash: str


# -------------------------------------------------------------------------- helpers


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def normalize_query(query: Mapping[str, Any]) -> str:
    """Canonical JSON of a query: sorted keys, no whitespace, UTF-8 text kept as is.

    Two queries are the same question exactly when their canonical JSON is equal
    (note that ``1`` and ``1.0`` differ, and tuples become lists).

    Example:
        >>> normalize_query({"by": ["district"], "table": "acgr"})
        '{"by":["district"],"table":"acgr"}'
        >>> normalize_query({"table": "acgr", "by": ("district",)})
        '{"by":["district"],"table":"acgr"}'
    """
    if not isinstance(query, Mapping):
        raise TypeError(f"query must be a mapping (a dict describing the question), not {type(query)!r}.")
    if not query:
        raise ValueError("query is empty: describe the question (table, filters, group-by keys, ...).")
    try:
        return _canonical_json(dict(query))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"query cannot be written as canonical JSON ({exc}); use only str keys and "
            "str/int/float/bool/None/list/dict values, with finite numbers."
        ) from exc


def query_key(query: Mapping[str, Any]) -> str:
    """sha256 hex digest of :func:`normalize_query`.

    Example:
        >>> query_key({"b": 1, "a": 2}) == query_key({"a": 2, "b": 1})
        True
    """
    return _sha256_hex(normalize_query(query).encode("utf-8"))


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    return value


def _check_scope(scope: object) -> str:
    if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
        raise ValueError(f"scope must be 'public' or 'researcher:<name>' (no spaces in the name), got {scope!r}.")
    return scope


def _check_fingerprint(fingerprint: object) -> str:
    if not isinstance(fingerprint, str) or not _HEX_RE.fullmatch(fingerprint.lower()):
        raise ValueError(f"dataset_fingerprint must be a non-empty hex string, got {fingerprint!r}.")
    return fingerprint.lower()


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return number


def _check_epsilon(epsilon: object) -> float:
    value = _check_number("epsilon", epsilon)
    if value <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}.")
    return value


def _check_delta(delta: object) -> float:
    value = _check_number("delta", delta)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"delta must be in [0, 1), got {delta!r}.")
    return value


def _row_to_entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=row[0],
        kind=row[1],
        created_at=row[2],
        principal=row[3],
        scope=row[4],
        dataset_fingerprint=row[5],
        query_json=row[6],
        query_key=row[7],
        epsilon=row[8],
        delta=row[9],
        epsilon_total=row[10],
        answer_sha256=row[11],
        prev_hash=row[12],
        entry_hash=row[13],
    )


# --------------------------------------------------------------------------- ledger


class Ledger:
    """A durable, append-only, hash-chained record of privacy spending.

    Every call opens its own SQLite connection, so one ``Ledger`` may be shared by
    threads, and any number of processes may write to the same file: writes run in
    ``BEGIN IMMEDIATE`` transactions (one writer at a time, others wait up to
    ``timeout`` seconds) in WAL mode with ``synchronous=FULL``, so a committed spend
    survives a crash and an interrupted one leaves no trace.

    Args:
        path: The SQLite file; created (with its folder) if missing.
        timeout: Seconds a writer waits for another writer before failing with
            ``sqlite3.OperationalError: database is locked``. ``compute()`` runs while
            the write lock is held, so this must exceed the slowest ``compute()``.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3")
        >>> fp = "ab" * 32
        >>> _ = ledger.set_budget("researcher:ann", fp, 2.0, set_by="irb")
        >>> ledger.budget("researcher:ann", fp), ledger.spent("researcher:ann", fp)
        (2.0, 0.0)
        >>> ledger.verify().n_entries
        1
        >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    @classmethod
    def default(cls) -> Ledger:
        """The product's ledger: ``analytics_home() / "ledger.sqlite3"``."""
        return cls(analytics_home() / LEDGER_FILENAME)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN <mode>`` ... ``COMMIT``; roll back on any exception (or interruption)."""
        with closing(self._connect()) as conn:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with closing(self._connect()) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == _SCHEMA_VERSION:
                return
            if version > _SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path} was written by a newer version of the ledger (schema {version}); "
                    "upgrade this package before using it."
                )
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Statement by statement: executescript() would COMMIT the transaction.
                for statement in _split_sql(_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --------------------------------------------------------------- chain writing

    @staticmethod
    def _append(conn: sqlite3.Connection, **fields: Any) -> LedgerEntry:
        """Append one chained entry; the caller holds a write transaction."""
        last = conn.execute("SELECT id, entry_hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        last_id = max(last[0] if last else 0, seq_row[0] if seq_row else 0)
        unsigned = LedgerEntry(
            entry_id=last_id + 1,
            prev_hash=last[1] if last else GENESIS_HASH,
            entry_hash="",
            created_at=_utc_now(),
            **fields,
        )
        entry = LedgerEntry(**{**unsigned.__dict__, "entry_hash": unsigned.computed_hash()})
        conn.execute(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.entry_id,
                entry.kind,
                entry.created_at,
                entry.principal,
                entry.scope,
                entry.dataset_fingerprint,
                entry.query_json,
                entry.query_key,
                entry.epsilon,
                entry.delta,
                entry.epsilon_total,
                entry.answer_sha256,
                entry.prev_hash,
                entry.entry_hash,
            ),
        )
        return entry

    # ------------------------------------------------------------- budget queries

    @staticmethod
    def _budget(conn: sqlite3.Connection, scope: str, fingerprint: str) -> float | None:
        row = conn.execute(
            "SELECT epsilon_total FROM entries WHERE kind = 'budget' AND scope = ? "
            "AND dataset_fingerprint = ? ORDER BY id DESC LIMIT 1",
            (scope, fingerprint),
        ).fetchone()
        return None if row is None else float(row[0])

    @staticmethod
    def _loss(conn: sqlite3.Connection, fingerprint: str, scope: str | None) -> PrivacyLoss:
        sql = "SELECT epsilon, delta FROM entries WHERE kind = 'spend' AND dataset_fingerprint = ?"
        params: tuple[str, ...] = (fingerprint,)
        if scope is not None:
            sql += " AND scope = ?"
            params += (scope,)
        rows = conn.execute(sql, params).fetchall()
        return PrivacyLoss(epsilon=math.fsum(r[0] for r in rows), delta=math.fsum(r[1] for r in rows))

    def set_budget(self, scope: str, dataset_fingerprint: str, epsilon_total: float, set_by: str) -> int:
        """Set the epsilon budget of a scope on a dataset (the latest setting is in force).

        The setting is itself a chained ledger entry. A budget can grow or shrink but
        never below what the scope has already spent: privacy loss cannot be given back.

        Args:
            scope: ``'public'`` or ``'researcher:<name>'``.
            dataset_fingerprint: Hex fingerprint of the dataset.
            epsilon_total: The total epsilon the scope may spend on the dataset (>= 0;
                0 freezes the scope).
            set_by: Who set it (recorded as the entry's principal).

        Returns:
            The id of the budget entry.

        Raises:
            ValueError: On bad input, or if ``epsilon_total`` is below what is spent.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3")
            >>> ledger.set_budget("public", "ab" * 32, 1.0, set_by="data-steward")
            1
            >>> tmp.cleanup()
        """
        scope = _check_scope(scope)
        fingerprint = _check_fingerprint(dataset_fingerprint)
        total = _check_number("epsilon_total", epsilon_total)
        if total < 0:
            raise ValueError(f"epsilon_total must be >= 0, got {epsilon_total!r}.")
        set_by = _check_text("set_by", set_by)
        with self._transaction("IMMEDIATE") as conn:
            spent = self._loss(conn, fingerprint, scope).epsilon
            if total + BUDGET_TOLERANCE < spent:
                raise ValueError(
                    f"Cannot set the budget of scope {scope!r} on dataset {fingerprint[:12]} to "
                    f"epsilon={_fmt(total)}: epsilon={_fmt(spent)} is already spent there, and spent "
                    "privacy cannot be given back."
                )
            entry = self._append(
                conn,
                kind="budget",
                principal=set_by,
                scope=scope,
                dataset_fingerprint=fingerprint,
                query_json=None,
                query_key=None,
                epsilon=0.0,
                delta=0.0,
                epsilon_total=total,
                answer_sha256=None,
            )
        return entry.entry_id

    def budget(self, scope: str, dataset_fingerprint: str) -> float | None:
        """The epsilon budget in force for ``scope`` on the dataset, or ``None`` if never set."""
        scope = _check_scope(scope)
        fingerprint = _check_fingerprint(dataset_fingerprint)
        with closing(self._connect()) as conn:
            return self._budget(conn, scope, fingerprint)

    def spent(self, scope: str, dataset_fingerprint: str) -> float:
        """Total epsilon spent by ``scope`` on the dataset (reused answers cost nothing)."""
        scope = _check_scope(scope)
        fingerprint = _check_fingerprint(dataset_fingerprint)
        with closing(self._connect()) as conn:
            return self._loss(conn, fingerprint, scope).epsilon

    def remaining(self, scope: str, dataset_fingerprint: str) -> float:
        """Epsilon still available to ``scope`` on the dataset (0 when no budget is set)."""
        scope = _check_scope(scope)
        fingerprint = _check_fingerprint(dataset_fingerprint)
        with self._transaction("DEFERRED") as conn:
            total = self._budget(conn, scope, fingerprint)
            spent = self._loss(conn, fingerprint, scope).epsilon
        return 0.0 if total is None else max(0.0, total - spent)

    def total_spent(self, dataset_fingerprint: str) -> PrivacyLoss:
        """Cumulative privacy loss on a dataset over all scopes and releases.

        Sequential composition: the epsilons add up, and so do the deltas.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     Ledger(Path(tmp) / "ledger.sqlite3").total_spent("ab" * 32)
            PrivacyLoss(epsilon=0.0, delta=0.0)
        """
        fingerprint = _check_fingerprint(dataset_fingerprint)
        with closing(self._connect()) as conn:
            return self._loss(conn, fingerprint, None)

    # ------------------------------------------------------------------ spending

    def spend_or_reuse(
        self,
        *,
        principal: str,
        scope: str,
        dataset_fingerprint: str,
        query: Mapping[str, Any],
        epsilon: float,
        delta: float = 0.0,
        compute: Callable[[], bytes],
    ) -> SpendResult:
        """Answer a question once: reuse the stored answer, or pay for and store a new one.

        All in one ``BEGIN IMMEDIATE`` transaction:

        1. If an answer to the same normalised query on the same dataset is stored
           (whoever asked, under whatever scope), return it; nothing is spent.
        2. Otherwise refuse with :class:`BudgetExceededError` if ``scope`` has no budget
           on the dataset or cannot cover ``epsilon``.
        3. Otherwise call ``compute()`` (which draws the noise and returns the
           serialized answer), store the answer and the spend entry, and commit.

        If ``compute()`` raises, or the process dies before the commit, nothing is
        recorded. Other writers wait while ``compute()`` runs.

        Args:
            principal: Who asks (a user or a service such as ``'release-builder'``).
            scope: Budget to charge: ``'public'`` or ``'researcher:<name>'``.
            dataset_fingerprint: Hex fingerprint of the dataset queried.
            query: JSON-able description of the question; key order does not matter.
            epsilon: Privacy cost of answering (finite, > 0).
            delta: Delta of answering, in [0, 1); summed into :meth:`total_spent`.
            compute: Computes the noisy answer; called at most once, only if paid for.

        Returns:
            The answer, whether it was reused, the id of the spend that produced it and
            the epsilon charged by this call.

        Raises:
            BudgetExceededError: The budget cannot cover the query; nothing was spent.
            LedgerTamperedError: The stored answer no longer matches its spend entry.
            ValueError, TypeError: Invalid input, or ``compute()`` did not return bytes.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3")
            >>> fp = "ab" * 32
            >>> _ = ledger.set_budget("public", fp, 1.0, set_by="data-steward")
            >>> ask = dict(principal="web", scope="public", dataset_fingerprint=fp,
            ...            query={"table": "acgr"}, epsilon=0.5, compute=lambda: b"[87.1]")
            >>> first, again = ledger.spend_or_reuse(**ask), ledger.spend_or_reuse(**ask)
            >>> (first.reused, again.reused, again.answer, ledger.spent("public", fp))
            (False, True, b'[87.1]', 0.5)
            >>> tmp.cleanup()
        """
        principal = _check_text("principal", principal)
        scope = _check_scope(scope)
        fingerprint = _check_fingerprint(dataset_fingerprint)
        query_json = normalize_query(query)
        key = _sha256_hex(query_json.encode("utf-8"))
        epsilon = _check_epsilon(epsilon)
        delta = _check_delta(delta)
        if not callable(compute):
            raise TypeError("compute must be a callable taking no arguments and returning bytes.")

        with self._transaction("IMMEDIATE") as conn:
            stored = conn.execute(
                "SELECT a.answer, a.answer_sha256, a.entry_id, e.answer_sha256 FROM answers a "
                "LEFT JOIN entries e ON e.id = a.entry_id "
                "WHERE a.dataset_fingerprint = ? AND a.query_key = ?",
                (fingerprint, key),
            ).fetchone()
            if stored is not None:
                answer, answer_sha, entry_id, entry_sha = bytes(stored[0]), stored[1], stored[2], stored[3]
                if not (_sha256_hex(answer) == answer_sha == entry_sha):
                    raise LedgerTamperedError(
                        entry_id, "the stored answer does not match the sha256 recorded by its spend entry."
                    )
                return SpendResult(answer=answer, reused=True, entry_id=entry_id, epsilon_charged=0.0)

            total = self._budget(conn, scope, fingerprint)
            spent = self._loss(conn, fingerprint, scope).epsilon
            if total is None or spent + epsilon > total + BUDGET_TOLERANCE:
                raise BudgetExceededError(
                    principal=principal,
                    scope=scope,
                    dataset_fingerprint=fingerprint,
                    epsilon_requested=epsilon,
                    epsilon_remaining=0.0 if total is None else max(0.0, total - spent),
                    epsilon_total=total,
                )

            answer = compute()
            if not isinstance(answer, (bytes, bytearray, memoryview)):
                raise TypeError(f"compute() must return the answer serialized as bytes, not {type(answer)!r}.")
            answer = bytes(answer)
            answer_sha = _sha256_hex(answer)
            entry = self._append(
                conn,
                kind="spend",
                principal=principal,
                scope=scope,
                dataset_fingerprint=fingerprint,
                query_json=query_json,
                query_key=key,
                epsilon=epsilon,
                delta=delta,
                epsilon_total=None,
                answer_sha256=answer_sha,
            )
            conn.execute(
                "INSERT INTO answers (dataset_fingerprint, query_key, answer, answer_sha256, entry_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (fingerprint, key, answer, answer_sha, entry.entry_id),
            )
        return SpendResult(answer=answer, reused=False, entry_id=entry.entry_id, epsilon_charged=epsilon)

    # ------------------------------------------------------------------- reading

    def history(
        self,
        scope: str | None = None,
        dataset_fingerprint: str | None = None,
        principal: str | None = None,
    ) -> list[LedgerEntry]:
        """Ledger entries (spends and budget settings) in order, optionally filtered.

        Args:
            scope: Only this scope.
            dataset_fingerprint: Only this dataset.
            principal: Only entries made by this principal.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3")
            >>> _ = ledger.set_budget("researcher:ann", "ab" * 32, 1.0, set_by="irb")
            >>> [(e.entry_id, e.kind, e.epsilon_total) for e in ledger.history(scope="researcher:ann")]
            [(1, 'budget', 1.0)]
            >>> tmp.cleanup()
        """
        clauses: list[str] = []
        params: list[str] = []
        if scope is not None:
            clauses.append("scope = ?")
            params.append(_check_scope(scope))
        if dataset_fingerprint is not None:
            clauses.append("dataset_fingerprint = ?")
            params.append(_check_fingerprint(dataset_fingerprint))
        if principal is not None:
            clauses.append("principal = ?")
            params.append(principal)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with closing(self._connect()) as conn:
            rows = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries{where} ORDER BY id", params).fetchall()
        return [_row_to_entry(row) for row in rows]

    def verify(self) -> ChainHead:
        """Recompute the hash chain and check every stored answer against its spend.

        Returns:
            The number of entries and the hash of the last one.

        Raises:
            LedgerTamperedError: Naming the first entry at which the ledger breaks and
                what is wrong: a field edited, an entry deleted (gap in ids or broken
                link), entries reordered, or a stored answer edited, missing or unpaid.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     Ledger(Path(tmp) / "ledger.sqlite3").verify()
            ChainHead(n_entries=0, head_hash='000...000')
        """
        with self._transaction("DEFERRED") as conn:
            rows = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY id").fetchall()
            answers = {
                row[4]: row
                for row in conn.execute(
                    "SELECT dataset_fingerprint, query_key, answer, answer_sha256, entry_id FROM answers"
                ).fetchall()
            }
            seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        entries = [_row_to_entry(row) for row in rows]
        id_by_hash = {e.entry_hash: e.entry_id for e in entries}

        prev_id, prev_hash = 0, GENESIS_HASH
        for entry in entries:
            eid = entry.entry_id
            if eid != prev_id + 1:
                missing = f"{prev_id + 1}" if eid == prev_id + 2 else f"{prev_id + 1}..{eid - 1}"
                after = f"entry {prev_id}" if prev_id else "the start of the ledger"
                raise LedgerTamperedError(
                    prev_id + 1, f"entry {missing} is missing (deleted): entry {eid} follows {after}."
                )
            if entry.prev_hash != prev_hash:
                linked = id_by_hash.get(entry.prev_hash)
                if linked is not None:
                    problem = f"entry {eid} links to entry {linked} instead of entry {prev_id}: entries were reordered."
                else:
                    problem = (
                        f"broken link: entry {eid}'s prev_hash does not match the hash of entry {prev_id}"
                        " (an entry before it was deleted or replaced)."
                    )
                raise LedgerTamperedError(eid, problem)
            if entry.computed_hash() != entry.entry_hash:
                raise LedgerTamperedError(
                    eid,
                    f"its stored fields no longer hash to its entry_hash: a field of this {entry.kind} "
                    "entry (e.g. epsilon, scope, principal, query, time) was edited.",
                )
            if entry.kind == "spend":
                answer = answers.pop(eid, None)
                if answer is None:
                    raise LedgerTamperedError(eid, "the answer paid for by this spend is missing (deleted).")
                if (answer[0], answer[1]) != (entry.dataset_fingerprint, entry.query_key):
                    raise LedgerTamperedError(
                        eid, "the stored answer is filed under another dataset or query than this spend."
                    )
                if not (_sha256_hex(bytes(answer[2])) == answer[3] == entry.answer_sha256):
                    raise LedgerTamperedError(
                        eid,
                        "the stored answer was edited: its sha256 differs from the one this spend recorded.",
                    )
            elif entry.kind != "budget":
                raise LedgerTamperedError(eid, f"unknown entry kind {entry.kind!r}.")
            prev_id, prev_hash = eid, entry.entry_hash

        if seq_row is not None and seq_row[0] > prev_id:
            raise LedgerTamperedError(
                prev_id + 1,
                f"the ledger once held entry {seq_row[0]} but now ends at entry {prev_id}: "
                "its last entries were deleted.",
            )
        if answers:
            orphan = min(answers)
            raise LedgerTamperedError(
                orphan, f"a stored answer claims to be paid for by entry {orphan}, which is not a spend."
            )
        return ChainHead(n_entries=len(entries), head_hash=prev_hash)


def _split_sql(script: str) -> list[str]:
    """Split the schema script into statements (triggers contain ``;`` inside BEGIN ... END)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
