"""Print the 95% margin of error of a count and a two-category rate by epsilon and cell size.

    python -m benchmarks.moe_by_cell_size

Nothing is spent: margins come from the geometric distribution (counts) and the
seeded parametric bootstrap (rates), as in analytics.privacy.expected_moe95.
Tables that read a rate from more categories (ACGR, workforce) carry more noise
per rate; python -m benchmarks.district_margins measures those on a real release.
"""

from __future__ import annotations

from analytics.privacy import expected_moe95

SIZES = (20, 100, 1000)
EPSILONS = (0.1, 0.25, 0.5, 1.0)


def main() -> None:
    print("| epsilon | " + " | ".join(f"{n} students: count ± / rate 50% ± pts / rate 10% ± pts" for n in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for eps in EPSILONS:
        cells = []
        for n in SIZES:
            count = expected_moe95("count", eps, n)
            half = expected_moe95("rate", eps, n, rate=0.5) * 100
            tenth = expected_moe95("rate", eps, n, rate=0.1) * 100
            cells.append(f"{count:.0f} / {half:.1f} / {tenth:.1f}")
        print(f"| {eps:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
