"""How pages write a rate: unbiased noisy figures outside 0-100% are kept and said to be noise."""

from __future__ import annotations

import math

from pages.common import pct


def test_rates_inside_the_range_read_plainly_and_outside_it_say_why() -> None:
    assert pct(0.848) == "84.8%" and pct(1.0) == "100.0%" and pct(0.0) == "0.0%"
    assert pct(1.343) == "134.3% (over 100%: noise)"
    assert pct(-0.05) == "-5.0% (below 0%: noise)"
    assert pct(math.nan) == "—"
