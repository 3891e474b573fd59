"""Tests of the privacy-budget ledger (analytics/ledger.py)."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from analytics.ledger import (
    GENESIS_HASH,
    BudgetExceededError,
    Ledger,
    LedgerTamperedError,
    PrivacyLoss,
    normalize_query,
    query_key,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FP = "3f2a1b0c9d8e" + "7" * 52  # a 64-hex dataset fingerprint
OTHER_FP = "ab" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


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
        "principal": "release-builder",
        "scope": "public",
        "dataset_fingerprint": FP,
        "query": query,
        "epsilon": epsilon,
        "compute": Counter(),
    }
    args.update(kwargs)
    return ledger.spend_or_reuse(**args)


def raw_sql(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Change the ledger file behind the ledger's back, as an attacker with file access would."""
    with closing(sqlite3.connect(path)) as conn:
        for trigger in ("entries_no_update", "entries_no_delete", "answers_no_update", "answers_no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute(sql, params)
        conn.commit()


# ----------------------------------------------------------------------------- basics


def test_spend_decreases_remaining_and_is_recorded(ledger: Ledger) -> None:
    assert ledger.budget("public", FP) is None
    assert ledger.set_budget("public", FP, 1.0, set_by="data-steward") == 1
    assert ledger.budget("public", FP) == 1.0
    assert ledger.remaining("public", FP) == 1.0

    result = spend(ledger, {"table": "acgr", "by": ["district"]}, epsilon=0.25)

    assert result.reused is False
    assert result.epsilon_charged == 0.25
    assert result.answer == b"answer-1"
    assert result.entry_id == 2
    assert ledger.spent("public", FP) == 0.25
    assert ledger.remaining("public", FP) == 0.75
    entries = ledger.history()
    assert [e.kind for e in entries] == ["budget", "spend"]
    budget_entry, spend_entry = entries
    assert budget_entry.principal == "data-steward"
    assert (budget_entry.epsilon_total, budget_entry.epsilon, budget_entry.query_json) == (1.0, 0.0, None)
    assert spend_entry.principal == "release-builder"
    assert spend_entry.scope == "public"
    assert spend_entry.dataset_fingerprint == FP
    assert spend_entry.query_json == '{"by":["district"],"table":"acgr"}'
    assert spend_entry.query_key == query_key({"table": "acgr", "by": ["district"]})
    assert spend_entry.query == {"table": "acgr", "by": ["district"]}
    assert (spend_entry.epsilon, spend_entry.delta, spend_entry.epsilon_total) == (0.25, 0.0, None)
    assert spend_entry.created_at.endswith("+00:00")
    assert budget_entry.prev_hash == GENESIS_HASH
    assert spend_entry.prev_hash == budget_entry.entry_hash
    head = ledger.verify()
    assert (head.n_entries, head.head_hash) == (2, spend_entry.entry_hash)


def test_spend_past_budget_is_refused_and_spends_nothing(ledger: Ledger) -> None:
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    spend(ledger, {"q": 1}, epsilon=0.75)
    compute = Counter()

    with pytest.raises(BudgetExceededError) as caught:
        spend(ledger, {"q": 2}, epsilon=0.5, principal="ann", compute=compute)

    assert str(caught.value) == (
        "Refused: 'ann' asked for epsilon=0.5 under scope 'public' on dataset 3f2a1b0c9d8e, "
        "but only epsilon=0.25 of 1 remains in that budget; nothing was spent."
    )
    err = caught.value
    assert (err.principal, err.scope, err.epsilon_requested) == ("ann", "public", 0.5)
    assert (err.epsilon_remaining, err.epsilon_total, err.dataset_fingerprint) == (0.25, 1.0, FP)
    assert compute.calls == 0
    assert ledger.spent("public", FP) == 0.75
    assert len(ledger.history()) == 2
    # What is left can still be spent exactly.
    assert spend(ledger, {"q": 3}, epsilon=0.25).epsilon_charged == 0.25
    assert ledger.remaining("public", FP) == 0.0
    ledger.verify()


def test_spend_without_budget_is_refused(ledger: Ledger) -> None:
    compute = Counter()
    with pytest.raises(BudgetExceededError, match=r"no budget has been set.*nothing was spent\.") as caught:
        spend(ledger, {"q": 1}, scope="researcher:bob", principal="bob", compute=compute)
    assert "'bob'" in str(caught.value)
    assert "'researcher:bob'" in str(caught.value)
    assert "3f2a1b0c9d8e" in str(caught.value)
    assert caught.value.epsilon_total is None
    assert compute.calls == 0
    assert ledger.history() == []
    assert ledger.remaining("researcher:bob", FP) == 0.0


def test_budget_is_per_dataset(ledger: Ledger) -> None:
    ledger.set_budget("public", OTHER_FP, 5.0, set_by="data-steward")
    with pytest.raises(BudgetExceededError):
        spend(ledger, {"q": 1})


# ------------------------------------------------------------------------- reuse


def test_identical_queries_share_one_answer_and_spend_once(ledger: Ledger) -> None:
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    ledger.set_budget("researcher:ann", FP, 1.0, set_by="irb")
    compute = Counter()
    query_a = {"table": "acgr", "filters": {"year": 2023, "district": "D01"}, "by": ["school"]}
    query_b = {"by": ["school"], "filters": {"district": "D01", "year": 2023}, "table": "acgr"}
    assert normalize_query(query_a) == normalize_query(query_b)

    first = spend(ledger, query_a, compute=compute)
    again = [spend(ledger, query_b, compute=compute) for _ in range(3)]
    # Whoever asks, under whatever scope, gets the stored answer for free.
    other = spend(ledger, query_a, compute=compute, principal="ann", scope="researcher:ann")

    assert compute.calls == 1
    assert first.reused is False
    for result in [*again, other]:
        assert result.reused is True
        assert result.answer == first.answer == b"answer-1"
        assert result.entry_id == first.entry_id
        assert result.epsilon_charged == 0.0
    assert ledger.spent("public", FP) == 0.25
    assert ledger.spent("researcher:ann", FP) == 0.0
    assert len(ledger.history(dataset_fingerprint=FP)) == 3


def test_reuse_is_per_dataset(ledger: Ledger) -> None:
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    ledger.set_budget("public", OTHER_FP, 1.0, set_by="data-steward")
    first = spend(ledger, {"q": 1}, compute=Counter("fp"))
    second = spend(ledger, {"q": 1}, dataset_fingerprint=OTHER_FP, compute=Counter("other"))
    assert (first.reused, second.reused) == (False, False)
    assert first.answer != second.answer
    assert ledger.total_spent(FP).epsilon == ledger.total_spent(OTHER_FP).epsilon == 0.25


def test_failed_compute_records_nothing(ledger: Ledger) -> None:
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")

    def broken() -> bytes:
        raise RuntimeError("noise source unavailable")

    with pytest.raises(RuntimeError, match="noise source unavailable"):
        spend(ledger, {"q": 1}, compute=broken)
    with pytest.raises(TypeError, match="bytes"):
        spend(ledger, {"q": 1}, compute=lambda: "not bytes")
    assert ledger.spent("public", FP) == 0.0
    assert len(ledger.history()) == 1
    assert spend(ledger, {"q": 1}).reused is False
    ledger.verify()


# ------------------------------------------------------------------------ budgets


def test_budget_cannot_be_set_below_spent(ledger: Ledger) -> None:
    ledger.set_budget("researcher:ann", FP, 2.0, set_by="irb")
    spend(ledger, {"q": 1}, epsilon=1.5, scope="researcher:ann", principal="ann")

    with pytest.raises(ValueError, match=r"epsilon=1\.5 is already spent") as caught:
        ledger.set_budget("researcher:ann", FP, 1.0, set_by="irb")
    assert "'researcher:ann'" in str(caught.value)
    assert ledger.budget("researcher:ann", FP) == 2.0
    assert len(ledger.history()) == 2

    # Down to exactly what is spent, then up again: the latest setting is in force.
    ledger.set_budget("researcher:ann", FP, 1.5, set_by="irb")
    assert ledger.remaining("researcher:ann", FP) == 0.0
    ledger.set_budget("researcher:ann", FP, 3.0, set_by="irb")
    assert ledger.budget("researcher:ann", FP) == 3.0
    assert ledger.remaining("researcher:ann", FP) == 1.5
    assert [e.epsilon_total for e in ledger.history(scope="researcher:ann") if e.kind == "budget"] == [
        2.0,
        1.5,
        3.0,
    ]
    ledger.verify()


def test_researchers_budgets_are_independent_and_total_sums_all_scopes(ledger: Ledger) -> None:
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    ledger.set_budget("researcher:ann", FP, 1.0, set_by="irb")
    ledger.set_budget("researcher:bob", FP, 0.5, set_by="irb")

    spend(ledger, {"q": "p"}, epsilon=0.25, delta=1e-6)
    spend(ledger, {"q": "a1"}, epsilon=0.75, scope="researcher:ann", principal="ann")
    spend(ledger, {"q": "b1"}, epsilon=0.5, scope="researcher:bob", principal="bob", delta=1e-7)
    with pytest.raises(BudgetExceededError, match="'researcher:bob'"):
        spend(ledger, {"q": "b2"}, epsilon=0.125, scope="researcher:bob", principal="bob")
    # Bob's exhausted budget does not touch Ann's.
    spend(ledger, {"q": "a2"}, epsilon=0.25, scope="researcher:ann", principal="ann")

    assert ledger.spent("researcher:ann", FP) == 1.0
    assert ledger.spent("researcher:bob", FP) == 0.5
    assert ledger.remaining("researcher:ann", FP) == 0.0
    assert ledger.remaining("public", FP) == 0.75
    total = ledger.total_spent(FP)
    assert total.epsilon == 0.25 + 0.75 + 0.5 + 0.25
    assert math.isclose(total.delta, 1.1e-6, rel_tol=1e-12)
    assert ledger.total_spent(OTHER_FP) == PrivacyLoss(epsilon=0.0, delta=0.0)

    ann = ledger.history(principal="ann")
    assert [e.query for e in ann] == [{"q": "a1"}, {"q": "a2"}]
    assert [e.kind for e in ledger.history(scope="researcher:bob")] == ["budget", "spend"]
    assert len(ledger.history(scope="researcher:ann", dataset_fingerprint=OTHER_FP)) == 0


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"epsilon": 0}, ValueError, "epsilon must be > 0"),
        ({"epsilon": -1.0}, ValueError, "epsilon must be > 0"),
        ({"epsilon": math.nan}, ValueError, "epsilon must be finite"),
        ({"epsilon": math.inf}, ValueError, "epsilon must be finite"),
        ({"epsilon": True}, TypeError, "epsilon must be a number"),
        ({"delta": 1.0}, ValueError, r"delta must be in \[0, 1\)"),
        ({"delta": -1e-9}, ValueError, r"delta must be in \[0, 1\)"),
        ({"principal": " "}, ValueError, "principal must be a non-empty string"),
        ({"scope": "admin"}, ValueError, "scope must be 'public' or 'researcher:<name>'"),
        ({"scope": "researcher:"}, ValueError, "scope must be"),
        ({"scope": "researcher:ann lee"}, ValueError, "scope must be"),
        ({"dataset_fingerprint": "not-hex"}, ValueError, "hex string"),
        ({"dataset_fingerprint": ""}, ValueError, "hex string"),
        ({"query": {}}, ValueError, "query is empty"),
        ({"query": {"x": {1, 2}}}, ValueError, "canonical JSON"),
        ({"query": {"x": math.nan}}, ValueError, "canonical JSON"),
    ],
)
def test_spend_validates_inputs(ledger: Ledger, change: dict[str, Any], error: type, message: str) -> None:
    ledger.set_budget("public", FP, 10.0, set_by="data-steward")
    compute = Counter()
    with pytest.raises(error, match=message):
        spend(ledger, {"q": 1}, compute=compute, **change)
    assert compute.calls == 0
    assert len(ledger.history()) == 1


