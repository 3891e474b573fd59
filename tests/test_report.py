"""The grant annual report package: workbook, CSV zip and PDF from one frozen release."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from analytics import report
from analytics.release import Release, load_release
from analytics.synth import generate
from tests.accounting import build_test_release

PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")
EVIL_NAMES = ['=HYPERLINK("http://x","y")', "+1", "-2", "@cmd"]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    tmp = tmp_path_factory.mktemp("report_release")
    generate(tmp / "data", n_students=3000, seed=3)
    build_test_release(tmp / "data", tmp / "rel", seed=5)
    return load_release(tmp / "rel")


@pytest.fixture(scope="module")
def built(release: Release, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return report.build_report(release, tmp_path_factory.mktemp("report_out") / "nested" / "annual.xlsx")


@pytest.fixture(scope="module")
def workbook(built: dict[str, Path]) -> Any:
    return openpyxl.load_workbook(built["xlsx"])


def _sheet_rows(ws: Any) -> list[dict[str, Any]]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _csv_rows(zip_path: Path, member: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as zf:
        text = zf.read(member).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _evil_release(release: Release) -> Release:
    """The release with hostile district names and a negative rate (numbers must stay numbers)."""
    districts = release.table("districts").copy()
    districts["district_name"] = districts["district_name"].astype(object)
    districts.loc[districts.index[: len(EVIL_NAMES)], "district_name"] = EVIL_NAMES
    ssn = release.table("ssn_collection_by_district").copy()
    ssn.loc[ssn.index[0], "optout_rate"] = -0.01
    tables = {**release.tables, "districts": districts, "ssn_collection_by_district": ssn}
    return dataclasses.replace(release, tables=tables)


def test_paths_share_a_stem_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    paths = report.report_paths(tmp_path / "r.pdf")
    assert paths == {f: tmp_path / f"r.{f}" for f in ("xlsx", "zip", "pdf")}
    assert report.report_paths(tmp_path / "annual.2025", ["zip"]) == {"zip": tmp_path / "annual.2025.zip"}
    with pytest.raises(ValueError, match="unknown report format"):
        report.report_paths(tmp_path / "r", ["docx"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\x01=1", "'=1"),
        ("Aster Bluff", "Aster Bluff"),
        ("a=b", "a=b"),
        (-2, -2),
        (-0.5, -0.5),
        (None, None),
    ],
)
def test_neutralise(value: object, expected: object) -> None:
    assert report.neutralise(value) == expected


def test_workbook_sheets_in_order_with_bold_frozen_headers(release: Release, workbook: Any) -> None:
    names = workbook.sheetnames
    tables = report.report_tables(release)
    assert names[0] == "Contents"
    assert names[1:-2] == [t.sheet for t in tables]
    assert names[-2:] == ["Methodology", "Data dictionary"]
    assert all(len(n) <= 31 for n in names) and len({n.lower() for n in names}) == len(names)
    for ws in workbook.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert all(c.font.bold for c in ws[1] if c.value is not None), ws.title
        assert ws.column_dimensions["A"].width >= 8, ws.title


def test_contents_and_properties_come_from_the_manifest(release: Release, workbook: Any) -> None:
    items = {r["Item"]: r["Value"] for r in _sheet_rows(workbook["Contents"]) if r["Item"]}
    assert items["Release id"] == release.release_id
    assert items["Student population (lineage)"] == release.manifest["lineage"]
    assert not any("fingerprint" in str(k).lower() or "sha-256" in str(k).lower() for k in items)
    assert items["Code version"] == release.manifest["code_version"]
    assert items["Total epsilon of this release"] == pytest.approx(release.manifest["epsilon_total"])
    listed = {r["Value"] for r in _sheet_rows(workbook["Contents"]) if str(r["Item"]).startswith("Sheet ")}
    assert listed == set(workbook.sheetnames[1:])
    created = pd.Timestamp(release.manifest["created_at"]).tz_convert("UTC").tz_localize(None)
    assert workbook.properties.created == created.to_pydatetime()
    assert workbook.properties.modified == created.to_pydatetime()


def test_optout_cells_equal_the_release(release: Release, workbook: Any) -> None:
    ssn = release.table("ssn_collection_by_district").set_index("district_id")
    names = release.table("districts").set_index("district_id")["district_name"]
    ws = workbook["SSN opt-out by district"]
    rows = {r["District ID"]: r for r in _sheet_rows(ws)}
    assert set(rows) == set(ssn.index)
    finite = ssn[ssn["optout_rate"].notna()].index
    missing = ssn.index[ssn["optout_rate"].isna()]
    assert all(rows[d]["Opt-out rate"] is None for d in missing)  # no estimate: an empty cell, not a made-up number
    for district in finite[:3].tolist() + finite[-2:].tolist():
        row = rows[district]
        assert row["District"] == names[district]
        assert row["Opt-out rate"] == pytest.approx(ssn.loc[district, "optout_rate"])
        assert row["Margin of error (95%)"] == pytest.approx(ssn.loc[district, "optout_rate_moe95"])
        assert row["Families asked (noisy count)"] == ssn.loc[district, "n_asked"]
        assert row["Reliability"].lower() == ssn.loc[district, "flag"]
    headers = [c.value for c in ws[1]]
    rate_col = headers.index("Opt-out rate") + 1
    assert headers[rate_col] == "Margin of error (95%)"  # value and margin side by side
    assert "%" in ws.cell(row=2, column=rate_col).number_format
    assert isinstance(ws.cell(row=2, column=rate_col).value, int | float)


def test_statewide_linkage_equals_the_release(release: Release, workbook: Any) -> None:
    grad = release.table("graduation_by_cohort")
    cell = grad[(grad["measure"] == "acgr_4yr") & (grad["cohort"] == 2015)].iloc[0]
    rows = {r["Cohort"]: r for r in _sheet_rows(workbook["Linkage and match rates"])}
    assert rows[2015]["4-year graduation rate"] == pytest.approx(cell["value"])
    assert rows[2015]["4-year graduation rate, margin of error (95%)"] == pytest.approx(cell["value_moe95"])
    assert rows[2015]["Adjusted cohort (noisy count)"] == cell["denominator"]
    work = release.table("workforce_by_cohort")
    cover = work[(work["measure"] == "coverage") & (work["years_out"] == 1) & (work["cohort"] == 2015)].iloc[0]
    assert rows[2015]["SSN provided (linkable to wage records)"] == pytest.approx(cover["value"])


def test_outcome_and_count_sheets(release: Release, workbook: Any) -> None:
    earn = _sheet_rows(workbook["Earnings by subgroup"])
    assert {r["Measure code"] for r in earn} == {"p25", "p50", "p75"}
    assert all(r["Value"] is None or isinstance(r["Value"], int | float) for r in earn)
    assert workbook["Earnings by subgroup"]["F2"].number_format.startswith('"$"')
    employment = {r["Measure code"] for r in _sheet_rows(workbook["Employment by district"])}
    assert employment == {"employment_rate", "coverage"}
    counts = _sheet_rows(workbook["Record counts by source & year"])
    asked = release.table("ssn_collection_by_year").set_index("school_year")["n_asked"]
    ssn_rows = [r for r in counts if r["Source"].startswith("SSN")]
    assert {r["Year"]: r["Count (noisy)"] for r in ssn_rows} == asked.to_dict()
    assert all("noisy" in r["Note"].lower() for r in counts)


def test_methodology_and_data_dictionary(release: Release, workbook: Any) -> None:
    text = " ".join(str(v) for row in workbook["Methodology"].iter_rows(values_only=True) for v in row if v)
    for name, info in release.manifest["tables"].items():
        assert name in text
        assert str(info.get("mechanism", "none")) in text or not info["noisy"]
    assert "covers the privacy noise only" in text
    # the pooled cohorts are read from the release, not written into the text
    grad = release.table("graduation_by_cohort")
    four = grad.loc[(grad["measure"] == "acgr_4yr") & grad["value"].notna(), "cohort"]
    assert f"4-year rate: cohorts {four.min()}-{four.max()}" in text
    dictionary = _sheet_rows(workbook["Data dictionary"])
    for t in report.report_tables(release):
        documented = [r["Column"] for r in dictionary if r["Sheet"] == t.sheet]
        assert documented == [c.header for c in t.columns]
    ceds = " ".join(str(r["CEDS element"]) for r in dictionary)
    for element in ("000046", "000110", "000988", "001938", "000827", "000255", "000144", "001943", "000151"):
        assert element in ceds


def test_formula_injection_is_neutralised_in_xlsx_and_csv(release: Release, tmp_path: Path) -> None:
    paths = report.build_report(_evil_release(release), tmp_path / "evil", ["xlsx", "zip"])
    ws = openpyxl.load_workbook(paths["xlsx"])["SSN opt-out by district"]
    rows = _sheet_rows(ws)
    cells = {r["District"] for r in rows}
    assert {"'" + n for n in EVIL_NAMES} <= cells
    assert not any(str(v).startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if isinstance(v, str))
    negative = [r for r in rows if r["Opt-out rate"] == pytest.approx(-0.01)]
    assert len(negative) == 1 and isinstance(negative[0]["Opt-out rate"], float)  # numbers stay numbers
    graduation = _sheet_rows(openpyxl.load_workbook(paths["xlsx"])["Graduation by district"])
    assert {"'" + n for n in EVIL_NAMES} <= {r["District"] for r in graduation}

    csv_rows = _csv_rows(paths["zip"], "03_ssn_collection_and_optout_by_district.csv")
    assert {"'" + n for n in EVIL_NAMES} <= {r["District"] for r in csv_rows}
    assert "-0.01" in {r["Opt-out rate"] for r in csv_rows}
    for r in csv_rows:
        for column, value in r.items():
            assert not value.startswith(("=", "+", "@")), (column, value)
            if value.startswith("-"):
                float(value)  # only numbers may start with a minus sign


def test_zip_holds_one_csv_per_table_and_is_byte_identical(
    release: Release, built: dict[str, Path], tmp_path: Path
) -> None:
    tables = report.report_tables(release)
    with zipfile.ZipFile(built["zip"]) as zf:
        names = zf.namelist()
        infos = zf.infolist()
        assert zf.testzip() is None
    assert sorted(n for n in names if n.endswith(".csv")) == sorted(
        [t.csv_name for t in tables] + ["data_dictionary.csv"]
    )
    assert {"methodology.txt", "manifest.json"} <= set(names)
    created = pd.Timestamp(release.manifest["created_at"]).tz_convert("UTC")
    assert {i.date_time[:3] for i in infos} == {(created.year, created.month, created.day)}
    header = next(csv.reader(io.StringIO(zipfile.ZipFile(built["zip"]).read(tables[0].csv_name).decode("utf-8"))))
    assert header == [c.header for c in tables[0].columns]
    again = report.build_report(release, tmp_path / "again", ["zip"])
    assert again["zip"].read_bytes() == built["zip"].read_bytes()


def test_pdf_has_a_title_page_and_charts(built: dict[str, Path]) -> None:
    data = built["pdf"].read_bytes()
    assert data.startswith(b"%PDF")
    assert len(PAGE.findall(data)) >= 5
    assert built["xlsx"].parent == built["pdf"].parent == built["zip"].parent
    assert built["xlsx"].parent.name == "nested"


def test_same_release_same_report(release: Release, built: dict[str, Path], tmp_path: Path) -> None:
    again = report.build_report(release, tmp_path / "again.pdf", ["xlsx", "pdf"])
    first, second = openpyxl.load_workbook(built["xlsx"]), openpyxl.load_workbook(again["xlsx"])
    assert first.sheetnames == second.sheetnames
    for a, b in zip(first.worksheets, second.worksheets, strict=True):
        assert list(a.iter_rows(values_only=True)) == list(b.iter_rows(values_only=True)), a.title
    assert len(PAGE.findall(again["pdf"].read_bytes())) == len(PAGE.findall(built["pdf"].read_bytes()))


@pytest.mark.parametrize("fmt", ["xlsx", "zip", "pdf"])
def test_interrupted_write_leaves_no_partial_file(
    release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk pulled out")

    out = tmp_path / "out"
    replace: Callable[..., None] = boom
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk pulled out"):
        report.build_report(release, out / "annual", [fmt])
    assert list(out.iterdir()) == []  # neither the report nor its temporary file


MATHTEXT_NAMES = ["$x^{$ Academy", "$\\frac{a}$ School", "a$b$c District", "Birch\u200bwater \U0001f393 School"]


def test_names_with_mathtext_and_odd_characters_draw_as_plain_text(release: Release, tmp_path: Path) -> None:
    districts = release.table("districts").copy()
    districts["district_name"] = districts["district_name"].astype(object)
    ssn = release.table("ssn_collection_by_district")
    top = ssn.sort_values("optout_rate", ascending=False)["district_id"].head(len(MATHTEXT_NAMES)).tolist()
    for district_id, name in zip(top, MATHTEXT_NAMES, strict=True):  # the PDF charts the 25 highest
        districts.loc[districts["district_id"] == district_id, "district_name"] = name
    evil = dataclasses.replace(release, tables={**release.tables, "districts": districts})
    paths = report.build_report(evil, tmp_path / "math")  # filterwarnings=error: no missing-glyph warning either
    assert len(PAGE.findall(paths["pdf"].read_bytes())) >= 5
    assert report.pdf_text("$x^{$ Academy") == "$x^{$ Academy"
    assert report.pdf_text("a\u202eb\U0001f393") == "ab?"
    assert report.pdf_text("x" * 500, 20) == "x" * 19 + "…"


def test_a_failing_pdf_leaves_no_partial_package(
    release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pkg"
    first = report.build_report(release, out / "annual", ["xlsx", "zip"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def pdf_fails(*_args: object) -> None:
        raise ValueError("the PDF could not be drawn")

    monkeypatch.setattr(report, "_write_pdf", pdf_fails)
    with pytest.raises(ValueError, match="could not be drawn"):
        report.build_report(release, out / "annual")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old files untouched, no temporaries
    with pytest.raises(ValueError):
        report.build_report(release, tmp_path / "fresh" / "annual")
    assert list((tmp_path / "fresh").iterdir()) == []  # no xlsx or zip without the PDF
    assert set(first) == {"xlsx", "zip"}


def test_oversized_text_cells_are_capped(release: Release, tmp_path: Path) -> None:
    districts = release.table("districts").copy()
    districts["district_name"] = districts["district_name"].astype(object)
    districts.loc[districts.index[0], "district_name"] = "=" + "A" * 100_000
    evil = dataclasses.replace(release, tables={**release.tables, "districts": districts})
    paths = report.build_report(evil, tmp_path / "big", ["zip"])
    rows = _csv_rows(paths["zip"], "03_ssn_collection_and_optout_by_district.csv")
    longest = max(len(r["District"]) for r in rows)
    assert longest <= report.MAX_CELL_TEXT + 1  # the quote that neutralises the "=" may be added
    assert any(r["District"].startswith("'=") and r["District"].endswith("…") for r in rows)
