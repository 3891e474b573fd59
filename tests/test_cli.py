"""The command line acts as an authenticated principal: refusals are messages, and spend nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics import auth, cli
from analytics.ledger import Ledger
from analytics.synth import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
STEWARD_PW = "steward password 1"
RESEARCHER_PW = "researcher password 1"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "extract"
    generate(out, n_students=300, seed=5)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANALYTICS_KEY_FILE", str(tmp_path / "keys" / "steward.key"))
    monkeypatch.delenv("ANALYTICS_LEDGER", raising=False)
    auth.add_user("sam", "steward", STEWARD_PW)
    auth.add_user("ann", "researcher", RESEARCHER_PW)
    return tmp_path / "home"


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


def test_steward_path_then_refusals(
    home: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steward = ("--user", "sam", "--password-stdin")
    code, text = run(
        monkeypatch, capsys, STEWARD_PW + "\n",
        "lineage", "register", "pop", "--cap", "5", "--public", "3", "--description", "test students", *steward,
    )  # fmt: skip
    assert code == 0 and "cap epsilon=5" in text
    code, text = run(monkeypatch, capsys, STEWARD_PW + "\n", "lineage", "attach", "pop", str(dataset),
                     "--label", "2025 extract", *steward)  # fmt: skip
    assert code == 0 and "extract 1" in text
    ledger = Ledger.default()
    before = ledger.history()

    refusals = [
        ("wrong password\n", ("budget", "set", "pop", "--scope", "researcher:ann", "--amount", "1", *steward),
         "unknown user or wrong password"),
        (STEWARD_PW + "\n", ("budget", "set", "pop", "--scope", "researcher:ann", "--amount", "1", "--user", "zed",
                             "--password-stdin"), "unknown user or wrong password"),
        (RESEARCHER_PW + "\n", ("budget", "set", "pop", "--scope", "researcher:ann", "--amount", "5", "--user",
                                "ann", "--password-stdin"), "only a steward"),
        (RESEARCHER_PW + "\n", ("lineage", "register", "mine", "--cap", "99", "--description", "x", "--user", "ann",
                                "--password-stdin"), "only a steward"),
        (RESEARCHER_PW + "\n", ("release", str(dataset), "--out", str(tmp_path / "rel"), "--user", "ann",
                                "--password-stdin"), "only a steward"),
        ("", ("release", str(dataset), "--out", str(tmp_path / "rel"), "--user", "sam"), "no terminal"),
        (RESEARCHER_PW + "\n", ("query", str(dataset), "--user", "ann", "--password-stdin", "--population",
                                "adjusted_cohort", "--measure", "count", "--by", "cohort", "--epsilon", "0.2",
                                "--out", str(tmp_path / "q"), "--yes"), "only epsilon=0 of 0"),
        (RESEARCHER_PW + "\n", ("query", str(dataset), "--user", "ann", "--password-stdin", "--population",
                                "employed", "--measure", "percentile", "--outcome", "earnings_2024", "--quantiles",
                                "1.5", "-0.2", "--by", "cohort", "--epsilon", "0.2", "--out", str(tmp_path / "q"),
                                "--yes"), "strictly between 0 and 1"),
    ]  # fmt: skip
    for stdin, argv, words in refusals:
        code, text = run(monkeypatch, capsys, stdin, *argv)
        assert code != 0 and words in text, (argv, text)
        assert ledger.history() == before, argv

    code, text = run(monkeypatch, capsys, STEWARD_PW + "\n", "budget", "set", "pop", "--scope", "researcher:ann",
                     "--amount", "1", *steward)  # fmt: skip
    assert code == 0 and "researcher:ann: allocation 1, spent 0" in text
    code, text = run(monkeypatch, capsys, RESEARCHER_PW + "\n", "query", str(dataset), "--user", "ann",
                     "--password-stdin", "--population", "adjusted_cohort", "--measure", "count", "--by", "cohort",
                     "--epsilon", "0.6", "--out", str(tmp_path / "q"), "--yes")  # fmt: skip
    assert code == 1 and "per-query maximum" in text
    code, text = run(monkeypatch, capsys, RESEARCHER_PW + "\n", "query", str(dataset), "--user", "ann",
                     "--password-stdin", "--population", "adjusted_cohort", "--measure", "count", "--by", "cohort",
                     "--epsilon", "0.2", "--out", str(tmp_path / "q"), "--yes")  # fmt: skip
    assert code == 0 and "spent epsilon=0.2" in text
    assert ledger.status("pop").allocations["researcher:ann"] == (1.0, pytest.approx(0.2))


def test_a_real_process_refuses_without_a_traceback(home: Path, dataset: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "lineage", "register", "pop", "--cap", "5", "--description", "x",
         "--user", "sam", "--password-stdin"],
        input="not the password\n", capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "unknown user or wrong password" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "release", str(dataset), "--user", "sam", "--password-stdin"],
        input=STEWARD_PW + "\n", capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "not attached to any student population" in done.stderr and "lineage register" in done.stderr


def test_accounts_are_changed_only_by_a_signed_in_steward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANALYTICS_KEY_FILE", str(tmp_path / "keys" / "steward.key"))
    code, text = run(monkeypatch, capsys, "researcher pass 1\n", "users", "add", "ann", "--role", "researcher",
                     "--password-stdin")  # fmt: skip
    assert code == 1 and "first account must be a steward" in text
    code, _ = run(
        monkeypatch, capsys, STEWARD_PW + "\n", "users", "add", "sam", "--role", "steward", "--password-stdin"
    )
    assert code == 0
    attempts = [
        ("mallory pass 1\n", ("users", "add", "mallory", "--role", "steward", "--password-stdin"), "--by STEWARD"),
        ("new password 1\n", ("users", "add", "sam", "--role", "steward", "--password-stdin"), "--by STEWARD"),
        ("wrong password\nmallory pass 1\n", ("users", "add", "mallory", "--role", "steward", "--by", "sam",
                                              "--password-stdin"), "unknown user or wrong password"),
    ]  # fmt: skip
    for stdin, argv, words in attempts:
        code, text = run(monkeypatch, capsys, stdin, *argv)
        assert code == 1 and words in text, text
    code, _ = run(monkeypatch, capsys, f"{STEWARD_PW}\n{RESEARCHER_PW}\n", "users", "add", "ann", "--role",
                  "researcher", "--by", "sam", "--password-stdin")  # fmt: skip
    assert code == 0 and [u.name for u in auth.list_users()] == ["ann", "sam"]
    code, text = run(monkeypatch, capsys, f"{RESEARCHER_PW}\nann pass 2 x\n", "users", "add", "bob", "--role",
                     "steward", "--by", "ann", "--password-stdin")  # fmt: skip
    assert code == 1 and "only a steward" in text

    users = tmp_path / "home" / "users.json"
    data = json.loads(users.read_text())
    data["users"]["ann"]["role"] = "steward"  # promoting oneself by editing the file
    users.write_text(json.dumps(data))
    code, text = run(monkeypatch, capsys, RESEARCHER_PW + "\n", "lineage", "register", "mine", "--cap", "9",
                     "--description", "x", "--user", "ann", "--password-stdin")  # fmt: skip
    assert code == 1 and "changed outside" in text
