"""The PII gate: normalisation, identifying shapes, public institution names, and no value in any reason."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from analytics import pii

SSN_VARIANTS = [
    "123-45-6789",
    "123 45 6789",
    "123.45.6789",
    "123/45/6789",
    "123–45–6789",  # en dash
    "123—45—6789",  # em dash
    "123−45−6789",  # minus sign
    "123‐45‐6789",  # Unicode hyphen
    "１２３-４５-６７８９",  # full-width digits
    "１２３４５６７８９",
    "123\u200b45\u200b6789",  # zero-width spaces
    "123\u200d-45\u2060-6789",  # zero-width joiner, word joiner
    "\u202e123-45-6789\u202c",  # bidi override around it
    "١٢٣-٤٥-٦٧٨٩",  # Arabic-Indic digits
    "123\u00a045\u00a06789",  # no-break spaces
    "123456789",
    "ssn 123.45.6789 on file",
]
PHONE_VARIANTS = [
    "2075550199",
    "(207) 555-0199",
    "207.555.0199",
    "207-555-0199",
    "+1 207 555 0199",
    "1-207-555-0199",
    "call ２０７５５５０１９９",
    "555-0199",
]
EMAIL_VARIANTS = [
    "jane.doe@example.org",
    "jane.doe＠example.org",
    "jane [at] example [dot] org",
    "jane(at)example.org",
    "jane {at} example dot org",
    "jane at example dot com",
    "jane at example.com",
    "jane @ example",
]
DATE_VARIANTS = [
    "03/14/2005",
    "3/4/05",
    "14.03.2005",
    "2005-03-14",
    "20050314",
    "March 14, 2005",
    "Mar. 14 2005",
    "14 March 2005",
    "14th of March, 2005",
]
ADDRESS_VARIANTS = [
    "12 Main Street",
    "12 Main St.",
    "4 N Elm Rd",
    "1200 Ocean Ave",
    "PO Box 44",
    "P.O. Box 44",
    "Apt 3",
]
HARMLESS = [
    "KAAAA0001",
    "K3F9A2B7C1",
    "Two or more races",
    "provided",
    "Cumberland",
    "44",
    "2015",
    "2010-11",
    "2019-2020",
    "Birchwater High School",
    "RSU 14",
    "Route 1 School",
    "Grades 9-12",
]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (SSN_VARIANTS, "SSN"),
        (PHONE_VARIANTS, "phone"),
        (EMAIL_VARIANTS, "e-mail"),
        (DATE_VARIANTS, "date"),
        (ADDRESS_VARIANTS, "address"),
    ],
)
def test_every_variant_is_caught_and_no_reason_holds_the_value(values: list[str], words: str) -> None:
    for value in values:
        reasons = pii.content_reasons(value)
        assert any(words in r for r in reasons), (value, reasons)
        assert pii.looks_like_identifier(value)
        for reason in reasons:
            assert value not in reason and pii.normalise_text(value) not in reason


@pytest.mark.parametrize("value", HARMLESS)
def test_keys_allowed_values_and_school_years_are_not_identifiers(value: str) -> None:
    assert pii.content_reasons(value) == [], value


def test_candidate_pattern_covers_every_value_the_python_check_refuses() -> None:
    """DuckDB only hands the Python check values matching CANDIDATE_PATTERN: that must lose nothing."""
    con = duckdb.connect()
    flagged = [v for v in SSN_VARIANTS + PHONE_VARIANTS + EMAIL_VARIANTS + DATE_VARIANTS + ADDRESS_VARIANTS]
    for value in flagged:
        (hit,) = con.execute("SELECT regexp_matches(?, ?)", [value, pii.CANDIDATE_PATTERN]).fetchone() or (False,)
        assert hit, value
    for value in ["KAAAA0001", "K3F9A2B7C1", "provided", "Two or more races", "44"]:
        (hit,) = con.execute("SELECT regexp_matches(?, ?)", [value, pii.CANDIDATE_PATTERN]).fetchone() or (True,)
        assert not hit, value  # keys and allowed values are not scanned in Python


def test_normalisation() -> None:
    assert pii.normalise_text("１２３\u2013４５\u200b\u2013６７８９") == "123-45-6789"
    assert pii.normalise_text("a\u00adb\ufeffc\u202ad") == "abcd"
    assert pii.normalise_text("x\u3002y\u2024z") == "x.y.z"
    assert pii.identifying_column_reason("ｓｓｎ") == "a Social Security number"  # full-width column name
    assert pii.identifying_column_reason("s\u200bsn") == "a Social Security number"


@pytest.mark.parametrize(
    "name",
    [
        "Birchwater High School",
        "Loon Hollow Regional School Unit",
        "Aster Bluff School Administrative District",
        "Birchwater Middle/High School",
        "Dr. Lewis S. Libby School",  # honorees of schools are public
        "Mabel I. Wilson School",
        "St. John's Catholic School",
        "Saint-Agathe École élémentaire School",
        "RSU 14",
        "MSAD 52",
        "AOS 93",
        "Cape Elizabeth Public Schools",
        "Lincoln Academy",
        "School #3",
        "Portland Arts & Technology High School",
    ],
)
def test_institution_names_are_accepted(name: str) -> None:
    assert pii.check_public_name(name) == [], name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Jane Doe", "person's name"),
        ("Mrs. Smith", "person's name"),
        ("Birchwater High School (Jane Doe)", "person's name"),
        ("Birchwater High School - John Q. Smith", "person's name"),
        ("Loon Hollow", "institution name"),
        ("Birchwater School, 12 Main St", "address"),
        ("Birchwater School, born 03/14/2005", "date"),
        ("Birchwater School 123.45.6789", "SSN"),
        ("Birchwater School 2075550199", "phone"),
        ("Birchwater School jane [at] example.org", "e-mail"),
        ("Birchwater School 1234567", "7 or more digits"),
        ('<a href="https://evil.example">Birchwater School</a>', "markup"),
        ("[Birchwater School](javascript:alert(1))", "markup"),
        ("Birchwater School javascript:alert(1)", "markup"),
        ("$\\frac{1}{0}$ School", "markup"),
        ("Birchwater School ![x](http://evil/x.png)", "markup"),
        ('=HYPERLINK("http://evil","Birchwater School")', "formula"),
        ("+Birchwater School", "formula"),
        ("-Birchwater School", "formula"),
        ("@Birchwater School", "formula"),
        ("\tBirchwater School", "formula"),
        ("Birchwater\u200bSchool District", "invisible"),
        ("Birchwater \u202eloohcS\u202c District", "invisible"),
        ("Birchwater School\nDistrict", "invisible"),
        ("Birchwater School {{7*7}}", "markup"),
        ("Birchwater School; DROP TABLE", "characters not used"),
        ("B" * 121 + " School", "longer than"),
        ("   ", "blank"),
    ],
)
def test_public_names_that_are_not_institution_names_are_refused(name: str, words: str) -> None:
    reasons = pii.check_public_name(name)
    assert any(words in r for r in reasons), (name, reasons)
    assert not any(name.strip() and name.strip() in r for r in reasons)


def test_a_20_megabyte_name_is_refused_without_scanning() -> None:
    reasons = pii.check_public_name("Birchwater School " * 1_200_000)
    assert reasons == [f"are longer than {pii.MAX_PUBLIC_NAME_LENGTH} characters"]
    assert pii.content_reasons("x" * 20_000_000) == ["text longer than 10,000 characters, refused unread"]


def test_refusals_group_values_by_reason() -> None:
    groups = pii.refusals(["KAAAA0001", "123.45.6789", "１２３４５６７８９", None], public=False)
    assert sorted(len(v) for v in groups.values()) == [1, 1]
    public = pii.refusals(["Birchwater School", "Jane Doe"], public=True)
    assert all(v == ["Jane Doe"] for v in public.values())


def test_int_candidate_bound_matches_the_pattern_on_every_whole_number_text() -> None:
    """The validator tests whole numbers by magnitude (pii.INT_CANDIDATE_MIN), not by the regex on their text:
    the two must agree on every BIGINT, including the boundaries and both extremes."""
    con = duckdb.connect()
    edges = [0, 1, -1, 999_999, -999_999, 1_000_000, -1_000_000, 123456789, -123456789, 2**63 - 1, -(2**63)]
    rng = np.random.default_rng(5)
    values = (
        edges
        + [int(v) for v in rng.integers(-(10**12), 10**12, 2000)]
        + [int(v) for v in 10 ** rng.integers(0, 18, 200)]
    )
    con.execute("CREATE TABLE v AS SELECT unnest(?::BIGINT[]) AS v", [values])
    (disagree,) = con.execute(
        f"SELECT count(*) FROM v WHERE regexp_matches(CAST(v AS VARCHAR), ?) "
        f"<> (v >= {pii.INT_CANDIDATE_MIN} OR v <= -{pii.INT_CANDIDATE_MIN})",
        [pii.CANDIDATE_PATTERN],
    ).fetchone() or (1,)
    assert disagree == 0
