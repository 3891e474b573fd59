"""Validate a dataset against the data contract, and load it all-or-nothing.

Checks run in DuckDB, so they stream over state-scale files. Every problem names
the file, the column, what is wrong, how many rows, and a few example rows in
which pseudonymous keys are masked and identifying values are never shown.

Order of checks, per table: the file can be read (exists, not empty, UTF-8);
the PII gate on column names; missing and unexpected columns; types; missing
values, allowed values, ranges, key patterns; the PII gate on content; primary
keys. Then across tables: every foreign key resolves, and only students whose
SSN was provided appear in wages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analytics import pii, schema
from analytics.io import DuckDBSource, TableFile, dataset_fingerprint, find_table_files, first_invalid_utf8

#: DuckDB type each contract dtype is cast to.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
}
MAX_EXAMPLES = 3
ROW = "__row"  # 1-based data row number (CSV line = row + 1, for the header)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, in words a data steward can act on."""

    file: str
    problem: str
    column: str | None = None
    n_rows: int | None = None
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.file + (f", column '{self.column}'" if self.column else "")
        text = f"{where}: {self.problem}"
        if self.examples:
            text += f" (e.g. {'; '.join(self.examples)})"
        return text


@dataclass
class ValidationReport:
    """The outcome of validating a dataset folder."""

    dataset_dir: Path
    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            rows = ", ".join(f"{t} {n:,}" for t, n in self.row_counts.items())
            return f"{self.dataset_dir}: valid. Rows: {rows}. Fingerprint {self.fingerprint}."
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
    fingerprint: str
    source: DuckDBSource
    row_counts: dict[str, int]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


