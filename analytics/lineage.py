"""Student populations (lineages) and the identity of the extracts attached to them.

Privacy loss is borne by students, not by files. A steward registers the student
population a state's data covers once, as a *lineage* with a cap on the loss any
one student may bear, and attaches every extract of it (a refresh, a correction, the
same rows saved another way). Every release and every researcher query spends from
that one cap (:mod:`analytics.ledger`).

An extract's identity is its content, not its bytes: the multiset of rows of every
contract table after the contract's types are applied, with columns taken in name
order. Saving the same rows as CSV, as CSV with a byte-order mark, as Parquet with
another compression, in another column or row order, gives the same identity; one
changed, added or removed row gives another. The identity is keyed (HMAC-SHA256
under the steward key, :mod:`analytics.seal`) and never leaves the ledger, so it
cannot be used to test a guess about a student.

Who may do what: only a steward registers a lineage, changes its cap, sets
allocations and attaches extracts; a release spends the lineage's ``public``
allocation and is built by a steward; a researcher spends only their own
allocation. The one exception is the bundled synthetic sample, which the dashboard
registers on first start through :func:`bootstrap_sample`, recorded in the ledger
as any other act.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path

from analytics import config, schema
from analytics.auth import User
from analytics.io import DataSource
from analytics.ledger import Ledger, LineageError, LineageStatus
from analytics.seal import StewardKey

__all__ = [
    "SAMPLE_ACCOUNTING",
    "SAMPLE_CAP",
    "SAMPLE_LINEAGE",
    "SAMPLE_PRINCIPAL",
    "SAMPLE_PUBLIC_ALLOCATION",
    "Attached",
    "PermissionDenied",
    "attach",
    "bootstrap_sample",
    "content_digest",
    "extract_identity",
    "register",
    "require_steward",
    "resolve",
]

#: The lineage of the bundled synthetic sample, registered on the dashboard's first start.
SAMPLE_LINEAGE = "bundled-sample"
#: How the sample's lineage accounts: zCDP, so the release's graduation measurements draw discrete
#: Gaussian noise and the total is stated as rho and as (epsilon, delta) (docs/privacy.md).
SAMPLE_ACCOUNTING = "zcdp"
#: Its cap and public allocation, in rho: the default release (epsilon 6.55 at delta 1e-10, rho 0.462)
#: fits twice in the public allocation; the cap (about epsilon 14.4 at delta 1e-10) leaves room for researchers.
SAMPLE_CAP = 2.0
SAMPLE_PUBLIC_ALLOCATION = 1.0
#: Who the ledger names for the first-start registration of the sample.
SAMPLE_PRINCIPAL = "first-start:bundled-sample"


class PermissionDenied(LineageError):
    """The principal's role does not allow the act; nothing was done."""


@dataclass(frozen=True)
class Attached:
    """An extract resolved to its lineage.

    Attributes:
        lineage: The lineage name.
        extract_id: The keyed identity (stays inside the product; never published).
        number: The extract's number within the lineage (1, 2, ...), which may be published.
        label: The steward's label for it.
    """

    lineage: str
    extract_id: str
    number: int
    label: str


_LOW64 = (1 << 64) - 1


def content_digest(source: DataSource, tables: tuple[str, ...] = schema.TABLE_NAMES) -> bytes:
    """An order-free digest of the rows of every table: 32 bytes.

    Per table: the number of rows and the sums (as 128-bit integers) of the upper and
    lower halves of each row's MD5, where a row is its values cast to text in
    column-name order, joined by U+001F, NULL written as ``\\N``. Sums do not depend on
    row order, and columns are taken by name, so the digest depends on content only.
    The extract's resolved configuration (end years, score scales) is included: it
    changes what the metrics count.
    The result is the SHA-256 of those figures; it is only ever used under a key.

    Args:
        source: A loaded dataset (typed per the contract).
        tables: The tables to cover.

    Returns:
        32 bytes.
    """
    digest = hashlib.sha256(b"slds-extract-v1")
    for name in sorted(tables):
        columns = sorted(schema.table(name).column_names)
        text = ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '\\N')" for c in columns)
        # One MD5 per row: md5_number's low 64 bits are md5_number_upper, its high ones
        # md5_number_lower (the digest of every existing extract is unchanged; the two
        # functions cost one MD5 each, four times the time of this form).
        row = source.sql(
            f"SELECT count(*) AS n, sum((h & {_LOW64}::UHUGEINT)::HUGEINT)::VARCHAR AS hi, "
            f"sum((h >> 64)::HUGEINT)::VARCHAR AS lo "
            f"FROM (SELECT md5_number(concat_ws(chr(31), {text})) AS h FROM {name})"
        ).iloc[0]
        digest.update(f"{name}|{','.join(columns)}|{int(row['n'])}|{row['hi']}|{row['lo']}\n".encode())
    config = getattr(source, "extract", None)
    if config is not None:  # the resolved end years and score scales change what the metrics count
        years = (config.last_school_year, config.last_wage_year, config.last_postsecondary_year)
        scales = sorted((s, g, lo, hi) for (s, g), (lo, hi) in config.score_scales.items())
        digest.update(f"extract|{years}|{scales}\n".encode())
    return digest.digest()


