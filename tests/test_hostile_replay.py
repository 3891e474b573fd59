"""Session replay against a real server: a signed-in session id presented on a new connection.

Starts ``streamlit run app.py`` and speaks Streamlit's websocket protocol directly (protobuf
BackMsg/ForwardMsg), as an attacker holding a stolen session id would: browser A signs in to the
table builder; a new connection that presents A's session id without A's cookie is not signed in;
A itself reconnecting with its cookie still is.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from analytics import auth
from tests.live_app import running_app

pytestmark = pytest.mark.slow
websockets = pytest.importorskip("websockets")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(sample_home: Path) -> Iterator[str]:
    with running_app(sample_home) as address:
        yield address


def _xsrf_cookie(url: str) -> str:
    with urllib.request.urlopen(f"http://{url}/_stcore/health", timeout=10) as r:
        for header in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "_streamlit_xsrf":
                return rest.split(";")[0]
    raise AssertionError("the server set no XSRF cookie")


@dataclass
class Run:
    """What one script run sent back."""

    session_id: str = ""
    headings: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # label -> widget id
    submit: str = ""


_PAGE_HASH: dict[str, str] = {}


async def _run(ws: object, widgets: list[object] | None = None) -> Run:
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = BackMsg()
    msg.rerun_script.page_name = "builder"
    if "builder" in _PAGE_HASH:  # once the app's navigation is known, name the page by its hash, as browsers do
        msg.rerun_script.page_script_hash = _PAGE_HASH["builder"]
    msg.rerun_script.query_string = ""
    for w in widgets or []:
        msg.rerun_script.widget_states.widgets.append(w)
    await ws.send(msg.SerializeToString())  # type: ignore[attr-defined]
    out = Run()
    while True:
        fwd = ForwardMsg()
        fwd.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=120))  # type: ignore[attr-defined]
        kind = fwd.WhichOneof("type")
        if kind == "new_session":
            out.session_id = fwd.new_session.initialize.session_id
        elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
            el = fwd.delta.new_element
            which = el.WhichOneof("type")
            if which == "heading":
                out.headings.append(el.heading.body)
            elif which in ("alert", "markdown"):
                out.texts.append(getattr(el, which).body)
            elif which == "text_input":
                out.inputs[el.text_input.label] = el.text_input.id
            elif which == "button" and el.button.is_form_submitter:
                out.submit = el.button.id
        elif kind == "navigation":
            for page in fwd.navigation.app_pages:
                if page.url_pathname == "builder":
                    _PAGE_HASH["builder"] = page.page_script_hash
        elif kind == "script_finished" and (out.headings or out.texts or out.inputs):
            return out  # a run that drew nothing ended in st.rerun(); the run after it draws the page


async def _connect(url: str, cookie: str | None, xsrf: str, session_id: str | None) -> object:
    protocols = ["streamlit", xsrf] + ([session_id] if session_id else [])
    headers = {"Origin": f"http://{url}"} | ({"Cookie": f"_streamlit_xsrf={cookie}"} if cookie else {})
    return await websockets.connect(
        f"ws://{url}/_stcore/stream",
        subprotocols=protocols,
        additional_headers=headers,
        user_agent_header="replay-test",
        max_size=None,
    )


async def _scenario(url: str) -> dict[str, Run]:
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    cookie = _xsrf_cookie(url)
    results: dict[str, Run] = {}
    a = await _connect(url, cookie, cookie, None)
    first = await _run(a)
    name, password, submit = WidgetState(), WidgetState(), WidgetState()
    assert "User name" in first.inputs, (first.headings, first.texts)
    name.id, name.string_value = first.inputs["User name"], "ann"
    password.id, password.string_value = first.inputs["Password"], PASSWORD
    submit.id, submit.trigger_value = first.submit, True
    results["signed in"] = await _run(a, [name, password, submit])
    results["signed in, rerun"] = await _run(a)
    session_id = first.session_id
    await a.close()  # type: ignore[attr-defined]
    # The owner's browser reconnects (a network blip): same cookie, same session id: still signed in.
    owner = await _connect(url, cookie, cookie, session_id)
    results["owner reconnects"] = await _run(owner)
    await owner.close()  # type: ignore[attr-defined]
    # The attacker: a new connection with the stolen session id and a cookie of its own.
    other = _xsrf_cookie(url)
    b = await _connect(url, other, other, session_id)
    results["replay"] = await _run(b)
    await b.close()  # type: ignore[attr-defined]
    # The replay signed the session out: the owner signs in again (the safe side).
    c = await _connect(url, cookie, cookie, session_id)
    results["owner after replay"] = await _run(c)
    await c.close()  # type: ignore[attr-defined]
    return results


def test_a_replayed_session_id_is_not_signed_in(server: str, sample_home: Path) -> None:
    (sample_home / auth.THROTTLE_FILE).unlink(missing_ok=True)
    auth.add_user("ann", "researcher", PASSWORD)
    results = asyncio.run(_scenario(server))
    signed_in = results["signed in"].headings + results["signed in, rerun"].headings
    assert "Table builder" in signed_in, results["signed in"]
    assert "Table builder" in results["owner reconnects"].headings  # the binding follows the browser
    replay = results["replay"]
    print(f"\nreplay of a signed-in session id on a new connection: headings {replay.headings}")
    assert "Table builder" not in replay.headings
    assert "User name" in replay.inputs  # the sign-in form, not the builder
    assert any("another browser or connection" in t.replace("\\", "") for t in replay.texts), replay.texts
    assert "Table builder" not in results["owner after replay"].headings
