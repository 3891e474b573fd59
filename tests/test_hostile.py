"""A hostile-input corpus, generated in code: PII in names and free-text columns, markup, markdown,
formulas, mathtext and oversized names flowing into charts, CSV downloads and the PDF; sign-in guessing.

For each input: refused with a clear message, or accepted and harmless; no value from the data
echoed; no file half-written. ``test_validation_corpus`` prints the tally
(``pytest -s tests/test_hostile.py``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from analytics import auth, config, pii, report
from analytics.release import Release, load_release
from analytics.synth import generate
from analytics.validate import validate_dataset
from pages import common

APP = str(config.REPO_ROOT / "app.py")
BIG = "Birchwater School " * 1_200_000  # about 20 MB


@dataclass(frozen=True)
class Case:
    """One hostile value put into the first row of ``table.column``."""

    kind: str
    table: str
    column: str
    value: str
    words: str  # in the PII gate's message
    secret: str  # a piece of the value that must not appear in the report


SSN = "123-45-6789"
CASES: list[Case] = [
    # SSNs in public names and in other text columns, written every way
    Case("SSN with dots in a school name", "schools", "school_name", "Birchwater School 123.45.6789", "SSN", "6789"),
    Case("SSN in full-width digits", "districts", "district_name", "RSU １２３-４５-６７８９", "SSN", "６７８９"),
    Case("SSN with zero-width spaces", "schools", "school_name", "School 123\u200b45\u200b6789", "SSN", "6789"),
    Case("SSN with en dashes", "districts", "district_name", "RSU 123–45–6789", "SSN", "6789"),
    Case("SSN with minus signs", "schools", "school_name", "School 123−45−6789", "SSN", "6789"),
    Case("SSN in Arabic-Indic digits", "districts", "district_name", "RSU ١٢٣-٤٥-٦٧٨٩", "SSN", "٦٧٨٩"),
    Case("SSN as 9 digits in a name", "districts", "district_name", "RSU 123456789", "SSN", "123456789"),
    Case("SSN as a student key", "students", "student_key", "123456789", "SSN", "123456789"),
    Case("SSN with dashes as a student key", "students", "student_key", SSN, "SSN", "6789"),
    Case("SSN in a foreign-key text column", "ssn_collection", "district_id", "１２３４５６７８９", "SSN", "６７８９"),
    Case(
        "SSN with zero-width joiners in an allowed-value column",
        "wages",
        "naics2",
        "123\u200d45\u200d6789",
        "SSN",
        "6789",
    ),
    Case("SSN with bidi controls", "schools", "school_name", "School \u202e123-45-6789\u202c", "SSN", "6789"),
    # phone numbers
    Case("10-digit phone in a school name", "schools", "school_name", "Birchwater School 2075550199", "phone", "0199"),
    Case("formatted phone", "districts", "district_name", "RSU 14 (207) 555-0199", "phone", "0199"),
    Case("phone with dots", "schools", "school_name", "School 207.555.0199", "phone", "0199"),
    Case("phone with +1", "districts", "district_name", "RSU 14 +1 207 555 0199", "phone", "0199"),
    Case("phone in full-width digits in locale", "districts", "locale", "２０７５５５０１９９", "phone", "０１９９"),
    # e-mails
    Case("e-mail in a district name", "districts", "district_name", "RSU 14 jane.doe@example.org", "e-mail", "jane"),
    Case("e-mail with [at]", "schools", "school_name", "School jane [at] example [dot] org", "e-mail", "jane"),
    Case("e-mail with at ... dot", "districts", "district_name", "RSU 14 jane at example dot com", "e-mail", "jane"),
    Case("e-mail with a full-width @", "schools", "school_name", "School jane＠example.org", "e-mail", "jane"),
    Case("e-mail in a status column", "ssn_collection", "status", "jane.doe@example.org", "e-mail", "jane"),
    # birth dates, addresses, person names in the public lists
    Case("birth date in a school name", "schools", "school_name", "Birchwater School 03/14/2005", "date", "03/14"),
    Case("ISO birth date", "districts", "district_name", "RSU 14 2005-03-14", "date", "03-14"),
    Case("birth date in words", "schools", "school_name", "Birchwater School March 14, 2005", "date", "March 14"),
    Case("street address", "schools", "school_name", "Birchwater School, 12 Main Street", "address", "Main"),
    Case("post office box", "districts", "district_name", "RSU 14 PO Box 44", "address", "Box 44"),
    Case("a person's full name as a district", "districts", "district_name", "Jane Doe", "person", "Doe"),
    Case(
        "a person named beside a school",
        "schools",
        "school_name",
        "Birchwater School (John Q. Smith)",
        "person",
        "Smith",
    ),
    Case("honorific and surname", "schools", "school_name", "Birchwater School - Mrs. Smith", "person", "Smith"),
    Case("not an institution", "districts", "district_name", "Loon Hollow", "institution", "Loon Hollow"),
    # markup, markdown, formulas, mathtext, oversized and invisible text in public names
    Case("HTML link", "districts", "district_name", '<a href="https://evil.example">RSU 14</a>', "markup", "evil"),
    Case("HTML image", "schools", "school_name", "<img src=x onerror=alert(1)> School", "markup", "onerror"),
    Case("markdown link", "districts", "district_name", "[RSU 14](https://evil.example)", "markup", "evil"),
    Case("javascript link", "schools", "school_name", "School javascript:alert(1)", "markup", "alert"),
    Case("mathtext", "districts", "district_name", "$x^{$ School District", "markup", "x^{"),
    Case("template braces", "schools", "school_name", "School {{7*7}}", "markup", "7*7"),
    Case("formula with =", "districts", "district_name", '=HYPERLINK("http://evil","RSU")', "formula", "HYPERLINK"),
    Case("formula with +", "schools", "school_name", "+cmd School", "formula", "+cmd"),
    Case("formula with @", "districts", "district_name", "@SUM(A1) District", "formula", "SUM(A1)"),
    Case("leading tab", "schools", "school_name", "\tBirchwater School", "formula", "\tBirchwater"),
    Case("7-digit run", "districts", "district_name", "RSU 14 1234567", "7 or more digits", "1234567"),
    Case("bidi override", "schools", "school_name", "Birchwater \u202eloohcS", "invisible", "loohcS"),
    Case("line break", "districts", "district_name", "RSU 14\nignore previous", "invisible", "ignore previous"),
    Case("a 20 MB name", "schools", "school_name", BIG, "longer than", BIG[:200]),
]
#: Harmless inputs in the same columns: accepted, and the sample still validates.
HARMLESS: list[tuple[str, str, str]] = [
    ("schools", "school_name", "Dr. Lewis S. Libby School"),
    ("schools", "school_name", "St. John's Catholic School"),
    ("schools", "school_name", "École élémentaire Sainte-Agathe School"),
    ("districts", "district_name", "RSU 14"),
    ("districts", "district_name", "Portland Arts & Technology School District"),
    ("schools", "school_name", "Birchwater Middle/High School"),
]


@dataclass(frozen=True)
class Base:
    """A small generated dataset: its folder and its tables."""

    folder: Path
    tables: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    folder = tmp_path_factory.mktemp("hostile_base")
    generate(folder, n_students=300, seed=12)
    shutil.rmtree(folder / "truth")
    return Base(folder, {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")})


def _write(folder: Path, base: Base, table: str, column: str, value: str) -> Path:
    """A copy of the base dataset with ``value`` in the first row of ``table.column``."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(base.folder, folder)
    df = base.tables[table].copy()
    df[column] = df[column].astype(object)
    df.loc[df.index[0], column] = value
    df.to_parquet(folder / f"{table}.parquet", index=False)
    return folder


