"""The federal SLDS grant annual report package, built from one frozen release.

:func:`build_report` writes three files next to each other:

- ``<stem>.xlsx``: a workbook with a Contents sheet, one sheet per report table,
  a Methodology sheet and a Data dictionary sheet. Numbers stay numbers (rates
  as fractions with a percent format) so analysts can compute with them.
- ``<stem>.zip``: one UTF-8 CSV per report table, ``data_dictionary.csv``,
  ``methodology.txt`` and the release's ``manifest.json``, with fixed member
  timestamps (the release's created time): the same release gives the same bytes.
- ``<stem>.pdf``: a summary with a title page, key charts with error bars and
  the statewide linkage table.

The package is split by what each part holds: :mod:`~analytics.report.tables`
(the report tables and their columns), :mod:`~analytics.report.methodology`
(release facts, notes, privacy parameters, data dictionary),
:mod:`~analytics.report.workbook`, :mod:`~analytics.report.csv`,
:mod:`~analytics.report.pdf` and :mod:`~analytics.report.files` (writing all
files or none).

Every figure comes from the release only (post-processing: nothing is spent).
Every text cell of the workbook and the CSV files passes through
:func:`neutralise` (OWASP CSV-injection guidance) and is capped at
:data:`MAX_CELL_TEXT` characters. Text in the PDF is drawn as plain text:
matplotlib's mathtext is off (a name such as ``$x^{$`` is not parsed), control
characters are dropped and characters the font lacks become ``?``. The package
is written all or nothing: every file goes to a temporary file in the target
folder first, and only when all of them are complete are they renamed into
place, so a failure (or a kill) never leaves a partial package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import IO

from analytics.release import Release
from analytics.report.csv import _write_zip
from analytics.report.files import _atomic_write_all
from analytics.report.methodology import _created
from analytics.report.pdf import _write_pdf, pdf_text
from analytics.report.performance import MEASURES, performance_table
from analytics.report.tables import (
    _SUFFIXES,
    FORMATS,
    MAX_CELL_TEXT,
    REPORT_TITLE,
    Column,
    ReportTable,
    neutralise,
)
from analytics.report.tables import report_tables as data_tables
from analytics.report.workbook import _write_xlsx

__all__ = [
    "FORMATS",
    "MAX_CELL_TEXT",
    "MEASURES",
    "REPORT_TITLE",
    "Column",
    "ReportTable",
    "build_report",
    "neutralise",
    "pdf_text",
    "performance_table",
    "report_paths",
    "report_tables",
]

# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def report_tables(
    release: Release,
    targets: Mapping[str, float] | None = None,
    period: tuple[date, date] | None = None,
) -> list[ReportTable]:
    """Every table of the report in order: the performance measures (targets, actuals, reporting period),
    then the data tables (:func:`analytics.report.tables.report_tables`)."""
    return [performance_table(release, targets, period), *data_tables(release)]


def report_paths(out: Path, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Where :func:`build_report` writes each format: ``<out stem>.<format>`` next to each other.

    >>> report_paths(Path("reports/annual.xlsx"), ["zip", "pdf"])
    {'zip': PosixPath('reports/annual.zip'), 'pdf': PosixPath('reports/annual.pdf')}
    """
    out = Path(out)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}")
    base = out.with_suffix("") if out.suffix.lower() in _SUFFIXES else out
    return {f: base.parent / f"{base.name}.{f}" for f in dict.fromkeys(formats)}


def build_report(
    release: Release,
    out: Path,
    formats: Sequence[str] = FORMATS,
    *,
    targets: Mapping[str, float] | None = None,
    period: tuple[date, date] | None = None,
) -> dict[str, Path]:
    """Write the grant annual report package of ``release``.

    Args:
        release: a loaded release (:func:`analytics.release.load_release`); nothing else is read.
        out: the report's path, with or without a suffix; ``<stem>.xlsx``, ``<stem>.zip`` and
            ``<stem>.pdf`` are written next to each other (the folder is created).
        formats: any of "xlsx", "zip" (CSV files), "pdf".
        targets: the grantee's target for each performance measure (id -> share in [0, 1]);
            see :mod:`analytics.report.performance`.
        period: the reporting period (start, end); default: the last federal fiscal year before the release.

    Returns:
        format -> path of the written file.

    Raises:
        ValueError: an unknown format, a release without a created time, or targets or a period that
            cannot be (see :func:`analytics.report.performance.performance_table`).
        KeyError: the release lacks a table the report needs.

    All files are written to temporary files in the same folder and renamed into
    place only when every one is complete, so a failed or interrupted build leaves
    the complete package or none of it (any earlier package stays as it was).
    The same release gives the same workbook values, a byte-identical zip and
    the same PDF pages.
    """
    paths = report_paths(Path(out), formats)
    _created(release)  # fail before writing anything when the manifest has no created time
    tables = report_tables(release, targets, period)
    writers = {"xlsx": _write_xlsx, "zip": _write_zip, "pdf": _write_pdf}
    if paths:
        next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)

    def writer(fmt: str) -> Callable[[IO[bytes]], None]:
        return lambda fh: writers[fmt](release, tables, fh)

    _atomic_write_all({path: writer(fmt) for fmt, path in paths.items()})
    return paths
