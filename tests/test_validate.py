"""Each validation rule, with a hand-made bad file."""

from __future__ import annotations

import decimal
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
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
    assert "lines 3, 4" in p and "expected a whole number" in p and "[rule: type int]" in p
    assert "12.5" not in p and "twelve" not in p


def test_wrong_type_in_parquet(tmp_path: Path) -> None:
    t = tiny_tables()
    t["wages"] = t["wages"].assign(wages=["lots", "3100"])
    _one(_problems(write_dataset(tmp_path, t, "parquet")), "wages.parquet", "'wages'", "not of type float")


@pytest.mark.parametrize(
    ("table", "column", "value", "words"),
    [
        ("students", "sex", "q", "expected one of F, M, X"),
        ("enrollments", "grade", 13, "above the maximum 12"),
        ("enrollments", "school_year", 1990, "below the minimum 2000"),
        ("wages", "wages", -5.0, "below the minimum 0"),
        ("wages", "quarter", 5, "above the maximum 4"),
        ("assessments", "achievement_level", 5, "expected one of 1, 2, 3, 4"),
        ("ssn_collection", "school_year", 2009, "below the minimum 2011"),
        ("districts", "county", "Middlesex", "one of the 16 allowed values listed in docs/data-contract.md"),
        ("students", "student_key", "K 1", "not matching the pattern"),
    ],
)
def test_out_of_range_value(tmp_path: Path, table: str, column: str, value: object, words: str) -> None:
    t = tiny_tables()
    df = t[table].astype({column: object})
    df.loc[0, column] = value
    t[table] = df
    p = _one(_problems(write_dataset(tmp_path, t)), f"{table}.csv", f"'{column}'", words, "line 2")
    assert f"={value}" not in p and f"'{value}'" not in p


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
    p = _one(problems, "enrollments.csv", "'school_id'", "do not resolve to schools.school_id", "line 2")
    assert "S999" not in p
    _one(problems, "schools.csv", "'district_id'", "do not resolve to districts.district_id")


def test_dangling_student_key_is_masked(tmp_path: Path) -> None:
    t = tiny_tables()
    t["assessments"].loc[0, "student_key"] = "KZZZZ9999"
    p = _one(_problems(write_dataset(tmp_path, t)), "assessments.csv", "do not resolve to students.student_key")
    assert "KZZZZ9999" not in p and "KZ*******" in p and "line 2" in p


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


def test_a_valid_report_publishes_no_hash_of_the_data(tmp_path: Path) -> None:
    report = validate_dataset(write_dataset(tmp_path / "a", tiny_tables()))
    assert report.ok and not hasattr(report, "fingerprint")
    assert not re.search(r"[0-9a-f]{32}", report.text())


def test_not_a_folder(tmp_path: Path) -> None:
    _one(_problems(tmp_path / "nope"), "is not a folder")


# --- what to fix, never what was in the cell (issues 11 and 12) ----------------------------------------------


def test_ragged_line_is_named_by_its_line(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    lines = (folder / "schools.csv").read_text().splitlines()
    lines[2] = lines[2] + ",Zanzibar"
    (folder / "schools.csv").write_text("\n".join(lines) + "\n")
    problems = _problems(folder)
    p = _one(problems, "schools.csv", "line 3", "as many fields as the header (4)")
    assert "Zanzibar" not in p
    assert not [x for x in problems if "missing column" in x or ("remove" in x and "schools.csv" in x)]


def test_header_differing_in_case_or_spacing_gets_the_contract_name(tmp_path: Path) -> None:
    t = tiny_tables()
    t["enrollments"] = t["enrollments"].rename(columns={"school_year": "School Year"})
    problems = _problems(write_dataset(tmp_path, t))
    _one(problems, "enrollments.csv", "'School Year'", "rename it to 'school_year'")
    assert not [x for x in problems if "missing column" in x]


def test_csv_without_header_row_never_prints_its_first_row(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    text = (folder / "students.csv").read_text().splitlines()
    (folder / "students.csv").write_text("\n".join(text[1:]) + "\n")
    report = validate_dataset(folder)
    _one([str(p) for p in report.problems], "students.csv", "not a header row", "line 1", "student_key,sex")
    assert "KAAAA0001" not in report.text() and "Birchwater" not in report.text()


def test_lost_leading_zeros_are_hinted(tmp_path: Path) -> None:
    t = tiny_tables()
    t["schools"]["school_id"] = ["0101", "0102", "0103"]
    t["enrollments"]["school_id"] = ["101", "101", "101", "0103", "0103"]
    p = _one(_problems(write_dataset(tmp_path, t)), "enrollments.csv", "leading zeros")
    assert "101" not in p.replace("line", "")


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("districts", "county", "123-45-6789"),
        ("wages", "naics2", "123456789"),
        ("wages", "year", 123456789),
        ("enrollments", "grade", "123-45-6789"),
        ("students", "sex", "Jane Doe"),
        ("ssn_collection", "status", "jane.doe@example.org"),
    ],
)
def test_no_message_quotes_a_cell_value(tmp_path: Path, table: str, column: str, value: object) -> None:
    t = tiny_tables()
    df = t[table].astype({column: object})
    df.loc[0, column] = value
    t[table] = df
    report = validate_dataset(write_dataset(tmp_path, t))
    text = report.text()
    assert not report.ok
    assert str(value) not in text and "6789" not in text and "Jane" not in text and "jane" not in text
    p = _one([str(x) for x in report.problems], f"{table}.csv", f"'{column}'", "line 2", "[rule:")
    assert "expected" in p