def test_set_budget_validates_inputs(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="epsilon_total must be >= 0"):
        ledger.set_budget("public", FP, -1.0, set_by="data-steward")
    with pytest.raises(ValueError, match="finite"):
        ledger.set_budget("public", FP, math.inf, set_by="data-steward")
    with pytest.raises(ValueError, match="set_by"):
        ledger.set_budget("public", FP, 1.0, set_by="")
    with pytest.raises(ValueError, match="scope"):
        ledger.set_budget("researchers", FP, 1.0, set_by="irb")
    assert ledger.history() == []


def test_uppercase_fingerprint_is_the_same_dataset(ledger: Ledger) -> None:
    ledger.set_budget("public", FP.upper(), 1.0, set_by="data-steward")
    assert ledger.budget("public", FP) == 1.0
    assert spend(ledger, {"q": 1}, dataset_fingerprint=FP.upper()).reused is False
    assert spend(ledger, {"q": 1}).reused is True


def test_default_ledger_lives_in_analytics_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path / "home"))
    ledger = Ledger.default()
    assert ledger.path == tmp_path / "home" / "ledger.sqlite3"
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    assert Ledger(tmp_path / "home" / "ledger.sqlite3").budget("public", FP) == 1.0


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first = Ledger(path)
    first.set_budget("public", FP, 1.0, set_by="data-steward")
    answer = spend(first, {"q": 1}).answer
    second = Ledger(path)
    assert second.spent("public", FP) == 0.25
    assert spend(second, {"q": 1}).answer == answer
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -------------------------------------------------------------------- concurrency

