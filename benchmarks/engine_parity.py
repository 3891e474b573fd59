"""The same release on DuckDB and on Spark, compared cell for cell.

    python -m benchmarks.engine_parity [--data DIR] [--spark-master local[2]] [--accounting zcdp]

Builds every table of the catalogue over the dataset in ``--data`` (default: the bundled sample)
on DuckDB and then on Spark, with the same plan and the same seeds, and records every exact
aggregate each engine hands to the mechanisms (:func:`analytics.exact.recording`). Prints, per
engine, the build's wall and CPU seconds (this process; Spark's JVM is a child whose CPU is read
from ``/proc``), and then the comparison: aggregates compared, cells compared, counts that differ,
the largest relative difference of a real-valued sum, and published tables that differ. Exits 1
when anything differs. ``tests/test_engine_parity.py`` runs the same comparison on the sample.

Counts must be equal; sums of real values are compared to 1e-9 relative (the engines add floats in
different orders). With identical aggregates and the same seeds the published tables are identical.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import config, exact
from analytics.catalog import TABLES, BuildContext, plan_release
from analytics.validate import load_dataset

RTOL = 1e-9


@dataclass
class Build:
    """One engine's build: every exact aggregate, every published table, and its cost."""

    aggregates: list[pd.DataFrame]
    tables: dict[str, pd.DataFrame]
    wall_s: float
    cpu_s: float


@dataclass
class Comparison:
    """How two builds differ: counts of what was compared and of what differed."""

    aggregates: int = 0
    cells: int = 0
    worst_relative: float = 0.0
    problems: list[str] = field(default_factory=list)


def _children_cpu() -> float:
    """CPU seconds of this process's live children (a Spark JVM is not waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def build(data: Path, kind: str, budget: float, accounting: str, master: str | None = None) -> Build:
    """Every catalogue table over ``data`` on engine ``kind`` ('duckdb' or 'spark'), seeds 7000 + i."""
    if master:
        os.environ["ANALYTICS_SPARK_MASTER"] = master
    ds = load_dataset(data)
    plan = plan_release(budget, accounting)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    with BuildContext(ds.source, plan.accounting, plan.levels, engine=kind) as ctx, exact.recording() as log:
        for i, spec in enumerate(TABLES):
            ctx.published[spec.name] = spec.build(ctx, plan.amounts[spec.name], 7000 + i)
        jvm = _children_cpu()
        tables = dict(ctx.published)
    return Build(list(log), tables, time.perf_counter() - start_wall, time.process_time() - start_cpu + jvm)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    text = frame.assign(**{c: frame[c].astype(str) for c in keys})
    return text.sort_values(keys).reset_index(drop=True)


def compare(a: Build, b: Build) -> Comparison:
    """Aggregates of ``a`` and ``b`` in order: counts equal, real sums to RTOL; tables identical."""
    out = Comparison()
    if len(a.aggregates) != len(b.aggregates):
        out.problems.append(f"{len(a.aggregates)} aggregates against {len(b.aggregates)}")
    for i, (x, y) in enumerate(zip(a.aggregates, b.aggregates, strict=False)):
        out.aggregates += 1
        x, y = _sorted(x), _sorted(y)
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            out.problems.append(f"aggregate {i}: shapes differ ({x.shape} against {y.shape})")
            continue
        out.cells += x.size
        for col in x.columns:
            if pd.api.types.is_float_dtype(x[col]):
                u, v = x[col].to_numpy(float), y[col].to_numpy(float)
                both = ~(np.isnan(u) | np.isnan(v))
                if not np.array_equal(np.isnan(u), np.isnan(v)):
                    out.problems.append(f"aggregate {i}, column {col}: missing values differ")
                scale = np.maximum(np.abs(u[both]), 1.0)
                worst = float(np.max(np.abs(u[both] - v[both]) / scale, initial=0.0))
                out.worst_relative = max(out.worst_relative, worst)
                if worst > RTOL:
                    out.problems.append(f"aggregate {i}, column {col}: relative difference {worst:.2e}")
            elif x[col].tolist() != y[col].tolist():
                out.problems.append(f"aggregate {i}, column {col}: values differ")
    if set(a.tables) != set(b.tables):
        out.problems.append("the engines published different tables")
    for name in sorted(set(a.tables) & set(b.tables)):
        try:
            pd.testing.assert_frame_equal(
                a.tables[name].reset_index(drop=True), b.tables[name].reset_index(drop=True), check_dtype=False
            )
        except AssertionError:
            out.problems.append(f"published table {name} differs")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.SAMPLE_DATA_DIR)
    parser.add_argument("--spark-master", default=None, help="default: ANALYTICS_SPARK_MASTER, else local[2]")
    parser.add_argument("--budget", type=float, default=6.55, help="total epsilon at delta=1e-10")
    parser.add_argument("--accounting", choices=["epsilon", "zcdp"], default="zcdp")
    args = parser.parse_args(argv)
    builds = {}
    for kind in ("duckdb", "spark"):
        note = " (starting Spark and building every table takes minutes)" if kind == "spark" else ""
        print(f"building on {kind}{note}...", flush=True)
        builds[kind] = build(args.data, kind, args.budget, args.accounting, args.spark_master)
        b = builds[kind]
        cost = f"{b.wall_s:8.1f} s wall {b.cpu_s:8.1f} s CPU"
        print(f"{kind:7s} build: {cost}, {len(b.aggregates)} aggregates", flush=True)
    result = compare(builds["duckdb"], builds["spark"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this Python process: {peak:,.0f} MiB (Spark's JVM not included)")
    print(
        f"{'PASS' if not result.problems else 'FAIL'}: compared {result.aggregates:,} aggregates, "
        f"{result.cells:,} cells, {len(builds['duckdb'].tables):,} published tables; largest relative "
        f"difference of a sum {result.worst_relative:.1e}; {len(result.problems):,} differences"
    )
    for line in result.problems:
        print("  " + line)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