_DIGESTS: weakref.WeakKeyDictionary[object, bytes] = weakref.WeakKeyDictionary()


def extract_identity(source: DataSource, key: StewardKey) -> str:
    """The keyed identity of a loaded extract (hex HMAC-SHA256 of :func:`content_digest`).

    The digest is computed once per loaded source (a loaded dataset does not change).
    """
    try:
        digest = _DIGESTS[source]
    except (KeyError, TypeError):
        digest = content_digest(source)
        with contextlib.suppress(TypeError):
            _DIGESTS[source] = digest
    return key.mac("extract", digest)


def require_steward(user: User) -> None:
    """Raise :class:`PermissionDenied` unless ``user`` is a steward."""
    if user.role != "steward":
        raise PermissionDenied(
            f"{user.name} is a {user.role}; only a steward may register lineages, set caps and allocations, attach "
            "extracts and build public releases. Nothing was done."
        )


def register(
    ledger: Ledger,
    user: User,
    name: str,
    *,
    cap: float,
    description: str,
    public_allocation: float | None = None,
    accounting: str = "epsilon",
    max_query: float | None = None,
) -> LineageStatus:
    """Register a lineage (steward only), optionally with its public allocation.

    Raises:
        PermissionDenied: the user is not a steward.
        LineageError, ValueError: see :meth:`Ledger.register_lineage`.
    """
    require_steward(user)
    ledger.register_lineage(
        name, cap=cap, description=description, principal=user.name, accounting=accounting, max_query=max_query
    )
    if public_allocation is not None:
        ledger.set_allocation(name, "public", public_allocation, principal=user.name)
    return ledger.status(name)


def attach(ledger: Ledger, user: User, name: str, source: DataSource, *, label: str) -> Attached:
    """Attach a loaded extract to a lineage (steward only).

    Raises:
        PermissionDenied: the user is not a steward.
        LineageError: unknown lineage, or the extract belongs to another one.
    """
    require_steward(user)
    extract_id = extract_identity(source, ledger.key)
    number = ledger.attach_extract(name, extract_id, label=label, principal=user.name)
    return Attached(name, extract_id, number, label)


def resolve(ledger: Ledger, source: DataSource, dataset_dir: Path | None = None) -> Attached:
    """The lineage a loaded extract is attached to.

    Raises:
        LineageError: it is attached to none; the message says how a steward registers
            a lineage and attaches the extract. Nothing is ever created here.
    """
    extract_id = extract_identity(source, ledger.key)
    found = ledger.extract(extract_id)
    if found is None:
        where = str(dataset_dir) if dataset_dir is not None else "DATASET_DIR"
        known = ledger.lineages()
        hint = (
            f"If it belongs to a registered population ({', '.join(known)}), attach it: "
            f"`python -m analytics lineage attach NAME {where} --label TEXT --user STEWARD`."
            if known
            else "No population is registered yet."
        )
        raise LineageError(
            "This extract is not attached to any student population (lineage), so no budget covers it and "
            f"nothing was spent. {hint} To register a new population: `python -m analytics lineage register NAME "
            "--cap EPSILON --description TEXT --user STEWARD`, then attach the extract."
        )
    return Attached(found.lineage, extract_id, found.number, found.label)


def bootstrap_sample(ledger: Ledger, source: DataSource, dataset_dir: Path) -> Attached:
    """Register the bundled synthetic sample's lineage and attach it, once (first start).

    This is the steward path run on the dashboard's behalf, for the bundled sample only,
    and recorded in the ledger under :data:`SAMPLE_PRINCIPAL`. Any other data must be
    registered by a steward.

    Raises:
        PermissionDenied: ``dataset_dir`` is not the bundled sample.
    """
    if Path(dataset_dir).resolve() != config.SAMPLE_DATA_DIR.resolve():
        raise PermissionDenied("only the bundled sample is registered automatically; a steward registers real data.")
    extract_id = extract_identity(source, ledger.key)
    found = ledger.extract(extract_id)
    if found is not None:
        return Attached(found.lineage, extract_id, found.number, found.label)
    system = User(SAMPLE_PRINCIPAL, "steward")
    if SAMPLE_LINEAGE not in ledger.lineages():
        register(
            ledger,
            system,
            SAMPLE_LINEAGE,
            cap=SAMPLE_CAP,
            description="The bundled synthetic sample: 20,000 fictional students in fictional Maine-like districts.",
            public_allocation=SAMPLE_PUBLIC_ALLOCATION,
            accounting=SAMPLE_ACCOUNTING,
        )
    return attach(ledger, system, SAMPLE_LINEAGE, source, label="bundled synthetic sample")