@pytest.mark.parametrize(
    ("value", "words"),
    [("2014-15", "span of two years"), ("2014-2015", "span of two years")],
)
def test_school_year_span_is_refused_with_the_convention(tmp_path: Path, value: str, words: str) -> None:
    t = tiny_tables()
    t["enrollments"] = t["enrollments"].astype({"school_year": object})
    t["enrollments"].loc[0, "school_year"] = value
    p = _one(_problems(write_dataset(tmp_path, t)), "enrollments.csv", "'school_year'", words)
    assert "2020 for 2019-20" in p and value not in p


@pytest.mark.parametrize(("value", "words"), [("20150829", "YYYYMMDD"), ("8/29/2015", "month/day/year")])
def test_other_date_layouts_are_named(tmp_path: Path, value: str, words: str) -> None:
    t = tiny_tables()
    t["postsecondary"] = t["postsecondary"].astype({"term_start": object})
    t["postsecondary"].loc[0, "term_start"] = value
    p = _one(_problems(write_dataset(tmp_path, t)), "postsecondary.csv", "'term_start'", words, "YYYY-MM-DD")
    assert value not in p


def test_scores_on_another_scale_are_refused_until_declared(tmp_path: Path) -> None:
    t = tiny_tables()
    t["assessments"]["scale_score"] = [2450.0, 2520.0]
    p = _one(_problems(write_dataset(tmp_path / "a", t)), "assessments.csv", "'scale_score'", "declared scale")
    assert "extract.json" in p and "2450" not in p
    folder = write_dataset(tmp_path / "b", t)
    (folder / "extract.json").write_text('{"score_scales": {"math": [2000, 3000], "ela": [2000, 3000]}}')
    assert validate_dataset(folder).ok