N_WORKERS = 8
QUERIES_PER_WORKER = 12
EPSILON = 0.125  # binary-exact, so the budget below allows exactly 32 spends
BUDGET = 4.0


def _spend_worker(path: str, worker: int, start: Any, results: Any) -> None:
    """Run in a child process: spend distinct queries against the shared public budget."""
    try:
        ledger = Ledger(path)
        start.wait(60)
        # One question every worker asks: exactly one of them pays for it.
        shared = ledger.spend_or_reuse(
            principal=f"worker-{worker}",
            scope="researcher:shared",
            dataset_fingerprint=FP,
            query={"question": "shared"},
            epsilon=EPSILON,
            compute=lambda: f"shared answer drawn by worker {worker}".encode(),
        )
        spent_ids = [shared.entry_id] if not shared.reused else []
        refused = 0
        for i in range(QUERIES_PER_WORKER):
            try:
                result = ledger.spend_or_reuse(
                    principal=f"worker-{worker}",
                    scope="public",
                    dataset_fingerprint=FP,
                    query={"worker": worker, "question": i},
                    epsilon=EPSILON,
                    compute=lambda i=i: f"{worker}/{i}".encode(),
                )
            except BudgetExceededError:
                refused += 1
            else:
                assert not result.reused
                spent_ids.append(result.entry_id)
        results.put((worker, spent_ids, refused, shared.answer, None))
    except BaseException as exc:  # report, so the parent fails with the reason instead of hanging
        results.put((worker, [], 0, b"", repr(exc)))


