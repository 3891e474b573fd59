"""The steward key: keyed identifiers and the seal that anchors the privacy ledger.

Two things must never be computable by someone who holds the published releases
and most of the data:

- **Identifiers derived from the data.** An extract's identity (which students,
  which rows) is needed to recognise the same students saved another way, but an
  unkeyed hash of it would let anyone test a guess about one student offline
  (build the file with the guess, hash, compare). Identities are therefore
  HMAC-SHA256 under a steward key (RFC 2104) and stay inside the ledger.
- **The ledger's history.** The ledger lives in ``$ANALYTICS_HOME``; whoever can
  write there could rewrite its hash chain, roll it back to an earlier copy or
  delete it, and the budget would start again. The ledger therefore keeps a MAC of
  its head under the same key, and every append also records, in an *anchor* file
  beside the key, how far the ledger with that random id has got (``sequence, head``),
  which ledger is kept at which path, and which extract belongs to which ledger and
  lineage. A ledger shorter than its anchor (rolled back, wherever the copy is put or
  linked from), another ledger where one was kept (deleted and recreated), a chain
  rewritten without the key, or an extract attached to a second ledger is refused.

The key is 32 random bytes in ``$ANALYTICS_KEY_FILE`` (default
``~/.config/slds-analytics/steward.key``), created with mode 0600 on first use.
It must not sit inside ``$ANALYTICS_HOME``: a key kept beside the ledger protects
nothing. Losing the key makes the ledger unverifiable (it is then refused), so a
state backs the key up with its other secrets.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.config import analytics_home

__all__ = ["KEY_BYTES", "StewardKey", "StewardKeyError", "default_key_file"]

KEY_BYTES = 32


class StewardKeyError(RuntimeError):
    """The steward key cannot be used; the message says what to do."""


def default_key_file() -> Path:
    """``$ANALYTICS_KEY_FILE``, else ``~/.config/slds-analytics/steward.key``."""
    raw = os.environ.get("ANALYTICS_KEY_FILE")
    if raw:
        return Path(raw).expanduser()
    return Path.home() / ".config" / "slds-analytics" / "steward.key"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class StewardKey:
    """A loaded steward key and the anchor file beside it.

    Attributes:
        path: The key file.
        secret: The 32 key bytes (never printed: ``repr`` hides them).
    """

    path: Path
    secret: bytes

    def __repr__(self) -> str:
        return f"StewardKey({str(self.path)!r})"

    @classmethod
    def load(cls, path: Path | None = None, *, create: bool = True, home: Path | None = None) -> StewardKey:
        """Read the key file, creating it (0600, 32 random bytes) when missing and ``create`` is true.

        Args:
            path: The key file (default :func:`default_key_file`).
            create: Create a missing key. Pass ``False`` where a missing key means a lost one.
            home: The analytics home the key must stay outside of (default ``analytics_home()``).

        Raises:
            StewardKeyError: the key sits inside the analytics home, is missing with ``create=False``,
                is readable by others, or is not 32 bytes.
        """
        path = Path(path) if path is not None else default_key_file()
        home = Path(home) if home is not None else analytics_home()
        if _inside(path, home):
            raise StewardKeyError(
                f"the steward key {path} is inside the analytics home {home}; a key kept beside the ledger "
                "protects nothing. Set ANALYTICS_KEY_FILE to a path outside it."
            )
        if not path.exists():
            if not create:
                raise StewardKeyError(f"the steward key {path} is missing; restore it from your backup of secrets")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".steward-key-", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # never overwrite a key another process just made
            os.unlink(tmp)
        if not path.is_file():
            raise StewardKeyError(f"the steward key {path} is not a regular file")
        if path.stat().st_mode & 0o077:
            raise StewardKeyError(f"the steward key {path} is readable by other users; run: chmod 600 {path}")
        secret = path.read_bytes()
        if len(secret) != KEY_BYTES:
            raise StewardKeyError(f"the steward key {path} is damaged (it must hold {KEY_BYTES} bytes)")
        return cls(path, secret)

    # ------------------------------------------------------------------ MACs

    def mac(self, purpose: str, message: bytes | str) -> str:
        """HMAC-SHA256 of ``message`` under the key, separated by ``purpose``; hex.

        >>> key = StewardKey(Path("k"), bytes(32))
        >>> key.mac("extract", "abc") == key.mac("extract", b"abc") != key.mac("release", "abc")
        True
        """
        data = message.encode("utf-8") if isinstance(message, str) else message
        return hmac.new(self.secret, purpose.encode("utf-8") + b"\0" + data, hashlib.sha256).hexdigest()

    def check(self, purpose: str, message: bytes | str, mac: str) -> bool:
        """Whether ``mac`` is :meth:`mac` of the message (constant-time comparison)."""
        return hmac.compare_digest(self.mac(purpose, message), str(mac))

    # ---------------------------------------------------------------- anchors

    @property
    def anchor_path(self) -> Path:
        """The anchor file beside the key: the furthest point each known ledger reached."""
        return self.path.with_name(self.path.name + ".anchors.json")

    @contextlib.contextmanager
    def _locked_anchors(self) -> Iterator[dict[str, Any]]:
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a+") as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            anchors = self._read_anchors()
            before = json.dumps(anchors, sort_keys=True)
            yield anchors
            if json.dumps(anchors, sort_keys=True) != before:
                fd, tmp = tempfile.mkstemp(prefix=".anchors-", dir=self.path.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(anchors, fh, indent=1, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.anchor_path)

    def _read_anchors(self) -> dict[str, Any]:
        if not self.anchor_path.exists():
            return {}
        try:
            data = json.loads(self.anchor_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StewardKeyError(
                f"the ledger anchor file {self.anchor_path} is damaged ({type(exc).__name__})"
            ) from None
        if not isinstance(data, dict):
            raise StewardKeyError(f"the ledger anchor file {self.anchor_path} is damaged")
        return data

    def _verified(self, record: object, purpose: str, message: str) -> dict[str, object]:
        if not isinstance(record, dict) or not self.check(purpose, message, str(record.get("mac", ""))):
            raise StewardKeyError(f"the ledger anchor file {self.anchor_path} was edited: a record does not verify")
        return record

    def anchor(self, ledger_uid: str) -> Anchor | None:
        """The furthest point recorded for the ledger with this random id, wherever its file is.

        Raises:
            StewardKeyError: the record exists but does not verify (the anchor file was edited).
        """
        rec = self._read_anchors().get("ledgers", {}).get(ledger_uid)
        if rec is None:
            return None
        try:
            anchor = Anchor(ledger_uid, int(rec["seq"]), str(rec["head"]))
        except (KeyError, TypeError, ValueError):
            anchor = Anchor(ledger_uid, -1, "")
        self._verified(rec, "anchor", anchor.message())
        return anchor

    def owner(self, ledger_path: Path) -> str | None:
        """The id of the ledger last kept at ``ledger_path`` (as given, or resolved through links), if any."""
        paths = self._read_anchors().get("paths", {})
        for key in _path_keys(ledger_path):
            rec = paths.get(key)
            if rec is not None:
                uid = str(rec.get("ledger_uid", "")) if isinstance(rec, dict) else ""
                self._verified(rec, "path", f"{key}:{uid}")
                return uid
        return None

    def extract_home(self, extract_id: str) -> tuple[str, str] | None:
        """(ledger id, lineage) an extract was attached to in any ledger under this key, if any."""
        rec = self._read_anchors().get("extracts", {}).get(extract_id)
        if rec is None:
            return None
        uid, lineage = (
            (str(rec.get("ledger_uid", "")), str(rec.get("lineage", ""))) if isinstance(rec, dict) else ("", "")
        )
        self._verified(rec, "extract", f"{extract_id}:{uid}:{lineage}")
        return uid, lineage

    def advance_anchor(self, ledger_path: Path, anchor: Anchor, extracts: dict[str, str] | None = None) -> None:
        """Record that the ledger reached ``anchor`` (never backwards), where it is kept, and its extracts."""
        with self._locked_anchors() as anchors:
            ledgers = anchors.setdefault("ledgers", {})
            old = ledgers.get(anchor.ledger_uid)
            if old is None or int(str(old.get("seq", -1))) < anchor.seq:
                ledgers[anchor.ledger_uid] = {
                    "seq": anchor.seq,
                    "head": anchor.head,
                    "mac": self.mac("anchor", anchor.message()),
                }
            paths = anchors.setdefault("paths", {})
            for key in _path_keys(ledger_path):
                paths[key] = {"ledger_uid": anchor.ledger_uid, "mac": self.mac("path", f"{key}:{anchor.ledger_uid}")}
            known = anchors.setdefault("extracts", {})
            for extract_id, lineage in (extracts or {}).items():
                known.setdefault(
                    extract_id,
                    {
                        "ledger_uid": anchor.ledger_uid,
                        "lineage": lineage,
                        "mac": self.mac("extract", f"{extract_id}:{anchor.ledger_uid}:{lineage}"),
                    },
                )


def _path_keys(path: Path) -> list[str]:
    """The path as given (made absolute, links kept) and resolved through links."""
    return sorted({os.path.abspath(path), str(Path(path).resolve())})


@dataclass(frozen=True)
class Anchor:
    """How far a ledger had got: its random id, last entry id and that entry's hash."""

    ledger_uid: str
    seq: int
    head: str

    def message(self) -> str:
        return f"{self.ledger_uid}:{self.seq}:{self.head}"
