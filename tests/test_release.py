"""Versioned releases: spend once, reuse forever, refuse past budget, never half-written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import lineage, release
from analytics.ledger import BudgetExceededError, Ledger, LedgerTamperedError, LineageError
from analytics.synth import generate
from analytics.validate import DataValidationError
from tests.accounting import RESEARCHER, STEWARD, new_ledger, registered


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "slds"
    generate(out, n_students=2_000, seed=11)
    return out


@pytest.fixture
def ledger(tmp_path: Path, dataset: Path) -> Ledger:
    led = new_ledger(tmp_path)
    registered(led, dataset, name="maine-test", cap=10.0, public=6.0)
    return led


def build(dataset: Path, out: Path, ledger: Ledger, epsilon: float = 1.0) -> release.BuildResult:
    return release.build_release(dataset, out, user=STEWARD, epsilon=epsilon, ledger=ledger)


def test_release_has_every_table_with_moe_flag_and_epsilon(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    result = build(dataset, tmp_path / "rel", ledger)
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
        for col in moe_cols:  # every figure shown has a margin; a withheld one (no estimate) has neither
            value = col.removesuffix("_moe95")
            value = value if value in df else f"{value}_value"
            shown = df[value].notna() if value in df else pd.Series(True, index=df.index)
            assert (df[col].notna() | ~shown).all(), f"{name}.{col}"
        assert set(df["flag"]) <= {"reliable", "rough", "unreliable"}
        assert (df.loc[df["flag"] != "reliable", "flag_reason"].str.len() > 0).all()
        assert (df["epsilon"] == info["epsilon"]).all()
    by_district = pd.read_parquet(result.release_dir / "ssn_collection_by_district.parquet")
    districts = pd.read_parquet(dataset / "districts.parquet")
    assert sorted(by_district["district_id"]) == sorted(districts["district_id"])  # every public key, even empty
    assert ledger.status("maine-test").allocations["public"] == (6.0, pytest.approx(1.0))
    assert manifest["lineage"] == "maine-test" and manifest["extract"]["number"] == 1
    assert manifest["lineage_privacy_loss"]["epsilon"] == pytest.approx(1.0)
    assert manifest["lineage_privacy_loss"]["cap"] == 10.0
    entry = ledger.entry(manifest["ledger"]["entry_id"])
    assert entry is not None and entry.kind == "release" and entry.entry_hash == manifest["ledger"]["entry_hash"]


def test_rebuild_reuses_answers_and_spends_nothing(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    first = build(dataset, tmp_path / "rel", ledger)
    again = build(dataset, tmp_path / "rel", ledger)
    assert again.release_id == first.release_id and again.already_existed
    assert again.epsilon_spent == 0 and again.epsilon_reused == pytest.approx(1.0)
    elsewhere = build(dataset, tmp_path / "other", ledger)
    a = pd.read_parquet(first.release_dir / "ssn_collection_by_district_year.parquet")
    b = pd.read_parquet(elsewhere.release_dir / "ssn_collection_by_district_year.parquet")
    pd.testing.assert_frame_equal(a, b)  # the same question gets the same noisy answer
    assert ledger.status("maine-test").spent == pytest.approx(1.0)


def test_new_epsilon_is_a_new_question_and_losses_accumulate(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    build(dataset, tmp_path / "rel", ledger)
    second = build(dataset, tmp_path / "rel", ledger, 2.0)
    manifest = json.loads((second.release_dir / release.MANIFEST).read_text())
    assert second.epsilon_spent == pytest.approx(2.0)
    assert manifest["lineage_privacy_loss"]["epsilon"] == pytest.approx(3.0)
    assert len(release.list_releases(tmp_path / "rel")) == 2


def test_release_past_budget_is_refused_and_spends_nothing(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    build(dataset, tmp_path / "rel", ledger)
    before = ledger.history()
    with pytest.raises(BudgetExceededError) as err:
        build(dataset, tmp_path / "rel", ledger, 5.5)
    assert "nothing was spent" in str(err.value)
    assert ledger.history() == before
    assert len(release.list_releases(tmp_path / "rel")) == 1


def test_interrupted_write_leaves_no_partial_release(
    dataset: Path, tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(_src: object, _dst: object) -> None:
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(release.ReleaseError, match="could not write release"):
        build(dataset, tmp_path / "rel", ledger)
    assert [p.name for p in (tmp_path / "rel").iterdir()] == []
    assert release.list_releases(tmp_path / "rel") == []
    monkeypatch.undo()
    done = build(dataset, tmp_path / "rel", ledger)
    assert done.epsilon_spent == 0  # the answers were paid for and kept; the retry reuses them


def test_invalid_dataset_spends_nothing(tmp_path: Path, ledger: Ledger) -> None:
    before = ledger.history()
    with pytest.raises(DataValidationError):
        release.build_release(tmp_path / "missing", tmp_path / "rel", user=STEWARD, ledger=ledger)
    assert ledger.history() == before


def test_load_release_newest_and_by_id(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    with pytest.raises(FileNotFoundError, match="no release"):
        release.load_release(tmp_path / "rel")
    first = build(dataset, tmp_path / "rel", ledger)
    loaded = release.load_release(tmp_path / "rel", first.release_id)
    assert loaded.release_id == first.release_id
    assert "ssn_collection_by_year" in loaded.tables
    with pytest.raises(KeyError, match="has no table"):
        loaded.table("nope")


# ------------------------------------------------------------------ accounting per student population


def _resave(src: Path, dst: Path, how: str) -> Path:
    """The same students, saved another way (with the steward's extract.json beside them)."""
    dst.mkdir(parents=True)
    shutil.copy(src / "extract.json", dst / "extract.json")
    rng = np.random.default_rng(4)
    for table in sorted(p.stem for p in src.glob("*.parquet")):
        df = pd.read_parquet(src / f"{table}.parquet")
        if how == "csv":
            df.to_csv(dst / f"{table}.csv", index=False)
        elif how == "csv-bom":
            (dst / f"{table}.csv").write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode("utf-8"))
        elif how == "parquet-zstd-reordered-columns":
            df[list(reversed(df.columns))].to_parquet(dst / f"{table}.parquet", compression="zstd", index=False)
        elif how == "shuffled-rows":
            df.iloc[rng.permutation(len(df))].to_parquet(dst / f"{table}.parquet", compression="gzip", index=False)
    return dst


