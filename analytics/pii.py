"""The PII gate: what an identifying column or value looks like.

The product never holds SSNs, names, birth dates, addresses, e-mail addresses or
phone numbers of students. A table that carries such a column (by its name) or
such a value (by its shape) is refused before anything is loaded. The free-text
columns that are published verbatim (district and school names) are held to a
stricter rule: they must look like the names of institutions.

Text is normalised before it is matched (:func:`normalise_text`): Unicode NFKC
(full-width and other compatibility forms), every decimal digit to 0-9, every
dash to ``-`` and dot to ``.``, and zero-width, bidirectional and other invisible
format characters removed, so ``１２３–４５​–６７８９`` is caught like ``123-45-6789``.

How the validator uses this module: :data:`CANDIDATE_PATTERN` (an RE2 pattern
DuckDB can run) picks the few values of a column that could hold an identifier;
:func:`refusals` then checks those distinct values in Python and groups them by
reason. Every reason is a phrase without the value in it; no function here ever
puts a value into a message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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
#: Free-text columns published verbatim: held to :func:`check_public_name`.
PUBLIC_TEXT_COLUMNS: frozenset[str] = ALLOWED_NAME_COLUMNS

#: DuckDB (RE2) regular expressions for ASCII identifying content, with a description.
#: Kept for callers that match in SQL; they miss Unicode look-alikes, obfuscated
#: e-mails, dates and addresses, so the validator uses :func:`refusals` instead.
CONTENT_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)", "SSN-shaped (ddd-dd-dddd)"),
    (r"(^|[^0-9])[0-9]{3} [0-9]{2} [0-9]{4}([^0-9]|$)", "SSN-shaped (ddd dd dddd)"),
    (r"(^|[^0-9])[0-9]{9}([^0-9]|$)", "SSN-shaped (9 digits)"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "an e-mail address"),
    (r"(^|[^0-9])\(?[0-9]{3}\)?[-. ][0-9]{3}[-. ][0-9]{4}([^0-9]|$)", "a phone number"),
)

#: Longest public name accepted (NCES institution names stay under 80 characters).
MAX_PUBLIC_NAME_LENGTH = 120
#: Longest value the content patterns scan; a longer one is refused unread.
MAX_SCANNED_LENGTH = 10_000

#: DuckDB (RE2) regular expression that every value :func:`content_reasons` flags
#: also matches (tested on the hostile corpus): any non-ASCII character, digits
#: split by punctuation or spaces, a run of 7 digits, an ``@``, the word "at", a
#: number followed by a word, or a box/apartment number. Values that do not match
#: (pseudonymous keys, allowed values) need no Python check.
CANDIDATE_PATTERN = (
    r"[^\x00-\x7F]|[0-9][^A-Za-z0-9]+[0-9]|[0-9]{7}|@|(?i)\bat\b|[0-9][A-Za-z]{0,2}\s+[A-Za-z]"
    r"|(?i)box\s*[0-9]|(?i)\b(apt|apartment|suite|ste)\b"
)
#: The smallest magnitude of a whole number whose decimal text (``-?[0-9]+``) matches CANDIDATE_PATTERN:
#: of its alternatives only ``[0-9]{7}`` can match such a text. It is also the smallest SSN stored as a
#: number (001-00-0000 is never issued; 001-01-0000 is 1010000), see :func:`whole_number_reasons`.
INT_CANDIDATE_MIN = 1_000_000

# --- normalisation ------------------------------------------------------------

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d\u02d7\u058a\u05be\u1806"
_DOTS = "\u00b7\u2022\u2024\u2027\u2219\u22c5\u3002\u30fb\ufe52\uff0e\uff61\u0387"
_TRANSLATE = {ord(c): "-" for c in _DASHES} | {ord(c): "." for c in _DOTS}
_INVISIBLE_RANGES = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))  # variation selectors


def _is_invisible(ch: str) -> bool:
    if unicodedata.category(ch) == "Cf":  # zero-width, bidi controls, soft hyphen, BOM, word joiner
        return True
    cp = ord(ch)
    return ch in "\u034f\u115f\u1160\u3164\uffa0" or any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES)


def normalise_text(text: str) -> str:
    """The form of ``text`` the patterns are matched against.

    NFKC, then every Unicode decimal digit to ASCII, every dash to ``-``, every
    dot-like mark to ``.``, every space to a plain space, and invisible format
    characters (zero-width, bidi controls, soft hyphen, variation selectors) removed.

    >>> normalise_text("１２３\u2013４５\u200b\u2013６７８９")
    '123-45-6789'
    >>> normalise_text("jane\uff20example\u3002org")
    'jane@example.org'
    """
    out = []
    for ch in unicodedata.normalize("NFKC", text).translate(_TRANSLATE):
        if _is_invisible(ch):
            continue
        if ch.isdecimal():
            out.append(str(unicodedata.decimal(ch)))
        elif unicodedata.category(ch) in ("Pd",):
            out.append("-")
        elif unicodedata.category(ch) == "Zs":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


# --- content patterns (matched on the normalised, lower-cased text) ------------------

_SEP = r"[\s./_\\-]"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_STREET = (
    r"(?:street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|boulevard|blvd|court|ct|place|pl|terrace|ter|circle"
    r"|cir|highway|hwy|parkway|pkwy|way|trail|trl|square|sq|turnpike|tpke|alley|aly)"
)
_TLD = r"(?:com|org|net|edu|gov|mil|us|io|me|info|biz|co|uk|ca|de|fr)"
_DOT_WORD = r"(?:\s*\.\s*|\s+dot\s+|\s*[\[({<]\s*dot\s*[\])}>]\s*)"

#: Python patterns for identifying content and what a match looks like. Each
#: reason reads after "value(s) look like".
CONTENT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(rf"(?<!\d)\d{{3}}{_SEP}+\d{{2}}{_SEP}+\d{{4}}(?!\d)"),
        "an SSN written ddd-dd-dddd or ddd dd dddd (any separator)",
    ),
    (re.compile(r"(?<!\d)\d{9}(?!\d)"), "an SSN written as 9 digits"),
    (
        re.compile(r"(?<!\d)(?:\+?1[\s.-]*)?\(?\d{3}\)?[\s.-]*\d{3}[\s.-]*\d{4}(?!\d)|(?<!\d)\d{3}[.-]\d{4}(?!\d)"),
        "a phone number",
    ),
    (
        re.compile(
            r"[a-z0-9._%+-]+\s*@\s*[a-z0-9-]"
            r"|[a-z0-9._%+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[a-z0-9-]"
            rf"|[a-z0-9._%+-]+\s+at\s+[a-z0-9-]+(?:{_DOT_WORD}[a-z0-9-]+)*{_DOT_WORD}{_TLD}\b"
        ),
        "an e-mail address (also written with [at] or at ... dot)",
    ),
    (
        re.compile(
            r"(?<!\d)(?:0?[1-9]|1[0-2]|[12]\d|3[01])[/.-](?:0?[1-9]|1[0-2]|[12]\d|3[01])[/.-](?:19|20)?\d{2}(?![\d/.-]*\d)"
            r"|(?<!\d)(?:19|20)\d{2}[/.-](?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])(?!\d)"
            r"|(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)"
            rf"|\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b"
            rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+(?:19|20)\d{{2}}\b"
        ),
        "a full date (day, month and year), such as a birth date",
    ),
    (
        re.compile(
            rf"(?<![\w])\d{{1,6}}[a-z]?\s+(?:[a-z0-9'.-]+\s+){{0,3}}{_STREET}\b"
            r"|\bp\.?\s*o\.?\s*box\s*#?\s*\d|\b(?:apt|apartment|suite|ste)\.?\s*#?\s*\d"
        ),
        "a street or postal address",
    ),
)


def content_reasons(text: str) -> list[str]:
    """What identifying content ``text`` looks like: SSN, phone, e-mail, date or address.

    Returns a list of reasons (phrases that read after "looks like"), empty when
    nothing was found. The value itself is never part of a reason.

    >>> content_reasons("call 207.555.0199")
    ['a phone number']
    >>> content_reasons("jane [at] example [dot] org")
    ['an e-mail address (also written with [at] or at ... dot)']
    >>> content_reasons("Birchwater High School")
    []
    """
    if len(text) > MAX_SCANNED_LENGTH:
        return [f"text longer than {MAX_SCANNED_LENGTH:,} characters, refused unread"]
    norm = normalise_text(text).lower()
    return [reason for pattern, reason in CONTENT_RULES if pattern.search(norm)]


def looks_like_identifier(text: str) -> bool:
    """Whether ``text`` holds something shaped like an SSN, phone, e-mail, full date or address.

    >>> looks_like_identifier("１２３４５６７８９"), looks_like_identifier("KAAAA0001")
    (True, False)
    """
    return bool(content_reasons(text))


# --- public names ------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


#: Words that make a name an institution's (matched case-insensitively, whole words).
INSTITUTION_WORDS: frozenset[str] = frozenset(
    _words(
        """school schools academy academie district department dept rsu sau sad msad aos csd cssd high elementary
        middle primary intermediate grammar kindergarten preschool prek montessori center centre
        regional institute campus charter consolidated township municipal technical technology career
        ctc cte college education educational seminary plantation territory unorganized alternative
        childhood magnet tribal annex administrative superintendent superintendency"""
    )
)
#: Words that end a place name rather than a surname ("Jackson Brook").
_PLACE_WORDS = frozenset(
    _words(
        """brook hollow lake river falls harbor harbour island isle mountain mount valley cape point bay pond mills
    mill corner corners hill hills ridge springs spring town village plantation north south east west upper
    lower area heights landing cove glen meadow knoll ledge notch narrows reach crossing bluff haven"""
    )
)
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sr", "fr"})
#: Common US given names (SSA lists, both sexes, several decades).
GIVEN_NAMES: frozenset[str] = frozenset(
    _words(
        """aaron abigail adam addison aiden alex alexander alexis alice allison alyssa amanda amber amelia amy andrea
    andrew angela anna anne anthony ashley austin ava barbara benjamin betty beverly brandon brenda brian
    brittany caleb cameron carl carol caroline carter catherine charles charlotte cheryl chloe chris christian
    christina christine christopher cynthia daniel david deborah debra denise dennis diane donald donna dorothy
    douglas dylan edward elijah elizabeth ella emily emma eric ethan evelyn frances gabriel gary george grace
    gregory hailey hannah harold heather helen henry isabella jack jacob james janet janice jason jayden jean
    jeffrey jennifer jeremy jerry jessica joan john jonathan jordan jose joseph joshua joyce judith judy julia
    julie justin karen katherine kathleen kathryn kayla keith kelly kenneth kevin kimberly kyle larry laura
    lauren lawrence liam linda lisa logan lucas madison margaret maria marie marilyn mark mary mason matthew
    megan melissa michael michelle mia nancy natalie nathan nicholas nicole noah olivia pamela patricia patrick
    paul peter rachel ralph raymond rebecca richard robert roger ronald rose ruth ryan samantha samuel sandra
    sara sarah scott sean sharon shirley sophia stephanie stephen steven susan teresa terry thomas timothy tyler
    victoria virginia walter wayne william zachary zoe jane jim joe bob bill mike tom sam ben dan tim ann kate
    jenny jill josh matt nick tony luke owen levi ezra hazel aria nora lily leah"""
    )
)
_PERSON_WORDS = re.compile(
    r"\b(?:born|dob|d\.o\.b|birthday|date of birth|ssn|social security|e-?mail|phone|tel|cell|mobile|fax"
    r"|student|pupil|parent|guardian|mother|father)\b"
)
_MARKUP = re.compile(
    r"[<>`]|\[[^\]]*\]\s*\(|\]\(|(?:javascript|vbscript|data|file)\s*:|https?:|www\.|\$[^$]*\$|\{\{|\}\}|&#?\w+;"
    r"|^\s*(?:#{1,6}\s|[*_]{1,3}\S|>|\|)",
    re.IGNORECASE,
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NAME_CHARS = set(" .,'’&()/#:-")
_SEGMENT_SPLIT = re.compile(r"[,;:()\[\]{}|/]|\s[-–—]\s")
_TOKEN = re.compile(r"[^\W\d_][^\W\d_'.-]*\.?")


def _is_name_char(ch: str) -> bool:
    return ch in _NAME_CHARS or unicodedata.category(ch)[0] in "LMN"


def _looks_like_person(segment: str) -> bool:
    """A run of words like "Jane Q. Doe" or "Mrs. Doe" with no institution word in it."""
    tokens = _TOKEN.findall(segment)
    lowered = [t.lower().rstrip(".") for t in tokens]
    if any(w in INSTITUTION_WORDS for w in lowered):
        return False
    for i, word in enumerate(lowered[:-1]):
        if word not in GIVEN_NAMES and word not in _HONORIFICS:
            continue
        j = i + 1
        if j < len(tokens) - 1 and len(lowered[j]) == 1:  # a middle initial
            j += 1
        nxt = tokens[j]
        if nxt[:1].isupper() and lowered[j] not in _PLACE_WORDS and lowered[j] not in GIVEN_NAMES | _HONORIFICS:
            return True
        if word in GIVEN_NAMES and nxt[:1].isupper() and lowered[j] in GIVEN_NAMES and j == len(tokens) - 1:
            return True  # "Taylor James": two given names and nothing else
    return False


def check_public_name(text: str) -> list[str]:
    """Why ``text`` cannot be published as a district or school name; empty when it can.

    A public name must look like an institution's: at most
    :data:`MAX_PUBLIC_NAME_LENGTH` characters, printable letters, digits, spaces and
    ``. , ' & ( ) / # : -`` only, no markup or link syntax, no spreadsheet formula
    start, no run of 7 or more digits, a word such as School, District, Academy or
    RSU, nothing shaped like an SSN, phone, e-mail, full date or street address, and
    no part that looks like a person's name. Each reason reads after "value(s)";
    the value itself is never part of a reason.

    >>> check_public_name("Birchwater Middle/High School")
    []
    >>> check_public_name("Jane Doe")  # doctest: +NORMALIZE_WHITESPACE
    ['do not look like an institution name (no word such as School, District, Academy, RSU or Department)',
     "contain what looks like a person's name"]
    >>> check_public_name("<a href=x>Birchwater School</a>")[0]
    'contain markup or link syntax (<, >, [..](..), javascript:, $...$)'
    """
    if len(text) > MAX_PUBLIC_NAME_LENGTH:
        return [f"are longer than {MAX_PUBLIC_NAME_LENGTH} characters"]
    if not text.strip():
        return ["are blank"]
    reasons: list[str] = []
    if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") for ch in text) or any(
        _is_invisible(ch) for ch in text
    ):
        reasons.append("contain invisible or control characters (zero-width, bidi, line breaks)")
    norm = normalise_text(text)
    lower = norm.lower()
    if _MARKUP.search(norm):
        reasons.append("contain markup or link syntax (<, >, [..](..), javascript:, $...$)")
    if norm.lstrip().startswith(_FORMULA_START) or text.startswith(_FORMULA_START):
        reasons.append("start with a spreadsheet formula character (= + - @)")
    if not all(_is_name_char(ch) for ch in norm):
        reasons.append(
            "contain characters not used in institution names (allowed: letters, digits, . , ' & ( ) / # : -)"
        )
    if re.search(r"\d{7,}", re.sub(r"[\s.,/:-]", "", norm)):
        reasons.append("contain a run of 7 or more digits")
    reasons += [f"look like {r}" for r in content_reasons(text)]
    words = {w.lower().rstrip(".") for w in _TOKEN.findall(norm)}
    if not words & INSTITUTION_WORDS:
        reasons.append(
            "do not look like an institution name (no word such as School, District, Academy, RSU or Department)"
        )
    if any(_looks_like_person(seg) for seg in _SEGMENT_SPLIT.split(norm)):
        reasons.append("contain what looks like a person's name")
    if _PERSON_WORDS.search(lower):
        reasons.append("contain words about a person (born, student, parent, phone, e-mail...)")
    return list(dict.fromkeys(reasons))


#: Why a whole number of 7 or 8 digits is refused: an SSN whose area number begins with 0 (Maine's are
#: 004-007) loses its leading zeros once it is stored as a number, 004-12-3456 becoming 4123456.
LOST_ZEROS_REASON = "an SSN stored as a whole number, which drops its leading zeros (7 or 8 digits)"


def whole_number_reasons(text: str) -> list[str]:
    """What identifying content the decimal text of a whole number (``-?[0-9]+``) looks like.

    As :func:`content_reasons`, plus :data:`LOST_ZEROS_REASON` for 7 or 8 digits: the
    number cannot show the zeros an SSN of area 001-099 began with.

    >>> whole_number_reasons("4123456") == [LOST_ZEROS_REASON]
    True
    >>> whole_number_reasons("-123456789"), whole_number_reasons("2015")
    (['an SSN written as 9 digits'], [])
    """
    reasons = content_reasons(text)
    digits = text.lstrip("+-")
    if digits.isdigit() and 7 <= len(digits) <= 8:
        reasons.append(LOST_ZEROS_REASON)
    return reasons


def refusals(values: Iterable[str | None], public: bool = False, whole_number: bool = False) -> dict[str, list[str]]:
    """Group the values the gate refuses by reason (public names by :func:`check_public_name`).

    Returns reason -> the refused values (for counting rows; never for display).
    Reasons of content read after "value(s) look like" when ``public`` is False;
    with ``public`` they read after "value(s)". With ``whole_number`` the values are
    the decimal texts of a whole-number column, judged by :func:`whole_number_reasons`.

    >>> sorted(refusals(["KAAAA0001", "123.45.6789"]))
    ['an SSN written ddd-dd-dddd or ddd dd dddd (any separator)']
    """
    judge = check_public_name if public else whole_number_reasons if whole_number else content_reasons
    out: dict[str, list[str]] = {}
    for value in values:
        if value is None:
            continue
        text = str(value)
        for reason in judge(text):
            out.setdefault(reason, []).append(text)
    return out


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
    norm = normalise_column_name(normalise_text(name))
    for pattern, reveals in IDENTIFYING_NAME_PATTERNS:
        if re.search(pattern, norm):
            return reveals
    return None


def mask_value(value: object) -> str:
    """Mask a pseudonymous key or suspect value for display in a report.

    Keeps the first two characters of a key so a data steward can find the row,
    and nothing of a value that could be an identifier (one the gate would refuse:
    ``(withheld)``, not even its length).

    >>> mask_value("K3F9A2B7C1")
    'K3********'
    >>> mask_value("1990-04-12")
    '(withheld)'
    """
    text = "" if value is None else str(value)
    if content_reasons(text):
        return "(withheld)"
    if len(text) <= 2:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 2)
