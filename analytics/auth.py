"""Users and roles for the signed-in parts of the product (table builder, ledger administration).

Two ways to sign in:

- **OIDC** (Azure AD, Okta, Google...) through Streamlit's built-in ``st.login`` when
  ``.streamlit/secrets.toml`` has an ``[auth]`` section; the user's e-mail address is
  then looked up here for a role.
- **Local mode** for a single machine: a credentials file of salted scrypt hashes,
  ``$ANALYTICS_HOME/users.json``, managed with ``python -m analytics users add NAME
  --role researcher``. Passwords are never stored or logged in clear.

Roles: ``researcher`` (queries against their own allocation) and ``steward`` (sets
allocations and release budgets, sees the full ledger; can also query).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.config import analytics_home

ROLES: tuple[str, ...] = ("researcher", "steward")
USERS_FILE = "users.json"
NAME_PATTERN = r"^[A-Za-z0-9._@+-]{2,64}$"
MIN_PASSWORD_LENGTH = 10
#: scrypt cost parameters (RFC 7914): 16 MiB of memory per hash, tens of milliseconds.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AuthError(Exception):
    """A sign-in or user-management request was refused; the message says why."""


@dataclass(frozen=True)
class User:
    """A signed-in person."""

    name: str
    role: str

    @property
    def budget_scope(self) -> str:
        """The ledger scope this user's queries spend from."""
        return f"researcher:{self.name}"

    def can(self, action: str) -> bool:
        """Whether the role allows ``action`` ('query' or 'administer')."""
        return action == "query" or (action == "administer" and self.role == "steward")


def users_path() -> Path:
    return analytics_home() / USERS_FILE


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"users": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise AuthError(f"{path} is not a credentials file written by `python -m analytics users`")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def add_user(name: str, role: str, password: str, path: Path | None = None) -> User:
    """Create or replace a local user with a salted scrypt hash of ``password``.

    Raises:
        AuthError: bad name, unknown role, or a password shorter than 10 characters.
    """
    if not re.match(NAME_PATTERN, name):
        raise AuthError(f"user name {name!r} must be 2-64 letters, digits or . _ @ + -")
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    path = path or users_path()
    data = _read(path)
    salt = secrets.token_bytes(16)
    data["users"][name] = {
        "role": role,
        "salt": salt.hex(),
        "scrypt": _hash(password, salt).hex(),
        "params": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write(path, data)
    return User(name, role)


def list_users(path: Path | None = None) -> list[User]:
    """Every local user and role (never the hashes)."""
    return [User(n, u["role"]) for n, u in sorted(_read(path or users_path())["users"].items())]


def role_of(name: str, path: Path | None = None) -> str | None:
    """The role recorded for ``name`` (a local user name or an OIDC e-mail), or None."""
    entry = _read(path or users_path())["users"].get(name)
    return None if entry is None else str(entry["role"])


def sign_in(name: str, password: str, path: Path | None = None) -> User:
    """Check a local user's password.

    Raises:
        AuthError: "unknown user or wrong password" (the same words for both, so the
            message does not reveal which names exist).
    """
    entry = _read(path or users_path())["users"].get(name)
    if entry is None or "scrypt" not in entry:
        _hash(password, b"0" * 16)  # spend the same time as a real check
        raise AuthError("unknown user or wrong password")
    p = entry["params"]
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(entry["salt"]), n=p["n"], r=p["r"], p=p["p"], dklen=32
    )
    if not hmac.compare_digest(digest.hex(), entry["scrypt"]):
        raise AuthError("unknown user or wrong password")
    return User(name, str(entry["role"]))


def add_oidc_user(email: str, role: str, path: Path | None = None) -> User:
    """Record the role of a person who signs in through OIDC (no password is kept)."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    path = path or users_path()
    data = _read(path)
    data["users"][email] = {"role": role, "oidc": True, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    _write(path, data)
    return User(email, role)
