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

Guessing is slowed per account and per client (:class:`Throttle`, persisted in
``$ANALYTICS_HOME/signin_throttle.json``): a few free failures, then an
exponential back-off, then a lockout; every failure is logged without the
password. A signed-in page session holds a signed, expiring token
(:func:`issue_session`) bound to the browser that signed in (its Streamlit XSRF
cookie), so a session id replayed on a new connection is not signed in
(:func:`verify_session`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
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
#: Longest name and password a sign-in reads (longer ones are refused before hashing).
MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH = 256, 1024
THROTTLE_FILE = "signin_throttle.json"
#: How long a page session stays signed in without signing in again.
SESSION_TTL_SECONDS = 8 * 3600

LOG = logging.getLogger("analytics.auth")


class AuthError(Exception):
    """A sign-in or user-management request was refused; the message says why."""


class SignInThrottled(AuthError):
    """Too many failed sign-ins for an account or from a client; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            "too many failed sign-ins for this account or from this connection; "
            f"try again in {self.retry_after} second(s)"
        )


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


def _seal(users: dict[str, Any]) -> str:
    """HMAC of the accounts under the steward key, so an edit to users.json is caught."""
    from analytics.seal import StewardKey

    return StewardKey.load().mac("users", json.dumps(users, sort_keys=True, separators=(",", ":")))


def _well_formed(entry: object) -> bool:
    if not isinstance(entry, dict) or entry.get("role") not in ROLES:
        return False
    if entry.get("oidc") is True:
        return True
    params = entry.get("params")
    return (
        isinstance(entry.get("salt"), str)
        and isinstance(entry.get("scrypt"), str)
        and isinstance(params, dict)
        and all(isinstance(params.get(k), int) and 0 < params[k] <= 2**20 for k in ("n", "r", "p"))
    )


def _read(path: Path, *, allow_unsealed: bool = False) -> dict[str, Any]:
    """The accounts file, checked: well formed and sealed under the steward key.

    Raises:
        AuthError: the file is damaged, was edited by hand, or was not written by this product.
    """
    if not path.exists():
        return {"users": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise AuthError(f"{path} cannot be read as a credentials file; restore it from backup") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise AuthError(f"{path} is not a credentials file written by `python -m analytics users`")
    if not all(isinstance(n, str) and _well_formed(u) for n, u in data["users"].items()):
        raise AuthError(f"{path} is damaged (an account has missing or wrong fields); restore it from backup")
    if "seal" not in data:
        if allow_unsealed:
            return data
        raise AuthError(
            f"{path} was written before accounts were sealed; a steward checks the accounts "
            "(`python -m analytics users list`) and seals it with `python -m analytics users seal --by STEWARD`"
        )
    if not hmac.compare_digest(str(data.get("seal", "")), _seal(data["users"])):
        raise AuthError(
            f"{path} was changed outside `python -m analytics users` (its seal under the steward key does not "
            "match); nobody can sign in until it is restored from backup"
        )
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a private JSON file atomically (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write the accounts file, sealed under the steward key."""
    _write_json(path, {"users": data["users"], "seal": _seal(data["users"])})


def seal_legacy_file(steward: str, password: str, path: Path | None = None) -> list[User]:
    """Seal an accounts file written before accounts were sealed, after a steward in it signs in.

    The steward should first check the accounts listed (an unsealed file may have been
    edited). Returns the accounts now sealed.

    Raises:
        AuthError: the file is already sealed or damaged, or the steward's sign-in fails.
    """
    path = path or users_path()
    data = _read(path, allow_unsealed=True)
    if "seal" in data:
        raise AuthError(f"{path} is already sealed")
    entry = data["users"].get(steward)
    if entry is None or entry.get("role") != "steward" or "scrypt" not in entry:
        raise AuthError("unknown user or wrong password")
    p = entry["params"]
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(entry["salt"]), n=p["n"], r=p["r"], p=p["p"], dklen=32
    )
    if not hmac.compare_digest(digest.hex(), entry["scrypt"]):
        raise AuthError("unknown user or wrong password")
    _write(path, data)
    return list_users(path)


def has_steward(path: Path | None = None) -> bool:
    """Whether any steward account exists (then only a signed-in steward may add or change accounts)."""
    return any(u.get("role") == "steward" for u in _read(path or users_path())["users"].values())


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


def list_users(path: Path | None = None, *, allow_unsealed: bool = False) -> list[User]:
    """Every local user and role (never the hashes)."""
    data = _read(path or users_path(), allow_unsealed=allow_unsealed)
    return [User(n, u["role"]) for n, u in sorted(data["users"].items())]


