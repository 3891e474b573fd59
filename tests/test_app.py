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
    assert len(at.get("download_button")) == 4


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
    at.selectbox(key="cut").set_value("path").run()
    rows = at.dataframe[0].value
    assert set(rows["Path"]) == {"none", "2-year", "4-year"}
    assert {"Coverage: SSN provided (matched)", "Employed, if every unmatched student was"} <= set(rows["Measure"])
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
