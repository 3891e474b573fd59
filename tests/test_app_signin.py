"""Signed-in pages: refused without sign-in or with the wrong role, working with the right one."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth, config

APP = str(config.REPO_ROOT / "app.py")


def _page(path: str, user: auth.User | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if user is not None:
        at.session_state["user"] = user
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("path", ["pages/table_builder.py", "pages/steward.py"])
def test_unauthenticated_users_see_only_the_sign_in_form(sample_home: Path, path: str) -> None:
    at = _page(path)
    assert any("needs sign-in" in i.value for i in at.info)
    assert at.text_input(key="sign_in_name") is not None
    assert not at.title or at.title[0].value not in ("Table builder", "Privacy budgets and ledger")


def test_wrong_password_is_refused_in_words(sample_home: Path) -> None:
    auth.add_user("ann", "researcher", "correct horse battery")
    at = _page("pages/table_builder.py")
    at.text_input(key="sign_in_name").input("ann")
    at.text_input(key="sign_in_password").input("wrong password!")
    at.button[0].click().run()
    assert any("Sign-in refused: unknown user or wrong password" in e.value for e in at.error)
    at.text_input(key="sign_in_password").input("correct horse battery")
    at.button[0].click().run()
    assert at.title[0].value == "Table builder"


def test_researcher_is_refused_the_steward_page(sample_home: Path) -> None:
    at = _page("pages/steward.py", auth.User("ann", "researcher"))
    assert any("only a data steward" in e.value for e in at.error)
    assert not at.title or at.title[0].value != "Privacy budgets and ledger"


def test_steward_sets_an_allocation_and_the_researcher_spends_it(sample_home: Path) -> None:
    at = _page("pages/steward.py", auth.User("sam", "steward"))
    assert at.title[0].value == "Privacy budgets and ledger"
    at.text_input[0].input("ann")
    at.number_input[0].set_value(1.0)
    at.button[0].click().run()
    assert any("researcher:ann: allocation ε = 1" in s.value for s in at.success)

    at = _page("pages/table_builder.py", auth.User("ann", "researcher"))
    assert "remaining ε = 1" in at.caption[0].value and "bundled-sample" in at.caption[0].value
    at.checkbox(key="confirm").check().run()
    at.button(key="run").click().run()
    assert not at.exception
    assert any("spent ε = 0.25" in s.value for s in at.success)
    at.button(key="run").click().run()
    assert any("the stored answer, free" in s.value for s in at.success)
