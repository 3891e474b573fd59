"""Every refusal of `moe` and `users` is one sentence on standard error and exit 1, never a traceback."""

from __future__ import annotations

import io
import sys

import pytest

from analytics import cli


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["moe", "--epsilon", "-1"], "--epsilon must be a finite number above 0"),
        (["moe", "--epsilon", "0"], "--epsilon must be a finite number above 0"),
        (["moe", "--epsilon", "nan"], "--epsilon must be a finite number above 0"),
        (["moe", "--epsilon", "inf"], "--epsilon must be a finite number above 0"),
        (["moe", "--epsilon", "1", "--rate", "1.5"], "--rate is a share between 0 and 1"),
        (["moe", "--epsilon", "1", "--rate", "-0.1"], "--rate is a share between 0 and 1"),
        (["moe", "--epsilon", "1", "--students", "0"], "--students takes group sizes of 1 or more"),
        (["moe", "--kind", "mean", "--epsilon", "1", "--lower", "5", "--upper", "1"], "--lower below --upper"),
    ],
)
def test_moe_refuses_impossible_settings_with_a_sentence(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 1
    out = capsys.readouterr()
    assert words in out.err
    assert "Traceback" not in out.err and out.out == ""


def test_moe_answers_a_sound_question(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["moe", "--epsilon", "1", "--rate", "0.3", "--students", "100"]) == 0
    assert "100 students: +/-" in capsys.readouterr().out


class _NoTerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_users_add_without_a_terminal_says_how_to_pipe_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", _NoTerminal(""))
    assert cli.main(["users", "add", "bob", "--role", "steward"]) == 1
    err = capsys.readouterr().err
    assert "--password-stdin" in err and "Traceback" not in err


def test_users_add_with_an_empty_piped_password_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", _NoTerminal(""))
    assert cli.main(["users", "add", "bob", "--role", "steward", "--password-stdin"]) == 1
    assert "no password on standard input" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback_or_complaint() -> None:
    """``python -m analytics design | head -1``: the closed pipe is not an error of the command's."""
    import subprocess

    from analytics import config

    proc = subprocess.Popen(
        [sys.executable, "-m", "analytics", "design", "--show-tables", "6.55"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=config.REPO_ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    with proc.stderr:
        err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 1
    assert err == "", err
