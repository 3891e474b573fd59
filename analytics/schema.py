"""The data contract: the single source of truth for the tables a dataset holds.

A dataset is a folder with one file per table, ``<table>.parquet`` or
``<table>.csv``. Every other module (the validator, the generator, the
documentation writer, the metrics) reads names, types, allowed values and keys
from here. ``docs/data-contract.md`` is generated from this module by
``python -m analytics contract-doc``.

Column names follow the issue's contract; each column names the CEDS element it
corresponds to where one exists, so state staff can map their extracts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DType = Literal["string", "int", "float", "bool", "date"]

# ---------------------------------------------------------------------------
# Public lists. Group keys of every published table come from these lists (or
# from the public districts/schools tables), never from which values occur.
# ---------------------------------------------------------------------------

#: The 16 Maine counties, name -> 5-digit county FIPS (US Census GEOID).
MAINE_COUNTIES: dict[str, str] = {
    "Androscoggin": "23001",
    "Aroostook": "23003",
    "Cumberland": "23005",
    "Franklin": "23007",
    "Hancock": "23009",
    "Kennebec": "23011",
    "Knox": "23013",
    "Lincoln": "23015",
    "Oxford": "23017",
    "Penobscot": "23019",
    "Piscataquis": "23021",
    "Sagadahoc": "23023",
    "Somerset": "23025",
    "Waldo": "23027",
    "Washington": "23029",
    "York": "23031",
}

LOCALES: tuple[str, ...] = ("City", "Suburb", "Town", "Rural")
SCHOOL_LEVELS: tuple[str, ...] = ("Elementary", "Middle", "High", "Combined")
SEXES: tuple[str, ...] = ("F", "M", "X")

#: The 7 federal race/ethnicity reporting categories (CEDS 000144 + 001943).
RACE_ETHNICITY: tuple[str, ...] = (
    "Hispanic/Latino",
    "American Indian or Alaska Native",
    "Asian",
    "Black or African American",
    "Native Hawaiian or Other Pacific Islander",
    "White",
    "Two or more races",
)

#: Exit or Withdrawal Type (CEDS 000110), simplified to what the ACGR needs.
EXIT_TYPES: tuple[str, ...] = (
    "continuing",
    "graduated",
    "transferred_out",
    "emigrated",
    "deceased",
    "dropped_out",
    "other",
)
#: Exits that remove a student from the adjusted cohort (ESEA 8101(23)).
COHORT_REMOVING_EXITS: tuple[str, ...] = ("transferred_out", "emigrated", "deceased")

SUBJECTS: tuple[str, ...] = ("math", "ela")
ASSESSED_GRADES: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 11)
ACHIEVEMENT_LEVELS: tuple[int, ...] = (1, 2, 3, 4)
PROFICIENT_LEVEL = 3

SSN_STATUSES: tuple[str, ...] = ("provided", "declined")
INSTITUTION_LEVELS: tuple[str, ...] = ("2-year", "4-year")
CONTROLS: tuple[str, ...] = ("public", "private")

#: NAICS 2017 sectors as they appear in UI wage records (two-digit codes; the
#: three manufacturing, two retail and two transportation codes are separate).
NAICS_SECTORS: dict[str, str] = {
    "11": "Agriculture, Forestry, Fishing and Hunting",
    "21": "Mining, Quarrying, and Oil and Gas Extraction",
    "22": "Utilities",
    "23": "Construction",
    "31": "Manufacturing",
    "32": "Manufacturing",
    "33": "Manufacturing",
    "42": "Wholesale Trade",
    "44": "Retail Trade",
    "45": "Retail Trade",
    "48": "Transportation and Warehousing",
    "49": "Transportation and Warehousing",
    "51": "Information",
    "52": "Finance and Insurance",
    "53": "Real Estate and Rental and Leasing",
    "54": "Professional, Scientific, and Technical Services",
    "55": "Management of Companies and Enterprises",
    "56": "Administrative and Support and Waste Management",
    "61": "Educational Services",
    "62": "Health Care and Social Assistance",
    "71": "Arts, Entertainment, and Recreation",
    "72": "Accommodation and Food Services",
    "81": "Other Services (except Public Administration)",
    "92": "Public Administration",
}

GRADES: tuple[int, ...] = tuple(range(0, 13))  # 0 = kindergarten .. 12
#: School years are named by their spring year: 2015 means 2014-15.
MIN_SCHOOL_YEAR = 2000
MAX_SCHOOL_YEAR = 2030
#: First school year in which Maine schools asked for SSNs (fall 2010).
FIRST_SSN_SCHOOL_YEAR = 2011
MIN_WAGE_YEAR = 2000
MAX_WAGE_YEAR = 2030
#: Quarterly wages above this are treated as a data error, not an outlier.
MAX_QUARTERLY_WAGES = 5_000_000.0
MAX_SCALE_SCORE = 10_000.0

#: Pseudonymous keys: letters, digits, '-' and '_', 6 to 64 characters.
#: A key made only of 9 digits is refused by the PII gate as SSN-shaped.
KEY_PATTERN = r"^[A-Za-z0-9_-]{6,64}$"


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    dtype: DType
    description: str
    ceds: str = ""
    allowed: tuple[object, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None
    nullable: bool = False
    #: A pseudonymous identifier: masked in every report and never displayed.
    pseudonymous_key: bool = False
    #: An optional column may be left out of the file; the loader then fills it with NULL.
    required: bool = True
    #: How a value is written, in words, for messages and the contract document.
    format_hint: str = ""


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of this table must resolve to ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """One table of the contract."""

    name: str
    grain: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def key_columns(self, present: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The primary key as checked for a file with columns ``present``: optional key columns count when present."""
        return tuple(c for c in self.primary_key if self.column(c).required or c in present)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


