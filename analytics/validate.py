"""Validate a dataset against the data contract, and load it all-or-nothing.

Checks run in DuckDB, so they stream over state-scale files. Every problem is
one :class:`Problem`, and :meth:`Problem.__str__` is the only place its words
are made (the command line and the pages print the same text). A message names
the file, the column, the lines as a spreadsheet numbers them (the header is
line 1), the rule broken, how many rows break it, and the expected format. It
never quotes a value from the data: rows are pointed to by line number, with
the pseudonymous student key masked (first two characters).

Order of checks, per table: the file can be read (exists, not empty, UTF-8,
every line has as many fields as the header, the first line is a header); the
PII gate on column names; missing, misnamed and unexpected columns; types (with
the conventions a state file may use instead: school-year spans, other date
layouts); missing values, allowed values, ranges, key patterns; the PII gate on
content; primary keys; scale scores within the declared scales. Then across
tables: every foreign key resolves (with a hint when leading zeros were lost),
only students whose SSN was provided appear in wages, no record lies after a
declared end year, and graduates' college terms agree with spring school years.
The dataset's ``extract.json`` (:mod:`analytics.extract`) is checked too.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analytics import extract, pii, schema
from analytics.io import DuckDBSource, TableFile, find_table_files, first_invalid_utf8, open_database

#: DuckDB type each contract dtype is cast to.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
}
#: What a value of each type looks like, for messages.
TYPE_FORMATS: dict[str, str] = {
    "string": "text",
    "int": "a whole number such as 12 (no decimals)",
    "float": "a number such as 1234.56 (no $ sign, no thousands separators)",
    "bool": "true or false",
    "date": "a date written YYYY-MM-DD, such as 2017-08-29",
}
MAX_LINES = 5
ROW = "__row"  # 1-based data row number; its line as a spreadsheet shows it is ROW + 1 (the header is line 1)
#: Fall-year check: graduates' first fall terms needed before the evidence is judged, and the largest share of
#: them that may start in the calendar year the school_year names before the file is refused.
FALL_YEAR_MIN_GRADUATES = 50
FALL_YEAR_MAX_SAME_YEAR_SHARE = 0.25
_PRINTABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,63}$")


def _lines(lines: tuple[int, ...], n: int | None) -> str:
    if not lines:
        return ""
    shown = ", ".join(str(x) for x in lines)
    more = f" and {n - len(lines):,} more" if n is not None and n > len(lines) else ""
    return f"line{'s' if len(lines) > 1 or more else ''} {shown}{more}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, in words a data steward can act on (never a data value)."""

    file: str
    problem: str
    column: str | None = None
    n_rows: int | None = None
    lines: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()  # masked student keys of the lines shown
    rule: str = ""
    expected: str = ""

    @property
    def examples(self) -> tuple[str, ...]:
        """The lines shown, each with its masked student key where the table has one."""
        return tuple(
            f"line {n}" + (f" student_key={k}" if k else "") for n, k in zip(self.lines, self.keys, strict=False)
        )

    def __str__(self) -> str:
        where = self.file + (f", column '{self.column}'" if self.column else "")
        located = _lines(self.lines, self.n_rows)
        if located:
            where += f", {located}"
        text = f"{where}: {self.problem}"
        if self.expected:
            text += f"; expected {self.expected}"
        if any(self.keys):
            text += " (student keys masked: " + ", ".join(k for k in self.keys if k) + ")"
        if self.rule:
            text += f" [rule: {self.rule}]"
        return text


@dataclass
class ValidationReport:
    """The outcome of validating a dataset folder."""

    dataset_dir: Path
    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            rows = ", ".join(f"{t} {n:,}" for t, n in self.row_counts.items())
            return f"{self.dataset_dir}: valid. Rows: {rows}."
        lines = [
            f"{self.dataset_dir}: {len(self.problems)} problem(s); nothing was loaded.",
            *(f"- {p}" for p in self.problems),
        ]
        return "\n".join(lines)


