"""Sign-in for the researcher and steward pages: Streamlit OIDC when configured, else local accounts."""

from __future__ import annotations

import streamlit as st

from analytics import auth


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def current_user() -> auth.User | None:
    """The signed-in user, showing the sign-in controls when nobody is."""
    if _oidc_configured():
        if not st.user.is_logged_in:
            st.info("This page needs sign-in.")
            st.button("Sign in with your organisation account", on_click=st.login)
            return None
        email = str(st.user.get("email", ""))
        role = auth.role_of(email)
        if role is None:
            st.error(
                f"You are signed in as {email}, but no role is recorded for you. Ask a data steward to run "
                f"`python -m analytics users add {email} --role researcher --oidc`."
            )
            return None
        st.sidebar.button("Sign out", on_click=st.logout)
        return auth.User(email, role)
    user = st.session_state.get("user")
    if isinstance(user, auth.User):
        st.sidebar.caption(f"Signed in as **{user.name}** ({user.role}).")
        if st.sidebar.button("Sign out", key="sign_out"):
            del st.session_state["user"]
            st.rerun()
        return user
    st.info(
        "This page needs sign-in. Accounts are created by a data steward with "
        "`python -m analytics users add NAME --role researcher`."
    )
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            st.session_state["user"] = auth.sign_in(name, password)
        except auth.AuthError as exc:
            st.error(f"Sign-in refused: {exc}.")
            return None
        st.rerun()
    return None


def require(action: str) -> auth.User:
    """Stop the page unless a signed-in user may do ``action``; say why when not."""
    user = current_user()
    if user is None:
        st.stop()
    assert user is not None
    if not user.can(action):
        st.error(
            f"Refused: {user.name} is a {user.role}; only a data steward can administer budgets and see "
            "the full ledger."
        )
        st.stop()
    return user