def test_bad_extract_json_is_reported(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    (folder / "extract.json").write_text('{"last_school_year": "2015", "score_scales": {"math": [700, 200]}}')
    problems = _problems(folder)
    _one(problems, "extract.json", "'last_school_year' must be a whole number")
    _one(problems, "extract.json", "score_scales.math must be [low, high]")


def test_records_after_a_declared_end_year_are_refused(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_tables())
    (folder / "extract.json").write_text('{"last_wage_year": 2015}')
    _one(_problems(folder), "wages.csv", "'year'", "after last_wage_year")


def test_fall_year_files_are_caught_by_the_data_own_evidence(tmp_path: Path) -> None:
    import datetime as dt

    t = tiny_tables()
    keys = [f"KFALL{i:04d}" for i in range(60)]
    t["students"] = pd.concat([t["students"], t["students"].iloc[[0] * 60].assign(student_key=keys)])
    t["ssn_collection"] = pd.concat([t["ssn_collection"], t["ssn_collection"].iloc[[0] * 60].assign(student_key=keys)])
    # diplomas of 2014-15 written with the fall year 2014; college the following fall (2015)
    t["enrollments"] = pd.concat(
        [
            t["enrollments"],
            pd.DataFrame(
                {"student_key": keys, "school_year": 2014, "school_id": "S001", "grade": 12, "exit_type": "graduated"}
            ),
        ]
    )
    t["postsecondary"] = pd.concat(
        [
            t["postsecondary"],
            pd.DataFrame(
                {
                    "student_key": keys,
                    "term_start": dt.date(2015, 8, 29),
                    "institution_level": "4-year",
                    "control": "public",
                    "in_state": True,
                }
            ),
        ]
    )
    p = _one(_problems(write_dataset(tmp_path, t)), "enrollments.csv", "'school_year'", "fall year")
    assert "spring year" in p


def test_same_text_on_every_run(tmp_path: Path) -> None:
    t = tiny_tables()
    t["students"].loc[0, "sex"] = "Q"
    a = validate_dataset(write_dataset(tmp_path / "a", t)).text().replace(str(tmp_path / "a"), "")
    b = validate_dataset(write_dataset(tmp_path / "b", t)).text().replace(str(tmp_path / "b"), "")
    assert a == b


def test_links_special_files_and_lookalike_names_are_refused_with_their_cause(tmp_path: Path) -> None:
    import os

    folder = write_dataset(tmp_path / "d", tiny_tables())
    secret = tmp_path / "outside.csv"
    secret.write_text("student_key,ssn\nKAAAA0001,123-45-6789\n")
    (folder / "students.csv").unlink()
    (folder / "students.csv").symlink_to(secret)
    (folder / "wages.csv").unlink()
    os.mkfifo(folder / "wages.csv")
    (folder / "schools.csv").rename(folder / "sch\u043e\u043els.csv")  # Cyrillic o's
    text = validate_dataset(folder).text()
    assert "students.csv: is a symbolic link" in text
    assert "wages.csv: is not a regular file" in text and "no file wages" not in text
    assert "non-ASCII characters" in text
    assert "123-45-6789" not in text and "ssn" not in text


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("value", [123456789, -123456789, 2075551234])
def test_an_identifier_written_as_a_whole_number_is_refused_by_the_pii_gate(
    tmp_path: Path, fmt: str, value: int
) -> None:
    """Whole-number columns reach the gate by magnitude (pii.INT_CANDIDATE_MIN), not by a regex on their text."""
    t = tiny_tables()
    t["assessments"].loc[0, "achievement_level"] = value
    problems = _problems(write_dataset(tmp_path, t, fmt))
    hit = _one(problems, "assessments", "achievement_level", "refused by the PII gate")
    assert str(abs(value)) not in " ".join(problems) and str(abs(value))[:5] not in hit


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("table", "column"), [("assessments", "achievement_level"), ("wages", "year")])
@pytest.mark.parametrize("ssn", ["004123456", "001234567", "012345678"])
def test_an_ssn_whose_leading_zeros_were_lost_in_a_whole_number_column_is_refused(
    tmp_path: Path, fmt: str, table: str, column: str, ssn: str
) -> None:
    """Maine's SSNs begin 004-007: as a whole number 004-12-3456 is 4123456, seven digits. The gate reads the
    typed value, so it must not need the zeros a spreadsheet or an int64 Parquet column has already dropped."""
    t = tiny_tables()
    t[table].loc[0, column] = int(ssn)
    folder = write_dataset(tmp_path, t, fmt)
    problems = _problems(folder)
    hit = _one(problems, f"{table}.{fmt}", column, "refused by the PII gate")
    assert str(int(ssn)) not in " ".join(problems) and str(int(ssn))[:4] not in hit


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e20", "-1e19", "9223372036854775807"])
def test_a_whole_number_column_holding_nan_inf_or_beyond_bigint_is_a_type_problem_not_a_crash(
    tmp_path: Path, fmt: str, value: str
) -> None:
    """Such a text (CSV) or double (Parquet) rounds to itself, so the 'no decimals' test passed it and the cast to
    BIGINT raised DuckDB's ConversionException, whose message quotes the value."""
    t = tiny_tables()
    if fmt == "csv":
        t["assessments"] = t["assessments"].astype({"achievement_level": object})
        t["assessments"].loc[0, "achievement_level"] = value
        folder = write_dataset(tmp_path, t)
    else:  # written by pyarrow itself: pandas would store NaN as a missing value
        _write_assessments_parquet(tmp_path, t, pa.array([float(value), 2.0], pa.float64()))
        folder = tmp_path
    report = validate_dataset(folder)
    assert not report.ok
    _one([str(p) for p in report.problems], f"assessments.{fmt}", "achievement_level", "not of type int")
    assert "e+" not in report.text() and "922337" not in report.text()


def _write_assessments_parquet(folder: Path, t: dict[str, pd.DataFrame], levels: pa.Array) -> None:
    """The dataset as Parquet, its assessments' achievement_level being ``levels`` (2 rows) as written."""
    a = t.pop("assessments")
    write_dataset(folder, t, "parquet")
    table = pa.Table.from_pandas(a.drop(columns="achievement_level"), preserve_index=False)
    pq.write_table(table.append_column("achievement_level", levels), folder / "assessments.parquet")


def test_a_parquet_decimal_with_a_fraction_in_a_whole_number_column_is_not_rounded(tmp_path: Path) -> None:
    """DECIMAL(5,1) 2.5 cast to BIGINT rounds silently to 3 (a wrong achievement level), as DOUBLE 2.5 must not."""
    _write_assessments_parquet(
        tmp_path, tiny_tables(), pa.array([decimal.Decimal("2.5"), decimal.Decimal("2")], pa.decimal128(5, 1))
    )
    _one(_problems(tmp_path), "assessments.parquet", "achievement_level", "not of type int")