class DataValidationError(ValueError):
    """A dataset broke the contract. ``report`` holds every problem found."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.text())
        self.report = report


@dataclass
class Dataset:
    """A dataset that passed validation, held by a :class:`DataSource`."""

    path: Path
    source: DuckDBSource
    row_counts: dict[str, int]
    extract: extract.ExtractConfig = field(default_factory=extract.ExtractConfig)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _norm(name: str) -> str:
    """A column name reduced to lower-case letters and digits with single underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _printable_name(name: str) -> bool:
    """A header cell that looks like a column name (not a data value) and may be shown in a message."""
    if not _PRINTABLE_NAME.match(name):
        return False
    return not any(re.search(p, name) for p, _ in pii.CONTENT_PATTERNS)


def _allowed_words(col: schema.Column) -> str:
    assert col.allowed is not None
    if len(col.allowed) <= 8:
        return "one of " + ", ".join(str(v) for v in col.allowed)
    return f"one of the {len(col.allowed)} allowed values listed in docs/data-contract.md"


def _range_words(col: schema.Column) -> str:
    if col.min_value is not None and col.max_value is not None:
        return f"a value from {col.min_value:g} to {col.max_value:g}"
    if col.min_value is not None:
        return f"a value of at least {col.min_value:g}"
    return f"a value of at most {col.max_value:g}"


