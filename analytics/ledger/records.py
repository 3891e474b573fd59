"""What the privacy ledger stores: its schema, entries, errors, and the checks on their fields."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
#: Slack allowed when comparing sums of floating-point charges with a cap.
BUDGET_TOLERANCE = 1e-12
#: How a lineage composes privacy loss.
ACCOUNTING: tuple[str, ...] = ("epsilon", "zcdp")
#: The most one researcher query may cost on a new lineage (pure epsilon), unless the steward says otherwise.
DEFAULT_MAX_QUERY_EPSILON = 0.5
#: Lineage names: lower-case letters, digits and dashes.
LINEAGE_PATTERN = r"[a-z0-9][a-z0-9-]{1,62}[a-z0-9]"

_SCHEMA_VERSION = 2
_SCOPE_RE = re.compile(r"public|researcher:[A-Za-z0-9._@+-]{2,64}")
_LINEAGE_RE = re.compile(LINEAGE_PATTERN)
_HEX_RE = re.compile(r"[0-9a-f]{16,128}")
_KINDS = ("lineage", "cap", "allocation", "policy", "extract", "spend", "release")

_TRIGGERS = {
    "entries_no_update": "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries\n"
    "BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: entries cannot be changed'); END",
    "entries_no_delete": "CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries\n"
    "BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: entries cannot be deleted'); END",
    "answers_no_update": "CREATE TRIGGER answers_no_update BEFORE UPDATE ON answers\n"
    "BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: answers cannot be changed'); END",
    "answers_no_delete": "CREATE TRIGGER answers_no_delete BEFORE DELETE ON answers\n"
    "BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only: answers cannot be deleted'); END",
}

_TABLES = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID""",
    f"""CREATE TABLE entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in _KINDS)})),
    created_at    TEXT NOT NULL,
    principal     TEXT NOT NULL,
    lineage       TEXT NOT NULL,
    scope         TEXT,
    extract_id    TEXT,
    query_json    TEXT,
    query_key     TEXT,
    epsilon       REAL NOT NULL,
    delta         REAL NOT NULL,
    rho           REAL,
    charge        REAL NOT NULL,
    amount        REAL,
    detail_json   TEXT,
    answer_sha256 TEXT,
    prev_hash     TEXT NOT NULL,
    entry_hash    TEXT NOT NULL UNIQUE
)""",
    "CREATE INDEX entries_by_lineage ON entries (lineage, kind, scope)",
    """CREATE TABLE answers (
    lineage       TEXT NOT NULL,
    extract_id    TEXT NOT NULL,
    scope         TEXT NOT NULL,
    query_key     TEXT NOT NULL,
    answer        BLOB NOT NULL,
    answer_sha256 TEXT NOT NULL,
    entry_id      INTEGER NOT NULL UNIQUE REFERENCES entries (id),
    PRIMARY KEY (lineage, extract_id, scope, query_key)
) WITHOUT ROWID""",
    *_TRIGGERS.values(),
]

#: Every object the ledger's schema creates (type, name); anything else in the file is tampering.
_SCHEMA_OBJECTS = frozenset(
    {("table", "meta"), ("table", "entries"), ("table", "answers"), ("index", "entries_by_lineage")}
    | {("trigger", name) for name in _TRIGGERS}
)

_COLUMNS = (
    "id, kind, created_at, principal, lineage, scope, extract_id, query_json, query_key, epsilon, delta, rho, "
    "charge, amount, detail_json, answer_sha256, prev_hash, entry_hash"
)


# --------------------------------------------------------------------------- errors


class LedgerError(Exception):
    """Base class of the ledger's errors; each message says what to do."""


class LineageError(LedgerError):
    """An unknown lineage, an extract attached to none, or a steward act that cannot be done."""


class LedgerTamperedError(LedgerError):
    """The ledger cannot be trusted (edited, re-chained, rolled back, deleted or damaged).

    Attributes:
        entry_id: The first entry at which the problem shows, or ``None``.
        problem: What is wrong, in a sentence.
    """

    def __init__(self, entry_id: int | None, problem: str) -> None:
        self.entry_id = entry_id
        self.problem = problem
        where = f"entry {entry_id}" if entry_id is not None else "the ledger"
        super().__init__(
            f"The privacy ledger cannot be trusted ({where}): {problem} Nothing was spent; "
            "restore the ledger from its backup (see docs/privacy.md)."
        )


