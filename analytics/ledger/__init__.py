"""The privacy ledger: every unit of privacy loss ever spent, per student population.

The unit of accounting is a **lineage**: a student population (a state's SLDS, say)
that a steward registers once with a **cap**, the most privacy loss any one of its
students may ever bear. Every extract of that population (this year's files, next
year's refresh, the same files saved as CSV or Parquet) is **attached** to its
lineage, and every spender draws from the lineage's one cap: the public release
(scope ``public``) and each researcher (scope ``researcher:NAME``), each within an
allocation the steward sets. The cap and the allocation are checked in the same
transaction as the spend, so concurrent spenders can never pass the cap together.
Nothing creates a lineage, a cap or an allocation implicitly.

Accounting is per lineage, one of:

``epsilon``
    Pure epsilon-DP with basic composition: the epsilons add up (Dwork & Roth 2014,
    Thm 3.16). Caps, allocations and charges are in epsilon.
``zcdp``
    Zero-concentrated DP (Bun & Steinke 2016): rho adds up; a pure epsilon-DP
    measurement costs ``epsilon**2 / 2`` (their Prop. 1.4). Caps, allocations and
    charges are in rho; :meth:`LineageStatus.epsilon_at` states the total as
    ``(epsilon, delta)`` with ``epsilon = rho + 2*sqrt(rho*ln(1/delta))`` (their Prop. 1.3).

The ledger is a SQLite file (``$ANALYTICS_LEDGER``, default ``ledger.sqlite3`` in
``$ANALYTICS_HOME``) holding:

``entries``
    Append-only, hash-chained: ``entry_hash = sha256(prev_hash + canonical JSON of the
    entry)``. Kinds: ``lineage`` (registered, with its cap), ``cap`` (cap changed),
    ``allocation`` (a scope's allocation set), ``policy`` (the most one researcher
    query may cost), ``extract`` (an extract attached), ``spend`` (an answer paid
    for) and ``release`` (a release published).
``answers``
    The noisy answer of each spend, keyed by (lineage, extract, scope, query): the
    same question on the same extract in the same scope is answered once; asking
    again returns the stored answer and spends nothing. An answer paid for by one
    scope is never handed to another.
``meta``
    The ledger's random id and a *seal*: an HMAC of the last entry under the steward
    key (:mod:`analytics.seal`), which lives outside ``$ANALYTICS_HOME``.

Before every write the ledger checks itself (:meth:`Ledger.verify`): the append-only
triggers are in place, the chain links and hashes hold, the seal matches the head
(a chain recomputed without the key does not), and the ledger has reached at least
the point recorded in the key's anchor file (a rolled-back, replaced or deleted
ledger has not). If any check fails the write is refused and nothing is spent.

Extract identities are keyed (HMAC), so nothing stored here is a hash an outsider
could test a guess about a student against. Only query descriptions and noisy
aggregate answers are stored, never student-level data.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from analytics.seal import StewardKey
    >>> tmp = tempfile.TemporaryDirectory()
    >>> key = StewardKey(Path(tmp.name) / "steward.key", bytes(32))
    >>> ledger = Ledger(Path(tmp.name) / "ledger.sqlite3", key=key)
    >>> _ = ledger.register_lineage("maine-slds", cap=10.0, description="Maine K-12 2011-2025", principal="ann")
    >>> _ = ledger.set_allocation("maine-slds", "public", 6.0, principal="ann")
    >>> number = ledger.attach_extract("maine-slds", "e1" * 32, label="2025 extract", principal="ann")
    >>> result = ledger.spend_or_reuse(
    ...     principal="ann", lineage="maine-slds", extract_id="e1" * 32, scope="public",
    ...     query={"table": "acgr"}, epsilon=0.5, compute=lambda: b"[87.1]")
    >>> result.reused, result.charged, ledger.status("maine-slds").spent
    (False, 0.5, 0.5)
    >>> tmp.cleanup()
"""

from analytics.ledger.records import (
    _COLUMNS,
    _TRIGGERS,
    ACCOUNTING,
    BUDGET_TOLERANCE,
    DEFAULT_MAX_QUERY_EPSILON,
    GENESIS_HASH,
    LINEAGE_PATTERN,
    BudgetExceededError,
    ChainHead,
    ExtractRecord,
    LedgerEntry,
    LedgerError,
    LedgerTamperedError,
    LineageError,
    LineageStatus,
    SpendResult,
    epsilon_from_rho,
    normalize_query,
    query_key,
)
from analytics.ledger.store import Ledger

__all__ = [
    "ACCOUNTING",
    "BUDGET_TOLERANCE",
    "DEFAULT_MAX_QUERY_EPSILON",
    "GENESIS_HASH",
    "LINEAGE_PATTERN",
    "_COLUMNS",
    "_TRIGGERS",
    "BudgetExceededError",
    "ChainHead",
    "ExtractRecord",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerTamperedError",
    "LineageError",
    "LineageStatus",
    "SpendResult",
    "epsilon_from_rho",
    "normalize_query",
    "query_key",
]
