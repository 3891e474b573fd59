"""Print the 95% margin of error of each release table at its default epsilon, by cell size.

    python -m benchmarks.moe_by_cell_size

Nothing is spent: margins come from the mechanisms' distributions (counts) and
the seeded parametric bootstrap (rates), as in analytics.privacy.expected_moe95.
"""

from __future__ import annotations

from analytics.privacy import expected_moe95
from analytics.release import DEFAULT_RELEASE_EPSILON, split_epsilon

SIZES = (20, 100, 1000)


def main() -> None:
    split = split_epsilon(DEFAULT_RELEASE_EPSILON)
    print(f"Default release epsilon {DEFAULT_RELEASE_EPSILON:g}, split: {split}")
    header = "| table | epsilon | " + " | ".join(
        f"n={n}: count ± / rate 50% ± pts / rate 10% ± pts" for n in SIZES) + " |"
    print(header)
    print("|---|---|" + "---|" * len(SIZES))
    for name, eps in split.items():
        cells = []
        for n in SIZES:
            count = expected_moe95("count", eps, n)
            half = expected_moe95("rate", eps, n, rate=0.5) * 100
            tenth = expected_moe95("rate", eps, n, rate=0.1) * 100
            cells.append(f"{count:.0f} / {half:.1f} / {tenth:.1f}")
        print(f"| {name} | {eps:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