class _Checker:
    """Runs the checks of one dataset on one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: ValidationReport, config: extract.ExtractConfig) -> None:
        self.con = con
        self.report = report
        self.config = config
        #: tables whose typed view exists, with the columns usable for cross-table checks
        self.typed: dict[str, set[str]] = {}
        self.file_names: dict[str, str] = {}
        self.keys_of: dict[str, list[str]] = {}
        #: counts of rows matching a condition, computed many at a time by :meth:`prefetch`
        self._counts: dict[tuple[str, str], int] = {}

    def prefetch(self, relation: str, wheres: list[str]) -> None:
        """Count the rows matching each condition in one scan of ``relation`` (instead of one scan each).

        ``relation`` must not change afterwards: :meth:`_count` answers from these counts.
        """
        todo = [w for w in dict.fromkeys(wheres) if (relation, w) not in self._counts]
        for start in range(0, len(todo), 64):  # a few dozen conditions per scan keeps each query small
            part = todo[start : start + 64]
            columns = ", ".join(f"count(*) FILTER (WHERE {w})" for w in part)
            row = self.con.execute(f"SELECT {columns} FROM {relation}").fetchone() or ()
            for w, n in zip(part, row, strict=True):
                self._counts[(relation, w)] = int(n or 0)

    def add(
        self,
        file: str,
        problem: str,
        column: str | None = None,
        n_rows: int | None = None,
        lines: tuple[int, ...] = (),
        keys: tuple[str, ...] = (),
        rule: str = "",
        expected: str = "",
    ) -> None:
        self.report.problems.append(Problem(file, problem, column, n_rows, lines, keys, rule, expected))

    def located(self, relation: str, where: str, key: str | None) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Spreadsheet line numbers (header = line 1) of the first rows matching ``where``, and their masked keys."""
        key_expr = f", {key}" if key else ""
        rows = self.con.execute(
            f"SELECT {ROW}{key_expr} FROM {relation} WHERE {where} ORDER BY {ROW} LIMIT {MAX_LINES}"
        ).fetchall()
        lines = tuple(int(r[0]) + 1 for r in rows)
        keys = tuple(pii.mask_value(r[1]) if key and r[1] is not None else "" for r in rows)
        return lines, keys

    def report_rows(
        self, fname: str, relation: str, where: str, words: str, column: str | None, key: str | None, **kw: str
    ) -> int:
        n = self._count(relation, where)
        if n:
            lines, keys = self.located(relation, where, key)
            self.add(fname, f"{n:,} {words}", column, n, lines, keys, **kw)
        return n

    # -- reading ---------------------------------------------------------------
    def _scan_csv(self, tf: TableFile) -> list[str] | None:
        """Check the CSV's shape line by line: return the header, or None after reporting a broken shape."""
        fname = tf.path.name
        ragged: list[int] = []
        n_ragged = 0
        with tf.path.open("r", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                self.add(fname, "has no header line", rule="header row", expected="a header line naming the columns")
                return None
            width = len(header)
            start = reader.line_num + 1
            for record in reader:
                if len(record) != width and record:
                    n_ragged += 1
                    if len(ragged) < MAX_LINES:
                        ragged.append(start)
                start = reader.line_num + 1
        if n_ragged:
            self.add(
                fname,
                f"{n_ragged:,} line(s) do not have as many fields as the header ({width}): an extra or missing "
                "comma, or a value holding a comma without quotes; nothing else in this file was checked",
                n_rows=n_ragged,
                lines=tuple(ragged),
                rule="every line has the header's number of fields",
                expected=f"{width} comma-separated fields on every line (quote a value that holds a comma)",
            )
            return None
        return header

    def read(self, tf: TableFile) -> list[str] | None:
        """Create the raw view of one file; return its column names or None."""
        fname = tf.path.name
        self.file_names[tf.table] = fname
        if tf.path.stat().st_size == 0:
            self.add(fname, "the file is empty (0 bytes)", rule="not empty", expected="a header line and data")
            return None
        raw = f"raw_{tf.table}"
        path = str(tf.path)
        if tf.format == "csv":
            bad = first_invalid_utf8(tf.path)
            if bad is not None:
                self.add(
                    fname,
                    f"is not valid UTF-8 (first bad byte at line {bad[0]}, byte {bad[1]}); re-save the file as UTF-8",
                    rule="UTF-8 text",
                    expected="a UTF-8 encoded file",
                )
                return None
            header = self._scan_csv(tf)
            if header is None:
                return None
            spec = schema.table(tf.table)
            known = {_norm(c) for c in spec.column_names}
            if not any(_norm(h) in known for h in header):
                self.add(
                    fname,
                    f"the first line is not a header row: none of its {len(header)} fields is a column of the "
                    "contract (its fields are not shown: they may be data)",
                    lines=(1,),
                    rule="header row",
                    expected="a first line naming the columns: " + ",".join(spec.column_names),
                )
                return None
            source = (
                f"read_csv({_lit(path)}, header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"')"
            )
        else:
            source = f"read_parquet({_lit(path)})"
        try:
            self.con.execute(f"CREATE TEMP TABLE {raw} AS SELECT row_number() OVER () AS {ROW}, * FROM {source}")
        except duckdb.Error as exc:
            found = re.search(r"line[: ]+(\d+)", str(exc), flags=re.IGNORECASE)
            self.add(
                fname,
                f"could not be read as {tf.format.upper()} (the reader's message is not shown: it may quote data)",
                lines=(int(found.group(1)),) if found else (),
                rule="readable file",
                expected="a comma-separated UTF-8 file with a header line" if tf.format == "csv" else "a Parquet file",
            )
            return None
        columns = [r[0] for r in self.con.execute(f"DESCRIBE {raw}").fetchall() if r[0] != ROW]
        n = self.con.execute(f"SELECT count(*) FROM {raw}").fetchone()
        n_rows = int(n[0]) if n else 0
        self.report.row_counts[tf.table] = n_rows
        if n_rows == 0:
            self.add(fname, "has a header but no rows", rule="not empty", expected="at least one data line")
        return columns

    # -- one table --------------------------------------------------------------
    def _columns(self, fname: str, spec: schema.Table, columns: list[str]) -> dict[str, str] | None:
        """Check column names; return contract name -> file column, or None if the PII gate refused the table."""
        refused = False
        for i, name in enumerate(columns, start=1):
            reveals = pii.identifying_column_reason(name)
            if reveals is None and any(re.search(p, name) for p, _ in pii.CONTENT_PATTERNS):
                reveals = "an identifier (the name itself looks like one)"
            if reveals is not None:
                self.add(
                    fname,
                    f"refused by the PII gate: column {i} (its name suggests it holds "
                    f"{reveals or 'an identifier'}); remove the column (values are not shown)",
                    column=name if _printable_name(name) else None,
                    rule="PII gate (column names)",
                    expected="only the contract's columns",
                )
                refused = True
        if refused:
            return None
        mapping: dict[str, str] = {}
        by_norm = {_norm(c): c for c in spec.column_names}
        for name in columns:
            if name in spec.column_names:
                mapping[name] = name
        for i, name in enumerate(columns, start=1):
            if name in spec.column_names:
                continue
            target = by_norm.get(_norm(name))
            if target is not None and target not in mapping:
                mapping[target] = name
                self.add(
                    fname,
                    f"column {i} is named differently from the contract only in case or spacing; rename it to "
                    f"'{target}'",
                    column=name,
                    rule="column names as in the contract",
                    expected=f"the name '{target}'",
                )
            else:
                shown = name if _printable_name(name) else None
                self.add(
                    fname,
                    f"column {i} is not in the data contract"
                    + ("" if shown else " (its name is not shown: it does not look like a column name)")
                    + "; remove it so nothing outside the contract is read",
                    column=shown,
                    rule="only contract columns",
                    expected="the columns " + ", ".join(spec.column_names),
                )
        for c in spec.required_column_names:
            if c not in mapping:
                self.add(
                    fname,
                    "missing column",
                    column=c,
                    rule="every contract column present",
                    expected="the columns " + ", ".join(spec.required_column_names),
                )
        return mapping

    def check_table(self, tf: TableFile) -> None:
        columns = self.read(tf)
        if columns is None:
            return
        fname = tf.path.name
        spec = schema.table(tf.table)
        raw = f"raw_{tf.table}"
        mapping = self._columns(fname, spec, columns)
        if mapping is None:
            return  # no value of a refused table is read any further
        present = [c for c in spec.columns if c.name in mapping]
        raw_types = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {raw}").fetchall()}
        key = "student_key" if "student_key" in mapping else None
        raw_key = _q(mapping["student_key"]) if key else None
        self.keys_of[tf.table] = [key] if key else []

        # Types: the value must cast to the contract type. Columns in the contract's order.
        exprs: dict[str, str] = {}
        ok_cols: set[str] = set()
        casts = [self._cast_of(col, _q(mapping[col.name]), raw_types[mapping[col.name]]) for col in present]
        self.prefetch(raw, [bad for _cast, bad in casts])
        for col, (cast, bad_cast) in zip(present, casts, strict=True):
            target = DUCKDB_TYPES[col.dtype]
            qc = _q(mapping[col.name])
            n_bad = self._count(raw, bad_cast)
            if n_bad:
                self._type_problem(fname, raw, col, qc, bad_cast, n_bad, raw_key)
                exprs[col.name] = f"NULL::{target}"
            else:
                ok_cols.add(col.name)
                exprs[col.name] = cast
        for col in spec.columns:
            if col.name not in mapping and not col.required:
                exprs[col.name] = f"NULL::{DUCKDB_TYPES[col.dtype]}"
                ok_cols.add(col.name)
        # The PII gate reads the raw (TEMP) table first: a table with a refused value stays TEMP, so
        # no refused value is written into the database (a file, for a large extract). A table that
        # passes becomes a table of the database, which loading keeps as it is (no copy).
        gated = [c for c in present if c.dtype in ("string", "int")]
        found = self._pii_candidates(raw, gated, {c.name: exprs[c.name] for c in gated})
        refusals = {
            c.name: pii.refusals(found[c.name], public=c.name in pii.PUBLIC_TEXT_COLUMNS, whole_number=c.dtype == "int")
            for c in gated
        }
        refused = any(refusals.values())
        typed = f"typed_{tf.table}"
        typed_exprs = [ROW] + [f"{exprs[c.name]} AS {_q(c.name)}" for c in spec.columns if c.name in exprs]
        kind = "TEMP TABLE" if refused else "TABLE"
        self.con.execute(f"CREATE {kind} {typed} AS SELECT {', '.join(typed_exprs)} FROM {raw}")
        self.con.execute(f"DROP TABLE {raw}")

        checked = [c for c in present if c.name in ok_cols]
        self.prefetch(typed, [where for col in checked for where, *_ in self._value_checks(col)])
        for col in checked:
            self._check_values(typed, fname, col, key)
        self._check_pii_content(typed, fname, gated, refusals)
        pk = spec.key_columns(list(mapping))
        if all(c in ok_cols for c in pk):
            self._check_primary_key(typed, fname, spec, pk, key)
        if tf.table == "assessments" and {"subject", "grade", "scale_score"} <= ok_cols:
            self._check_scales(typed, fname, key)
        self.typed[tf.table] = ok_cols

    @staticmethod
    def _cast_of(col: schema.Column, qc: str, rtype: str) -> tuple[str, str]:
        """The cast of a raw column to its contract type, and the condition of a value that does not cast."""
        target = DUCKDB_TYPES[col.dtype]
        source_expr = f"CAST({qc} AS VARCHAR)" if col.dtype == "date" and rtype != "DATE" else qc
        cast = f"TRY_CAST({source_expr} AS {target})"
        bad_cast = f"{qc} IS NOT NULL AND {cast} IS NULL"
        if col.dtype == "int" and (rtype in ("DOUBLE", "FLOAT", "VARCHAR") or rtype.startswith("DECIMAL")):
            # 2.5 must not silently round to 2 (or 3); NaN, infinities and numbers beyond BIGINT round to
            # themselves but do not cast (a CAST would raise DuckDB's error, which quotes the value)
            as_double = f"TRY_CAST({qc} AS DOUBLE)"
            cast = f"TRY_CAST({as_double} AS BIGINT)"
            bad_cast = f"{qc} IS NOT NULL AND ({cast} IS NULL OR {as_double} <> round({as_double}))"
        return cast, bad_cast

    def _type_problem(
        self, fname: str, raw: str, col: schema.Column, qc: str, bad: str, n_bad: int, key: str | None
    ) -> None:
        expected = col.format_hint or TYPE_FORMATS[col.dtype]
        conventions: list[tuple[str, str]] = []
        if col.name == "school_year":
            conventions.append(
                (r"^\s*[0-9]{4}\s*[-/]\s*([0-9]{2}|[0-9]{4})\s*$", "written as a span of two years (such as 2019-20)")
            )
        if col.dtype == "date":
            conventions += [
                (r"^\s*[0-9]{8}\s*$", "written as YYYYMMDD without dashes"),
                (r"^\s*[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}\s*$", "written as month/day/year"),
            ]
        rest = bad
        for pattern, words in conventions:
            where = f"{bad} AND regexp_matches(CAST({qc} AS VARCHAR), {_lit(pattern)})"
            n = self.report_rows(
                fname, raw, where, f"value(s) {words}", col.name, key, rule=f"type {col.dtype}", expected=expected
            )
            if n:
                rest += f" AND NOT regexp_matches(CAST({qc} AS VARCHAR), {_lit(pattern)})"
        self.report_rows(
            fname,
            raw,
            rest,
            f"value(s) are not of type {col.dtype}",
            col.name,
            key,
            rule=f"type {col.dtype}",
            expected=expected,
        )

    def _count(self, relation: str, where: str) -> int:
        if (relation, where) in self._counts:
            return self._counts[(relation, where)]
        row = self.con.execute(f"SELECT count(*) FROM {relation} WHERE {where}").fetchone()
        return int(row[0]) if row else 0

    def _check_values(self, typed: str, fname: str, col: schema.Column, key: str | None) -> None:
        for where, words, rule, expected in self._value_checks(col):
            self.report_rows(fname, typed, where, words, col.name, key, rule=rule, expected=expected)

    @staticmethod
    def _value_checks(col: schema.Column) -> list[tuple[str, str, str, str]]:
        """The contract's value rules of one column: (condition of a bad row, words, rule, expected)."""
        qc = _q(col.name)
        checks: list[tuple[str, str, str, str]] = []  # where, words, rule, expected
        if not col.nullable:
            checks.append((f"{qc} IS NULL", "missing value(s); every row needs one", "no missing values", "a value"))
        if col.allowed is not None:
            allowed = ", ".join(_lit(v) for v in col.allowed)
            checks.append(
                (
                    f"{qc} IS NOT NULL AND {qc} NOT IN ({allowed})",
                    "value(s) outside the allowed values",
                    "allowed values",
                    _allowed_words(col),
                )
            )
        if col.min_value is not None:
            checks.append(
                (
                    f"{qc} < {col.min_value!r}",
                    f"value(s) below the minimum {col.min_value:g}",
                    "range",
                    _range_words(col) + (f" ({col.format_hint})" if col.format_hint else ""),
                )
            )
        if col.max_value is not None:
            checks.append(
                (
                    f"{qc} > {col.max_value!r}",
                    f"value(s) above the maximum {col.max_value:g}",
                    "range",
                    _range_words(col) + (f" ({col.format_hint})" if col.format_hint else ""),
                )
            )
        if col.dtype == "float":
            checks.append((f"NOT isfinite({qc})", "value(s) that are NaN or infinite", "finite numbers", "a number"))
        if col.pattern is not None:
            checks.append(
                (
                    f"{qc} IS NOT NULL AND NOT regexp_full_match({qc}, {_lit(col.pattern[1:-1])})",
                    f"value(s) not matching the pattern {col.pattern}",
                    "pattern",
                    "letters, digits, '-' or '_' only" + (", 6 to 64 characters" if col.pseudonymous_key else ""),
                )
            )
        return checks

    def _pii_candidates(self, relation: str, cols: list[schema.Column], value_of: dict[str, str]) -> dict[str, list]:
        """The distinct values of each column the gate must look at (one scan of ``relation`` for all)."""
        if not cols:
            return {}
        lists = []
        for col in cols:
            value = value_of[col.name]
            text = value if col.dtype == "string" else f"CAST({value} AS VARCHAR)"
            public = col.name in pii.PUBLIC_TEXT_COLUMNS  # published verbatim: every value is checked
            if public:
                candidates = f"{value} IS NOT NULL"
            elif col.dtype == "int":
                # The decimal text of a whole number matches CANDIDATE_PATTERN only through its run of 7 digits
                # (pii.INT_CANDIDATE_MIN), so the test needs neither the text nor the regex.
                candidates = f"({value} >= {pii.INT_CANDIDATE_MIN} OR {value} <= -{pii.INT_CANDIDATE_MIN})"
            else:
                candidates = f"regexp_matches({text}, {_lit(pii.CANDIDATE_PATTERN)})"
            lists.append(f"list(DISTINCT {text}) FILTER (WHERE {candidates})")
        row = self.con.execute(f"SELECT {', '.join(lists)} FROM {relation}").fetchone()
        return {col.name: list(found or []) for col, found in zip(cols, row or [None] * len(cols), strict=True)}

    def _check_pii_content(
        self, typed: str, fname: str, cols: list[schema.Column], refusals: dict[str, dict[str, list[str]]]
    ) -> None:
        """Report the rows of ``typed`` holding refused values (``refusals``: column -> reason -> values)."""
        for col in cols:
            text = _q(col.name) if col.dtype == "string" else f"CAST({_q(col.name)} AS VARCHAR)"
            public = col.name in pii.PUBLIC_TEXT_COLUMNS
            for words, bad in refusals[col.name].items():
                self.con.execute("CREATE OR REPLACE TEMP TABLE pii_refused AS SELECT unnest($1::VARCHAR[]) AS v", [bad])
                self.report_rows(
                    fname,
                    typed,
                    f"{text} IN (SELECT v FROM pii_refused)",
                    f"value(s) {'' if public else 'look like '}{words}: refused by the PII gate"
                    + ("; public names must look like institution names" if public else "")
                    + "; values are not shown",
                    col.name,
                    None,
                    rule="PII gate (content)",
                    expected="institution names (a school, district or RSU name; no person, address or number)"
                    if public
                    else "no Social Security numbers, e-mail addresses, phone numbers, birth dates or addresses",
                )

    def _check_primary_key(
        self, typed: str, fname: str, spec: schema.Table, pk: tuple[str, ...], key: str | None
    ) -> None:
        cols = ", ".join(_q(c) for c in pk)
        # One aggregation answers the usual case (no key repeated); rows are located only when one is.
        if not self._count(f"(SELECT 1 FROM {typed} GROUP BY {cols} HAVING count(*) > 1)", "TRUE"):
            return
        dup = f"({cols}) IN (SELECT ({cols}) FROM {typed} GROUP BY {cols} HAVING count(*) > 1)"
        self.report_rows(
            fname,
            typed,
            dup,
            f"rows share a key that must be unique (one row per {spec.grain})",
            ", ".join(pk),
            key,
            rule="unique key",
            expected=f"one row per {spec.grain}",
        )

    def _check_scales(self, typed: str, fname: str, key: str | None) -> None:
        values = ", ".join(
            f"({_lit(s)}, {g}, {lo!r}, {hi!r})" for (s, g), (lo, hi) in sorted(self.config.score_scales.items())
        )
        rel = f"{typed} t JOIN (VALUES {values}) AS sc(subject, grade, lo, hi) USING (subject, grade)"
        declared = "score_scales" in self.config.declared
        self.report_rows(
            fname,
            rel,
            "t.scale_score < sc.lo OR t.scale_score > sc.hi",
            "score(s) outside the declared scale of their subject and grade"
            + ("" if declared else " (no score_scales in extract.json, so the default 200-700 applies)")
            + "; a test on another scale would be mis-read by the growth model",
            "scale_score",
            f"t.{key}" if key else None,
            rule="score scale",
            expected="scores within the ranges declared in extract.json (score_scales per subject and grade)",
        )

    # -- across tables -----------------------------------------------------------
    def check_relationships(self) -> None:
        for spec in schema.TABLES:
            if spec.name not in self.typed:
                continue
            key = "t.student_key" if self.keys_of.get(spec.name) else None
            for fk in spec.foreign_keys:
                if fk.ref_table not in self.typed or not set(fk.columns) <= self.typed[spec.name]:
                    continue
                if not set(fk.ref_columns) <= self.typed[fk.ref_table]:
                    continue
                cond = " AND ".join(f"r.{_q(rc)} = t.{_q(c)}" for c, rc in zip(fk.columns, fk.ref_columns, strict=True))
                not_null = " AND ".join(f"t.{_q(c)} IS NOT NULL" for c in fk.columns)
                where = f"{not_null} AND NOT EXISTS (SELECT 1 FROM typed_{fk.ref_table} r WHERE {cond})"
                rel = f"typed_{spec.name} t"
                n = self.report_rows(
                    self.file_names[spec.name],
                    rel,
                    where,
                    f"value(s) do not resolve to {fk.ref_table}.{', '.join(fk.ref_columns)}",
                    ", ".join(fk.columns),
                    key,
                    rule="foreign key",
                    expected=f"values listed in {self.file_names.get(fk.ref_table, fk.ref_table)}",
                )
                if n and len(fk.columns) == 1:
                    c, rc = fk.columns[0], fk.ref_columns[0]
                    zeros = (
                        f"{where} AND EXISTS (SELECT 1 FROM typed_{fk.ref_table} r WHERE "
                        f"ltrim(r.{_q(rc)}, '0') = ltrim(t.{_q(c)}, '0') AND r.{_q(rc)} <> t.{_q(c)})"
                    )
                    self.report_rows(
                        self.file_names[spec.name],
                        rel,
                        zeros,
                        f"of them match {fk.ref_table}.{rc} once leading zeros are restored: a spreadsheet may "
                        "have dropped them (format the column as text)",
                        c,
                        key,
                        rule="foreign key (leading zeros)",
                        expected="identifiers written exactly as in " + self.file_names.get(fk.ref_table, fk.ref_table),
                    )
        if (
            "wages" in self.typed
            and "ssn_collection" in self.typed
            and "student_key" in self.typed["wages"]
            and {"student_key", "status"} <= self.typed["ssn_collection"]
        ):
            self.report_rows(
                self.file_names["wages"],
                "typed_wages t",
                "NOT EXISTS (SELECT 1 FROM typed_ssn_collection s WHERE s.student_key = t.student_key "
                "AND s.status = 'provided')",
                "row(s) belong to students whose SSN was not provided (wage records are matched by SSN)",
                "student_key",
                "t.student_key",
                rule="wages only for provided SSNs",
                expected="wage rows only for students with ssn_collection.status 'provided'",
            )
        self._check_end_years()
        self._check_fall_year()

    def _check_end_years(self) -> None:
        checks = (
            ("last_school_year", "enrollments", "school_year", "school_year"),
            ("last_school_year", "assessments", "school_year", "school_year"),
            ("last_wage_year", "wages", "year", "year"),
            ("last_postsecondary_year", "postsecondary", "term_start", "year(term_start)"),
        )
        for name, table, column, expr in checks:
            year = getattr(self.config, name)
            if (
                year is None
                or name not in self.config.declared
                or table not in self.typed
                or column not in self.typed[table]
            ):
                continue
            self.report_rows(
                self.file_names[table],
                f"typed_{table} t",
                f"{expr} > {int(year)}",
                f"row(s) lie after {name} declared in {extract.EXTRACT_FILE}",
                column,
                "t.student_key",
                rule="within the extract's end years",
                expected=f"no record after {year}, or a later {name} in {extract.EXTRACT_FILE}",
            )

    def _check_fall_year(self) -> None:
        """Graduates' first fall college terms should mostly start in the calendar year school_year names."""
        if not ({"student_key", "school_year", "exit_type"} <= self.typed.get("enrollments", set())):
            return
        if not ({"student_key", "term_start"} <= self.typed.get("postsecondary", set())):
            return
        row = self.con.execute(
            """
            WITH g AS (SELECT student_key, min(school_year) AS y FROM typed_enrollments
                       WHERE exit_type = 'graduated' GROUP BY student_key),
            f AS (SELECT g.student_key, min(year(p.term_start)) - g.y AS lag FROM g
                  JOIN typed_postsecondary p USING (student_key)
                  WHERE month(p.term_start) BETWEEN 7 AND 12 AND year(p.term_start) BETWEEN g.y AND g.y + 1
                  GROUP BY g.student_key, g.y)
            SELECT count(*), count(*) FILTER (WHERE lag = 0) FROM f
            """
        ).fetchone()
        n, same = (int(row[0]), int(row[1])) if row else (0, 0)
        if n >= FALL_YEAR_MIN_GRADUATES and same <= FALL_YEAR_MAX_SAME_YEAR_SHARE * n:
            self.add(
                self.file_names["enrollments"],
                f"school_year looks like the fall year: of {n:,} graduates who started college in a fall "
                f"within a year of graduating, only {same:,} did so in the fall of the calendar year their "
                "diploma's school_year names, the rest a year later (with spring years, most start that same "
                "fall); check the convention of the file",
                column="school_year",
                n_rows=n - same,
                rule="spring school years",
                expected=schema.SCHOOL_YEAR_FORMAT,
            )


def _run(dataset_dir: Path) -> tuple[ValidationReport, duckdb.DuckDBPyConnection | None, extract.ExtractConfig]:
    dataset_dir = Path(dataset_dir)
    report = ValidationReport(dataset_dir)
    if not dataset_dir.is_dir():
        report.problems.append(
            Problem(
                str(dataset_dir),
                "is not a folder",
                rule="dataset folder",
                expected="a folder with one file per table",
            )
        )
        return report, None, extract.ExtractConfig()
    files, file_problems = find_table_files(dataset_dir)
    for text in file_problems:
        name, _, rest = text.partition(": ")
        report.problems.append(Problem(name, rest, rule="one file per contract table"))
    config, config_problems = extract.read(dataset_dir)
    for text in config_problems:
        name, _, rest = text.partition(": ")
        report.problems.append(Problem(name, rest, rule="extract configuration"))
    con = open_database(sum(tf.path.stat().st_size for tf in files.values()))
    checker = _Checker(con, report, config)
    for name in schema.TABLE_NAMES:
        if name in files:
            checker.check_table(files[name])
    checker.check_relationships()
    if report.ok:
        return report, con, config
    con.close()
    return report, None, config


def validate_dataset(dataset_dir: Path) -> ValidationReport:
    """Check a dataset folder against the contract and return the report.

    Never raises for bad data: the report lists every problem found.
    """
    report, con, _ = _run(dataset_dir)
    if con is not None:
        con.close()
    return report


def load_dataset(dataset_dir: Path) -> Dataset:
    """Validate and load a dataset; all or nothing.

    Raises:
        DataValidationError: listing every problem; nothing is loaded.
    """
    report, con, config = _run(dataset_dir)
    if con is None or not report.ok:
        raise DataValidationError(report)
    for name in schema.TABLE_NAMES:
        # Kept in file order (the typed table was created in it); no copy.
        con.execute(f"ALTER TABLE typed_{name} DROP COLUMN {ROW}")
        con.execute(f"ALTER TABLE typed_{name} RENAME TO {name}")
    source = DuckDBSource(con, schema.TABLE_NAMES)
    try:
        source.extract = extract.resolve(config, source)
    except ValueError as exc:
        con.close()
        name, _, rest = str(exc).partition(": ")
        report.problems.append(Problem(name, rest, rule="extract configuration"))
        raise DataValidationError(report) from None
    return Dataset(Path(dataset_dir), source, dict(report.row_counts), source.extract)