def role_of(name: str, path: Path | None = None) -> str | None:
    """The role recorded for ``name`` (a local user name or an OIDC e-mail), or None."""
    entry = _read(path or users_path())["users"].get(name)
    return None if entry is None else str(entry["role"])


def sign_in(
    name: str,
    password: str,
    path: Path | None = None,
    client: str = "local",
    throttle: Throttle | None = None,
    now: float | None = None,
) -> User:
    """Check a local user's password, slowed down and locked out after repeated failures.

    Args:
        name, password: what the person typed.
        path: the credentials file (default ``$ANALYTICS_HOME/users.json``).
        client: who is asking (an IP address, or "local" for the command line); failures
            count per account and per client.
        throttle: the failure record (default: :data:`THROTTLE_FILE` next to ``path``).
        now: the time in seconds since the epoch (default: the clock).

    Raises:
        SignInThrottled: too many recent failures for this account or client; nothing was checked.
        AuthError: "unknown user or wrong password" (the same words for both, so the
            message does not reveal which names exist).
    """
    path = path or users_path()
    throttle = throttle or Throttle(path.parent / THROTTLE_FILE)
    now = time.time() if now is None else now
    failures = throttle.begin(name, client, now)
    entry = _read(path)["users"].get(name) if len(name) <= MAX_NAME_LENGTH else None
    ok = False
    if len(password) > MAX_PASSWORD_LENGTH:
        pass  # refused unhashed: a megabyte password must not cost a megabyte of scrypt
    elif entry is None or "scrypt" not in entry:
        _hash(password, b"0" * 16)  # spend the same time as a real check
    else:
        p = entry["params"]
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(entry["salt"]), n=p["n"], r=p["r"], p=p["p"], dklen=32
        )
        ok = hmac.compare_digest(digest.hex(), entry["scrypt"])
    if not ok:
        LOG.warning(
            "sign-in failed: account %s, client %s, %d recent failure(s) for the account",
            name if entry is not None else f"unknown ({_digest(name)[:8]})",
            client[:64],
            failures,
        )
        raise AuthError("unknown user or wrong password")
    throttle.succeeded(name, client, now)
    LOG.info("sign-in: account %s, client %s", name, client[:64])
    assert entry is not None
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


# ---------------------------------------------------------------------------
# Rate limiting
# ---------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ThrottlePolicy:
    """How fast failed sign-ins may be retried.

    Failures are counted over the last ``window`` seconds. After ``free`` failures
    each further attempt waits ``base * 2**k`` seconds after the previous failure
    (k = 0, 1, 2, ...; at most ``max_delay``); after ``lockout`` failures no attempt
    is checked for ``lockout_seconds``. Accounts and clients have their own limits
    (a client tries many accounts, so it gets more room before a lockout).
    """

    free: int
    lockout: int
    base: float = 1.0
    max_delay: float = 300.0
    lockout_seconds: float = 900.0
    window: float = 900.0

    def wait(self, failures: list[float], now: float) -> float:
        """Seconds until the next attempt may be checked, given the failure times (0 when now)."""
        recent = [t for t in failures if now - t < self.window]
        if len(recent) >= self.lockout:
            return max(0.0, max(recent) + self.lockout_seconds - now)
        if len(recent) < self.free:
            return 0.0
        delay = min(self.base * 2 ** (len(recent) - self.free), self.max_delay)
        return max(0.0, max(recent) + delay - now)


ACCOUNT_POLICY = ThrottlePolicy(free=3, lockout=10)
CLIENT_POLICY = ThrottlePolicy(free=10, lockout=30)
_THROTTLE_LOCK = threading.Lock()


