"""The privacy ledger (analytics/ledger.py): one cap per student population, sealed, refusing when untrusted."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from analytics.accounting import rho_to_epsilon
from analytics.ledger import (
    BudgetExceededError,
    Ledger,
    LedgerError,
    LedgerTamperedError,
    LineageError,
    normalize_query,
    query_key,
)
from analytics.seal import StewardKey, StewardKeyError

REPO_ROOT = Path(__file__).resolve().parent.parent
X1 = "a1" * 32  # keyed extract identities (any lower-case hex)
X2 = "b2" * 32
L = "maine-slds"


def make_key(folder: Path) -> StewardKey:
    return StewardKey.load(folder / "keys" / "steward.key", home=folder / "home")


@pytest.fixture
def key(tmp_path: Path) -> StewardKey:
    return make_key(tmp_path)


@pytest.fixture
def ledger(tmp_path: Path, key: StewardKey) -> Ledger:
    led = Ledger(tmp_path / "home" / "ledger.sqlite3", key=key)
    led.register_lineage(L, cap=2.0, description="Maine students 2011-2025", principal="sam")
    led.set_allocation(L, "public", 1.5, principal="sam")
    led.set_allocation(L, "researcher:ann", 1.0, principal="sam")
    led.attach_extract(L, X1, label="2025 extract", principal="sam")
    return led


class Counter:
    """A compute() that counts its calls and returns a distinct answer each time."""

    def __init__(self, prefix: str = "answer") -> None:
        self.prefix = prefix
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return f"{self.prefix}-{self.calls}".encode()


def spend(ledger: Ledger, query: dict[str, Any], /, epsilon: float = 0.25, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "principal": "builder",
        "lineage": L,
        "extract_id": X1,
        "scope": "public",
        "query": query,
        "epsilon": epsilon,
        "compute": Counter(),
    }
    args.update(kwargs)
    return ledger.spend_or_reuse(**args)


def raw_sql(path: Path, *statements: str) -> None:
    """Change the ledger file behind the ledger's back, as an attacker with file access would."""
    with closing(sqlite3.connect(path)) as conn:
        for trigger in ("entries_no_update", "entries_no_delete", "answers_no_update", "answers_no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for sql in statements:
            conn.execute(sql)
        conn.commit()


def restore_triggers(path: Path) -> None:
    from analytics.ledger import _TRIGGERS

    with closing(sqlite3.connect(path)) as conn:
        for sql in _TRIGGERS.values():
            conn.execute(sql)
        conn.commit()


# ----------------------------------------------------------------------------- basics


def test_queries_normalise_to_one_key() -> None:
    assert normalize_query({"table": "acgr", "by": ("district",)}) == '{"by":["district"],"table":"acgr"}'
    assert query_key({"b": 1, "a": 2}) == query_key({"a": 2, "b": 1})


def test_spend_is_charged_to_the_scope_and_the_lineage(ledger: Ledger) -> None:
    first = spend(ledger, {"table": "acgr"}, epsilon=0.5)
    assert (first.reused, first.charged) == (False, 0.5)
    status = ledger.status(L)
    assert status.spent == 0.5 and status.allocations["public"] == (1.5, 0.5)
    assert status.allocations["researcher:ann"] == (1.0, 0.0)
    assert [e.kind for e in ledger.history(lineage=L)] == [
        "lineage",
        "policy",
        "allocation",
        "allocation",
        "extract",
        "spend",
    ]


def test_same_question_same_extract_same_scope_is_answered_once(ledger: Ledger) -> None:
    compute = Counter()
    first = spend(ledger, {"table": "acgr"}, compute=compute)
    again = spend(ledger, {"table": "acgr"}, compute=compute)
    assert again.reused and again.answer == first.answer and again.charged == 0.0 and compute.calls == 1
    assert ledger.status(L).spent == 0.25


def test_stored_answers_never_cross_scopes(ledger: Ledger) -> None:
    public = spend(ledger, {"table": "acgr"})
    theirs = spend(ledger, {"table": "acgr"}, scope="researcher:ann", compute=Counter("ann"))
    assert not theirs.reused and theirs.answer != public.answer
    assert ledger.status(L).spent == 0.5


def test_a_refreshed_extract_is_a_new_question_on_the_same_cap(ledger: Ledger) -> None:
    spend(ledger, {"table": "acgr"}, epsilon=1.0)
    ledger.attach_extract(L, X2, label="2026 refresh", principal="sam")
    with pytest.raises(BudgetExceededError, match=r"allocation of 'public' has only epsilon=0\.5"):
        spend(ledger, {"table": "acgr"}, extract_id=X2, epsilon=1.0)
    refreshed = spend(ledger, {"table": "acgr"}, extract_id=X2, epsilon=0.5)
    assert not refreshed.reused and ledger.status(L).spent == 1.5


def test_the_cap_binds_every_spender_together_and_a_refusal_spends_nothing(ledger: Ledger) -> None:
    spend(ledger, {"q": 1}, epsilon=1.5)  # public allocation exhausted; 0.5 left under the cap of 2
    spend(ledger, {"q": 2}, scope="researcher:ann", epsilon=0.5)
    before = ledger.history()
    compute = Counter()
    with pytest.raises(BudgetExceededError, match="cap") as refused:
        spend(ledger, {"q": 3}, scope="researcher:ann", epsilon=0.25, compute=compute)
    assert refused.value.limit == "cap" and "nothing was spent" in str(refused.value)
    assert compute.calls == 0 and ledger.history() == before and ledger.status(L).spent == 2.0


def test_per_query_maximum_refuses_before_anything_is_spent(ledger: Ledger) -> None:
    ledger.set_max_query(L, 0.3, principal="sam")
    compute = Counter()
    with pytest.raises(BudgetExceededError, match="per-query maximum"):
        spend(ledger, {"q": 1}, scope="researcher:ann", epsilon=0.31, compute=compute)
    assert compute.calls == 0 and ledger.status(L).spent == 0.0
    assert not spend(ledger, {"q": 1}, scope="researcher:ann", epsilon=0.3).reused


def test_nothing_creates_a_budget_implicitly(ledger: Ledger) -> None:
    with pytest.raises(LineageError, match="not attached"):
        spend(ledger, {"q": 1}, extract_id=X2)
    with pytest.raises(BudgetExceededError, match="only epsilon=0 of 0"):
        spend(ledger, {"q": 1}, scope="researcher:zed")
    with pytest.raises(LineageError, match="no student population"):
        spend(ledger, {"q": 1}, lineage="other-lineage")
    assert ledger.status(L).spent == 0.0


def test_steward_limits_are_checked(ledger: Ledger) -> None:
    with pytest.raises(LineageError, match="above the cap"):
        ledger.set_allocation(L, "researcher:bob", 2.5, principal="sam")
    spend(ledger, {"q": 1}, epsilon=1.0)
    with pytest.raises(LineageError, match="cannot go below"):
        ledger.set_allocation(L, "public", 0.5, principal="sam")
    with pytest.raises(LineageError, match="given back"):
        ledger.set_cap(L, 0.5, principal="sam")
    with pytest.raises(LineageError, match="already registered"):
        ledger.register_lineage(L, cap=9, description="again", principal="sam")
    with pytest.raises(LineageError, match="already attached to lineage"):
        ledger.register_lineage("other", cap=1, description="x", principal="sam")
        ledger.attach_extract("other", X1, label="same rows", principal="sam")
    with pytest.raises(LineageError, match="lineage name"):
        ledger.register_lineage("Bad Name!", cap=1, description="x", principal="sam")


def test_failed_compute_records_nothing(ledger: Ledger) -> None:
    def boom() -> bytes:
        raise RuntimeError("mechanism failed")

    before = ledger.history()
    with pytest.raises(RuntimeError):
        spend(ledger, {"q": 1}, compute=boom)
    assert ledger.history() == before


def test_zcdp_lineage_adds_rho_and_states_epsilon_at_delta(tmp_path: Path, key: StewardKey) -> None:
    led = Ledger(tmp_path / "home" / "z.sqlite3", key=key)
    led.register_lineage("zed", cap=1.0, description="zCDP population", principal="sam", accounting="zcdp")
    led.set_allocation("zed", "public", 1.0, principal="sam")
    led.attach_extract("zed", X1, label="x", principal="sam")
    a = led.spend_or_reuse(
        principal="b",
        lineage="zed",
        extract_id=X1,
        scope="public",
        query={"q": 1},
        epsilon=0.0,
        rho=0.1,
        compute=lambda: b"g",
    )
    b = led.spend_or_reuse(
        principal="b", lineage="zed", extract_id=X1, scope="public", query={"q": 2}, epsilon=0.5, compute=lambda: b"l"
    )
    assert a.charged == 0.1 and b.charged == pytest.approx(0.125)  # pure epsilon costs epsilon^2 / 2
    status = led.status("zed")
    eps, delta = status.epsilon_at(1e-10)
    assert status.spent == pytest.approx(0.225) and delta == 1e-10
    # Canonne, Kamath & Steinke 2020's conversion, never above Bun & Steinke's 0.225 + 2 sqrt(0.225 ln 1e10)
    assert eps == pytest.approx(rho_to_epsilon(0.225, 1e-10)) and eps < 0.225 + 2 * (0.225 * 23.02585093) ** 0.5


# ----------------------------------------------------------------------- concurrency

N_WORKERS = 4
QUERIES_PER_WORKER = 20
EPSILON = 0.125


def _spend_worker(path: str, key_path: str, home: str, scope: str, start: Any, results: Any) -> None:
    try:
        ledger = Ledger(path, key=StewardKey.load(Path(key_path), home=Path(home)))
        start.wait(60)
        spent, refused = [], 0
        for i in range(QUERIES_PER_WORKER):
            try:
                r = ledger.spend_or_reuse(
                    principal=scope,
                    lineage=L,
                    extract_id=X1,
                    scope=scope,
                    query={"who": scope, "q": i},
                    epsilon=EPSILON,
                    compute=lambda i=i: f"{scope}/{i}".encode(),
                )
            except BudgetExceededError:
                refused += 1
            else:
                spent.append(r.entry_id)
        results.put((scope, spent, refused, None))
    except BaseException as exc:
        results.put((scope, [], 0, repr(exc)))


def test_public_and_three_researchers_spending_at_once_never_pass_the_cap(tmp_path: Path, key: StewardKey) -> None:
    path = tmp_path / "home" / "ledger.sqlite3"
    ledger = Ledger(path, key=key)
    ledger.register_lineage(L, cap=4.0, description="population", principal="sam", max_query=1.0)
    scopes = ["public", "researcher:ann", "researcher:bob", "researcher:cy"]
    for scope in scopes:
        ledger.set_allocation(L, scope, 2.0, principal="sam")  # 8 allocated in all, over a cap of 4
    ledger.attach_extract(L, X1, label="x", principal="sam")

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start, results = ctx.Event(), ctx.Queue()
    home = str(tmp_path / "home")
    workers = [
        ctx.Process(target=_spend_worker, args=(str(path), str(key.path), home, s, start, results)) for s in scopes
    ]
    for w in workers:
        w.start()
    start.set()
    reports = [results.get(timeout=180) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [r[3] for r in reports] == [None] * len(scopes)
    status = ledger.status(L)
    assert status.spent <= status.cap + 1e-12
    assert status.spent == pytest.approx(4.0)  # 80 attempts at 0.125 fill the cap of 4 exactly
    assert sum(len(r[1]) for r in reports) == 32 and sum(r[2] for r in reports) == 80 - 32
    assert all(spent <= 2.0 for _, spent in status.allocations.values())
    ledger.verify()


CRASH_SCRIPT = """
import sys, time
from pathlib import Path
from analytics.ledger import Ledger
from analytics.seal import StewardKey

path, marker, key_path, home = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])

def compute():
    marker.write_text("inside compute")
    time.sleep(120)
    return b"never returned"

Ledger(path, key=StewardKey.load(key_path, home=home)).spend_or_reuse(
    principal="doomed", lineage="maine-slds", extract_id="a1" * 32, scope="public",
    query={"table": "slow"}, epsilon=0.5, compute=compute)
"""


def test_killed_mid_spend_records_nothing(tmp_path: Path, ledger: Ledger, key: StewardKey) -> None:
    spend(ledger, {"table": "fast"})
    before = ledger.history()
    marker = tmp_path / "inside-compute"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with open(tmp_path / "child-stderr.txt", "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CRASH_SCRIPT, str(ledger.path), str(marker), str(key.path), str(tmp_path / "home")],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, (tmp_path / "child-stderr.txt").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
    assert ledger.history() == before
    retry = spend(ledger, {"table": "slow"}, epsilon=0.5, compute=Counter("retry"))
    assert (retry.reused, retry.answer) == (False, b"retry-1")
    ledger.verify()


# ------------------------------------------------------------------------- tamper


def assert_refuses_from_now_on(ledger: Ledger, match: str) -> None:
    """Detected by verify, and no spend (or steward act) is accepted afterwards."""
    with pytest.raises(LedgerTamperedError, match=match):
        ledger.verify()
    compute = Counter()
    with pytest.raises(LedgerTamperedError, match="Nothing was spent"):
        spend(ledger, {"table": "after tamper"}, compute=compute)
    assert compute.calls == 0
    with pytest.raises(LedgerTamperedError):
        ledger.set_allocation(L, "public", 2.0, principal="sam")


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    for i in range(3):
        spend(ledger, {"q": i})
    return ledger


def test_ordinary_updates_and_deletes_are_refused(filled: Ledger) -> None:
    with closing(sqlite3.connect(filled.path)) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE entries SET charge = 0")
    with closing(sqlite3.connect(filled.path)) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM entries WHERE id = 8")


def test_edited_entry_is_detected(filled: Ledger) -> None:
    raw_sql(filled.path, "UPDATE entries SET charge = 0.01 WHERE id = 7")
    restore_triggers(filled.path)
    assert_refuses_from_now_on(filled, "entry 7.*edited")


def test_dropped_guards_are_detected(filled: Ledger) -> None:
    raw_sql(filled.path)  # drops the triggers, changes nothing else
    assert_refuses_from_now_on(filled, "append-only guard")


def test_recomputed_chain_without_the_key_is_detected(filled: Ledger) -> None:
    """An attacker who edits a spend and recomputes every hash still cannot forge the seal."""
    raw_sql(filled.path, "UPDATE entries SET charge = 0.01 WHERE kind = 'spend'")
    with closing(sqlite3.connect(filled.path)) as conn:
        from analytics.ledger import _COLUMNS, GENESIS_HASH, LedgerEntry

        rows = conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY id").fetchall()
        prev = GENESIS_HASH
        for row in rows:
            e = LedgerEntry(*row)
            fixed = LedgerEntry(**{**e.__dict__, "prev_hash": prev, "entry_hash": ""})
            new_hash = fixed.computed_hash()
            conn.execute("UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE id = ?", (prev, new_hash, e.entry_id))
            prev = new_hash
        conn.commit()
    restore_triggers(filled.path)
    assert_refuses_from_now_on(filled, "seal does not match")


def test_rolled_back_ledger_is_detected(filled: Ledger, tmp_path: Path) -> None:
    """Restoring an earlier copy of the whole file (a valid, sealed ledger) is caught by the anchor."""
    copy = tmp_path / "backup.sqlite3"
    with closing(sqlite3.connect(filled.path)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    spend(filled, {"q": "after backup"}, epsilon=0.5)
    for suffix in ("-wal", "-shm"):
        Path(str(filled.path) + suffix).unlink(missing_ok=True)
    shutil.copy(copy, filled.path)
    assert_refuses_from_now_on(filled, "rolled back")


def test_removed_tail_is_detected(filled: Ledger) -> None:
    raw_sql(filled.path, "DELETE FROM answers WHERE entry_id = 8", "DELETE FROM entries WHERE id = 8")
    restore_triggers(filled.path)
    assert_refuses_from_now_on(filled, "once held entry 8|seal|rolled back")


def test_deleted_ledger_is_detected(filled: Ledger, key: StewardKey) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(filled.path) + suffix).unlink(missing_ok=True)
    fresh = Ledger(filled.path, key=key)  # a new empty file where the ledger was
    with pytest.raises(LedgerTamperedError, match="deleted or replaced"):
        fresh.register_lineage(L, cap=20, description="start again", principal="mallory")
    assert fresh.history() == []


def test_truncated_ledger_gives_a_message_not_a_traceback(filled: Ledger, key: StewardKey) -> None:
    with closing(sqlite3.connect(filled.path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = filled.path.read_bytes()
    filled.path.write_bytes(data[: len(data) // 3])
    with pytest.raises(LedgerError, match="cannot be trusted") as caught:
        Ledger(filled.path, key=key).verify()
    assert str(filled.path) in str(caught.value)


def test_garbage_file_is_refused_with_a_message(tmp_path: Path, key: StewardKey) -> None:
    path = tmp_path / "home" / "ledger.sqlite3"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match=r"not a readable ledger|damaged"):
        Ledger(path, key=key).verify()


def test_edited_answer_is_detected_and_never_served(filled: Ledger) -> None:
    raw_sql(filled.path, "UPDATE answers SET answer = X'00' WHERE entry_id = 7")
    restore_triggers(filled.path)
    with pytest.raises(LedgerTamperedError, match="stored answer was edited"):
        filled.verify()
    with pytest.raises(LedgerTamperedError):
        spend(filled, {"q": 1})


def test_edited_anchor_is_detected(filled: Ledger, key: StewardKey) -> None:
    text = key.anchor_path.read_text().replace('"seq": 8', '"seq": 3')
    key.anchor_path.write_text(text)
    with pytest.raises(LedgerTamperedError, match=r"anchor file .* was edited"):
        filled.verify()


def test_another_key_cannot_verify_the_ledger(filled: Ledger, tmp_path: Path) -> None:
    other = make_key(tmp_path / "elsewhere")
    with pytest.raises(LedgerTamperedError, match="seal"):
        Ledger(filled.path, key=other).verify()


# ---------------------------------------------------------------------------- keys


def test_the_key_may_not_live_in_the_analytics_home(tmp_path: Path) -> None:
    with pytest.raises(StewardKeyError, match="inside the analytics home"):
        StewardKey.load(tmp_path / "home" / "steward.key", home=tmp_path / "home")


def test_the_key_is_private_and_never_printed(tmp_path: Path, key: StewardKey) -> None:
    assert key.path.stat().st_mode & 0o777 == 0o600
    assert key.secret.hex() not in repr(key)
    key.path.chmod(0o644)
    with pytest.raises(StewardKeyError, match="chmod 600"):
        StewardKey.load(key.path, home=tmp_path / "home")


def test_default_ledger_location_comes_from_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANALYTICS_LEDGER", str(tmp_path / "elsewhere" / "l.sqlite3"))
    monkeypatch.setenv("ANALYTICS_KEY_FILE", str(tmp_path / "keys" / "k"))
    assert Ledger.default().path == tmp_path / "elsewhere" / "l.sqlite3"


# ------------------------------------------------------------- attacks found in review


def test_extra_triggers_that_swallow_spends_are_refused(filled: Ledger) -> None:
    with closing(sqlite3.connect(filled.path)) as conn:
        conn.execute(
            "CREATE TRIGGER zz_skip BEFORE INSERT ON entries WHEN NEW.kind = 'spend' BEGIN SELECT RAISE(IGNORE); END"
        )
        conn.commit()
    assert_refuses_from_now_on(filled, "not part of the ledger")


def test_rollback_through_a_link_or_another_path_is_detected(filled: Ledger, tmp_path: Path, key: StewardKey) -> None:
    copy = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(filled.path)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    spend(filled, {"q": "after the copy"}, epsilon=0.5)
    elsewhere = Ledger(copy, key=key)  # e.g. ANALYTICS_LEDGER pointed at the old copy
    assert_refuses_from_now_on(elsewhere, "rolled")
    for suffix in ("", "-wal", "-shm"):
        Path(str(filled.path) + suffix).unlink(missing_ok=True)
    filled.path.symlink_to(copy)
    assert_refuses_from_now_on(Ledger(filled.path, key=key), "rolled")


def test_an_edited_answer_with_a_matching_hash_is_never_served(filled: Ledger) -> None:
    import hashlib

    fake = b"2011,999999"
    raw_sql(filled.path, f"UPDATE answers SET answer = X'{fake.hex()}', answer_sha256 = "
            f"'{hashlib.sha256(fake).hexdigest()}' WHERE entry_id = 7")  # fmt: skip
    restore_triggers(filled.path)
    with pytest.raises(LedgerTamperedError, match="does not match what the spend recorded"):
        spend(filled, {"q": 0})
    with pytest.raises(LedgerTamperedError):
        filled.set_allocation(L, "public", 2.0, principal="sam")


def test_one_extract_cannot_be_attached_in_a_second_ledger(ledger: Ledger, tmp_path: Path, key: StewardKey) -> None:
    second = Ledger(tmp_path / "second" / "ledger.sqlite3", key=key)
    second.register_lineage("fresh-start", cap=20, description="the same students again", principal="mallory")
    with pytest.raises(LineageError, match="another privacy ledger"):
        second.attach_extract("fresh-start", X1, label="same rows", principal="mallory")


def test_reads_refuse_a_rewritten_ledger_with_a_message(filled: Ledger) -> None:
    raw_sql(filled.path, "UPDATE entries SET detail_json = '{}' WHERE kind = 'lineage'")
    restore_triggers(filled.path)
    for read in (lambda: filled.status(L), filled.lineages, lambda: filled.extract(X1)):
        with pytest.raises(LedgerTamperedError):
            read()
