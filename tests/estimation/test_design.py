"""Budget design: closed forms checked on hand-computable cases."""

from __future__ import annotations

import math

import pytest

from analytics import accounting, noise
from analytics.estimation.design import TableGoal, expected_rate_moe, minimum_total, sigma_for_count_moe, split_total


def test_weights_split_as_square_roots() -> None:
    # rho_t proportional to sqrt(w_t) * D_t: weights 1 and 9 with D = 1 -> 1 : 3
    d = split_total([TableGoal("a", weight=1.0), TableGoal("b", weight=9.0)], 0.4)
    assert d.rho == pytest.approx((0.1, 0.3))
    # sensitivity sqrt(2) doubles nothing but multiplies the share by sqrt(2)
    d2 = split_total([TableGoal("a", weight=1.0), TableGoal("b", weight=1.0, l2_sensitivity=math.sqrt(2))], 1.0)
    assert d2.rho[1] / d2.rho[0] == pytest.approx(math.sqrt(2))
    assert d.total_rho == pytest.approx(0.4)


def test_weighted_split_minimises_weighted_variance() -> None:
    goals = [TableGoal("a", weight=1.0), TableGoal("b", weight=4.0), TableGoal("c", weight=0.5)]
    best = split_total(goals, 0.6)

    def loss(rhos) -> float:
        return sum(g.weight * g.l2_sensitivity**2 / (2 * r) for g, r in zip(goals, rhos, strict=True))

    for shift in (0.01, -0.01):
        moved = list(best.rho)
        moved[0] += shift
        moved[1] -= shift
        assert loss(moved) > loss(best.rho)


def test_minimum_total_meets_every_target_exactly() -> None:
    d = minimum_total([TableGoal("a", target_moe=10.0), TableGoal("b", target_moe=4.0, l2_sensitivity=2.0)])
    preview = d.preview().set_index("table")
    assert preview.loc["a", "count_moe95"] <= 10 and preview.loc["b", "count_moe95"] <= 4
    # a little less budget breaks the target (sigma is the largest that meets it)
    assert noise.discrete_gaussian_moe(sigma_for_count_moe(10.0) * 1.01) > 10
    assert d.rho[1] == pytest.approx(accounting.gaussian_rho(sigma_for_count_moe(4.0), 2.0))


def test_split_of_a_larger_total_scales_every_margin_by_the_same_factor() -> None:
    goals = [TableGoal.for_rate("district", 0.10, 40, 0.88, 4), TableGoal.for_rate("pooled", 0.05, 400, 0.88, 4)]
    need = minimum_total(goals).total_rho
    d = split_total(goals, 4 * need)
    preview = d.preview()
    # 4x the rho halves every margin: margin / target = sqrt(need / total) = 1/2
    assert (preview["rate_moe95"] / [0.10, 0.05]).tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="at least"):
        split_total(goals, need / 2)


def test_rate_goal_by_hand() -> None:
    # R = 0.5, k = 2: Var = sigma^2 (0.25 + 0.25) / n^2, so margin = 1.96 sigma sqrt(0.5) / n
    assert float(expected_rate_moe(2.0, 100, 0.5, 2)) == pytest.approx(1.959964 * 2 * math.sqrt(0.5) / 100)
    goal = TableGoal.for_rate("t", 0.05, 100, 0.5, 2)
    assert goal.required_sigma() == pytest.approx(0.05 * 100 / (1.959964 * math.sqrt(0.5)), rel=1e-6)


def test_mixed_targets_and_weights() -> None:
    target = TableGoal("t", target_moe=10.0)
    d = split_total([target, TableGoal("w1", weight=1.0), TableGoal("w2", weight=4.0)], 1.0)
    assert d.rho[0] == pytest.approx(target.required_rho())
    assert d.rho[2] / d.rho[1] == pytest.approx(2.0)
    assert d.privacy_loss(1e-10).epsilon == pytest.approx(accounting.rho_to_epsilon(1.0, 1e-10))


def test_refusals() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TableGoal("x")
    with pytest.raises(ValueError, match="unique"):
        split_total([TableGoal("x", weight=1.0), TableGoal("x", weight=2.0)], 1.0)
    with pytest.raises(ValueError, match="target margin"):
        minimum_total([TableGoal("x", weight=1.0)])
    with pytest.raises(ValueError, match="leaving nothing"):
        split_total(
            [TableGoal("t", target_moe=10.0), TableGoal("w", weight=1.0)],
            TableGoal("t", target_moe=10.0).required_rho(),
        )
    with pytest.raises(ValueError, match="at least 1"):
        sigma_for_count_moe(0.5)


def test_preview_tells_pure_epsilon_tables_from_gaussian_count_tables() -> None:
    """Growth tables run pure parts (each part's epsilon, no sigma); count tables preview a rate at 100 rows, 50%."""
    from analytics import catalog, privacy

    d = catalog.default_design(0.462)
    p = d.preview().set_index("table")
    growth = p.loc["growth_model"]
    assert growth["epsilon"] == pytest.approx(math.sqrt(2 * growth["rho"] / 3))  # three parts of rho / 3
    assert math.isnan(growth["sigma"]) and math.isnan(growth["rate_moe95"])
    ssn = p.loc["ssn_collection_by_district"]
    assert math.isnan(ssn["epsilon"])
    mech = privacy.CountNoise.for_histogram("zcdp", ssn["rho"], 1, 1)
    assert ssn["sigma"] == pytest.approx(mech.scale)
    # the delta-method preview agrees with the bootstrap margin the release states for such a cell
    assert ssn["rate_moe95"] == pytest.approx(privacy.expected_moe95("rate", mech, 100, rate=0.5), rel=0.1)