class BudgetExceededError(LedgerError):
    """A spend was refused because an allocation or the lineage cap cannot cover it; nothing was spent.

    Attributes:
        lineage: The student population.
        scope: The allocation asked against.
        requested: The charge the query needed (in the lineage's unit).
        remaining: What the binding limit had left.
        limit: Which limit refused: ``'allocation'``, ``'cap'`` or ``'per-query maximum'``.
        unit: ``'epsilon'`` or ``'rho'``.
    """

    def __init__(
        self, *, lineage: str, scope: str, requested: float, remaining: float, limit: str, unit: str, total: float
    ) -> None:
        self.lineage = lineage
        self.scope = scope
        self.requested = requested
        self.remaining = remaining
        self.limit = limit
        self.unit = unit
        self.total = total
        if limit == "per-query maximum":
            why = f"above the per-query maximum of {unit}={_fmt(total)} that the steward set"
        elif limit == "cap":
            why = (
                f"but the lineage's cap (the most any student may bear, over every release and researcher) "
                f"has only {unit}={_fmt(remaining)} of {_fmt(total)} left"
            )
        else:
            why = f"but the allocation of {scope!r} has only {unit}={_fmt(remaining)} of {_fmt(total)} left"
        super().__init__(
            f"Refused: this costs {unit}={_fmt(requested)} from {scope!r} on lineage {lineage!r}, {why}; "
            "nothing was spent."
        )


# ------------------------------------------------------------------------ dataclasses


@dataclass(frozen=True)
class SpendResult:
    """What :meth:`Ledger.spend_or_reuse` hands back.

    Attributes:
        answer: The serialized noisy answer, byte for byte as ``compute()`` produced it.
        reused: ``True`` when the answer was already stored and nothing was spent.
        entry_id: Id of the spend entry that produced (and paid for) the answer.
        charged: What this call charged, in the lineage's unit (``0.0`` when reused).
    """

    answer: bytes
    reused: bool
    entry_id: int
    charged: float


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger, as stored (see the module docstring for the kinds)."""

    entry_id: int
    kind: str
    created_at: str
    principal: str
    lineage: str
    scope: str | None
    extract_id: str | None
    query_json: str | None
    query_key: str | None
    epsilon: float
    delta: float
    rho: float | None
    charge: float
    amount: float | None
    detail_json: str | None
    answer_sha256: str | None
    prev_hash: str
    entry_hash: str

    @property
    def query(self) -> dict[str, Any] | None:
        """The query as a dict (spend entries), else ``None``."""
        return None if self.query_json is None else json.loads(self.query_json)

    @property
    def detail(self) -> dict[str, Any]:
        """The entry's details (lineage description, extract label, release id, ...)."""
        return {} if self.detail_json is None else json.loads(self.detail_json)

    def hashed_fields(self) -> dict[str, Any]:
        """The fields covered by ``entry_hash`` (everything but the two hashes)."""
        fields = dict(self.__dict__)
        fields.pop("prev_hash")
        fields.pop("entry_hash")
        return fields

    def computed_hash(self) -> str:
        """Recompute ``entry_hash`` from ``prev_hash`` and the stored fields."""
        return _sha256_hex((self.prev_hash + _canonical_json(self.hashed_fields())).encode("utf-8"))


@dataclass(frozen=True)
class ChainHead:
    """Result of a successful :meth:`Ledger.verify`: entries checked and the last entry's hash."""

    n_entries: int
    head_hash: str


@dataclass(frozen=True)
class ExtractRecord:
    """An extract attached to a lineage: its number within the lineage (1, 2, ...) and label."""

    lineage: str
    number: int
    label: str
    attached_at: str