class _Checker:
    """Runs the checks of one dataset on one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: ValidationReport) -> None:
        self.con = con
        self.report = report
        #: tables whose typed view exists, with the columns usable for cross-table checks
        self.typed: dict[str, set[str]] = {}
        self.file_names: dict[str, str] = {}

    def add(
        self,
        file: str,
        problem: str,
        column: str | None = None,
        n_rows: int | None = None,
        examples: tuple[str, ...] = (),
    ) -> None:
        self.report.problems.append(Problem(file, problem, column, n_rows, examples))

    def examples(
        self, relation: str, where: str, show: list[str], masked: set[str], hide_values: bool = False
    ) -> tuple[str, ...]:
        cols = ", ".join(_q(c) for c in show)
        rows = self.con.execute(
            f"SELECT {ROW}{', ' + cols if cols else ''} FROM {relation} WHERE {where} ORDER BY {ROW} "
            f"LIMIT {MAX_EXAMPLES}"
        ).fetchall()
        out = []
        for row in rows:
            parts = [f"row {row[0]}"]
            if not hide_values:
                for name, value in zip(show, row[1:], strict=True):
                    shown = pii.mask_value(value) if name in masked else repr(value)
                    parts.append(f"{name}={shown}")
            out.append(" ".join(parts))
        return tuple(out)

    # -- reading ---------------------------------------------------------------
    def read(self, tf: TableFile) -> list[str] | None:
        """Create the raw view of one file; return its column names or None."""
        fname = tf.path.name
        self.file_names[tf.table] = fname
        if tf.path.stat().st_size == 0:
            self.add(fname, "the file is empty (0 bytes); expected a header row and data")
            return None
        raw = f"raw_{tf.table}"
        path = str(tf.path)
        try:
            if tf.format == "csv":
                bad = first_invalid_utf8(tf.path)
                if bad is not None:
                    self.add(
                        fname,
                        f"is not valid UTF-8 (first bad byte at line {bad[0]}, byte {bad[1]}); "
                        "re-save the file as UTF-8",
                    )
                    return None
                source = f"read_csv({_lit(path)}, header = true, all_varchar = true, auto_detect = true)"
            else:
                source = f"read_parquet({_lit(path)})"
            self.con.execute(f"CREATE TEMP TABLE {raw} AS SELECT row_number() OVER () AS {ROW}, * FROM {source}")
        except duckdb.Error as exc:
            first_line = str(exc).strip().splitlines()[0]
            self.add(fname, f"could not be read as {tf.format.upper()}: {first_line}")
            return None
        columns = [r[0] for r in self.con.execute(f"DESCRIBE {raw}").fetchall() if r[0] != ROW]
        n = self.con.execute(f"SELECT count(*) FROM {raw}").fetchone()
        n_rows = int(n[0]) if n else 0
        self.report.row_counts[tf.table] = n_rows
        if n_rows == 0:
            self.add(fname, "has a header but no rows")
        return columns

    # -- one table --------------------------------------------------------------
    def check_table(self, tf: TableFile) -> None:
        columns = self.read(tf)
        if columns is None:
            return
        fname = tf.path.name
        spec = schema.table(tf.table)
        raw = f"raw_{tf.table}"

        refused = False
        for name in columns:
            reveals = pii.identifying_column_reason(name)
            if reveals is not None:
                self.add(
                    fname,
                    f"refused by the PII gate: the column name suggests it holds {reveals}; "
                    "remove the column (values are not shown)",
                    column=name,
                )
                refused = True
        if refused:
            return  # no value of a refused table is read any further

        expected = spec.column_names
        missing = [c for c in expected if c not in columns]
        for c in missing:
            self.add(fname, f"missing column (the contract requires {', '.join(expected)})", column=c)
        for name in columns:
            if name not in expected:
                self.add(
                    fname,
                    "column not in the data contract; remove it so nothing outside the contract is read",
                    column=name,
                )
        present = [c for c in spec.columns if c.name in columns]
        raw_types = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {raw}").fetchall()}
        keys = [c.name for c in present if c.pseudonymous_key]

        # Types: the value must cast to the contract type.
        typed_exprs = [ROW]
        ok_cols: set[str] = set()
        for col in present:
            target = DUCKDB_TYPES[col.dtype]
            qc = _q(col.name)
            cast = f"TRY_CAST({qc} AS {target})"
            bad_cast = f"{qc} IS NOT NULL AND {cast} IS NULL"
            if col.dtype == "int" and raw_types[col.name] in ("DOUBLE", "FLOAT", "VARCHAR"):
                # 2.5 must not silently round to 2 (or 3)
                bad_cast = (
                    f"{qc} IS NOT NULL AND (TRY_CAST({qc} AS DOUBLE) IS NULL "
                    f"OR TRY_CAST({qc} AS DOUBLE) <> round(TRY_CAST({qc} AS DOUBLE)))"
                )
                cast = f"CAST(TRY_CAST({qc} AS DOUBLE) AS BIGINT)"
            n_bad = self._count(raw, bad_cast)
            if n_bad:
                self.add(
                    fname,
                    f"{n_bad:,} value(s) are not of type {col.dtype}",
                    column=col.name,
                    n_rows=n_bad,
                    examples=self.examples(raw, bad_cast, [col.name], set(keys)),
                )
                typed_exprs.append(f"NULL::{target} AS {qc}")
            else:
                ok_cols.add(col.name)
                typed_exprs.append(f"{cast} AS {qc}")
        typed = f"typed_{tf.table}"
        self.con.execute(f"CREATE TEMP TABLE {typed} AS SELECT {', '.join(typed_exprs)} FROM {raw}")
        self.con.execute(f"DROP TABLE {raw}")

        for col in present:
            if col.name in ok_cols:
                self._check_values(typed, fname, col, keys)
        if any(c.dtype == "string" for c in present):
            self._check_pii_content(typed, fname, [c for c in present if c.dtype == "string"])
        if all(c in ok_cols for c in spec.primary_key):
            self._check_primary_key(typed, fname, spec, keys)
        self.typed[tf.table] = ok_cols

    def _count(self, relation: str, where: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {relation} WHERE {where}").fetchone()
        return int(row[0]) if row else 0

    def _check_values(self, typed: str, fname: str, col: schema.Column, keys: list[str]) -> None:
        qc = _q(col.name)
        masked = set(keys)
        show = [col.name] + [k for k in keys if k != col.name]
        checks: list[tuple[str, str]] = []
        if not col.nullable:
            checks.append((f"{qc} IS NULL", "missing value(s); every row needs one"))
        if col.allowed is not None:
            allowed = ", ".join(_lit(v) for v in col.allowed)
            shown = (
                "/".join(str(v) for v in col.allowed)
                if len(col.allowed) <= 8
                else f"the {len(col.allowed)} allowed values listed in docs/data-contract.md"
            )
            checks.append((f"{qc} IS NOT NULL AND {qc} NOT IN ({allowed})", f"value(s) outside {shown}"))
        if col.min_value is not None:
            checks.append((f"{qc} < {col.min_value!r}", f"value(s) below the minimum {col.min_value:g}"))
        if col.max_value is not None:
            checks.append((f"{qc} > {col.max_value!r}", f"value(s) above the maximum {col.max_value:g}"))
        if col.dtype == "float":
            checks.append((f"NOT isfinite({qc})", "value(s) that are NaN or infinite"))
        if col.pattern is not None:
            checks.append(
                (
                    f"{qc} IS NOT NULL AND NOT regexp_full_match({qc}, {_lit(col.pattern[1:-1])})",
                    f"value(s) not matching the pattern {col.pattern}",
                )
            )
        for where, words in checks:
            n = self._count(typed, where)
            if n:
                self.add(
                    fname,
                    f"{n:,} {words}",
                    column=col.name,
                    n_rows=n,
                    examples=self.examples(typed, where, show, masked),
                )

    def _check_pii_content(self, typed: str, fname: str, cols: list[schema.Column]) -> None:
        for col in cols:
            qc = _q(col.name)
            public = col.name in pii.PUBLIC_TEXT_COLUMNS  # published verbatim: every value is checked
            candidates = f"{qc} IS NOT NULL" if public else f"regexp_matches({qc}, {_lit(pii.CANDIDATE_PATTERN)})"
            values = [
                r[0] for r in self.con.execute(f"SELECT DISTINCT {qc} FROM {typed} WHERE {candidates}").fetchall()
            ]
            for words, bad in pii.refusals(values, public=public).items():
                self.con.execute("CREATE OR REPLACE TEMP TABLE pii_refused AS SELECT unnest($1::VARCHAR[]) AS v", [bad])
                where = f"{qc} IN (SELECT v FROM pii_refused)"
                n = self._count(typed, where)
                self.add(
                    fname,
                    f"refused by the PII gate: {n:,} value(s) {'' if public else 'look like '}{words}"
                    + ("; public names must look like institution names" if public else "")
                    + "; values are not shown",
                    column=col.name,
                    n_rows=n,
                    examples=self.examples(typed, where, [], set(), hide_values=True),
                )

    def _check_primary_key(self, typed: str, fname: str, spec: schema.Table, keys: list[str]) -> None:
        pk = ", ".join(_q(c) for c in spec.primary_key)
        dup = f"({pk}) IN (SELECT ({pk}) FROM {typed} GROUP BY {pk} HAVING count(*) > 1)"
        n = self._count(typed, dup)
        if n:
            self.add(
                fname,
                f"{n:,} rows share a key that must be unique (one row per {spec.grain})",
                column=", ".join(spec.primary_key),
                n_rows=n,
                examples=self.examples(typed, dup, list(spec.primary_key), set(keys)),
            )

    # -- across tables -----------------------------------------------------------
    def check_relationships(self) -> None:
        for spec in schema.TABLES:
            if spec.name not in self.typed:
                continue
            keys = [c.name for c in spec.columns if c.pseudonymous_key]
            for fk in spec.foreign_keys:
                if fk.ref_table not in self.typed or not set(fk.columns) <= self.typed[spec.name]:
                    continue
                if not set(fk.ref_columns) <= self.typed[fk.ref_table]:
                    continue
                cond = " AND ".join(f"r.{_q(rc)} = t.{_q(c)}" for c, rc in zip(fk.columns, fk.ref_columns, strict=True))
                not_null = " AND ".join(f"t.{_q(c)} IS NOT NULL" for c in fk.columns)
                where = f"{not_null} AND NOT EXISTS (SELECT 1 FROM typed_{fk.ref_table} r WHERE {cond})"
                rel = f"typed_{spec.name} t"
                n = self._count(rel, where)
                if n:
                    self.add(
                        self.file_names[spec.name],
                        f"{n:,} value(s) do not resolve to {fk.ref_table}.{', '.join(fk.ref_columns)}",
                        column=", ".join(fk.columns),
                        n_rows=n,
                        examples=self.examples(rel, where, list(fk.columns), set(keys)),
                    )
        if (
            "wages" in self.typed
            and "ssn_collection" in self.typed
            and "student_key" in self.typed["wages"]
            and {"student_key", "status"} <= self.typed["ssn_collection"]
        ):
            rel = "typed_wages t"
            where = (
                "NOT EXISTS (SELECT 1 FROM typed_ssn_collection s WHERE s.student_key = t.student_key "
                "AND s.status = 'provided')"
            )
            n = self._count(rel, where)
            if n:
                self.add(
                    self.file_names["wages"],
                    f"{n:,} row(s) belong to students whose SSN was not provided (ssn_collection.status "
                    "must be 'provided': wage records are matched by SSN)",
                    column="student_key",
                    n_rows=n,
                    examples=self.examples(rel, where, ["student_key"], {"student_key"}),
                )


def _run(dataset_dir: Path) -> tuple[ValidationReport, duckdb.DuckDBPyConnection | None]:
    dataset_dir = Path(dataset_dir)
    report = ValidationReport(dataset_dir)
    if not dataset_dir.is_dir():
        report.problems.append(
            Problem(str(dataset_dir), "is not a folder; a dataset is a folder with one file per table")
        )
        return report, None
    files, file_problems = find_table_files(dataset_dir)
    for text in file_problems:
        name, _, rest = text.partition(": ")
        report.problems.append(Problem(name, rest))
    con = duckdb.connect(":memory:")
    checker = _Checker(con, report)
    for name in schema.TABLE_NAMES:
        if name in files:
            checker.check_table(files[name])
    checker.check_relationships()
    if report.ok:
        report.fingerprint = dataset_fingerprint(files)
        return report, con
    con.close()
    return report, None


def validate_dataset(dataset_dir: Path) -> ValidationReport:
    """Check a dataset folder against the contract and return the report.

    Never raises for bad data: the report lists every problem found.
    """
    report, con = _run(dataset_dir)
    if con is not None:
        con.close()
    return report


def load_dataset(dataset_dir: Path) -> Dataset:
    """Validate and load a dataset; all or nothing.

    Raises:
        DataValidationError: listing every problem; nothing is loaded.
    """
    report, con = _run(dataset_dir)
    if con is None or report.fingerprint is None:
        raise DataValidationError(report)
    for name in schema.TABLE_NAMES:
        cols = ", ".join(_q(c) for c in schema.table(name).column_names)
        con.execute(f"CREATE TABLE {name} AS SELECT {cols} FROM typed_{name} ORDER BY {ROW}")
        con.execute(f"DROP TABLE typed_{name}")
    return Dataset(
        Path(dataset_dir), report.fingerprint, DuckDBSource(con, schema.TABLE_NAMES), dict(report.row_counts)
    )