def test_validation_corpus(base: Base, tmp_path: Path) -> None:
    """Every PII, markup, formula and oversized value is refused by the PII gate, naming file and column,
    without the value; nothing is loaded. Harmless look-alikes are accepted."""
    tally = {"tried": 0, "refused clearly": 0, "accepted harmlessly": 0, "leaked": 0, "published PII": 0}
    failures: list[str] = []
    for case in CASES:
        tally["tried"] += 1
        rep = validate_dataset(_write(tmp_path / "d", base, case.table, case.column, case.value))
        gate = [str(p) for p in rep.problems if "PII gate" in p.problem and p.column == case.column]
        if rep.ok:
            tally["published PII"] += 1
            failures.append(f"{case.kind}: accepted")
            continue
        # public names are only checked by the gate, so the whole report must be clean of them
        gate_text = rep.text() if case.column in pii.PUBLIC_TEXT_COLUMNS else "\n".join(gate)
        leaked = any(s and s in gate_text for s in (case.value, case.secret, pii.normalise_text(case.value)))
        if leaked:
            tally["leaked"] += 1
            failures.append(f"{case.kind}: the value is in the PII gate's message")
        if any(case.words in g and f"{case.table}.parquet" in g for g in gate):
            tally["refused clearly"] += 1
        else:
            failures.append(f"{case.kind}: no PII-gate message naming '{case.words}' ({len(rep.problems)} problems)")
    for table, column, value in HARMLESS:
        tally["tried"] += 1
        rep = validate_dataset(_write(tmp_path / "d", base, table, column, value))
        if rep.ok:
            tally["accepted harmlessly"] += 1
        else:
            failures.append(f"harmless {value!r} refused: {rep.problems[0].problem}")
    print("\nvalidation corpus:", json.dumps(tally))
    assert not failures, failures
    assert tally["leaked"] == tally["published PII"] == 0


