"""How pages write a rate: unbiased noisy figures outside 0-100% are kept and said to be noise."""

from __future__ import annotations

import math

from pages.common import pct


def test_rates_inside_the_range_read_plainly_and_outside_it_say_why() -> None:
    assert pct(0.848) == "84.8%" and pct(1.0) == "100.0%" and pct(0.0) == "0.0%"
    assert pct(1.343) == "134.3% (over 100%: noise)"
    assert pct(-0.05) == "-5.0% (below 0%: noise)"
    assert pct(math.nan) == "—"


def test_a_rate_trend_keeps_0_to_100_and_widens_only_to_show_a_noisy_figure_outside_it() -> None:
    import pandas as pd

    from pages.common import trend

    def rows(values: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {"cohort": [2019, 2020, 2021], "series": "D", "value": values, "value_moe95": 0.05, "flag": "reliable"}
        )

    inside = trend(rows([0.8, 0.9, 0.85]), "cohort", "series", "rate (%)", True, "Cohort")
    assert list(inside.layout.yaxis.range) == [0.0, 100.0]
    noisy = trend(rows([0.8, 1.101, -0.02]), "cohort", "series", "rate (%)", True, "Cohort")
    low, high = noisy.layout.yaxis.range
    assert high >= 110.1 and low <= -2.0  # the 110.1% and -2% dots are on the chart
