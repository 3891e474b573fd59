"""The researcher table builder: preview equals spend, repeats are free, allocations are separate and enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics import builder
from analytics.ledger import BudgetExceededError, Ledger
from analytics.synth import generate
from analytics.validate import Dataset, load_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    out = tmp_path_factory.mktemp("b") / "data"
    generate(out, 2_000, seed=9)
    return load_dataset(out)


@pytest.fixture
def ledger(tmp_path: Path, dataset: Dataset) -> Ledger:
    led = Ledger(tmp_path / "ledger.sqlite3")
    led.set_budget("researcher:ann", dataset.fingerprint, 1.0, set_by="steward")
    led.set_budget("researcher:bob", dataset.fingerprint, 1.0, set_by="steward")
    return led


RATE = builder.TableRequest("adjusted_cohort", "rate", ("cohort",), 0.4, "graduated_4yr")


def test_cost_preview_equals_the_ledger_spend(dataset: Dataset, ledger: Ledger) -> None:
    preview = builder.preview(RATE)
    assert set(preview["epsilon"]) == {0.4}
    result = builder.run(RATE, dataset, "ann", ledger)
    assert result.spend.epsilon_charged == pytest.approx(0.4)
    assert ledger.spent("researcher:ann", dataset.fingerprint) == pytest.approx(0.4)
    assert {"rate", "rate_moe95", "flag", "flag_reason"} <= set(result.table.columns)
    assert sorted(result.table["cohort"]) == list(range(2011, 2022))


def test_repeat_is_free_and_identical(dataset: Dataset, ledger: Ledger) -> None:
    first = builder.run(RATE, dataset, "ann", ledger)
    again = builder.run(RATE, dataset, "ann", ledger)
    assert again.spend.reused and again.spend.epsilon_charged == 0
    assert again.table.equals(first.table)
    assert ledger.spent("researcher:ann", dataset.fingerprint) == pytest.approx(0.4)


def test_over_allocation_is_refused_and_nothing_is_spent(dataset: Dataset, ledger: Ledger) -> None:
    builder.run(RATE, dataset, "ann", ledger)
    big = builder.TableRequest("adjusted_cohort", "count", ("district_id",), 0.7)
    with pytest.raises(BudgetExceededError) as err:
        builder.run(big, dataset, "ann", ledger)
    assert "nothing was spent" in str(err.value) and "0.6" in str(err.value)
    assert ledger.spent("researcher:ann", dataset.fingerprint) == pytest.approx(0.4)


def test_two_researchers_allocations_are_independent(dataset: Dataset, ledger: Ledger) -> None:
    builder.run(
        builder.TableRequest("graduates", "rate", ("cohort",), 0.9, "enrolled_by_oct31"), dataset, "ann", ledger
    )
    assert ledger.remaining("researcher:ann", dataset.fingerprint) == pytest.approx(0.1)
    assert ledger.remaining("researcher:bob", dataset.fingerprint) == pytest.approx(1.0)
    builder.run(builder.TableRequest("adjusted_cohort", "count", ("cohort",), 0.5), dataset, "bob", ledger)
    assert ledger.remaining("researcher:ann", dataset.fingerprint) == pytest.approx(0.1)


def test_researcher_without_allocation_is_refused(dataset: Dataset, ledger: Ledger) -> None:
    with pytest.raises(BudgetExceededError, match="no budget"):
        builder.run(RATE, dataset, "carol", ledger)


def test_years_out_repeats_scale_the_noise(dataset: Dataset) -> None:
    all_years = builder.TableRequest("workforce_matched", "rate", ("years_out",), 0.3, "employed")
    one_year = builder.TableRequest("workforce_matched", "rate", ("district_id",), 0.3, "employed", {"years_out": (1,)})
    assert builder.rows_per_student(all_years.checked()) == 3
    assert builder.rows_per_student(one_year.checked()) == 1


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (builder.TableRequest("nope", "rate", ("cohort",), 0.1, "x"), "population must be one of"),
        (builder.TableRequest("adjusted_cohort", "rate", ("student_key",), 0.1, "graduated_4yr"), "not a dimension"),
        (builder.TableRequest("adjusted_cohort", "rate", ("cohort",), 0.1, "salary"), "needs an outcome"),
        (builder.TableRequest("adjusted_cohort", "count", (), 0.1), "at least one group-by"),
        (builder.TableRequest("adjusted_cohort", "count", ("cohort",), 0.0), "epsilon must be above 0"),
        (
            builder.TableRequest("employed", "mean", ("cohort",), 0.5, "earnings_2024", lower=5.0, upper=1.0),
            "lower bound must be below",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_reason(request_: builder.TableRequest, words: str) -> None:
    with pytest.raises(builder.RequestError, match=words):
        request_.checked()


def test_outputs_with_sidecar(dataset: Dataset, ledger: Ledger, tmp_path: Path) -> None:
    req = builder.TableRequest("employed", "percentile", ("years_out",), 0.5, "earnings_2024")
    result = builder.run(req, dataset, "ann", ledger)
    paths = builder.write_outputs(result, tmp_path / "out" / "earnings")
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["query"]["measure"] == "percentile" and sidecar["epsilon_of_answer"] == 0.5
    assert sidecar["dataset_fingerprint"] == dataset.fingerprint and sidecar["bounds"]["upper"] == 100_000.0
    assert paths["csv"].read_text().startswith("years_out,n_students,p25")
    assert paths["parquet"].stat().st_size > 0