def test_concurrent_spenders_never_exceed_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    ledger.set_budget("public", FP, BUDGET, set_by="data-steward")
    ledger.set_budget("researcher:shared", FP, 1.0, set_by="irb")

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    start = ctx.Event()
    results = ctx.Queue()
    workers = [ctx.Process(target=_spend_worker, args=(str(path), w, start, results)) for w in range(N_WORKERS)]
    for process in workers:
        process.start()
    start.set()
    reports = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    results.close()
    results.join_thread()

    errors = [report[4] for report in reports if report[4] is not None]
    assert errors == []
    spent_ids = sorted(entry_id for report in reports for entry_id in report[1])
    refused = sum(report[2] for report in reports)
    spend_entries = [e for e in ledger.history() if e.kind == "spend"]

    assert ledger.spent("public", FP) <= BUDGET
    assert ledger.spent("public", FP) == BUDGET  # 96 attempts at 0.125 exhaust 4.0 exactly
    assert len(spent_ids) == len(set(spent_ids)) == len(spend_entries) == 32 + 1
    assert spent_ids == [e.entry_id for e in spend_entries]
    assert refused == N_WORKERS * QUERIES_PER_WORKER - 32
    assert len({report[3] for report in reports}) == 1  # everyone saw the same shared answer
    assert ledger.spent("researcher:shared", FP) == EPSILON
    head = ledger.verify()
    assert head.n_entries == 2 + 33


# -------------------------------------------------------------------------- crash

CRASH_SCRIPT = """
import sys, time
from pathlib import Path
from analytics.ledger import Ledger

path, marker, fingerprint = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def compute():
    marker.write_text("inside compute")
    time.sleep(120)
    return b"never returned"

Ledger(path).spend_or_reuse(principal="doomed", scope="public", dataset_fingerprint=fingerprint,
                            query={"table": "slow"}, epsilon=0.5, compute=compute)
"""


