"""The PII gate: what an identifying column or value looks like.

The product never holds SSNs, names, birth dates, addresses, e-mail addresses or
phone numbers of students. A table that carries such a column (by its name) or
such a value (by its shape) is refused before anything is loaded. The patterns
here are used by :mod:`analytics.validate`, both on column names and, through
DuckDB regular expressions, on the content of every text and key column.
"""

from __future__ import annotations

import re

#: Column-name patterns (matched against the lower-cased name with every
#: non-alphanumeric character removed) and what they reveal.
IDENTIFYING_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"ssn|socialsecurity|socsec|ssnumber|^ss$|^ssno$|^sin$|taxpayerid|^tin$", "a Social Security number"),
    (
        r"firstname|lastname|middlename|fullname|surname|givenname|familyname|^name$|^fname$|^lname$"
        r"|studentname|parentname|guardianname|mothername|fathername|maidenname|nickname|preferredname",
        "a person's name",
    ),
    (r"birth|^dob$|^bday$", "a birth date"),
    (
        r"address|street|^city$|^zip|zipcode|postalcode|postcode|^apt$|housenumber|residence|latitude|longitude",
        "an address",
    ),
    (r"email|e-?mail", "an e-mail address"),
    (r"phone|mobile|telephone|^cell$|cellnumber|^fax$", "a phone number"),
    (r"driverslicense|passport|medicaid|medicalrecord|^mrn$", "a personal document number"),
)

#: Public entity names that the contract carries on purpose.
ALLOWED_NAME_COLUMNS: frozenset[str] = frozenset({"district_name", "school_name"})

#: DuckDB (RE2) regular expressions for identifying content, with a description.
#: A 9-digit run is SSN-shaped only when it is not part of a longer digit run.
CONTENT_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)", "SSN-shaped (ddd-dd-dddd)"),
    (r"(^|[^0-9])[0-9]{3} [0-9]{2} [0-9]{4}([^0-9]|$)", "SSN-shaped (ddd dd dddd)"),
    (r"(^|[^0-9])[0-9]{9}([^0-9]|$)", "SSN-shaped (9 digits)"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "an e-mail address"),
    (r"(^|[^0-9])\(?[0-9]{3}\)?[-. ][0-9]{3}[-. ][0-9]{4}([^0-9]|$)", "a phone number"),
)


def normalise_column_name(name: str) -> str:
    """Lower-case ``name`` and drop everything but letters and digits.

    >>> normalise_column_name("Student_SSN")
    'studentssn'
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


def identifying_column_reason(name: str) -> str | None:
    """Say what an identifying column reveals, or ``None`` if the name looks safe.

    >>> identifying_column_reason("Birth_Date")
    'a birth date'
    >>> identifying_column_reason("school_name") is None
    True
    """
    if name in ALLOWED_NAME_COLUMNS:
        return None
    norm = normalise_column_name(name)
    for pattern, reveals in IDENTIFYING_NAME_PATTERNS:
        if re.search(pattern, norm):
            return reveals
    return None


def mask_value(value: object) -> str:
    """Mask a pseudonymous key or suspect value for display in a report.

    Keeps the first two characters of a key so a data steward can find the row,
    and nothing of a value that could be an identifier.

    >>> mask_value("K3F9A2B7C1")
    'K3********'
    """
    text = "" if value is None else str(value)
    if len(text) <= 2:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 2)