def _student_key(description: str = "Pseudonymous student key assigned by the state") -> Column:
    return Column(
        "student_key",
        "string",
        description + "; never an SSN or a local student ID that reveals one.",
        ceds="Student Identifier (000166), pseudonymised",
        pattern=KEY_PATTERN,
        pseudonymous_key=True,
    )


SCHOOL_YEAR_FORMAT = "the spring year as a whole number: 2020 for 2019-20 (not 2019-20, 2019-2020 or the fall year)"


def _school_year(description: str) -> Column:
    return Column(
        "school_year",
        "int",
        description,
        ceds="School Year (000243), spring year",
        min_value=MIN_SCHOOL_YEAR,
        max_value=MAX_SCHOOL_YEAR,
        format_hint=SCHOOL_YEAR_FORMAT,
    )


TABLES: tuple[Table, ...] = (
    Table(
        name="districts",
        grain="district (school administrative unit)",
        description="Public list of districts. Its ids are the group keys of district tables.",
        columns=(
            Column(
                "district_id",
                "string",
                "State district identifier.",
                ceds="Local Education Agency Identifier (000827)",
                pattern=r"^[A-Za-z0-9_-]{1,16}$",
            ),
            Column("district_name", "string", "Public name of the district.", ceds="Name of Institution (000191)"),
            Column(
                "county",
                "string",
                "Maine county in which the district's office lies.",
                ceds="County ANSI Code (001509), by name",
                allowed=tuple(MAINE_COUNTIES),
            ),
            Column(
                "locale",
                "string",
                "NCES locale, collapsed to its four families.",
                ceds="School Locale (000255 family)",
                allowed=LOCALES,
            ),
        ),
        primary_key=("district_id",),
    ),
    Table(
        name="schools",
        grain="school",
        description="Public list of schools and the district each belongs to.",
        columns=(
            Column(
                "school_id",
                "string",
                "State school identifier.",
                ceds="School Identifier (001069)",
                pattern=r"^[A-Za-z0-9_-]{1,16}$",
            ),
            Column("school_name", "string", "Public name of the school.", ceds="Name of Institution (000191)"),
            Column(
                "district_id",
                "string",
                "District the school belongs to.",
                ceds="Local Education Agency Identifier (000827)",
            ),
            Column(
                "school_level",
                "string",
                "Grades the school serves, as a family.",
                ceds="School Level (000256)",
                allowed=SCHOOL_LEVELS,
            ),
        ),
        primary_key=("school_id",),
        foreign_keys=(ForeignKey(("district_id",), "districts", ("district_id",)),),
    ),
    Table(
        name="students",
        grain="student",
        description="One row per student with the subgroups used for disaggregation.",
        columns=(
            _student_key(),
            Column("sex", "string", "F, M or X (non-binary).", ceds="Sex (000255)", allowed=SEXES),
            Column(
                "race_ethnicity",
                "string",
                "One of the 7 federal reporting categories.",
                ceds="Hispanic or Latino Ethnicity (000144) and Race (001943)",
                allowed=RACE_ETHNICITY,
            ),
            Column(
                "economically_disadvantaged",
                "bool",
                "Ever economically disadvantaged.",
                ceds="Economic Disadvantage Status (000086)",
            ),
            Column(
                "english_learner",
                "bool",
                "Ever identified as an English learner.",
                ceds="English Learner Status (000180)",
            ),
            Column("disability", "bool", "Ever served under IDEA.", ceds="IDEA Indicator (000151)"),
        ),
        primary_key=("student_key",),
    ),
    Table(
        name="enrollments",
        grain="student x school year x school",
        description="Each school a student attended in each school year, and how the year ended.",
        columns=(
            _student_key(),
            _school_year("School year of the enrolment (2015 = 2014-15)."),
            Column("school_id", "string", "School attended.", ceds="School Identifier (001069)"),
            Column(
                "grade",
                "int",
                "Grade level: 0 = kindergarten .. 12.",
                ceds="Grade Level (000126)",
                min_value=0,
                max_value=12,
            ),
            Column(
                "exit_type",
                "string",
                "How the enrolment ended: continuing, graduated (regular diploma), "
                "transferred_out (documented), emigrated, deceased, dropped_out, other "
                "(undocumented leaver).",
                ceds="Exit or Withdrawal Type (000110)",
                allowed=EXIT_TYPES,
            ),
        ),
        primary_key=("student_key", "school_year", "school_id"),
        foreign_keys=(
            ForeignKey(("student_key",), "students", ("student_key",)),
            ForeignKey(("school_id",), "schools", ("school_id",)),
        ),
    ),
    Table(
        name="assessments",
        grain="student x school year x subject",
        description="State assessment results, grades 3-8 and 11.",
        columns=(
            _student_key(),
            _school_year("School year of the test."),
            Column(
                "grade",
                "int",
                "Grade in which the test was taken (3-8 or 11).",
                ceds="Grade Level When Assessed (000126)",
                allowed=ASSESSED_GRADES,
            ),
            Column("subject", "string", "math or ela.", ceds="Assessment Academic Subject (000002)", allowed=SUBJECTS),
            Column(
                "scale_score",
                "float",
                "Scale score, within the subject and grade's scale declared in extract.json (default 200-700).",
                ceds="Assessment Result Score Value",
                min_value=0,
                max_value=MAX_SCALE_SCORE,
            ),
            Column(
                "achievement_level",
                "int",
                "1-4; 3 and 4 are proficient.",
                ceds="Assessment Performance Level Identifier",
                allowed=ACHIEVEMENT_LEVELS,
            ),
        ),
        primary_key=("student_key", "school_year", "subject"),
        foreign_keys=(ForeignKey(("student_key",), "students", ("student_key",)),),
    ),
    Table(
        name="ssn_collection",
        grain="student",
        description=(
            "When and where the family was asked for the student's SSN, and whether they "
            "provided it. The SSN itself is never part of the dataset."
        ),
        columns=(
            _student_key(),
            Column(
                "school_year",
                "int",
                "School year in which the family was asked.",
                ceds="School Year (000243)",
                min_value=FIRST_SSN_SCHOOL_YEAR,
                max_value=MAX_SCHOOL_YEAR,
                format_hint=SCHOOL_YEAR_FORMAT,
            ),
            Column("district_id", "string", "District that asked.", ceds="Local Education Agency Identifier (000827)"),
            Column("status", "string", "provided or declined.", allowed=SSN_STATUSES),
        ),
        primary_key=("student_key",),
        foreign_keys=(
            ForeignKey(("student_key",), "students", ("student_key",)),
            ForeignKey(("district_id",), "districts", ("district_id",)),
        ),
    ),
    Table(
        name="postsecondary",
        grain="student x term x institution",
        description=(
            "Postsecondary enrolment terms (National Student Clearinghouse detail style): one row per student, "
            "term and institution, so a student enrolled at two colleges in one term has two rows."
        ),
        columns=(
            _student_key(),
            Column(
                "term_start",
                "date",
                "First day of the enrolled term.",
                ceds="Enrollment Entry Date (000097)",
                format_hint="YYYY-MM-DD, such as 2017-08-29 (not 20170829 or 8/29/2017)",
            ),
            Column(
                "institution_level",
                "string",
                "2-year or 4-year.",
                ceds="Level of Institution (000174)",
                allowed=INSTITUTION_LEVELS,
            ),
            Column("control", "string", "public or private.", ceds="Control of Institution (000567)", allowed=CONTROLS),
            Column("in_state", "bool", "Institution located in Maine."),
            Column(
                "institution_id",
                "string",
                "Optional: the college's identifier (such as the OPEID or the Clearinghouse college code). "
                "Without it, two rows of one term are told apart by level, control and place.",
                ceds="Institution IPEDS UnitID (001491) or OPEID",
                pattern=r"^[A-Za-z0-9_-]{1,16}$",
                nullable=True,
                required=False,
            ),
        ),
        primary_key=("student_key", "term_start", "institution_level", "control", "in_state", "institution_id"),
        foreign_keys=(ForeignKey(("student_key",), "students", ("student_key",)),),
    ),
    Table(
        name="wages",
        grain="student x calendar quarter",
        description=(
            "Maine UI wage records matched by SSN. Only students whose SSN was provided can "
            "appear; a student absent here is unmatched or not employed in Maine UI-covered "
            "work, and the two cannot be told apart."
        ),
        columns=(
            _student_key(),
            Column("year", "int", "Calendar year.", min_value=MIN_WAGE_YEAR, max_value=MAX_WAGE_YEAR),
            Column("quarter", "int", "Calendar quarter 1-4.", min_value=1, max_value=4),
            Column(
                "wages",
                "float",
                "Wages paid in the quarter, all employers, nominal USD.",
                ceds="Employed After Exit (000988) / earnings",
                min_value=0,
                max_value=MAX_QUARTERLY_WAGES,
            ),
            Column(
                "naics2", "string", "NAICS sector of the main employer in the quarter.", allowed=tuple(NAICS_SECTORS)
            ),
        ),
        primary_key=("student_key", "year", "quarter"),
        foreign_keys=(ForeignKey(("student_key",), "students", ("student_key",)),),
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES_BY_NAME)


def table(name: str) -> Table:
    """Return the contract table called ``name``.

    >>> table("students").primary_key
    ('student_key',)
    """
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the data contract; tables are {', '.join(TABLE_NAMES)}") from None
