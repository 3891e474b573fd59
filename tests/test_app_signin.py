"""Signed-in pages: refused without sign-in or with the wrong role, working with the right one;
guessing is throttled in the page, and a session shown to another browser is signed out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth, config
from pages import signin

APP = str(config.REPO_ROOT / "app.py")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_throttle(sample_home: Path) -> Iterator[None]:
    """Each test starts without recorded failures (the sample home is shared by the session)."""
    (sample_home / auth.THROTTLE_FILE).unlink(missing_ok=True)
    yield
    (sample_home / auth.THROTTLE_FILE).unlink(missing_ok=True)


def _plain(markdown: str) -> str:
    """The text a reader sees of a banner whose markdown was escaped."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _errors(at: AppTest) -> list[str]:
    return [_plain(e.value) for e in at.error]


def _warnings(at: AppTest) -> list[str]:
    return [_plain(w.value) for w in at.warning]


def _page(path: str, user: auth.User | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    if user is not None:
        auth.add_user(user.name, user.role, PASSWORD)
        _sign_in(at, user.name, PASSWORD)
        assert not at.exception, [e.message for e in at.exception]
    return at


def _sign_in(at: AppTest, name: str, password: str) -> None:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click().run()


@pytest.mark.parametrize("path", ["pages/table_builder.py", "pages/steward.py"])
def test_unauthenticated_users_see_only_the_sign_in_form(sample_home: Path, path: str) -> None:
    at = _page(path)
    assert any("needs sign-in" in i.value for i in at.info)
    assert at.text_input(key="sign_in_name") is not None
    assert not at.title or at.title[0].value not in ("Table builder", "Privacy budgets and ledger")


def test_wrong_password_is_refused_in_words(sample_home: Path) -> None:
    auth.add_user("ann", "researcher", PASSWORD)
    at = _page("pages/table_builder.py")
    _sign_in(at, "ann", "wrong password!")
    assert any("Sign-in refused: unknown user or wrong password" in e for e in _errors(at))
    _sign_in(at, "ann", PASSWORD)
    assert at.title[0].value == "Table builder"


def test_a_session_without_a_valid_token_is_not_signed_in(sample_home: Path) -> None:
    """Putting a User (or a forged token) into the session state signs nobody in."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["user"] = auth.User("sam", "steward")
    at.session_state[signin.SESSION_KEY] = "eyJ1IjoiIHNhbSJ9.AAAA"
    at.run()
    at.switch_page("pages/steward.py").run()
    assert not at.title or at.title[0].value != "Privacy budgets and ledger"
    assert any("not issued by this server" in w for w in _warnings(at))


def test_guessing_is_slowed_then_locked_out_even_for_the_right_password(sample_home: Path) -> None:
    auth.add_user("ann", "researcher", PASSWORD)
    at = _page("pages/table_builder.py")
    for _ in range(auth.ACCOUNT_POLICY.free):
        _sign_in(at, "ann", "wrong password!")
        assert any("unknown user or wrong password" in e for e in _errors(at))
    _sign_in(at, "ann", "wrong password!")  # back-off: refused before the password is checked
    assert any("too many failed sign-ins" in e for e in _errors(at))
    _sign_in(at, "ann", PASSWORD)  # the right password, during the back-off
    assert any("too many failed sign-ins" in e for e in _errors(at))
    assert not at.title or at.title[0].value != "Table builder"
    stored = (sample_home / auth.THROTTLE_FILE).read_text()
    assert "ann" not in stored and "wrong password" not in stored  # digests only
    assert len(json.loads(stored)["failures"]) == 2  # one account, one client


def test_a_replayed_session_on_another_connection_is_signed_out(
    sample_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("pages/table_builder.py", auth.User("ann", "researcher"))
    assert at.title[0].value == "Table builder"
    # The same session id now arrives from another browser: its binding (XSRF cookie) differs.
    monkeypatch.setattr(signin, "session_binding", lambda: "another browser")
    at.run()
    assert not at.title or at.title[0].value != "Table builder"
    assert any("another browser or connection" in w for w in _warnings(at))
    assert at.text_input(key="sign_in_name") is not None


def test_researcher_is_refused_the_steward_page(sample_home: Path) -> None:
    at = _page("pages/steward.py", auth.User("ann", "researcher"))
    assert any("only a data steward" in e for e in _errors(at))
    assert not at.title or at.title[0].value != "Privacy budgets and ledger"


def test_steward_sets_an_allocation_and_the_researcher_spends_it(sample_home: Path) -> None:
    at = _page("pages/steward.py", auth.User("sam", "steward"))
    assert at.title[0].value == "Privacy budgets and ledger"
    at.text_input[0].input("ann")
    at.number_input[0].set_value(1.0)
    at.button[0].click().run()
    # the bundled sample accounts in zCDP (analytics.lineage.SAMPLE_ACCOUNTING): allocations are in rho
    assert any("researcher:ann: allocation ρ = 1" in s.value for s in at.success)

    at = _page("pages/table_builder.py", auth.User("ann", "researcher"))
    assert "remaining ρ = 1" in at.caption[0].value and "bundled-sample" in at.caption[0].value
    at.checkbox(key="confirm").check().run()
    at.button(key="run").click().run()
    assert not at.exception
    assert any("spent ρ = " in s.value for s in at.success)  # a pure-epsilon query costs epsilon^2 / 2 in rho
    at.button(key="run").click().run()
    assert any("the stored answer, free" in s.value for s in at.success)
