"""The bundled sample and the generated documents stay true."""

from __future__ import annotations

import json
from pathlib import Path

from analytics import config, contract_doc
from analytics.validate import load_dataset


def test_bundled_sample_passes_validation_and_relationships_hold() -> None:
    ds = load_dataset(config.SAMPLE_DATA_DIR)
    assert ds.row_counts["students"] == 20_000
    dangling = ds.source.sql(
        """
        SELECT
          (SELECT count(*) FROM enrollments e ANTI JOIN students s USING (student_key)) AS enrol_students,
          (SELECT count(*) FROM enrollments e ANTI JOIN schools s USING (school_id)) AS enrol_schools,
          (SELECT count(*) FROM wages w ANTI JOIN (SELECT student_key FROM ssn_collection
                                                   WHERE status = 'provided') p USING (student_key)) AS wages_ssn
        """
    )
    assert dangling.iloc[0].tolist() == [0, 0, 0]


def test_sample_was_written_by_the_generator_with_its_documented_parameters() -> None:
    from analytics import synth

    params = json.loads((config.SAMPLE_DATA_DIR / "truth" / "parameters.json").read_text())
    assert params["n_students"] == 20_000 and params["seed"] == 2010
    assert params["generator_version"] == synth.GENERATOR_VERSION
    assert params["last_school_year"] == 2025
    extract_json = json.loads((config.SAMPLE_DATA_DIR / "extract.json").read_text())
    assert extract_json["last_school_year"] == extract_json["last_wage_year"] == 2025


#: Students of each planted case in the bundled sample (truth/students.parquet), as generated.
SAMPLE_PLANTED = {
    "continuing": 761,
    "same_year_transfer_diploma": 157,
    "returned_in_year5": 116,
    "returned_within_4yrs": 74,
    "co_enrolled": 322,
    "repeated_grade": 536,
    "top_coded": 109,
}


def test_sample_holds_every_planted_case_and_stays_small() -> None:
    import pandas as pd

    truth = pd.read_parquet(config.SAMPLE_DATA_DIR / "truth" / "students.parquet")
    got = {flag: int(truth[flag].fillna(False).astype(bool).sum()) for flag in SAMPLE_PLANTED}
    assert got == SAMPLE_PLANTED
    size = sum(p.stat().st_size for p in config.SAMPLE_DATA_DIR.rglob("*") if p.is_file())
    assert size < 6_000_000


def test_committed_contract_doc_matches_the_schema() -> None:
    committed = (config.REPO_ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert committed == contract_doc.render(), "run `python -m analytics contract-doc` and commit the result"


def test_contract_doc_names_every_column() -> None:
    from analytics import schema

    text = contract_doc.render()
    for t in schema.TABLES:
        for c in t.column_names:
            assert f"`{c}`" in text


def test_reference_data_has_provenance() -> None:
    readme = (Path(config.REFERENCE_DIR) / "README.md").read_text()
    assert "cb_2016_us_county_500k" in readme and "CUUR0000SA0" in readme
