"""Grant reporting: the annual SLDS grant report package of a release, ready to download."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import streamlit as st

from pages.common import current_release, load_release_cached, releases_dir

release = current_release()
st.title("Grant report package")
st.markdown(
    "The annual report package for the federal SLDS grant program, built from the published release only: "
    "linkage and match rates (K-12, college, workforce) by cohort, record counts by source and year, SSN collection "
    "and opt-out by district, and graduation, college-going, employment and earnings by district and subgroup. "
    "Every figure keeps its margin of error and reliability flag. The same release always gives the same report."
)


@st.cache_data(show_spinner=False, max_entries=4)
def _package(folder: str, release_id: str) -> dict[str, tuple[str, bytes, float]]:
    from analytics.report import build_report

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_report(load_release_cached(folder, release_id), Path(tmp) / f"slds-report-{release_id}")
        seconds = time.perf_counter() - started
        return {fmt: (p.name, p.read_bytes(), seconds) for fmt, p in paths.items()}


with st.spinner("Building the workbook, the CSV files and the PDF summary"):
    package = _package(str(releases_dir()), release.release_id)
seconds = next(iter(package.values()))[2]
st.caption(f"Release {release.release_id} · built in {seconds:.1f} s")
labels = {
    "xlsx": ("Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "zip": ("CSV files (zip)", "application/zip"),
    "pdf": ("PDF summary", "application/pdf"),
}
cols = st.columns(len(package))
for col, (fmt, (name, data, _)) in zip(cols, package.items(), strict=True):
    label, mime = labels.get(fmt, (fmt, "application/octet-stream"))
    col.download_button(f"Download the {label}", data, file_name=name, mime=mime, key=f"dl_{fmt}")
st.markdown(
    "The workbook has a contents sheet, one sheet per table, a methodology sheet (definitions and the privacy "
    "parameters of every table) and a data dictionary with CEDS element names. Text that a spreadsheet could run as "
    "a formula is neutralised. The same package from the command line: "
    f"`python -m analytics report {release.release_id} --out report`."
)