@dataclass(frozen=True)
class LineageStatus:
    """Where a lineage stands: its cap, what is spent, and each allocation.

    Attributes:
        name, description: As registered.
        accounting: ``'epsilon'`` or ``'zcdp'``; ``unit`` is ``'epsilon'`` or ``'rho'``.
        cap: The most any student may bear, in ``unit``.
        spent: What all spenders together have spent, in ``unit``.
        delta_spent: Sum of the deltas of approximate-DP spends (``epsilon`` accounting).
        max_query: The most one researcher query may cost, in ``unit``.
        allocations: scope -> (allocated, spent), in ``unit``.
        extracts: The attached extracts, oldest first.
        releases: (release id, ledger entry id) of each release recorded, oldest first.
    """

    name: str
    description: str
    accounting: str
    cap: float
    spent: float
    delta_spent: float
    max_query: float
    allocations: dict[str, tuple[float, float]] = field(default_factory=dict)
    extracts: list[ExtractRecord] = field(default_factory=list)
    releases: list[tuple[str, int]] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "rho" if self.accounting == "zcdp" else "epsilon"

    @property
    def max_query_epsilon(self) -> float:
        """The largest pure-epsilon researcher query the per-query maximum allows.

        Under zCDP a pure epsilon query costs epsilon**2 / 2, so this is sqrt(2 * max_query).
        """
        return self.max_query if self.accounting == "epsilon" else math.sqrt(2.0 * self.max_query)

    @property
    def remaining(self) -> float:
        return max(0.0, self.cap - self.spent)

    def epsilon_at(self, delta: float = 1e-10) -> tuple[float, float]:
        """The total loss so far as ``(epsilon, delta)``.

        For ``epsilon`` accounting this is ``(spent, delta_spent)``; for ``zcdp``, the
        conversion of Canonne, Kamath & Steinke (2020, Prop. 12 / Cor. 13) at the given
        ``delta`` (:func:`analytics.accounting.rho_to_epsilon`; never above Bun & Steinke's
        Prop. 1.3, :func:`epsilon_from_rho`).
        """
        if self.accounting == "epsilon":
            return self.spent, self.delta_spent
        from analytics.accounting import rho_to_epsilon

        return rho_to_epsilon(self.spent, delta), delta


# -------------------------------------------------------------------------- helpers


def epsilon_from_rho(rho: float, delta: float) -> float:
    """rho-zCDP implies (rho + 2*sqrt(rho*ln(1/delta)), delta)-DP (Bun & Steinke 2016, Prop. 1.3).

    >>> round(epsilon_from_rho(0.5, 1e-10), 3)
    7.286
    """
    if rho < 0 or not 0 < delta < 1:
        raise ValueError("rho must be >= 0 and delta in (0, 1)")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


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

    Two queries are the same question exactly when their canonical JSON is equal.

    Example:
        >>> normalize_query({"by": ["district"], "table": "acgr"})
        '{"by":["district"],"table":"acgr"}'
        >>> normalize_query({"table": "acgr", "by": ("district",)})
        '{"by":["district"],"table":"acgr"}'
    """
    if not isinstance(query, Mapping):
        raise TypeError("query must be a mapping (a dict describing the question).")
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

    >>> query_key({"b": 1, "a": 2}) == query_key({"a": 2, "b": 1})
    True
    """
    return _sha256_hex(normalize_query(query).encode("utf-8"))


def _check_text(name: str, value: object, limit: int = 500) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise ValueError(f"{name} must be printable text of 1 to {limit} characters.")
    return value


def _check_lineage(name: object) -> str:
    if not isinstance(name, str) or not _LINEAGE_RE.fullmatch(name):
        raise LineageError(
            "a lineage name is 3-64 lower-case letters, digits or dashes, starting and ending with a letter or "
            "digit (e.g. 'maine-slds')."
        )
    return name


def _check_scope(scope: object) -> str:
    if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
        raise ValueError("scope must be 'public' or 'researcher:<user name>' (2-64 letters, digits or . _ @ + -).")
    return scope


def _check_extract(extract_id: object) -> str:
    if not isinstance(extract_id, str) or not _HEX_RE.fullmatch(extract_id):
        raise ValueError("extract_id must be lower-case hex (an identity from analytics.lineage.extract_identity).")
    return extract_id


def _check_number(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number.")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"{name} must be a finite number {'above' if positive else 'of at least'} 0.")
    return number


def _row_to_entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(*row)
