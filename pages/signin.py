"""Sign-in for the researcher and steward pages: Streamlit OIDC when configured, else local accounts.

A local sign-in leaves a signed, expiring token in the page session
(:func:`analytics.auth.issue_session`), bound to the browser that signed in: the
token of Streamlit's XSRF cookie, which every connection of that browser sends and
a session id replayed from elsewhere does not carry. Without that cookie (XSRF
protection turned off) the token is bound to the connection itself. Failed
sign-ins are slowed down and locked out per account and per client by
:func:`analytics.auth.sign_in`.
"""

from __future__ import annotations

import binascii
import hashlib

import streamlit as st

from analytics import auth
from pages.common import show_error, text_cap

#: The session-state key of the sign-in token.
SESSION_KEY = "auth_session"
XSRF_COOKIE = "_streamlit_xsrf"


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def xsrf_token(cookie: str) -> str:
    """The browser's XSRF token inside Streamlit's cookie ("2|mask|masked|time"), or the raw cookie.

    Streamlit re-masks the token on every page load; the token itself stays the same for the browser.

    >>> xsrf_token("2|01020304|0306070b|1700000000")
    '02040404'
    """
    parts = cookie.strip("\"'").split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = binascii.a2b_hex(parts[1]), binascii.a2b_hex(parts[2])
        except (binascii.Error, ValueError):
            return cookie
        if mask:
            return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked)).hex()
    return cookie


def _connection_id() -> str:
    """An id of the current websocket connection ("" outside a server, e.g. in AppTest)."""
    try:
        from streamlit import runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None or not runtime.exists() or type(runtime.get_instance()) is not runtime.Runtime:
            return ""  # AppTest runs pages on a stand-in runtime with no connection
        client = runtime.get_instance().get_client(ctx.session_id)
        return "" if client is None else f"connection:{id(client)}"
    except Exception:  # internals moved: fall back to the cookie and headers only
        return ""


def session_binding() -> str:
    """What a sign-in is bound to: the browser's XSRF token, else the connection; plus the user agent."""
    cookie = st.context.cookies.get(XSRF_COOKIE)
    browser = f"xsrf:{xsrf_token(cookie)}" if isinstance(cookie, str) and cookie else _connection_id()
    agent = st.context.headers.get("User-Agent", "")
    agent = agent if isinstance(agent, str) else ""
    return hashlib.sha256(f"{browser}|{agent}".encode()).hexdigest()


def client_id() -> str:
    """Who is asking, for the per-client sign-in limit: the IP address ("local" on this machine)."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) and ip else "local"


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
            show_error(
                f"You are signed in as {text_cap(email, 120)}, but no role is recorded for you. Ask a data steward "
                "to add your e-mail with: python -m analytics users add EMAIL --role researcher --oidc"
            )
            return None
        st.sidebar.button("Sign out", on_click=st.logout)
        return auth.User(email, role)
    token = st.session_state.get(SESSION_KEY)
    if isinstance(token, str):
        try:
            user = auth.verify_session(token, session_binding())
        except auth.AuthError as exc:
            del st.session_state[SESSION_KEY]
            st.warning(f"Signed out: {exc}.")
        else:
            st.sidebar.caption(f"Signed in as {text_cap(user.name, 64)} ({user.role}).")
            if st.sidebar.button("Sign out", key="sign_out"):
                del st.session_state[SESSION_KEY]
                st.rerun()
            return user
    st.info(
        "This page needs sign-in. Accounts are created by a data steward with "
        "`python -m analytics users add NAME --role researcher`."
    )
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name", max_chars=auth.MAX_NAME_LENGTH)
        password = st.text_input(
            "Password", type="password", key="sign_in_password", max_chars=auth.MAX_PASSWORD_LENGTH
        )
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            user = auth.sign_in(name, password, client=client_id())
        except auth.AuthError as exc:
            show_error(f"Sign-in refused: {exc}.")
            return None
        st.session_state[SESSION_KEY] = auth.issue_session(user, session_binding())
        st.rerun()
    return None


def require(action: str) -> auth.User:
    """Stop the page unless a signed-in user may do ``action``; say why when not."""
    user = current_user()
    if user is None:
        st.stop()
    assert user is not None
    if not user.can(action):
        show_error(
            f"Refused: {text_cap(user.name, 64)} is a {user.role}; only a data steward can administer budgets and "
            "see the full ledger."
        )
        st.stop()
    return user