def test_whole_validation_report_never_quotes_a_value(base: Base, tmp_path: Path) -> None:
    leaks = []
    for case in (c for c in CASES if c.column not in pii.PUBLIC_TEXT_COLUMNS):
        text = validate_dataset(_write(tmp_path / "d", base, case.table, case.column, case.value)).text()
        if case.secret in text or case.value in text:
            leaks.append(case.kind)
    assert not leaks, leaks


# ---------------------------------------------------------------------------
# Rendering: charts, CSV downloads, banners, PDF
# ---------------------------------------------------------------------------

RENDER_NAMES = [
    '<a href="https://evil.example">Birchwater</a>',
    "<img src=x onerror=alert(1)>",
    "[click me](https://evil.example)",
    "javascript:alert(1)",
    "$x^{$ and $\\frac{1}{0}$",
    "%{customdata[0]} %{x}",
    '=HYPERLINK("http://evil","x")',
    "+1",
    "-2",
    "@cmd",
    "\tTabbed",
    "\rReturn",
    "Birch\u202ewater\u200b",
    "<br><b>bold</b>",
    BIG,
]


def _evil_release(release: Release) -> Release:
    districts = release.table("districts").copy()
    districts["district_name"] = districts["district_name"].astype(object)
    n = len(RENDER_NAMES)
    districts.loc[districts.index[:n], "district_name"] = RENDER_NAMES
    schools = release.table("schools").copy()
    schools["school_name"] = schools["school_name"].astype(object)
    schools.loc[schools.index[:n], "school_name"] = RENDER_NAMES
    return dataclasses.replace(release, tables={**release.tables, "districts": districts, "schools": schools})


def _raw_markup(text: str) -> list[str]:
    return re.findall(r"<a |<img|<b>|<br>(?!%)", text)


def test_chart_labels_and_hover_text_are_escaped_and_capped() -> None:
    df = pd.DataFrame(
        {
            "name": RENDER_NAMES,
            "value": [0.5] * len(RENDER_NAMES),
            "value_moe95": [0.1] * len(RENDER_NAMES),
            "n_students": [100] * len(RENDER_NAMES),
            "flag": ["reliable"] * len(RENDER_NAMES),
            "flag_reason": ["<a href=x>why</a>"] * len(RENDER_NAMES),
            "cohort": list(range(len(RENDER_NAMES))),
        }
    )
    cat_json = common.caterpillar(df, "name", "%", True).to_json()
    cat = json.loads(cat_json)
    labels = [y for trace in cat["data"] for y in trace["y"]]
    assert len(labels) == len(RENDER_NAMES)
    assert max(len(y) for y in labels) <= 2 * common.LABEL_CAP  # escaped entities may lengthen a capped label
    text = json.dumps(cat)  # plain JSON: no escaping of < by the encoder
    assert not _raw_markup(text), _raw_markup(text)
    assert "&lt;a href" in text
    trend = json.loads(common.trend(df, "cohort", "name", "%", True, "Cohort").to_json())
    for trace in trend["data"]:
        assert "name" not in trace or len(trace["name"]) <= 2 * common.LABEL_CAP
        template = trace.get("hovertemplate") or ""
        assert "customdata[0]} %{x}" not in template  # a name is never part of a template
    assert not _raw_markup(json.dumps(trend))
    raw = common.caterpillar(df.assign(name="<a href=x>y</a>"), "name", "%", True)
    assert "<a href" not in json.dumps(json.loads(raw.to_json()))