class Throttle:
    """Failed sign-ins per account and per client, kept in a JSON file written atomically.

    Keys are SHA-256 digests of the account name and the client id, so the file never
    holds what someone typed (a password typed into the name field stays unreadable).
    The file is locked while it is read and rewritten, so concurrent sign-ins from
    several sessions or processes count every failure.
    """

    def __init__(
        self, path: Path, account: ThrottlePolicy = ACCOUNT_POLICY, client: ThrottlePolicy = CLIENT_POLICY
    ) -> None:
        self.path = Path(path)
        self.policies = {"account": account, "client": client}

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, list[float]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _THROTTLE_LOCK, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state: dict[str, list[float]] = {}
            with contextlib.suppress(OSError, ValueError):
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(raw, dict):
                    state = {
                        str(k): [float(t) for t in v if isinstance(t, int | float)]
                        for k, v in raw.get("failures", {}).items()
                        if isinstance(v, list)
                    }
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                _write_json(self.path, {"failures": state})

    def _keys(self, name: str, client: str | None) -> dict[str, str]:
        keys = {"account": "account:" + _digest(name)}
        if client is not None:
            keys["client"] = "client:" + _digest(client)
        return keys

    def wait(self, name: str, client: str, now: float) -> float:
        """Seconds before a sign-in for ``name`` from ``client`` may be checked."""
        with self._state() as state:
            return self._wait(state, name, client, now)

    def _wait(self, state: dict[str, list[float]], name: str, client: str, now: float) -> float:
        keys = self._keys(name, client)
        return max(self.policies[kind].wait(state.get(key, []), now) for kind, key in keys.items())

    def begin(self, name: str, client: str, now: float) -> int:
        """Admit one attempt, counted as a failure until :meth:`succeeded` says otherwise.

        Counting first (under the file lock) means parallel attempts cannot all slip
        through before the first failure is written.

        Returns:
            the account's recent failures, this attempt included.

        Raises:
            SignInThrottled: the account or the client must wait; nothing is counted.
        """
        keys = self._keys(name, client)
        with self._state() as state:
            wait = self._wait(state, name, client, now)
            if wait > 0:
                LOG.warning("sign-in throttled: client %s must wait %.0f s", client[:64], wait)
                raise SignInThrottled(wait)
            horizon = max(p.window for p in self.policies.values())
            for key in list(state):  # forget old failures so the file stays small
                state[key] = [t for t in state[key] if now - t < horizon]
                if not state[key]:
                    del state[key]
            for key in keys.values():
                state.setdefault(key, []).append(now)
            return len(state[keys["account"]])

    def succeeded(self, name: str, client: str, now: float) -> None:
        """Forget the account's failures and un-count this attempt for the client.

        The client's earlier failures stay: signing in to one's own account must not
        reset guessing at another's.
        """
        keys = self._keys(name, client)
        with self._state() as state:
            state.pop(keys["account"], None)
            attempts = state.get(keys["client"], [])
            if now in attempts:
                attempts.remove(now)


# ---------------------------------------------------------------------------
# Page-session tokens
# ---------------------------------------------------------------------------

#: Per-process signing key: page sessions live in this process's memory only.
_SESSION_KEY = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_session(user: User, binding: str, now: float | None = None, ttl: float = SESSION_TTL_SECONDS) -> str:
    """A signed token saying ``user`` signed in from the browser identified by ``binding``.

    Kept server-side in the page session; :func:`verify_session` accepts it only
    with the same binding and before it expires (``ttl`` seconds).

    >>> token = issue_session(User("ann", "researcher"), "cookie-1", now=0.0)
    >>> verify_session(token, "cookie-1", now=60.0, check_user=False)
    User(name='ann', role='researcher')
    """
    now = time.time() if now is None else now
    body = json.dumps(
        {"u": user.name, "r": user.role, "b": _digest(binding), "exp": now + ttl, "n": secrets.token_hex(8)},
        sort_keys=True,
    ).encode("utf-8")
    mac = hmac.new(_SESSION_KEY, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify_session(
    token: str, binding: str, path: Path | None = None, now: float | None = None, check_user: bool = True
) -> User:
    """The user a session token names, if it is genuine, current and used by the same browser.

    Raises:
        AuthError: the token is forged or damaged, has expired, is presented by another
            browser or connection (a replayed session), or its user no longer has that role.
    """
    try:
        body_text, mac_text = token.split(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, AttributeError) as exc:
        raise AuthError("the sign-in token is damaged; sign in again") from exc
    if not hmac.compare_digest(mac, hmac.new(_SESSION_KEY, body, hashlib.sha256).digest()):
        raise AuthError("the sign-in token was not issued by this server; sign in again")
    claims = json.loads(body)
    now = time.time() if now is None else now
    if now >= float(claims["exp"]):
        raise AuthError("your sign-in has expired; sign in again")
    if not hmac.compare_digest(str(claims["b"]), _digest(binding)):
        LOG.warning("session replay refused: account %s presented from another browser or connection", claims["u"])
        raise AuthError("this session was signed in from another browser or connection; sign in again")
    user = User(str(claims["u"]), str(claims["r"]))
    if check_user and role_of(user.name, path) != user.role:
        raise AuthError("your account or its role has changed; sign in again")
    return user
