"""The same release's exact work on DuckDB and on local Apache Spark: identical cell for cell.

Runs every table of the catalogue over the bundled sample on both engines with the same seed,
records every exact aggregate the engines hand to the mechanisms (:func:`analytics.exact.recording`)
and compares them (:mod:`benchmarks.engine_parity`, which runs the same comparison on any dataset):
counts must be equal, sums of real values equal to 1e-9 relative (the engines add floats in
different orders). With identical aggregates and the same seeds, every published table must then be
identical too. Spark starts in about 30 s; the test is marked ``spark`` and runs once.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from analytics import config
from benchmarks.engine_parity import Build, build, compare

pytestmark = pytest.mark.spark


def test_spark_and_duckdb_compute_identical_exact_aggregates_and_tables() -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("the Spark engine needs Java 17; .ci/run installs openjdk-17-jre-headless")
        pytest.skip("the Spark engine needs Java 17 (apt-get install openjdk-17-jre-headless)")
    duck = build(config.SAMPLE_DATA_DIR, "duckdb", 6.55, "zcdp")
    spark = build(config.SAMPLE_DATA_DIR, "spark", 6.55, "zcdp")
    result = compare(duck, spark)
    assert result.aggregates > 25 and result.cells > 10_000  # every table reached the engine
    assert len(duck.tables) > 25
    assert result.problems == []


def test_the_comparison_sees_a_changed_count_and_a_changed_table() -> None:
    agg = pd.DataFrame({"cell": ["a", "b"], "n": [3, 4], "s": [1.5, 2.0]})
    table = pd.DataFrame({"cell": ["a"], "value": [0.5]})
    same = Build([agg], {"t": table}, 0.0, 0.0)
    assert compare(same, Build([agg.copy()], {"t": table.copy()}, 0.0, 0.0)).problems == []
    off = compare(same, Build([agg.assign(n=[3, 5])], {"t": table.assign(value=[0.6])}, 0.0, 0.0))
    assert any("column n" in p for p in off.problems) and any("table t" in p for p in off.problems)
    drift = compare(same, Build([agg.assign(s=[1.5, 2.0 + 1e-6])], {"t": table}, 0.0, 0.0))
    assert any("column s" in p for p in drift.problems)