def test_killed_mid_spend_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    marker = tmp_path / "inside-compute"
    ledger = Ledger(path)
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    spend(ledger, {"table": "fast"}, epsilon=0.25)
    before = ledger.history()

    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    with open(tmp_path / "child-stderr.txt", "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CRASH_SCRIPT, str(path), str(marker), FP],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, (tmp_path / "child-stderr.txt").read_text()
                assert time.monotonic() < deadline, "the child never reached compute()"
                time.sleep(0.02)
            # The child holds the write lock; readers are not blocked (WAL).
            assert ledger.spent("public", FP) == 0.25
            child.send_signal(signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert ledger.verify().n_entries == 2
    assert ledger.history() == before
    assert ledger.spent("public", FP) == 0.25
    # The killed spend left no answer behind: the same question is computed afresh.
    retry = spend(ledger, {"table": "slow"}, epsilon=0.5, compute=Counter("retry"))
    assert (retry.reused, retry.answer) == (False, b"retry-1")
    assert ledger.spent("public", FP) == 0.75
    ledger.verify()


# ------------------------------------------------------------------------- tamper


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Ledger, Path]:
    """A ledger with entries 1 (budget), 2, 3, 4 (spends of 0.25 on queries 1, 2, 3)."""
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    ledger.set_budget("public", FP, 1.0, set_by="data-steward")
    for q in (1, 2, 3):
        spend(ledger, {"q": q})
    ledger.verify()
    return ledger, path


def test_ledger_refuses_ordinary_updates_and_deletes(filled: tuple[Ledger, Path]) -> None:
    _, path = filled
    with closing(sqlite3.connect(path)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE entries SET epsilon = 0 WHERE id = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM entries WHERE id = 4")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE answers SET answer = x'00'")


def test_edited_epsilon_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "UPDATE entries SET epsilon = 0.0001 WHERE id = 3")
    with pytest.raises(LedgerTamperedError, match=r"entry 3: .*was edited") as caught:
        ledger.verify()
    assert caught.value.entry_id == 3


def test_edited_budget_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "UPDATE entries SET epsilon_total = 100 WHERE id = 1")
    with pytest.raises(LedgerTamperedError, match=r"entry 1: .*budget entry") as caught:
        ledger.verify()
    assert caught.value.entry_id == 1


def test_deleted_entry_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "DELETE FROM entries WHERE id = 2")
    with pytest.raises(LedgerTamperedError, match=r"entry 2 is missing \(deleted\)") as caught:
        ledger.verify()
    assert caught.value.entry_id == 2


def test_deleted_last_entry_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "DELETE FROM answers WHERE entry_id = 4")
    raw_sql(path, "DELETE FROM entries WHERE id = 4")
    with pytest.raises(LedgerTamperedError, match="last entries were deleted") as caught:
        ledger.verify()
    assert caught.value.entry_id == 4
    # New entries do not paper over the hole.
    spend(ledger, {"q": 4})
    with pytest.raises(LedgerTamperedError, match=r"entry 4 is missing"):
        ledger.verify()


def test_deleted_entry_with_renumbering_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "DELETE FROM answers WHERE entry_id = 2")
    raw_sql(path, "DELETE FROM entries WHERE id = 2")
    raw_sql(path, "UPDATE entries SET id = id - 1 WHERE id > 2")
    raw_sql(path, "UPDATE sqlite_sequence SET seq = 3 WHERE name = 'entries'")
    with pytest.raises(LedgerTamperedError, match="broken link") as caught:
        ledger.verify()
    assert caught.value.entry_id == 2


def test_reordered_entries_are_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "UPDATE entries SET id = 100 WHERE id = 2")
    raw_sql(path, "UPDATE entries SET id = 2 WHERE id = 3")
    raw_sql(path, "UPDATE entries SET id = 3 WHERE id = 100")
    with pytest.raises(LedgerTamperedError, match="reordered") as caught:
        ledger.verify()
    assert caught.value.entry_id == 2


def test_edited_answer_is_detected_and_never_served(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "UPDATE answers SET answer = ? WHERE entry_id = 3", (b"a nicer number",))
    with pytest.raises(LedgerTamperedError, match=r"entry 3: the stored answer was edited") as caught:
        ledger.verify()
    assert caught.value.entry_id == 3
    with pytest.raises(LedgerTamperedError, match="entry 3"):
        spend(ledger, {"q": 2})
    assert spend(ledger, {"q": 1}).reused is True  # untouched answers are still served


def test_deleted_answer_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    raw_sql(path, "DELETE FROM answers WHERE entry_id = 2")
    with pytest.raises(LedgerTamperedError, match=r"entry 2: the answer .* is missing"):
        ledger.verify()


def test_unpaid_answer_is_detected(filled: tuple[Ledger, Path]) -> None:
    ledger, path = filled
    key = query_key({"q": "free lunch"})
    raw_sql(
        path,
        "INSERT INTO answers (dataset_fingerprint, query_key, answer, answer_sha256, entry_id) VALUES (?, ?, ?, ?, 1)",
        (FP, key, b"forged", "0" * 64),
    )
    with pytest.raises(LedgerTamperedError, match="not a spend"):
        ledger.verify()
