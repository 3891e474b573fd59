"""zCDP arithmetic against its definitions and OpenDP's own conversion."""

from __future__ import annotations

import math

import pytest

from analytics import accounting


def test_gaussian_rho_and_composition() -> None:
    assert accounting.gaussian_rho(1.0, 2.0) == 2.0
    assert accounting.compose_rho([accounting.gaussian_rho(2.0)] * 4) == pytest.approx(0.5)
    assert accounting.pure_epsilon_to_rho(1.0) == 0.5
    with pytest.raises(ValueError, match="rho"):
        accounting.compose_rho([0.1, -0.1])
    with pytest.raises(ValueError, match="sigma"):
        accounting.gaussian_rho(0.0)


@pytest.mark.parametrize("rho", [1e-5, 0.003, 0.05, 0.462, 1.0, 8.0])
@pytest.mark.parametrize("delta", [1e-10, 1e-6, 1e-3])
def test_cks20_conversion_matches_opendp_and_beats_bun_steinke(rho: float, delta: float) -> None:
    ours = accounting.rho_to_epsilon(rho, delta)
    assert ours == pytest.approx(accounting.opendp_rho_to_epsilon(rho, delta), rel=1e-7)
    assert ours <= accounting.rho_to_epsilon_bun_steinke(rho, delta) + 1e-12
    # and the delta it implies at that epsilon is the delta asked for
    assert accounting.rho_to_delta(rho, ours) == pytest.approx(delta, rel=1e-5)


def test_epsilon_to_rho_inverts_and_is_monotone() -> None:
    rho = accounting.epsilon_to_rho(6.55, 1e-10)
    assert accounting.rho_to_epsilon(rho, 1e-10) == pytest.approx(6.55, abs=1e-9)
    assert accounting.epsilon_to_rho(3.0, 1e-10) < rho < accounting.epsilon_to_rho(6.55, 1e-6)
    # hand check of the classic bound at the same rho: rho + 2 sqrt(rho ln 1e10) is larger
    assert rho + 2 * math.sqrt(rho * math.log(1e10)) > 6.55


def test_rho_to_delta_is_decreasing_in_epsilon() -> None:
    deltas = [accounting.rho_to_delta(0.1, e) for e in (0.5, 1.0, 2.0, 4.0)]
    assert deltas == sorted(deltas, reverse=True)
    assert accounting.rho_to_delta(0.1, 0.0) <= 1.0


def test_privacy_loss_states_rho_epsilon_and_delta() -> None:
    loss = accounting.PrivacyLoss.from_rhos([0.2, 0.262], delta=1e-10)
    assert loss.rho == pytest.approx(0.462)
    assert loss.epsilon == pytest.approx(accounting.rho_to_epsilon(0.462, 1e-10))
    assert "Canonne" in loss.conversion


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="delta"):
        accounting.rho_to_epsilon(0.1, 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        accounting.epsilon_to_rho(0.0, 1e-10)
