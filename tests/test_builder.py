"""The researcher table builder: preview equals spend, repeats are free, allocations are separate and enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics import builder
from analytics.auth import User
from analytics.ledger import BudgetExceededError, Ledger, LineageError
from analytics.synth import generate
from analytics.validate import Dataset, load_dataset
from tests.accounting import new_ledger, registered

ANN, BOB, CAROL = User("ann", "researcher"), User("bob", "researcher"), User("carol", "researcher")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    out = tmp_path_factory.mktemp("b") / "data"
    generate(out, 2_000, seed=9)
    return load_dataset(out)


@pytest.fixture
def ledger(tmp_path: Path, dataset: Dataset) -> Ledger:
    led = new_ledger(tmp_path)
    registered(led, dataset.path, name="pop", cap=5.0, public=None, researchers={"ann": 1.0, "bob": 1.0}, max_query=1.0)
    return led


def remaining(ledger: Ledger, user: User) -> float:
    allocated, spent = ledger.status("pop").allocations[user.budget_scope]
    return allocated - spent


RATE = builder.TableRequest("adjusted_cohort", "rate", ("cohort",), 0.4, "graduated_4yr")


def test_cost_preview_equals_the_ledger_spend(dataset: Dataset, ledger: Ledger) -> None:
    preview = builder.preview(RATE)
    assert set(preview["epsilon"]) == {0.4}
    result = builder.run(RATE, dataset, ANN, ledger)
    assert result.spend.charged == pytest.approx(0.4)
    assert ledger.status("pop").allocations["researcher:ann"][1] == pytest.approx(0.4)
    assert {"rate", "rate_moe95", "flag", "flag_reason"} <= set(result.table.columns)
    assert sorted(result.table["cohort"]) == list(range(2011, 2022))


def test_repeat_is_free_and_identical(dataset: Dataset, ledger: Ledger) -> None:
    first = builder.run(RATE, dataset, ANN, ledger)
    again = builder.run(RATE, dataset, ANN, ledger)
    assert again.spend.reused and again.spend.charged == 0
    assert again.table.equals(first.table)
    assert ledger.status("pop").allocations["researcher:ann"][1] == pytest.approx(0.4)


def test_over_allocation_is_refused_and_nothing_is_spent(dataset: Dataset, ledger: Ledger) -> None:
    builder.run(RATE, dataset, ANN, ledger)
    big = builder.TableRequest("adjusted_cohort", "count", ("district_id",), 0.7)
    with pytest.raises(BudgetExceededError) as err:
        builder.run(big, dataset, ANN, ledger)
    assert "nothing was spent" in str(err.value) and "0.6" in str(err.value)
    assert ledger.status("pop").allocations["researcher:ann"][1] == pytest.approx(0.4)


def test_two_researchers_allocations_are_independent(dataset: Dataset, ledger: Ledger) -> None:
    builder.run(builder.TableRequest("graduates", "rate", ("cohort",), 0.9, "enrolled_by_oct31"), dataset, ANN, ledger)
    assert remaining(ledger, ANN) == pytest.approx(0.1)
    assert remaining(ledger, BOB) == pytest.approx(1.0)
    builder.run(builder.TableRequest("adjusted_cohort", "count", ("cohort",), 0.5), dataset, BOB, ledger)
    assert remaining(ledger, ANN) == pytest.approx(0.1)


def test_researcher_without_allocation_is_refused(dataset: Dataset, ledger: Ledger) -> None:
    with pytest.raises(BudgetExceededError, match="only epsilon=0 of 0"):
        builder.run(RATE, dataset, CAROL, ledger)


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
            "lower < upper",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_reason(request_: builder.TableRequest, words: str) -> None:
    with pytest.raises(builder.RequestError, match=words):
        request_.checked()


def test_outputs_with_sidecar(dataset: Dataset, ledger: Ledger, tmp_path: Path) -> None:
    req = builder.TableRequest("employed", "percentile", ("years_out",), 0.5, "earnings_2024")
    result = builder.run(req, dataset, ANN, ledger)
    paths = builder.write_outputs(result, tmp_path / "out" / "earnings")
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["query"]["measure"] == "percentile" and sidecar["epsilon_of_answer"] == 0.5
    assert sidecar["lineage"] == "pop" and sidecar["extract"]["number"] == 1 and sidecar["bounds"]["upper"] == 100_000.0
    assert not any("fingerprint" in k for k in sidecar)
    assert paths["csv"].read_text().startswith("years_out,n_students,p25")
    assert paths["parquet"].stat().st_size > 0


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (
            builder.TableRequest("employed", "percentile", ("cohort",), 0.5, "earnings_2024", quantiles=(1.5, -0.2)),
            "strictly between 0 and 1",
        ),
        (
            builder.TableRequest("employed", "mean", ("cohort",), 0.5, "earnings_2024", lower=0.0, upper=1e300),
            "public range",
        ),
        (
            builder.TableRequest("employed", "mean", ("cohort",), 0.5, "earnings_2024", lower=float("nan")),
            "finite number",
        ),
        (
            builder.TableRequest("employed", "mean", ("cohort",), 0.5, "earnings_2024", upper=float("inf")),
            "finite number",
        ),
        (builder.TableRequest("adjusted_cohort", "count", ("cohort",), float("inf")), "epsilon must be above 0"),
        (builder.TableRequest("adjusted_cohort", "count", ("cohort",), 10.0), "and 2 "),
        (builder.TableRequest("adjusted_cohort", "count", ("cohort",), 1e-300), "pure noise"),
        (builder.TableRequest("adjusted_cohort", "count", ("cohort", "cohort"), 0.1), "named once"),
    ],
)
def test_nonsense_requests_are_refused_before_anything_is_spent(
    request_: builder.TableRequest, words: str, dataset: Dataset, ledger: Ledger
) -> None:
    before = ledger.history()
    with pytest.raises(builder.RequestError, match=words):
        builder.run(request_, dataset, ANN, ledger)
    assert ledger.history() == before


def test_above_the_per_query_maximum_is_refused_and_nothing_is_spent(dataset: Dataset, ledger: Ledger) -> None:
    ledger.set_max_query("pop", 0.3, principal="sam")
    before = ledger.history()
    with pytest.raises(BudgetExceededError, match="per-query maximum"):
        builder.run(RATE, dataset, ANN, ledger)  # RATE asks for 0.4
    assert ledger.history() == before


def test_one_question_has_one_key_however_it_is_worded(dataset: Dataset, ledger: Ledger) -> None:
    a = builder.TableRequest(
        "adjusted_cohort",
        "rate",
        ("cohort", "sex"),
        0.2,
        "graduated_4yr",
        {"english_learner": (True,), "cohort": (2015, 2014)},
    )
    b = builder.TableRequest(
        "adjusted_cohort",
        "rate",
        ("sex", "cohort"),
        0.2,
        "graduated_4yr",
        {"cohort": ("2014", "2015.0"), "english_learner": ("true",)},
    )
    first, second = builder.run(a, dataset, ANN, ledger), builder.run(b, dataset, ANN, ledger)
    assert second.spend.reused and second.table.equals(first.table)
    with pytest.raises(builder.RequestError, match="not in the public list"):
        builder.run(
            builder.TableRequest("adjusted_cohort", "count", ("cohort",), 0.1, filters={"cohort": (1999,)}),
            dataset,
            ANN,
            ledger,
        )


def test_an_unattached_extract_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    led = new_ledger(tmp_path / "empty")
    with pytest.raises(LineageError, match="not attached"):
        builder.run(RATE, dataset, ANN, led)
    assert led.history() == []


def test_seeds_need_a_test_ledger(dataset: Dataset, ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="tests only"):
        builder.run(RATE, dataset, ANN, Ledger(ledger.path, key=ledger.key), seed=1)
