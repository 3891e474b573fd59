"""Rates from consistent counts: no estimate for empty cells, unbiased large cells, measured small-cell bias."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.estimation.rates import NO_ESTIMATE_REASON, bias_by_size_band, linearised_rates, rate_estimates


def _simulate(n: np.ndarray, p: float, sigma: float, reps: int, seed: int, categories: int = 4):
    """Unbiased noisy numerator and denominator: numerator one cell, the rest categories-1 cells."""
    rng = np.random.default_rng(seed)
    num_true = np.round(n * p)
    e_num = rng.normal(0, sigma, (reps, len(n)))
    e_rest = rng.normal(0, sigma * np.sqrt(categories - 1), (reps, len(n)))
    num = num_true + e_num
    den = n + e_num + e_rest
    v_n = np.full(len(n), sigma**2)
    v_d = np.full(len(n), categories * sigma**2)
    return num_true / np.where(n > 0, n, 1), num, den, v_n, v_d


def test_an_empty_cell_gets_no_estimate_with_a_reason() -> None:
    _, num, den, v_n, v_d = _simulate(np.zeros(2000), 0.5, 2.0, 1, 0)
    out = rate_estimates(num[0], den[0], v_n, v_d)
    # an empty cell's denominator exceeds 1.96 sd only by chance: about 2.5% of the time
    assert out["published"].mean() < 0.04
    assert set(out.loc[~out["published"], "reason"]) == {NO_ESTIMATE_REASON}
    assert out.loc[~out["published"], "rate"].isna().all()


def test_large_cells_are_unbiased_and_their_delta_margins_cover() -> None:
    n = np.full(400, 200.0)
    truth, num, den, v_n, v_d = _simulate(n, 0.88, 3.0, 50, 1)
    rates, covered = [], []
    for r in range(num.shape[0]):
        out = rate_estimates(num[r], den[r], v_n, v_d)
        assert out["published"].all()
        rates.append(out["rate"].to_numpy())
        covered.append(((out["lower"] <= truth) & (truth <= out["upper"])).to_numpy())
    rates = np.array(rates)
    sd = np.sqrt((3.0**2 * ((1 - 0.88) ** 2 + 0.88**2 * 3)) / 200**2)
    # bias below 4 standard errors of the mean of 20,000 estimates
    assert abs(rates.mean() - 0.88) < 4 * sd / np.sqrt(rates.size)
    # coverage of 20,000 intervals: 95% within 4 binomial s.e.
    assert abs(np.mean(covered) - 0.95) < 4 * np.sqrt(0.95 * 0.05 / rates.size)


def test_bias_correction_removes_the_second_order_ratio_bias() -> None:
    n = np.full(20_000, 40.0)
    truth, num, den, v_n, v_d = _simulate(n, 0.88, 3.0, 1, 2)
    r = truth[0]  # 35 / 40
    plain = rate_estimates(num[0], den[0], v_n, v_d, bias_correction=False)["rate"].mean()
    corrected = rate_estimates(num[0], den[0], v_n, v_d)["rate"].mean()
    predicted = (r * v_d[0] - v_n[0]) / 40.0**2  # (R v_D - c) / D^2
    assert plain - r == pytest.approx(predicted, abs=0.004)
    assert abs(corrected - r) < abs(plain - r) / 3


def test_clipping_the_point_at_one_biases_rates_near_one() -> None:
    n = np.full(20_000, 40.0)
    _, num, den, v_n, v_d = _simulate(n, 0.95, 3.0, 1, 3)
    free = rate_estimates(num[0], den[0], v_n, v_d)
    clipped = rate_estimates(num[0], den[0], v_n, v_d, clip=True)
    pub = free["published"]
    assert (free.loc[pub, "upper"] <= 1).all() and (free.loc[pub, "lower"] >= 0).all()
    assert clipped.loc[pub, "rate"].mean() < free.loc[pub, "rate"].mean() - 0.01


def test_remaining_bias_by_cell_size_band_is_measured() -> None:
    """Selection (a cell is published when its denominator came out high) biases small cells down.

    At noise sigma 2 per category cell and a true rate of 88%, measured here: the bias shrinks with
    cell size and is within 2 points from 15 students up, which the published table states.
    """
    sizes = np.repeat([2, 7, 12, 30, 100], 4000).astype(float)
    truth, num, den, v_n, v_d = _simulate(sizes, 0.88, 2.0, 1, 4)
    out = rate_estimates(num[0], den[0], v_n, v_d)
    table = bias_by_size_band(sizes, truth, out["rate"].to_numpy(), out["lower"], out["upper"])
    bias = dict(zip(table["band"], table["bias_points"], strict=True))
    assert abs(bias["15-59"]) < 2 and abs(bias["60+"]) < 0.5
    assert bias["1-4"] < bias["5-9"] < bias["10-14"] < 0  # measured, not hidden
    published = dict(zip(table["band"], table["published"], strict=True))
    assert published["1-4"] < published["60+"]


def test_linearised_rates_have_zero_mean_noise_whatever_the_cell_size() -> None:
    sizes = np.repeat([3.0, 8.0], 20_000)
    truth, num, den, v_n, v_d = _simulate(sizes, 0.88, 3.0, 1, 5)
    rate, var = linearised_rates(num[0], den[0], v_n, v_d, np.full(len(sizes), 0.85), sizes)
    for size in (3.0, 8.0):
        sel = sizes == size
        assert abs(rate[sel].mean() - truth[sel].mean()) < 4 * np.sqrt(var[sel].mean() / sel.sum())
        assert rate[sel].var() == pytest.approx(var[sel].mean(), rel=0.05)
    with pytest.raises(ValueError, match="reference"):
        linearised_rates(num[0][:1], den[0][:1], v_n[:1], v_d[:1], np.array([0.5]), np.array([0.0]))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        rate_estimates(np.ones(2), np.ones(3), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="variances"):
        rate_estimates(np.ones(2), np.ones(2), -np.ones(2), np.ones(2))
