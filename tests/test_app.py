"""Every page renders on the sample release, shows its key elements, and reacts to its filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import config

APP = str(config.REPO_ROOT / "app.py")


def _page(path: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.usefixtures("sample_home")
def test_ssn_page_shows_charts_metrics_and_tables() -> None:
    at = _page("pages/ssn_collection.py")
    assert at.title[0].value == "SSN collection and opt-out"
    assert len(at.get("plotly_chart")) == 4
    assert len(at.metric) == 3
    assert len(at.dataframe) == 4
    assert len(at.get("download_button")) == 8  # each table as CSV and as Parquet
    assert all(c.value.startswith("Reading: ") for c in at.caption if c.value.startswith("Reading"))
    assert sum(c.value.startswith("Reading: ") for c in at.caption) == 4  # one reading per chart


@pytest.mark.usefixtures("sample_home")
def test_county_filter_changes_the_district_table_and_lives_in_the_url() -> None:
    at = _page("pages/ssn_collection.py")
    all_rows = len(at.dataframe[0].value)
    at.selectbox(key="county").select("Aroostook").run()
    rows = at.dataframe[0].value
    assert 0 < len(rows) < all_rows
    assert set(rows["County"]) == {"Aroostook"}
    assert at.query_params["county"] == ["Aroostook"] or at.query_params["county"] == "Aroostook"


@pytest.mark.usefixtures("sample_home")
def test_county_from_url_is_applied() -> None:
    at = _page("pages/ssn_collection.py", county="York")
    assert set(at.dataframe[0].value["County"]) == {"York"}


@pytest.mark.usefixtures("sample_home")
def test_privacy_page_explains_the_manifest_and_shows_the_ledger() -> None:
    at = _page("pages/privacy_methods.py")
    text = " ".join(m.value for m in at.markdown)
    assert "differential privacy" in text and "95% margin of error" in text
    assert len(at.dataframe) >= 3  # costs, margins by size, ledger


@pytest.mark.usefixtures("sample_home")
def test_data_contract_page_renders_the_contract() -> None:
    at = _page("pages/data_contract.py")
    assert any("PII gate" in m.value for m in at.markdown)


@pytest.mark.usefixtures("sample_home")
def test_overview_headlines_trends_and_years_out_filter() -> None:
    at = _page("pages/overview.py")
    assert at.title[0].value == "Maine students from school to work"
    assert len(at.metric) == 5
    assert len(at.get("plotly_chart")) == 3
    assert all("±" in c.value for c in at.caption[:4])  # every headline states its margin
    assert sum(c.value.startswith("Reading: ") for c in at.caption) == 3
    before = at.dataframe[1].value.copy()
    at.segmented_control(key="years_out").set_value(5).run()
    assert not at.exception
    assert not at.dataframe[1].value.equals(before)


@pytest.mark.usefixtures("sample_home")
def test_district_profile_follows_the_url_and_the_picker() -> None:
    at = _page("pages/district_profile.py", district="D005")
    assert at.selectbox(key="district").value == "D005"
    first = at.dataframe[0].value.copy()
    at.selectbox(key="district").set_value("D008").run()
    assert not at.exception
    assert at.query_params["district"] in ("D008", ["D008"])
    assert not at.dataframe[0].value.equals(first)
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.usefixtures("sample_home")
def test_school_page_measures_and_filters() -> None:
    at = _page("pages/schools.py")
    assert len(at.get("plotly_chart")) == 1
    n_all = len(at.dataframe[0].value)
    at.selectbox(key="county").set_value("York").run()
    assert 0 < len(at.dataframe[0].value) < n_all
    at.selectbox(key="measure").set_value("Median growth percentile").run()
    assert not at.exception
    assert "Margin of error (95%)" in at.dataframe[0].value.columns


@pytest.mark.usefixtures("sample_home")
def test_workforce_page_cuts_and_bounds() -> None:
    at = _page("pages/workforce.py")
    assert len(at.get("plotly_chart")) == 2
    assert at.selectbox(key="cut").options == ["Cohort", "District", "Student group", "College path"]
    at.selectbox(key="cut").set_value("path").run()
    rows = at.dataframe[0].value
    assert set(rows["College path"]) == {"none", "2-year", "4-year"}
    assert {"Coverage: SSN provided (matched)", "Highest possible (every unmatched student employed)"} <= set(
        rows["Measure"]
    )
    at.selectbox(key="years_out").set_value(5).run()
    assert not at.exception and not at.dataframe[0].value.equals(rows)


@pytest.mark.usefixtures("sample_home")
def test_ssn_page_has_map_and_scatter() -> None:
    at = _page("pages/ssn_collection.py")
    assert len(at.get("plotly_chart")) == 4
    assert len(at.dataframe) >= 4


def test_app_builds_a_release_on_first_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert list((tmp_path / "releases").glob("*/manifest.json"))
    assert len(at.get("plotly_chart")) == 3  # lands on the overview with its charts


@pytest.mark.usefixtures("sample_home")
def test_grant_report_page_offers_the_three_files() -> None:
    at = _page("pages/grant_report.py")
    assert at.title[0].value == "Grant report package"
    assert len(at.get("download_button")) == 3


@pytest.mark.usefixtures("sample_home")
def test_workforce_district_view_is_paged_with_rank_intervals() -> None:
    at = _page("pages/workforce.py", cut="district")
    chart = at.get("plotly_chart")[0]
    import json

    fig = json.loads(chart.proto.spec)
    rows = {y for trace in fig["data"] if trace.get("type") == "scatter" for y in trace["y"]}
    assert 0 < len(rows) <= 25  # one page of districts, not 150
    table = at.dataframe[0].value
    assert table["District"].nunique() == 150  # the table keeps every district
    ranked = table["Rank (95% interval)"][table["Rank (95% interval)"] != ""]
    assert ranked.str.contains(r"of \d+$|^no rank \(no figure\)$").all()
    assert ranked.str.contains(r"^between \d+\w\w and \d+\w\w of \d+$").sum() > 100
    at.text_input(key="wf_districts_find").input("Aster").run()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {y for trace in fig["data"] if trace.get("type") == "scatter" for y in trace["y"]}
    assert names and all("Aster" in n for n in names)


@pytest.mark.usefixtures("sample_home")
def test_families_page_explains_the_ssn_choice_and_the_privacy_spent() -> None:
    from analytics.release import load_release
    from pages.common import releases_dir

    at = _page("pages/families.py")
    text = " ".join(m.value for m in at.markdown)
    assert "optional" in text and "20 U\\.S\\.C\\. 9871" in text and "6001\\-C" in text
    assert "wage records" in text and "never" in text
    manifest = load_release(releases_dir()).manifest
    assert f"at most ε = {manifest['lineage_privacy_loss']['epsilon']:g}" in text.replace("\\", "")
    first = " ".join(m.value for m in at.markdown)
    at.selectbox(key="family_district").set_value("D008").run()
    assert not at.exception
    assert " ".join(m.value for m in at.markdown) != first  # the district's opt-out follows the choice
    assert len(at.get("download_button")) == 1  # the printable copy


@pytest.mark.usefixtures("sample_home")
def test_suppression_page_counts_hidden_cells_from_noisy_sizes() -> None:
    from analytics import views
    from analytics.release import load_release
    from pages.common import releases_dir

    at = _page("pages/suppression.py")
    release = load_release(releases_dir())
    grad = release.table("graduation_by_district")
    grad = grad[grad["measure"] == "acgr_4yr"]
    expected = views.suppression_comparison(grad.reset_index(drop=True), "denominator", "district_id")
    assert at.metric[0].value == f"{int(expected['hidden'].sum()):,} of {len(expected):,}"
    assert "noisy" in " ".join(c.value for c in at.caption)
    assert sum(c.value.startswith("Reading: ") for c in at.caption) == 1
    at.selectbox(key="table").set_value("optout").run()
    assert not at.exception
    optout = release.table("ssn_collection_by_district")
    assert at.metric[0].value.endswith(f"of {len(optout):,}")
    at.selectbox(key="min_n").set_value(30).run()
    assert int(at.metric[0].value.split(" of ")[0].replace(",", "")) >= int((optout["n_asked"] < 30).sum())


@pytest.mark.usefixtures("sample_home")
def test_the_sidebar_links_to_the_families_page() -> None:
    # The sidebar is drawn by app.py before any page; tests/test_browser.py checks the link on every page.
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    links = [link.proto for link in at.get("page_link")]
    assert [link.page for link in links] == ["families"]
    assert "Families" in links[0].label


@pytest.mark.usefixtures("sample_home")
def test_school_value_added_says_what_the_shrunk_figure_is_and_keeps_its_margin() -> None:
    at = _page("pages/schools.py", measure="Value-added, shrunk (scale points)")
    words = " ".join(box.value for box in at.info)
    assert "What the shrunk figure is" in words and "state average" in words
    table = at.dataframe[0].value
    shown = table[table["Value"] != "—"]
    assert len(shown) > 0
    assert not (shown["Margin of error (95%)"] == "± 0.0").any()  # a shrunk figure is never "0.0 ± 0.0"
