"""The :class:`Ledger`: one SQLite file, verified before every write (see :mod:`analytics.ledger`)."""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from analytics.config import ledger_path
from analytics.ledger.records import (
    _COLUMNS,
    _SCHEMA_OBJECTS,
    _SCHEMA_VERSION,
    _TABLES,
    _TRIGGERS,
    ACCOUNTING,
    BUDGET_TOLERANCE,
    DEFAULT_MAX_QUERY_EPSILON,
    GENESIS_HASH,
    BudgetExceededError,
    ChainHead,
    ExtractRecord,
    LedgerEntry,
    LedgerError,
    LedgerTamperedError,
    LineageError,
    LineageStatus,
    SpendResult,
    _canonical_json,
    _check_extract,
    _check_lineage,
    _check_number,
    _check_scope,
    _check_text,
    _fmt,
    _row_to_entry,
    _sha256_hex,
    _utc_now,
    normalize_query,
)
from analytics.seal import Anchor, StewardKey, StewardKeyError

__all__ = ["Ledger"]


# --------------------------------------------------------------------------- ledger


class Ledger:
    """A durable, append-only, hash-chained, sealed record of privacy spending.

    Every call opens its own SQLite connection, so one ``Ledger`` may be shared by
    threads, and any number of processes may write to the same file: writes run in
    ``BEGIN IMMEDIATE`` transactions (one writer at a time, others wait up to
    ``timeout`` seconds) in WAL mode with ``synchronous=FULL``, so a committed spend
    survives a crash and an interrupted one leaves no trace.

    Args:
        path: The SQLite file; created (with its folder) if missing.
        key: The steward key (default: :meth:`StewardKey.load`).
        timeout: Seconds a writer waits for another; ``compute()`` runs under the write
            lock, so this must exceed the slowest ``compute()``.
        allow_seeded_noise: Tests only: lets callers pass a seed to the mechanisms when
            spending from this ledger. A production ledger never allows it.

    Raises:
        LedgerTamperedError: the file is not a ledger, or is damaged.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: StewardKey | None = None,
        timeout: float = 60.0,
        allow_seeded_noise: bool = False,
    ) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self.allow_seeded_noise = bool(allow_seeded_noise)
        try:
            self.key = key if key is not None else StewardKey.load()
        except StewardKeyError as exc:
            raise LedgerError(str(exc)) from None
        if self.path.exists() and not self.path.is_file():
            raise LedgerError(f"the ledger path {self.path} is not a file; set ANALYTICS_LEDGER to a file path.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise LedgerTamperedError(None, f"{self.path} is not a readable ledger ({exc}).") from None
        except OSError as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc.strerror or exc}.") from None

    @classmethod
    def default(cls) -> Ledger:
        """The product's ledger: :func:`analytics.config.ledger_path` with the default steward key."""
        return cls(ledger_path())

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
        """``BEGIN <mode>`` ... ``COMMIT``; roll back on any exception; SQLite damage becomes a clear error."""
        try:
            with closing(self._connect()) as conn:
                conn.execute(f"BEGIN {mode}")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LedgerError(
                    f"the ledger {self.path} is busy with another spend for more than {self.timeout:g} s; "
                    "try again. Nothing was spent."
                ) from None
            raise LedgerTamperedError(None, f"the ledger database failed ({exc}).") from None
        except sqlite3.DatabaseError as exc:
            raise LedgerTamperedError(None, f"{self.path} is damaged ({exc}).") from None

    def _init_schema(self) -> None:
        with closing(self._connect()) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == _SCHEMA_VERSION:
                return
            if version not in (0,):
                raise LedgerError(
                    f"{self.path} was written by another version of the ledger (schema {version}, this is "
                    f"{_SCHEMA_VERSION}). Schema 1 kept budgets per data file, which let a re-saved file start "
                    "afresh; it cannot be carried over. Keep it as a record, move it aside, and register your "
                    "lineages again (docs/privacy.md)."
                )
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                        raise LedgerError(f"{self.path} is an SQLite file but not a ledger; choose another path.")
                    for statement in _TABLES:
                        conn.execute(statement)
                    conn.execute("INSERT INTO meta VALUES ('ledger_uid', ?)", (secrets.token_hex(16),))
                    conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --------------------------------------------------------------- verification

    def _meta(self, conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def _check(self, conn: sqlite3.Connection, *, answers: bool) -> ChainHead:
        """Verify everything; raise :class:`LedgerTamperedError` at the first problem."""
        objects = {
            (kind, name): sql
            for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
            if not name.startswith("sqlite_")
        }
        for name, sql in _TRIGGERS.items():
            if objects.get(("trigger", name)) != sql:
                raise LedgerTamperedError(None, f"its append-only guard {name} was removed or changed.")
        unexpected = sorted(f"{kind} {name}" for kind, name in objects if (kind, name) not in _SCHEMA_OBJECTS)
        if unexpected:
            raise LedgerTamperedError(
                None, f"objects that are not part of the ledger were added to it ({', '.join(unexpected)})."
            )
        rows = conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY id").fetchall()
        entries = [_row_to_entry(r) for r in rows]
        prev_id, prev_hash = 0, GENESIS_HASH
        for e in entries:
            if e.entry_id != prev_id + 1:
                raise LedgerTamperedError(prev_id + 1, f"entry {prev_id + 1} is missing (deleted).")
            if e.prev_hash != prev_hash:
                raise LedgerTamperedError(e.entry_id, "its link to the entry before it is broken (entries removed).")
            if e.computed_hash() != e.entry_hash:
                raise LedgerTamperedError(e.entry_id, f"a field of this {e.kind} entry was edited.")
            prev_id, prev_hash = e.entry_id, e.entry_hash
        seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        if seq_row is not None and seq_row[0] > prev_id:
            raise LedgerTamperedError(prev_id + 1, f"it once held entry {seq_row[0]} but now ends at {prev_id}.")
        meta = self._meta(conn)
        uid = meta.get("ledger_uid", "")
        if entries and not self.key.check("seal", f"{uid}:{prev_id}:{prev_hash}", meta.get("seal", "")):
            raise LedgerTamperedError(
                prev_id,
                "its seal does not match its last entry under the steward key: the chain was rewritten, "
                "entries were removed, or the key was replaced.",
            )
        try:
            anchor = self.key.anchor(uid)
            owner = self.key.owner(self.path)
        except StewardKeyError as exc:
            raise LedgerTamperedError(None, str(exc) + ".") from None
        if owner is not None and owner != uid:
            raise LedgerTamperedError(
                None,
                f"another ledger was kept at {self.path}; this file is a different one (the original was deleted "
                "or replaced).",
            )
        if anchor is not None and (
            anchor.seq < 0 or prev_id < anchor.seq or entries[anchor.seq - 1].entry_hash != anchor.head
        ):
            raise LedgerTamperedError(
                min(prev_id + 1, max(anchor.seq, 1)),
                f"this ledger had reached entry {anchor.seq}, but this copy ends at entry {prev_id}: it was rolled "
                "back to an earlier copy.",
            )
        self._check_answer_links(conn)
        if answers:
            self._check_answers(conn, entries)
        return ChainHead(len(entries), prev_hash)

    @staticmethod
    def _check_answer_links(conn: sqlite3.Connection) -> None:
        """Every spend has exactly its answer, filed under its keys, with its recorded hash (no re-hashing)."""
        bad = conn.execute(
            "SELECT min(a.entry_id) FROM answers a LEFT JOIN entries e ON e.id = a.entry_id "
            "WHERE e.id IS NULL OR e.kind != 'spend' OR a.answer_sha256 IS NOT e.answer_sha256 "
            "OR a.lineage IS NOT e.lineage OR a.extract_id IS NOT e.extract_id OR a.scope IS NOT e.scope "
            "OR a.query_key IS NOT e.query_key"
        ).fetchone()[0]
        if bad is not None:
            raise LedgerTamperedError(int(bad), "its stored answer does not match what the spend recorded.")
        missing = conn.execute(
            "SELECT min(e.id) FROM entries e LEFT JOIN answers a ON a.entry_id = e.id "
            "WHERE e.kind = 'spend' AND a.entry_id IS NULL"
        ).fetchone()[0]
        if missing is not None:
            raise LedgerTamperedError(int(missing), "the answer paid for by this spend is missing.")

    @staticmethod
    def _check_answers(conn: sqlite3.Connection, entries: list[LedgerEntry]) -> None:
        stored = {
            r[6]: r
            for r in conn.execute(
                "SELECT lineage, extract_id, scope, query_key, answer, answer_sha256, entry_id FROM answers"
            ).fetchall()
        }
        for e in entries:
            if e.kind != "spend":
                continue
            a = stored.pop(e.entry_id, None)
            if a is None:
                raise LedgerTamperedError(e.entry_id, "the answer paid for by this spend is missing.")
            if (a[0], a[1], a[2], a[3]) != (e.lineage, e.extract_id, e.scope, e.query_key):
                raise LedgerTamperedError(e.entry_id, "its answer is filed under another lineage, scope or query.")
            if not (_sha256_hex(bytes(a[4])) == a[5] == e.answer_sha256):
                raise LedgerTamperedError(e.entry_id, "its stored answer was edited.")
        if stored:
            raise LedgerTamperedError(min(stored), "a stored answer claims a spend that does not exist.")

    def verify(self) -> ChainHead:
        """Check the whole ledger: guards, chain, seal, anchor and every stored answer.

        Raises:
            LedgerTamperedError: naming the first problem found.

        Example:
            >>> import tempfile
            >>> from analytics.seal import StewardKey
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     key = StewardKey(Path(tmp) / "k", bytes(32))
            ...     Ledger(Path(tmp) / "ledger.sqlite3", key=key).verify()
            ChainHead(n_entries=0, head_hash='000...000')
        """
        with self._transaction("DEFERRED") as conn:
            return self._check(conn, answers=True)

    # --------------------------------------------------------------- chain writing

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on a verified ledger; seals it and advances the anchor if it appended."""
        with self._transaction("IMMEDIATE") as conn:
            before = self._check(conn, answers=False).n_entries
            yield conn
            last = conn.execute("SELECT id, entry_hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
            appended = last is not None and last[0] > before
            attached = dict(
                conn.execute(
                    "SELECT extract_id, lineage FROM entries WHERE kind = 'extract' AND id > ?", (before,)
                ).fetchall()
            )
            uid = self._meta(conn)["ledger_uid"]
            if appended:
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('seal', ?)",
                    (self.key.mac("seal", f"{uid}:{last[0]}:{last[1]}"),),
                )
        if appended:
            self.key.advance_anchor(self.path, Anchor(uid, int(last[0]), str(last[1])), extracts=attached)

    def _append(self, conn: sqlite3.Connection, **fields: Any) -> LedgerEntry:
        last = conn.execute("SELECT id, entry_hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        values = {
            "scope": None,
            "extract_id": None,
            "query_json": None,
            "query_key": None,
            "epsilon": 0.0,
            "delta": 0.0,
            "rho": None,
            "charge": 0.0,
            "amount": None,
            "detail_json": None,
            "answer_sha256": None,
            **fields,
        }
        unsigned = LedgerEntry(
            entry_id=(last[0] if last else 0) + 1,
            created_at=_utc_now(),
            prev_hash=last[1] if last else GENESIS_HASH,
            entry_hash="",
            **values,
        )
        entry = LedgerEntry(**{**unsigned.__dict__, "entry_hash": unsigned.computed_hash()})
        conn.execute(f"INSERT INTO entries ({_COLUMNS}) VALUES ({', '.join('?' * 18)})", tuple(entry.__dict__.values()))
        return entry

    # ------------------------------------------------------------------ lineages

    @staticmethod
    def _lineage_entry(conn: sqlite3.Connection, name: str) -> LedgerEntry:
        row = conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE kind = 'lineage' AND lineage = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT lineage FROM entries WHERE kind = 'lineage' ORDER BY id")]
            listed = f"registered: {', '.join(known)}" if known else "none is registered yet"
            raise LineageError(
                f"no student population (lineage) named {name!r} is registered ({listed}). A steward registers a new "
                f"one with `python -m analytics lineage register {name} --cap EPSILON --description TEXT "
                "--user STEWARD`."
            )
        return _row_to_entry(row)

    @staticmethod
    def _latest_amount(conn: sqlite3.Connection, name: str, kind: str, scope: str | None = None) -> float | None:
        sql = "SELECT amount FROM entries WHERE kind = ? AND lineage = ?"
        params: list[Any] = [kind, name]
        if scope is not None:
            sql += " AND scope = ?"
            params.append(scope)
        row = conn.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return None if row is None else float(row[0])

    @staticmethod
    def _spent(conn: sqlite3.Connection, name: str, scope: str | None = None) -> tuple[float, float]:
        sql = "SELECT charge, delta FROM entries WHERE kind = 'spend' AND lineage = ?"
        params: list[Any] = [name]
        if scope is not None:
            sql += " AND scope = ?"
            params.append(scope)
        rows = conn.execute(sql, params).fetchall()
        return math.fsum(r[0] for r in rows), math.fsum(r[1] for r in rows)

    def register_lineage(
        self,
        name: str,
        *,
        cap: float,
        description: str,
        principal: str,
        accounting: str = "epsilon",
        max_query: float | None = None,
    ) -> int:
        """Register a student population once, with its cap. Returns the entry id.

        Args:
            name: The lineage name (:data:`LINEAGE_PATTERN`).
            cap: The most privacy loss any one student of the population may bear, over
                every extract, release and researcher, in the accounting's unit.
            description: Which students it covers (public words: it may be shown).
            principal: The steward registering it (the caller checks the role).
            accounting: ``'epsilon'`` or ``'zcdp'``.
            max_query: The most one researcher query may cost (default
                :data:`DEFAULT_MAX_QUERY_EPSILON`, or its zCDP equivalent).

        Raises:
            LineageError: the name is taken or malformed.
            ValueError: bad numbers or text.
        """
        name = _check_lineage(name)
        if accounting not in ACCOUNTING:
            raise ValueError(f"accounting must be one of {', '.join(ACCOUNTING)}.")
        cap = _check_number("cap", cap, positive=True)
        default_max = DEFAULT_MAX_QUERY_EPSILON if accounting == "epsilon" else DEFAULT_MAX_QUERY_EPSILON**2 / 2
        max_query = _check_number("max_query", default_max if max_query is None else max_query, positive=True)
        description = _check_text("description", description)
        principal = _check_text("principal", principal, 200)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM entries WHERE kind = 'lineage' AND lineage = ?", (name,)).fetchone():
                raise LineageError(
                    f"a lineage named {name!r} is already registered; its cap can be changed with `lineage set-cap`."
                )
            entry = self._append(
                conn,
                kind="lineage",
                principal=principal,
                lineage=name,
                amount=cap,
                detail_json=_canonical_json({"description": description, "accounting": accounting}),
            )
            self._append(conn, kind="policy", principal=principal, lineage=name, amount=max_query)
        return entry.entry_id

    def set_cap(self, name: str, cap: float, *, principal: str) -> int:
        """Change a lineage's cap (never below what is already spent: loss cannot be given back)."""
        name = _check_lineage(name)
        cap = _check_number("cap", cap, positive=True)
        with self._write() as conn:
            self._lineage_entry(conn, name)
            spent, _ = self._spent(conn, name)
            if cap + BUDGET_TOLERANCE < spent:
                raise LineageError(
                    f"cannot set the cap of {name!r} to {_fmt(cap)}: {_fmt(spent)} is already spent, and spent "
                    "privacy cannot be given back."
                )
            return self._append(
                conn, kind="cap", principal=_check_text("principal", principal, 200), lineage=name, amount=cap
            ).entry_id

    def set_allocation(self, name: str, scope: str, amount: float, *, principal: str) -> int:
        """Set what one spender (``public`` or ``researcher:NAME``) may draw from a lineage's cap.

        Allocations may add up to more than the cap (first come, first served); the cap
        is still checked at every spend. An allocation cannot exceed the cap, nor go
        below what the scope has spent.

        Raises:
            LineageError: unknown lineage, or the amount is above the cap or below what is spent.
        """
        name = _check_lineage(name)
        scope = _check_scope(scope)
        amount = _check_number("allocation", amount, positive=False)
        with self._write() as conn:
            self._lineage_entry(conn, name)
            cap = self._cap(conn, name)
            spent, _ = self._spent(conn, name, scope)
            if amount > cap + BUDGET_TOLERANCE:
                raise LineageError(f"an allocation of {_fmt(amount)} is above the cap of {name!r} ({_fmt(cap)}).")
            if amount + BUDGET_TOLERANCE < spent:
                raise LineageError(
                    f"{scope!r} has already spent {_fmt(spent)} on {name!r}; its allocation cannot go below that."
                )
            return self._append(
                conn,
                kind="allocation",
                principal=_check_text("principal", principal, 200),
                lineage=name,
                scope=scope,
                amount=amount,
            ).entry_id

    def set_max_query(self, name: str, amount: float, *, principal: str) -> int:
        """Set the most one researcher query may cost on a lineage."""
        name = _check_lineage(name)
        amount = _check_number("max_query", amount, positive=True)
        with self._write() as conn:
            self._lineage_entry(conn, name)
            return self._append(
                conn, kind="policy", principal=_check_text("principal", principal, 200), lineage=name, amount=amount
            ).entry_id

    def _cap(self, conn: sqlite3.Connection, name: str) -> float:
        latest = self._latest_amount(conn, name, "cap")
        return latest if latest is not None else float(self._lineage_entry(conn, name).amount or 0.0)

    def attach_extract(self, name: str, extract_id: str, *, label: str, principal: str) -> int:
        """Attach an extract (by its keyed identity) to a lineage; return its number there (1, 2, ...).

        Attaching the same extract again returns its number and records nothing.

        Raises:
            LineageError: unknown lineage, or the extract is attached to another lineage.
        """
        name = _check_lineage(name)
        extract_id = _check_extract(extract_id)
        label = _check_text("label", label, 200)
        with self._write() as conn:
            self._lineage_entry(conn, name)
            try:
                home = self.key.extract_home(extract_id)
            except StewardKeyError as exc:
                raise LedgerTamperedError(None, str(exc) + ".") from None
            uid = self._meta(conn)["ledger_uid"]
            if home is not None and home[0] != uid:
                raise LineageError(
                    f"this extract is already attached to lineage {home[1]!r} in another privacy ledger kept under "
                    "this steward key; one population has one ledger and one cap, so it cannot be attached here."
                )
            found = self._extract(conn, extract_id)
            if found is not None:
                if found.lineage != name:
                    raise LineageError(
                        f"this extract is already attached to lineage {found.lineage!r}; an extract belongs to one "
                        "student population."
                    )
                return found.number
            number = (
                conn.execute("SELECT count(*) FROM entries WHERE kind = 'extract' AND lineage = ?", (name,)).fetchone()[
                    0
                ]
                + 1
            )
            self._append(
                conn,
                kind="extract",
                principal=_check_text("principal", principal, 200),
                lineage=name,
                extract_id=extract_id,
                amount=float(number),
                detail_json=_canonical_json({"label": label}),
            )
            return int(number)

    @staticmethod
    def _extract(conn: sqlite3.Connection, extract_id: str) -> ExtractRecord | None:
        row = conn.execute(
            "SELECT lineage, amount, detail_json, created_at FROM entries WHERE kind = 'extract' AND extract_id = ?",
            (extract_id,),
        ).fetchone()
        if row is None:
            return None
        return ExtractRecord(row[0], int(row[1]), json.loads(row[2])["label"], row[3])

    def extract(self, extract_id: str) -> ExtractRecord | None:
        """The lineage an extract is attached to, or ``None``."""
        extract_id = _check_extract(extract_id)
        with self._transaction("DEFERRED") as conn:
            self._check(conn, answers=False)
            return self._extract(conn, extract_id)

    def lineages(self) -> list[str]:
        """Names of the registered lineages, in registration order."""
        with self._transaction("DEFERRED") as conn:
            self._check(conn, answers=False)
            return [r[0] for r in conn.execute("SELECT lineage FROM entries WHERE kind = 'lineage' ORDER BY id")]

    def status(self, name: str) -> LineageStatus:
        """Where a lineage stands (cap, spent, allocations, extracts, releases).

        Raises:
            LineageError: no such lineage.
        """
        name = _check_lineage(name)
        with self._transaction("DEFERRED") as conn:
            self._check(conn, answers=False)
            reg = self._lineage_entry(conn, name)
            spent, delta = self._spent(conn, name)
            allocations: dict[str, tuple[float, float]] = {}
            for (scope,) in conn.execute(
                "SELECT DISTINCT scope FROM entries WHERE kind = 'allocation' AND lineage = ? ORDER BY scope", (name,)
            ).fetchall():
                allocations[scope] = (
                    self._latest_amount(conn, name, "allocation", scope) or 0.0,
                    self._spent(conn, name, scope)[0],
                )
            extracts = [
                ExtractRecord(name, int(r[0]), json.loads(r[1])["label"], r[2])
                for r in conn.execute(
                    "SELECT amount, detail_json, created_at FROM entries WHERE kind = 'extract' AND lineage = ? "
                    "ORDER BY id",
                    (name,),
                ).fetchall()
            ]
            releases = [
                (json.loads(r[0])["release_id"], int(r[1]))
                for r in conn.execute(
                    "SELECT detail_json, id FROM entries WHERE kind = 'release' AND lineage = ? ORDER BY id", (name,)
                ).fetchall()
            ]
            return LineageStatus(
                name=name,
                description=reg.detail["description"],
                accounting=reg.detail["accounting"],
                cap=self._cap(conn, name),
                spent=spent,
                delta_spent=delta,
                max_query=self._latest_amount(conn, name, "policy") or 0.0,
                allocations=allocations,
                extracts=extracts,
                releases=releases,
            )

    # ------------------------------------------------------------------ spending

    def _charge(self, conn: sqlite3.Connection, name: str, epsilon: float, delta: float, rho: float | None) -> float:
        accounting = self._lineage_entry(conn, name).detail["accounting"]
        if accounting == "epsilon":
            if rho is not None:
                raise ValueError(
                    f"lineage {name!r} accounts in pure epsilon; a zCDP (rho) measurement cannot be charged to it."
                )
            return epsilon
        if delta:
            raise ValueError(
                f"lineage {name!r} accounts in zCDP; an (epsilon, delta) measurement cannot be charged to it."
            )
        return rho if rho is not None else epsilon * epsilon / 2.0

    def _refuse_if_over(self, conn: sqlite3.Connection, name: str, scope: str, charge: float, delta: float) -> None:
        unit = "rho" if self._lineage_entry(conn, name).detail["accounting"] == "zcdp" else "epsilon"

        def refuse(limit: str, remaining: float, total: float) -> BudgetExceededError:
            return BudgetExceededError(
                lineage=name, scope=scope, requested=charge, remaining=max(0.0, remaining), limit=limit, unit=unit,
                total=total,
            )  # fmt: skip

        allocation = self._latest_amount(conn, name, "allocation", scope)
        if allocation is None:
            raise refuse("allocation", 0.0, 0.0)
        if scope.startswith("researcher:"):
            max_query = self._latest_amount(conn, name, "policy") or 0.0
            if charge > max_query + BUDGET_TOLERANCE:
                raise refuse("per-query maximum", max_query, max_query)
        scope_spent, _ = self._spent(conn, name, scope)
        if scope_spent + charge > allocation + BUDGET_TOLERANCE:
            raise refuse("allocation", allocation - scope_spent, allocation)
        cap = self._cap(conn, name)
        total_spent, delta_spent = self._spent(conn, name)
        if total_spent + charge > cap + BUDGET_TOLERANCE or (delta and delta_spent + delta >= 1.0):
            raise refuse("cap", cap - total_spent, cap)

    def check_affordable(self, name: str, scope: str, charge: float) -> None:
        """Refuse (raise :class:`BudgetExceededError`) unless ``scope`` could spend ``charge`` now.

        Used to refuse a whole release before any of it is spent. Spends nothing.
        """
        name = _check_lineage(name)
        scope = _check_scope(scope)
        with self._transaction("DEFERRED") as conn:
            self._check(conn, answers=False)
            self._refuse_if_over(conn, name, scope, charge, 0.0)

    def charge_of(self, name: str, *, epsilon: float, delta: float = 0.0, rho: float | None = None) -> float:
        """What a measurement would be charged on a lineage, in its unit (spends nothing)."""
        with self._transaction("DEFERRED") as conn:
            return self._charge(conn, _check_lineage(name), epsilon, delta, rho)

    def answered(self, name: str, extract_id: str, scope: str) -> set[str]:
        """Query keys already answered (and stored) for this extract in this scope."""
        with self._transaction("DEFERRED") as conn:
            rows = conn.execute(
                "SELECT query_key FROM answers WHERE lineage = ? AND extract_id = ? AND scope = ?",
                (_check_lineage(name), _check_extract(extract_id), _check_scope(scope)),
            ).fetchall()
        return {r[0] for r in rows}

    def spend_or_reuse(
        self,
        *,
        principal: str,
        lineage: str,
        extract_id: str,
        scope: str,
        query: Mapping[str, Any],
        epsilon: float,
        compute: Callable[[], bytes],
        delta: float = 0.0,
        rho: float | None = None,
    ) -> SpendResult:
        """Answer a question once: reuse the stored answer, or pay for and store a new one.

        All in one ``BEGIN IMMEDIATE`` transaction, on a ledger verified first:

        1. If this scope already paid for the same normalised query on the same extract,
           return the stored answer; nothing is spent.
        2. Otherwise refuse with :class:`BudgetExceededError` unless the extract is attached
           to ``lineage``, the scope has an allocation that covers the charge, a researcher
           query is within the per-query maximum, and the lineage's cap covers it.
        3. Otherwise call ``compute()`` (which draws the noise and returns the serialized
           answer), store the answer and the spend entry, seal, commit.

        If ``compute()`` raises, or the process dies before the commit, nothing is recorded.

        Args:
            principal: Who asks (an authenticated user name, or the release builder acting for one).
            lineage: The student population charged.
            extract_id: The keyed identity of the extract queried (attached to ``lineage``).
            scope: ``'public'`` or ``'researcher:<name>'``.
            query: JSON-able description of the question; key order does not matter.
            epsilon: Pure-DP epsilon of the measurement (for zCDP measurements, the epsilon
                it is published with at its delta; informational).
            compute: Computes the noisy answer; called at most once, only if paid for.
            delta: Delta of an (epsilon, delta) measurement.
            rho: zCDP rho of a Gaussian measurement (zCDP lineages only).

        Raises:
            BudgetExceededError, LineageError, LedgerTamperedError: refused; nothing spent.
            ValueError, TypeError: invalid input, or ``compute()`` did not return bytes.
        """
        principal = _check_text("principal", principal, 200)
        lineage = _check_lineage(lineage)
        extract_id = _check_extract(extract_id)
        scope = _check_scope(scope)
        query_json = normalize_query(query)
        key = _sha256_hex(query_json.encode("utf-8"))
        epsilon = _check_number("epsilon", epsilon, positive=rho is None)
        delta = _check_number("delta", delta, positive=False)
        if delta >= 1.0:
            raise ValueError("delta must be below 1.")
        if rho is not None:
            rho = _check_number("rho", rho, positive=True)
        if not callable(compute):
            raise TypeError("compute must be a callable taking no arguments and returning bytes.")

        with self._write() as conn:
            stored = conn.execute(
                "SELECT a.answer, e.answer_sha256, a.entry_id FROM answers a JOIN entries e ON e.id = a.entry_id "
                "WHERE a.lineage = ? AND a.extract_id = ? AND a.scope = ? AND a.query_key = ?",
                (lineage, extract_id, scope, key),
            ).fetchone()
            if stored is not None:
                answer = bytes(stored[0])
                if _sha256_hex(answer) != stored[1]:
                    raise LedgerTamperedError(stored[2], "its stored answer was edited.")
                return SpendResult(answer=answer, reused=True, entry_id=stored[2], charged=0.0)
            self._lineage_entry(conn, lineage)
            attached = self._extract(conn, extract_id)
            if attached is None or attached.lineage != lineage:
                raise LineageError(
                    f"this extract is not attached to lineage {lineage!r}; a steward attaches it with "
                    f"`python -m analytics lineage attach {lineage} DATASET_DIR --label TEXT --user STEWARD`. "
                    "Nothing was spent."
                )
            charge = self._charge(conn, lineage, epsilon, delta, rho)
            self._refuse_if_over(conn, lineage, scope, charge, delta)
            answer = compute()
            if not isinstance(answer, (bytes, bytearray, memoryview)):
                raise TypeError("compute() must return the answer serialized as bytes.")
            answer = bytes(answer)
            answer_sha = _sha256_hex(answer)
            entry = self._append(
                conn,
                kind="spend",
                principal=principal,
                lineage=lineage,
                scope=scope,
                extract_id=extract_id,
                query_json=query_json,
                query_key=key,
                epsilon=epsilon,
                delta=delta,
                rho=rho,
                charge=charge,
                answer_sha256=answer_sha,
            )
            conn.execute(
                "INSERT INTO answers (lineage, extract_id, scope, query_key, answer, answer_sha256, entry_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (lineage, extract_id, scope, key, answer, answer_sha, entry.entry_id),
            )
        return SpendResult(answer=answer, reused=False, entry_id=entry.entry_id, charged=charge)

    # ------------------------------------------------------------------ releases

    def record_release(
        self, *, lineage: str, extract_id: str, release_id: str, digest: str, principal: str
    ) -> LedgerEntry:
        """Record that a release was published (or find the record of the identical one).

        ``digest`` is a keyed digest of the release's tables; publishing the same tables
        again returns the first record, so a rebuild finds its release id.
        """
        lineage = _check_lineage(lineage)
        extract_id = _check_extract(extract_id)
        with self._write() as conn:
            for row in conn.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE kind = 'release' AND lineage = ? AND extract_id = ? ORDER BY id",
                (lineage, extract_id),
            ).fetchall():
                entry = _row_to_entry(row)
                if entry.detail.get("digest") == digest:
                    return entry
            return self._append(
                conn,
                kind="release",
                principal=_check_text("principal", principal, 200),
                lineage=lineage,
                extract_id=extract_id,
                detail_json=_canonical_json({"release_id": release_id, "digest": digest}),
            )

    def entry(self, entry_id: int) -> LedgerEntry | None:
        """The entry with this id, or ``None``."""
        if isinstance(entry_id, bool) or not isinstance(entry_id, int) or not 0 < entry_id < 2**62:
            return None
        with self._transaction("DEFERRED") as conn:
            self._check(conn, answers=False)
            row = conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else _row_to_entry(row)

    # ------------------------------------------------------------------- reading

    def history(
        self,
        lineage: str | None = None,
        scope: str | None = None,
        principal: str | None = None,
        kind: str | None = None,
    ) -> list[LedgerEntry]:
        """Ledger entries in order, optionally filtered by lineage, scope, principal and kind."""
        clauses: list[str] = []
        params: list[str] = []
        for column, value in (("lineage", lineage), ("scope", scope), ("principal", principal), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._transaction("DEFERRED") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM entries{where} ORDER BY id", params).fetchall()
        return [_row_to_entry(row) for row in rows]
