"""A release on a zCDP lineage: the design's split, rho in every spend, the total as rho and (epsilon, delta)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import accounting, catalog, lineage, release
from analytics.ledger import Ledger
from analytics.synth import generate
from analytics.validate import load_dataset
from tests.accounting import STEWARD, new_ledger


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ledger, release.BuildResult]:
    root = tmp_path_factory.mktemp("zcdp")
    data = root / "slds"
    generate(data, n_students=2_000, seed=12)
    ledger = new_ledger(root)
    lineage.register(ledger, STEWARD, "zcdp-test", cap=1.0, description="test", public_allocation=1.0,
                     accounting="zcdp")  # fmt: skip
    lineage.attach(ledger, STEWARD, "zcdp-test", load_dataset(data).source, label="x")
    result = release.build_release(data, root / "rel", user=STEWARD, epsilon=6.55, ledger=ledger, seed=3)
    return data, ledger, result


def test_default_plan_is_worth_epsilon_6_55_at_delta_1e_10() -> None:
    plan = catalog.plan_release(6.55)
    assert plan.total_rho == pytest.approx(accounting.epsilon_to_rho(6.55, 1e-10), rel=1e-9)
    assert accounting.rho_to_epsilon(plan.total_rho, 1e-10) <= 6.55 + 1e-9
    pure = [n for n, t in catalog.TABLES_BY_NAME.items() if t.cost == "epsilon" and plan.rhos[n] > 0]
    for name in pure:  # a pure-epsilon table runs at sqrt(2 rho) and so costs exactly its rho (BS16 Prop. 1.4)
        assert plan.epsilons[name] ** 2 / 2 == pytest.approx(plan.rhos[name])
    assert sum(plan.levels.values()) == pytest.approx(plan.rhos["graduation_measurements"])
    eps_plan = catalog.plan_release(6.55, "epsilon")
    assert sum(eps_plan.epsilons.values()) == pytest.approx(6.55)


def test_spends_carry_rho_and_the_total_is_stated_both_ways(built) -> None:
    _data, ledger, result = built
    manifest = json.loads((result.release_dir / release.MANIFEST).read_text())
    loss = manifest["release_privacy_loss"]
    assert loss["unit"] == "rho" and loss["delta"] == 1e-10
    assert loss["epsilon"] == pytest.approx(6.55, abs=1e-6)
    spends = [e for e in ledger.history("zcdp-test") if e.kind == "spend"]
    assert sum(e.charge for e in spends) == pytest.approx(loss["rho"], rel=1e-9)
    gaussian = [e for e in spends if e.query and e.query["table"] == "graduation_measurements"]
    assert len(gaussian) == 1 and gaussian[0].rho == pytest.approx(loss["rho"] * catalog.GRADUATION_RHO_SHARE)
    assert manifest["design"]["graduation_levels"] and manifest["design"]["tables"]
    derived = manifest["tables"]["graduation_by_district"]
    assert derived["epsilon"] == 0.0 and derived["derived_from"] == ["graduation_measurements"]


def test_graduation_tables_agree_across_levels(built) -> None:
    _data, _ledger, result = built
    rel = release.load_release(result.release_dir.parent, result.release_id)
    m = rel.table("graduation_measurements")
    assert set(m["mechanism"]) == {"gaussian"}
    state = rel.table("graduation_by_cohort").query("measure == 'acgr_4yr'").set_index("cohort")["numerator"]
    district = rel.table("graduation_by_district").query("measure == 'acgr_4yr'").groupby("cohort")["numerator"].sum()
    school = rel.table("graduation_by_school").query("measure == 'acgr_4yr'").groupby("cohort")["numerator"].sum()
    # published counts are rounded consistent estimates: sums agree to within the rounding of their parts
    n_d, n_s = rel.table("districts").shape[0], len(rel.table("graduation_by_school").school_id.unique())
    assert np.all(np.abs(district - state.loc[district.index]) <= n_d / 2)
    assert np.all(np.abs(school - state.loc[school.index]) <= n_s / 2)
    grad = rel.table("graduation_by_district")
    withheld = grad["value"].isna()
    assert (grad.loc[withheld, "flag_reason"].str.startswith("no estimate")).all()
    assert {"model_value", "model_moe95", "model_reason"} <= set(grad.columns)
    assert not pd.isna(grad["model_value"]).all()
