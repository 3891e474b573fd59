"""Local sign-in: salted hashes only, refusals that say why, roles that gate administration."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import auth


def test_passwords_are_never_stored_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    auth.add_user("ann", "researcher", "correct horse battery", path)
    auth.add_user("sam", "steward", "correct horse battery", path)
    text = path.read_text()
    assert "correct horse" not in text
    assert path.stat().st_mode & 0o077 == 0  # readable by the owner only
    data = __import__("json").loads(text)
    assert data["users"]["ann"]["salt"] != data["users"]["sam"]["salt"]  # same password, different hashes
    assert data["users"]["ann"]["scrypt"] != data["users"]["sam"]["scrypt"]


def test_sign_in_checks_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    auth.add_user("ann", "researcher", "correct horse battery", path)
    assert auth.sign_in("ann", "correct horse battery", path) == auth.User("ann", "researcher")
    with pytest.raises(auth.AuthError, match="unknown user or wrong password"):
        auth.sign_in("ann", "wrong horse battery", path)
    with pytest.raises(auth.AuthError, match="unknown user or wrong password"):
        auth.sign_in("nobody", "correct horse battery", path)


def test_bad_users_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    with pytest.raises(auth.AuthError, match="at least 10 characters"):
        auth.add_user("ann", "researcher", "short", path)
    with pytest.raises(auth.AuthError, match="role must be one of"):
        auth.add_user("ann", "admin", "long enough password", path)
    with pytest.raises(auth.AuthError, match="user name"):
        auth.add_user("a b", "researcher", "long enough password", path)


def test_roles_gate_administration() -> None:
    assert auth.User("ann", "researcher").can("query")
    assert not auth.User("ann", "researcher").can("administer")
    assert auth.User("sam", "steward").can("administer")
    assert auth.User("ann", "researcher").budget_scope == "researcher:ann"


def test_oidc_users_have_roles_but_no_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    auth.add_oidc_user("ann@example.org", "steward", path)
    assert auth.role_of("ann@example.org", path) == "steward"
    with pytest.raises(auth.AuthError):
        auth.sign_in("ann@example.org", "anything at all", path)
