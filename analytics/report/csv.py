"""The grant report as CSV files in a zip: one per table, the data dictionary, methodology and manifest."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import IO, Any

import numpy as np
import pandas as pd

from analytics.release import Release
from analytics.report.files import _FixedTimeZip
from analytics.report.methodology import _DICTIONARY_HEADERS, _zip_time, dictionary_rows, methodology_text
from analytics.report.tables import MAX_CELL_TEXT, ReportTable, neutralise


def _plain(value: Any) -> Any:
    """A cell value as a plain Python object: None for missing, int/float for numbers, neutralised text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    text = str(value)
    return neutralise(text if len(text) <= MAX_CELL_TEXT else text[: MAX_CELL_TEXT - 1] + "…")


def _records(frame: pd.DataFrame) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False, name=None)]


def _csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in map(_plain, row)])
    return buf.getvalue().encode("utf-8")


def _write_zip(release: Release, tables: Sequence[ReportTable], fh: IO[bytes]) -> None:
    with _FixedTimeZip(fh, _zip_time(release)) as zf:
        for t in tables:
            zf.writestr(t.csv_name, _csv_bytes(list(t.frame.columns), _records(t.frame)))
        zf.writestr("data_dictionary.csv", _csv_bytes(_DICTIONARY_HEADERS, dictionary_rows(tables)))
        zf.writestr("methodology.txt", methodology_text(release, tables).encode("utf-8"))
        zf.writestr("manifest.json", (json.dumps(release.manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
