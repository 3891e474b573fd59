"""Versioned releases: spend once, reuse forever, refuse past budget, never half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from analytics import release
from analytics.ledger import BudgetExceededError, Ledger
from analytics.synth import generate
from analytics.validate import DataValidationError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "slds"
    generate(out, n_students=2_000, seed=11)
    return out


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


def test_release_has_every_table_with_moe_flag_and_epsilon(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    result = release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    manifest = json.loads((result.release_dir / release.MANIFEST).read_text())
    assert manifest["release_id"] == result.release_id
    assert manifest["epsilon_total"] == pytest.approx(1.0)
    noisy = {n: t for n, t in manifest["tables"].items() if t["noisy"]}
    assert set(noisy) == {t.name for t in release.TABLES}
    assert sum(t["epsilon"] for t in noisy.values()) == pytest.approx(1.0)
    for name, info in noisy.items():
        df = pd.read_parquet(result.release_dir / info["file"])
        assert info["mechanism"] and info["contribution_bound"]
        moe_cols = [c for c in df.columns if c.endswith("_moe95")]
        assert moe_cols, f"{name} has no margin of error"
        assert df[moe_cols].notna().all().all()
        assert set(df["flag"]) <= {"reliable", "rough", "unreliable"}
        assert (df.loc[df["flag"] != "reliable", "flag_reason"].str.len() > 0).all()
        assert (df["epsilon"] == info["epsilon"]).all()
    by_district = pd.read_parquet(result.release_dir / "ssn_collection_by_district.parquet")
    districts = pd.read_parquet(dataset / "districts.parquet")
    assert sorted(by_district["district_id"]) == sorted(districts["district_id"])  # every public key, even empty
    assert ledger.spent("public", manifest["dataset_fingerprint"]) == pytest.approx(1.0)
    assert manifest["dataset_privacy_loss"]["epsilon"] == pytest.approx(1.0)


def test_rebuild_reuses_answers_and_spends_nothing(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    first = release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    again = release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    assert again.release_id == first.release_id and again.already_existed
    assert again.epsilon_spent == 0 and again.epsilon_reused == pytest.approx(1.0)
    elsewhere = release.build_release(dataset, tmp_path / "other", epsilon=1.0, ledger=ledger)
    a = pd.read_parquet(first.release_dir / "ssn_collection_by_district_year.parquet")
    b = pd.read_parquet(elsewhere.release_dir / "ssn_collection_by_district_year.parquet")
    pd.testing.assert_frame_equal(a, b)  # the same question gets the same noisy answer
    fp = json.loads((first.release_dir / release.MANIFEST).read_text())["dataset_fingerprint"]
    assert ledger.spent("public", fp) == pytest.approx(1.0)


def test_new_epsilon_is_a_new_question_and_losses_accumulate(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    second = release.build_release(dataset, tmp_path / "rel", epsilon=2.0, ledger=ledger)
    manifest = json.loads((second.release_dir / release.MANIFEST).read_text())
    assert second.epsilon_spent == pytest.approx(2.0)
    assert manifest["dataset_privacy_loss"]["epsilon"] == pytest.approx(3.0)
    assert len(release.list_releases(tmp_path / "rel")) == 2


def test_release_past_budget_is_refused_and_spends_nothing(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    fp = release.list_releases(tmp_path / "rel")[0]["dataset_fingerprint"]
    before = ledger.spent("public", fp)
    entries = len(ledger.history())
    with pytest.raises(BudgetExceededError) as err:
        release.build_release(dataset, tmp_path / "rel", epsilon=release.DEFAULT_PUBLIC_BUDGET, ledger=ledger)
    assert "nothing was spent" in str(err.value)
    assert ledger.spent("public", fp) == before and len(ledger.history()) == entries
    assert len(release.list_releases(tmp_path / "rel")) == 1


def test_interrupted_write_leaves_no_partial_release(
    dataset: Path, tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(_src: object, _dst: object) -> None:
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="could not write release"):
        release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    assert list((tmp_path / "rel").iterdir()) == []
    assert release.list_releases(tmp_path / "rel") == []
    monkeypatch.undo()
    done = release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    assert done.epsilon_spent == 0  # the answers were paid for and kept; the retry reuses them


def test_invalid_dataset_spends_nothing(tmp_path: Path, ledger: Ledger) -> None:
    with pytest.raises(DataValidationError):
        release.build_release(tmp_path / "missing", tmp_path / "rel", ledger=ledger)
    assert ledger.history() == []


def test_load_release_newest_and_by_id(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    with pytest.raises(FileNotFoundError, match="no release"):
        release.load_release(tmp_path / "rel")
    first = release.build_release(dataset, tmp_path / "rel", epsilon=1.0, ledger=ledger)
    loaded = release.load_release(tmp_path / "rel", first.release_id)
    assert loaded.release_id == first.release_id
    assert "ssn_collection_by_year" in loaded.tables
    with pytest.raises(KeyError, match="has no table"):
        loaded.table("nope")
