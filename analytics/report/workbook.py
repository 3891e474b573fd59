"""The grant report as an Excel workbook: contents, one sheet per table, methodology, data dictionary."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import IO, Any

from analytics.release import Release
from analytics.report.csv import _plain, _records
from analytics.report.files import _FixedTimeZip
from analytics.report.methodology import (
    _DICTIONARY_HEADERS,
    _PARAM_HEADERS,
    _created,
    _zip_time,
    dictionary_rows,
    methodology_notes,
    privacy_parameters,
    release_facts,
)
from analytics.report.tables import _EXCEL_FORMATS, BLUE, REPORT_TITLE, ReportTable, neutralise

# ---------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------


def _sheet_names(tables: Sequence[ReportTable]) -> list[str]:
    """Sheet names of the report tables: at most 31 characters, no []:*?/\\, unique (case-insensitive)."""
    taken = {"contents", "methodology", "data dictionary"}
    out = []
    for t in tables:
        base = re.sub(r"[\[\]:*?/\\]", "-", t.sheet).strip("'")[:31] or "Table"
        name, i = base, 2
        while name.lower() in taken:
            suffix = f" ({i})"
            name, i = base[: 31 - len(suffix)] + suffix, i + 1
        taken.add(name.lower())
        out.append(name)
    return out


def _write_sheet(
    ws: Any, headers: Sequence[str], rows: Sequence[Sequence[Any]], kinds: Sequence[str] = (), max_width: int = 60
) -> None:
    """Header row (bold, frozen, filtered), then rows; number formats by column kind; sensible widths."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws.append([neutralise(h) for h in headers])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="top", wrap_text=True)
    for row in rows:
        ws.append([_plain(v) for v in row])
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    for j, header in enumerate(headers):
        kind = kinds[j] if j < len(kinds) else "text"
        fmt = _EXCEL_FORMATS.get(kind)
        if fmt and rows:
            for (cell,) in ws.iter_rows(min_row=2, max_row=len(rows) + 1, min_col=j + 1, max_col=j + 1):
                if isinstance(cell.value, int | float):
                    cell.number_format = fmt
        longest = max([len(str(header)) * 0.8, *(len(_shown(r[j], kind)) for r in rows[:2000] if j < len(r))])
        ws.column_dimensions[get_column_letter(j + 1)].width = max(8.0, min(float(max_width), longest + 2))


def _shown(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if kind == "rate" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if kind in ("count", "usd") and isinstance(value, int | float):
        return f"${value:,.0f}" if kind == "usd" else f"{value:,.0f}"
    return str(value)


def _write_xlsx(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.writer.excel import ExcelWriter

    created = _created(release).replace(tzinfo=None)
    names = _sheet_names(tables)
    wb = Workbook()
    contents = wb.active
    contents.title = "Contents"
    facts = [[item, value, ""] for item, value in release_facts(release)]
    sheets = [
        [f"Sheet {i}", name, f"{t.title}. {t.description}"]
        for i, (name, t) in enumerate(zip(names, tables, strict=True), 2)
    ]
    sheets += [
        [f"Sheet {len(names) + 2}", "Methodology", "Definitions, privacy parameters, margins of error and flags."],
        [f"Sheet {len(names) + 3}", "Data dictionary", "Every column of every report sheet: meaning, unit, CEDS."],
    ]
    _write_sheet(contents, ["Item", "Value", "Notes"], [*facts, ["", "", ""], *sheets], max_width=90)
    for row in contents.iter_rows(min_row=len(facts) + 3, max_row=contents.max_row, min_col=2, max_col=2):
        for cell in row:
            cell.hyperlink = f"#'{cell.value}'!A1"
            cell.font = Font(color=BLUE.lstrip("#"), underline="single")
    for cell in contents["B"][1:]:
        if isinstance(cell.value, float):
            cell.number_format = "0.00##"

    for name, t in zip(names, tables, strict=True):
        ws = wb.create_sheet(name)
        _write_sheet(ws, [c.header for c in t.columns], _records(t.frame), [c.kind for c in t.columns])

    ws = wb.create_sheet("Methodology")
    notes = [list(n) for n in methodology_notes(release)]
    _write_sheet(ws, ["Section", "Topic", "Detail"], notes, max_width=100)
    ws.append([])
    start = ws.max_row + 1
    ws.append([neutralise(h) for h in ("Privacy parameters by release table", "", "")])
    ws.cell(row=start, column=1).font = Font(bold=True)
    ws.append([neutralise(h) for h in _PARAM_HEADERS])
    for cell in ws[start + 1]:
        cell.font = Font(bold=True)
    used = {s for t in tables for s in t.sources}
    for row in privacy_parameters(release, used):
        ws.append([_plain(v) for v in row])
        ws.cell(row=ws.max_row, column=4).number_format = "0.00##"
    for letter, width in zip("DEFGHIJ", (9, 7, 60, 30, 45, 8, 12), strict=True):
        ws.column_dimensions[letter].width = width
    for (cell,) in ws.iter_rows(min_row=2, max_row=len(notes) + 1, min_col=3, max_col=3):
        cell.alignment = Alignment(wrap_text=True, vertical="top")

    ws = wb.create_sheet("Data dictionary")
    _write_sheet(ws, _DICTIONARY_HEADERS, dictionary_rows(tables), max_width=70)

    wb.properties.created = created
    wb.properties.modified = created
    wb.properties.creator = "analytics.report"
    wb.properties.lastModifiedBy = "analytics.report"
    wb.properties.title = f"{REPORT_TITLE} (release {release.release_id})"
    # ExcelWriter directly: openpyxl's save_workbook would stamp "modified" with the current time.
    ExcelWriter(wb, _FixedTimeZip(fh, _zip_time(release))).save()
