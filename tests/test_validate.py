"""Each validation rule, with a hand-made bad file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analytics import schema
from analytics.validate import DataValidationError, load_dataset, validate_dataset
from tests.helpers import tiny_tables, write_dataset


def _problems(folder: Path) -> list[str]:
    report = validate_dataset(folder)
    assert not report.ok, "the dataset should have been refused"
    return [str(p) for p in report.problems]


def _one(problems: list[str], *needles: str) -> str:
    hits = [p for p in problems if all(n in p for n in needles)]
    assert hits, f"no problem mentions {needles}; got {problems}"
    return hits[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tiny_dataset_is_valid_and_loads(tmp_path: Path, fmt: str) -> None:
    folder = write_dataset(tmp_path / "d", tiny_tables(), fmt)
    report = validate_dataset(folder)
    assert report.ok, report.text()
    ds = load_dataset(folder)
    assert ds.source.tables() == schema.TABLE_NAMES
    assert ds.row_counts["students"] == 4
    got = ds.source.sql("SELECT count(*) AS n FROM enrollments WHERE exit_type = 'graduated'")
    assert int(got.n.iloc[0]) == 3
    types = ds.source.sql("DESCRIBE students").set_index("column_name")["column_type"]
    assert types["economically_disadvantaged"] == "BOOLEAN"


def test_missing_column(tmp_path: Path) -> None:
    t = tiny_tables()
    t["students"] = t["students"].drop(columns=["sex"])
    p = _one(_problems(write_dataset(tmp_path, t)), "students.csv", "'sex'", "missing column")
    assert "student_key, sex" in p


def test_wrong_type(tmp_path: Path) -> None:
    t = tiny_tables()
    e = t["enrollments"].astype({"grade": object})
    e.loc[1, "grade"] = "12.5"
    e.loc[2, "grade"] = "twelve"
    t["enrollments"] = e
    p = _one(_problems(write_dataset(tmp_path, t)), "enrollments.csv", "'grade'", "2 value(s) are not of type int")
    assert "row 2 grade='12.5'" in p and "row 3 grade='twelve'" in p


def test_wrong_type_in_parquet(tmp_path: Path) -> None:
    t = tiny_tables()
    t["wages"] = t["wages"].assign(wages=["lots", "3100"])
    _one(_problems(write_dataset(tmp_path, t, "parquet")), "wages.parquet", "'wages'", "not of type float")


@pytest.mark.parametrize(
    ("table", "column", "value", "words"),
    [
        ("students", "sex", "q", "outside F/M/X"),
        ("enrollments", "grade", 13, "above the maximum 12"),
        ("enrollments", "school_year", 1990, "below the minimum 2000"),
        ("wages", "wages", -5.0, "below the minimum 0"),
        ("wages", "quarter", 5, "above the maximum 4"),
        ("assessments", "achievement_level", 5, "outside 1/2/3/4"),
        ("ssn_collection", "school_year", 2009, "below the minimum 2011"),
        ("districts", "county", "Middlesex", "outside the 16 allowed values listed in docs/data-contract.md"),
        ("students", "student_key", "K 1", "not matching the pattern"),
    ],
)
def test_out_of_range_value(tmp_path: Path, table: str, column: str, value: object, words: str) -> None:
    t = tiny_tables()
    df = t[table].astype({column: object})
    df.loc[0, column] = value
    t[table] = df
    _one(_problems(write_dataset(tmp_path, t)), f"{table}.csv", f"'{column}'", words)


def test_missing_value(tmp_path: Path) -> None:
    t = tiny_tables()
    t["students"] = t["students"].astype({"race_ethnicity": object})
    t["students"].loc[2, "race_ethnicity"] = None
    _one(_problems(write_dataset(tmp_path, t)), "students.csv", "'race_ethnicity'", "missing value")


def test_dangling_key(tmp_path: Path) -> None:
    t = tiny_tables()
    t["enrollments"].loc[0, "school_id"] = "S999"
    t["schools"].loc[0, "district_id"] = "D77"
    problems = _problems(write_dataset(tmp_path, t))
    _one(problems, "enrollments.csv", "'school_id'", "do not resolve to schools.school_id", "S999")
    _one(problems, "schools.csv", "'district_id'", "do not resolve to districts.district_id")


def test_dangling_student_key_is_masked(tmp_path: Path) -> None:
    t = tiny_tables()
    t["assessments"].loc[0, "student_key"] = "KZZZZ9999"
    p = _one(_problems(write_dataset(tmp_path, t)), "assessments.csv", "do not resolve to students.student_key")
    assert "KZZZZ9999" not in p and "KZ*******" in p


def test_duplicate_key(tmp_path: Path) -> None:
    t = tiny_tables()
    t["students"] = pd.concat([t["students"], t["students"].iloc[[0]]], ignore_index=True)
    p = _one(_problems(write_dataset(tmp_path, t)), "students.csv", "2 rows share a key", "one row per student")
    assert "KAAAA0001" not in p


def test_enrollment_one_row_per_year_and_school(tmp_path: Path) -> None:
    t = tiny_tables()
    t["enrollments"] = pd.concat([t["enrollments"], t["enrollments"].iloc[[1]].assign(grade=11)])
    _one(_problems(write_dataset(tmp_path, t)), "enrollments.csv", "share a key", "student x school year x school")


def test_wages_only_for_provided_ssn(tmp_path: Path) -> None:
    t = tiny_tables()
    t["wages"].loc[0, "student_key"] = "KAAAA0003"  # declined
    _one(_problems(write_dataset(tmp_path, t)), "wages.csv", "SSN was not provided")


@pytest.mark.parametrize(
    ("table", "column", "value", "words"),
    [
        ("students", "student_key", "123-45-6789", "ddd-dd-dddd"),
        ("students", "student_key", "123456789", "9 digits"),
        ("schools", "school_name", "Ask 123 45 6789 at the desk", "ddd dd dddd"),
        ("districts", "district_name", "contact jane.doe@example.org", "e-mail"),
        ("schools", "school_name", "Main office (207) 555-0199", "phone"),
    ],
)
def test_identifying_content_refused_and_never_shown(
    tmp_path: Path, table: str, column: str, value: str, words: str
) -> None:
    t = tiny_tables()
    t[table].loc[0, column] = value
    report = validate_dataset(write_dataset(tmp_path, t))
    text = report.text()
    _one([str(p) for p in report.problems], f"{table}.csv", f"'{column}'", "PII gate", words)
    assert value not in text
    assert "6789" not in text and "jane" not in text and "0199" not in text


@pytest.mark.parametrize(
    "column",
    [
        "SSN",
        "student_ssn",
        "First Name",
        "last_name",
        "DOB",
        "birth_date",
        "home_address",
        "Email",
        "parent_phone",
        "zip_code",
    ],
)
def test_identifying_column_name_refused(tmp_path: Path, column: str) -> None:
    t = tiny_tables()
    t["students"][column] = "secret-value"
    report = validate_dataset(write_dataset(tmp_path, t))
    _one([str(p) for p in report.problems], "students.csv", f"'{column}'", "PII gate")
    assert "secret-value" not in report.text()


def test_unexpected_column_and_file(tmp_path: Path) -> None:
    t = tiny_tables()
    t["students"]["favourite_colour"] = "blue"
    folder = write_dataset(tmp_path, t)
    (folder / "notes.csv").write_text("a,b\n1,2\n")
    problems = _problems(folder)
    _one(problems, "students.csv", "'favourite_colour'", "not in the data contract")
    _one(problems, "notes.csv", "not a table of the data contract")


def test_missing_table_and_both_formats(tmp_path: Path) -> None:
    t = tiny_tables()
    folder = write_dataset(tmp_path, t)
    (folder / "wages.csv").unlink()
    t["students"].to_parquet(folder / "students.parquet")
    problems = _problems(folder)
    _one(problems, "wages", "no file wages.parquet or wages.csv")
    _one(problems, "students", "both students.csv and students.parquet")


def test_non_utf8_csv(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    text = (folder / "districts.csv").read_text().replace("Birchwater", "Bïrchwater")
    (folder / "districts.csv").write_bytes(text.encode("latin-1"))
    p = _one(_problems(folder), "districts.csv", "not valid UTF-8", "line 2")
    assert "re-save" in p


def test_empty_file(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    (folder / "schools.csv").write_bytes(b"")
    _one(_problems(folder), "schools.csv", "empty (0 bytes)")


def test_header_only_file(tmp_path: Path) -> None:
    t = tiny_tables()
    t["postsecondary"] = t["postsecondary"].iloc[0:0]
    _one(_problems(write_dataset(tmp_path, t)), "postsecondary.csv", "no rows")


def test_load_is_all_or_nothing(tmp_path: Path) -> None:
    t = tiny_tables()
    t["wages"].loc[1, "quarter"] = 9
    with pytest.raises(DataValidationError) as err:
        load_dataset(write_dataset(tmp_path, t))
    assert "nothing was loaded" in str(err.value)
    assert err.value.report.problems


def test_fingerprint_follows_bytes_not_folder(tmp_path: Path) -> None:
    a = validate_dataset(write_dataset(tmp_path / "a", tiny_tables())).fingerprint
    b = validate_dataset(write_dataset(tmp_path / "b", tiny_tables())).fingerprint
    t = tiny_tables()
    t["wages"].loc[0, "wages"] = 4200.01
    c = validate_dataset(write_dataset(tmp_path / "c", t)).fingerprint
    assert a == b and a != c


def test_not_a_folder(tmp_path: Path) -> None:
    _one(_problems(tmp_path / "nope"), "is not a folder")