def test_resaved_extracts_are_one_extract_with_no_fresh_noise(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    first = build(dataset, tmp_path / "rel", ledger)
    spent = ledger.status("maine-test").spent
    reference = pd.read_parquet(first.release_dir / "ssn_collection_by_district.parquet")
    for how in ("csv", "csv-bom", "parquet-zstd-reordered-columns", "shuffled-rows"):
        copy = _resave(dataset, tmp_path / how, how)
        again = build(copy, tmp_path / "rel", ledger)
        assert again.epsilon_spent == 0 and again.release_id == first.release_id, how
        pd.testing.assert_frame_equal(
            pd.read_parquet(again.release_dir / "ssn_collection_by_district.parquet"), reference
        )
    status = ledger.status("maine-test")
    assert status.spent == spent and len(status.extracts) == 1  # counted once


def test_a_refresh_of_the_same_students_spends_from_the_same_cap(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    build(dataset, tmp_path / "rel", ledger)
    refresh = _resave(dataset, tmp_path / "refresh", "csv")
    wages = pd.read_csv(refresh / "wages.csv")
    wages.loc[0, "wages"] = float(wages.loc[0, "wages"]) + 1.0  # one corrected wage record
    wages.to_csv(refresh / "wages.csv", index=False)
    with pytest.raises(LineageError, match="not attached to any student population"):
        build(refresh, tmp_path / "rel", ledger)
    registered(ledger, refresh, name="maine-test")
    second = build(refresh, tmp_path / "rel", ledger)
    assert second.epsilon_spent == pytest.approx(1.0) and second.release_id != ""
    assert ledger.status("maine-test").spent == pytest.approx(2.0)
    manifest = json.loads((second.release_dir / release.MANIFEST).read_text())
    assert manifest["extract"]["number"] == 2 and manifest["lineage_privacy_loss"]["epsilon"] == pytest.approx(2.0)


def test_an_extract_with_no_lineage_is_refused_and_nothing_is_created(dataset: Path, tmp_path: Path) -> None:
    led = new_ledger(tmp_path / "fresh")
    with pytest.raises(LineageError, match="lineage register"):
        release.build_release(dataset, tmp_path / "rel", user=STEWARD, ledger=led)
    assert led.history() == [] and led.lineages() == []


def test_only_a_steward_builds_a_release(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    before = ledger.history()
    with pytest.raises(lineage.PermissionDenied, match="only a steward"):
        release.build_release(dataset, tmp_path / "rel", user=RESEARCHER, ledger=ledger)
    assert ledger.history() == before


def test_seeds_need_a_test_ledger(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    production_like = Ledger(ledger.path, key=ledger.key)
    with pytest.raises(ValueError, match="tests only"):
        release.build_release(dataset, tmp_path / "rel", user=STEWARD, ledger=production_like, seed=3)


def test_unwritable_output_is_refused_before_anything_is_spent(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = ledger.history()
    with pytest.raises(release.ReleaseError, match=r"not a folder|cannot write"):
        build(dataset, blocker, ledger)
    with pytest.raises(release.ReleaseError, match="cannot write"):
        build(dataset, blocker / "inside", ledger)
    assert ledger.history() == before


def test_a_ledger_without_record_of_published_releases_is_refused(
    dataset: Path, tmp_path: Path, ledger: Ledger
) -> None:
    build(dataset, tmp_path / "rel", ledger)
    other = new_ledger(tmp_path / "other-machine")  # a fresh ledger and key: the record is gone
    registered(other, dataset, name="maine-test", cap=10.0, public=6.0)
    before = other.history()
    with pytest.raises(LedgerTamperedError, match="no record of it"):
        build(dataset, tmp_path / "rel", other)
    assert other.history() == before


def test_stale_build_folders_are_cleaned(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    stale = tmp_path / "rel" / ".building-999999999-abc"
    stale.mkdir(parents=True)
    (stale / "half.parquet").write_bytes(b"half")
    build(dataset, tmp_path / "rel", ledger)
    assert not stale.exists()


def test_release_ids_are_validated_when_read(dataset: Path, tmp_path: Path, ledger: Ledger) -> None:
    first = build(dataset, tmp_path / "rel", ledger)
    evil = tmp_path / "rel" / "evil"
    evil.mkdir()
    manifest = json.loads((first.release_dir / release.MANIFEST).read_text())
    (evil / release.MANIFEST).write_text(json.dumps({**manifest, "release_id": "../../x"}))
    (tmp_path / "rel" / "linked").symlink_to(first.release_dir)
    assert [m["release_id"] for m in release.list_releases(tmp_path / "rel")] == [first.release_id]
    with pytest.raises(release.ReleaseError, match="release id"):
        release.load_release(tmp_path / "rel", "../../x")


def _published_fields(manifest: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in manifest.items():
        if isinstance(v, dict):
            out.update(_published_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_no_published_field_is_a_deterministic_function_of_the_data(tmp_path: Path) -> None:
    """D vs D minus one student: a field that repeats on D must not differ on D' (else it leaks)."""
    d = tmp_path / "d"
    generate(d, n_students=300, seed=21)
    d_minus = _resave(d, tmp_path / "d-minus", "parquet-zstd-reordered-columns")
    students = pd.read_parquet(d / "students.parquet")
    gone = students["student_key"].iloc[0]
    for table in ("students", "enrollments", "assessments", "postsecondary", "wages", "ssn_collection"):
        path = d_minus / f"{table}.parquet"
        df = pd.read_parquet(path)
        if "student_key" in df.columns:
            df[df["student_key"] != gone].to_parquet(path, index=False)

    def publish(data: Path, run: str) -> dict[str, object]:
        led = new_ledger(tmp_path / run, seeded=False)
        registered(led, data, name="pop", cap=10.0, public=6.0)
        result = release.build_release(data, tmp_path / run / "rel", user=STEWARD, epsilon=1.0, ledger=led)
        manifest = json.loads((result.release_dir / release.MANIFEST).read_text())
        return {k: v for k, v in _published_fields(manifest).items() if not k.endswith("ledger_entry_id")}

    a, again, b = publish(d, "a"), publish(d, "again"), publish(d_minus, "b")
    assert set(a) == set(b)
    deterministic = {k for k in a if a[k] == again[k]}
    leaking = sorted(k for k in deterministic if a[k] != b[k] and k not in ("created_at", "label"))
    assert leaking == [], leaking
    assert not any("fingerprint" in k for k in a)