def test_csv_downloads_are_neutralised_numeric_and_marked_utf8() -> None:
    frame = pd.DataFrame({"District": RENDER_NAMES, "Value (%)": [50.0] * len(RENDER_NAMES), "n": [-3] * 15})
    data = common.csv_bytes(frame)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = pd.read_csv(pd.io.common.BytesIO(data), encoding="utf-8-sig", keep_default_na=False)
    assert rows["Value (%)"].dtype.kind == "f" and rows["n"].dtype.kind == "i"  # numbers stay numbers
    for cell in rows["District"]:
        assert not str(cell).startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert len(str(cell)) <= 1001
    assert len(data) < 30_000  # the 20 MB name is capped


def test_error_banners_escape_markdown() -> None:
    text = common.escape_markdown("refused: [click](https://evil.example) $x$ <b>b</b> :red[x]")
    for raw in ("[click]", "](", "$x$", "<b>", ":red["):
        assert raw not in text
    assert re.sub(r"\\(.)", r"\1", text) == "refused: [click](https://evil.example) $x$ <b>b</b> :red[x]"


@pytest.fixture()
def evil_pages(sample_home: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Pages read a release whose names are hostile; returns every CSV download the pages build."""
    evil = _evil_release(load_release(sample_home / "releases"))
    monkeypatch.setattr(common, "load_release", lambda folder, release_id: evil)
    st.cache_data.clear()  # pages cache what they derive from a release by its id, which the evil one shares
    st.cache_resource.clear()
    downloads: list[bytes] = []
    real = common.download_csv

    def recording(frame: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        downloads.append(common.csv_bytes(frame))  # what the button serves when clicked (files are made on click)
        real(frame, *args, **kwargs)

    monkeypatch.setattr(common, "download_csv", recording)
    yield downloads
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize(
    "page", ["pages/district_profile.py", "pages/schools.py", "pages/workforce.py", "pages/ssn_collection.py"]
)
def test_pages_draw_hostile_names_as_text(evil_pages: list[bytes], page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    query = {"pages/workforce.py": {"cut": "district"}}.get(page, {})
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert specs and not _raw_markup(specs), _raw_markup(specs)
    assert 'evil.example">' not in specs
    markdown = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert "](https://evil" not in markdown and "<a href" not in markdown
    assert evil_pages, "the page offers no CSV download"
    for data in evil_pages:
        assert data.startswith(b"\xef\xbb\xbf") and len(data) < 2_000_000
        for line in data.decode("utf-8-sig").splitlines():
            for cell in line.split(","):
                assert not cell.lstrip('"').startswith(("=", "+", "@", "\t")), cell
    for box in at.selectbox:
        assert all(len(str(o)) <= 100 for o in box.options)


def test_pdf_and_workbook_with_hostile_names_are_complete_or_absent(sample_home: Path, tmp_path: Path) -> None:
    evil = _evil_release(load_release(sample_home / "releases"))
    paths = report.build_report(evil, tmp_path / "evil")
    assert {p.name for p in tmp_path.iterdir()} == {"evil.xlsx", "evil.zip", "evil.pdf"}  # no temporary left
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


# ---------------------------------------------------------------------------
# Sign-in guessing
# ---------------------------------------------------------------------------


def _attack(
    sign_in: Callable[[str, float], bool], seconds: float, start: float = 1_000_000.0
) -> tuple[int, int, float]:
    """Guess as fast as the throttle allows for ``seconds``; return (checked, refused unchecked, end time)."""
    now, checked, throttled = start, 0, 0
    while now < start + seconds:
        try:
            sign_in("wrong password!", now)
            checked += 1
            now += 0.05
        except auth.SignInThrottled as exc:
            throttled += 1
            now += exc.retry_after
        except auth.AuthError:
            checked += 1
            now += 0.05  # as fast as one core hashes
    return checked, throttled, now


def test_guessing_is_limited_per_account_and_survives_a_restart(tmp_path: Path, caplog: Any) -> None:
    users = tmp_path / "users.json"
    auth.add_user("ann", "researcher", "correct horse battery", users)

    def guess(password: str, now: float) -> bool:
        auth.sign_in("ann", password, users, client="10.0.0.9", now=now)
        return True

    per_minute, _, _ = _attack(guess, 60)
    per_hour, _, end = _attack(guess, 3600, start=2_000_000.0)
    print(f"\nsign-in guesses checked: {per_minute} in the first minute, {per_hour} per hour sustained")
    assert per_minute <= auth.ACCOUNT_POLICY.free + 6
    assert per_hour <= 60
    # Ten failures lock the account: even the right password is not checked, also by a new Throttle
    # (a restarted server), which reads the same file.
    now = end + 7200
    checked_before_lockout = 0
    while True:
        try:
            auth.sign_in("ann", "wrong password!", users, client="10.0.0.9", now=now)
        except auth.SignInThrottled as exc:
            if exc.retry_after > auth.ACCOUNT_POLICY.max_delay:
                break  # locked out
            now += exc.retry_after
        except auth.AuthError:
            checked_before_lockout += 1
            now += 0.05
    with pytest.raises(auth.SignInThrottled):
        auth.sign_in("ann", "correct horse battery", users, client="10.0.0.9", now=now + 1)
    assert checked_before_lockout == auth.ACCOUNT_POLICY.lockout
    assert "correct horse" not in caplog.text and "wrong password" not in caplog.text
    stored = (tmp_path / auth.THROTTLE_FILE).read_text()
    assert "ann" not in stored and "10.0.0.9" not in stored
    # After the lockout the right password works.
    later = now + auth.ACCOUNT_POLICY.lockout_seconds + 1
    assert auth.sign_in("ann", "correct horse battery", users, client="10.0.0.9", now=later).name == "ann"


def test_spraying_many_accounts_from_one_client_is_limited(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    auth.add_user("ann", "researcher", "correct horse battery", users)
    now, checked = 1_000_000.0, 0
    for i in range(200):
        try:
            auth.sign_in(f"user{i}", "Password123!", users, client="10.0.0.7", now=now)
        except auth.SignInThrottled as exc:
            now += exc.retry_after
            continue
        except auth.AuthError:
            checked += 1
        now += 0.05
        if now > 1_000_000.0 + 600:
            break
    assert checked <= auth.CLIENT_POLICY.lockout
    with pytest.raises(auth.SignInThrottled):  # the client is locked out for every account
        auth.sign_in("ann", "correct horse battery", users, client="10.0.0.7", now=now)


def test_parallel_guesses_cannot_slip_past_the_count(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    auth.add_user("ann", "researcher", "correct horse battery", users)
    outcomes: list[str] = []

    def one() -> None:
        try:
            auth.sign_in("ann", "wrong password!", users, client="10.0.0.8", now=1_000_000.0)
        except auth.SignInThrottled:
            outcomes.append("throttled")
        except auth.AuthError:
            outcomes.append("checked")

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("checked") == auth.ACCOUNT_POLICY.free
    assert outcomes.count("throttled") == 20 - auth.ACCOUNT_POLICY.free


def test_session_tokens_are_bound_signed_and_expiring(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    user = auth.add_user("ann", "researcher", "correct horse battery", users)
    token = auth.issue_session(user, "browser-A", now=0.0)
    assert auth.verify_session(token, "browser-A", users, now=10.0) == user
    with pytest.raises(auth.AuthError, match="another browser or connection"):
        auth.verify_session(token, "browser-B", users, now=10.0)  # the replayed session id
    with pytest.raises(auth.AuthError, match="expired"):
        auth.verify_session(token, "browser-A", users, now=auth.SESSION_TTL_SECONDS + 1)
    body, mac = token.split(".")
    forged = body.replace(body[5], "A" if body[5] != "A" else "B", 1) + "." + mac
    with pytest.raises(auth.AuthError):
        auth.verify_session(forged, "browser-A", users, now=10.0)
    auth.add_user("ann", "steward", "correct horse battery", users)  # role changed: sign in again
    with pytest.raises(auth.AuthError, match="role has changed"):
        auth.verify_session(token, "browser-A", users, now=10.0)
