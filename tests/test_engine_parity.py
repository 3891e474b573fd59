"""The same release's exact work on DuckDB and on local Apache Spark: identical cell for cell.

Runs every table of the catalogue over the bundled sample on both engines with the same seed,
records every exact aggregate the engines hand to the mechanisms (:func:`analytics.exact.recording`)
and compares them: counts must be equal, sums of real values equal to 1e-9 relative (the engines add
floats in different orders). With identical aggregates and the same seeds, every published table
must then be identical too. Spark starts in about 30 s; the test is marked ``spark`` and runs once.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from analytics import config, exact
from analytics.catalog import TABLES, BuildContext, plan_release
from analytics.validate import load_dataset

pytestmark = pytest.mark.spark


def _build(kind: str) -> tuple[list[pd.DataFrame], dict[str, pd.DataFrame]]:
    ds = load_dataset(config.SAMPLE_DATA_DIR)
    plan = plan_release(6.55, "zcdp")
    with BuildContext(ds.source, plan.accounting, plan.levels, engine=kind) as ctx, exact.recording() as log:
        for i, spec in enumerate(TABLES):
            ctx.published[spec.name] = spec.build(ctx, plan.amounts[spec.name], 7000 + i)
        return list(log), dict(ctx.published)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    text = frame.assign(**{c: frame[c].astype(str) for c in keys})
    return text.sort_values(keys).reset_index(drop=True)


def test_spark_and_duckdb_compute_identical_exact_aggregates_and_tables() -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("the Spark engine needs Java 17; .ci/run installs openjdk-17-jre-headless")
        pytest.skip("the Spark engine needs Java 17 (apt-get install openjdk-17-jre-headless)")
    duck_log, duck_tables = _build("duckdb")
    spark_log, spark_tables = _build("spark")
    assert len(duck_log) == len(spark_log) > 25  # every table reached the engine
    for i, (a, b) in enumerate(zip(duck_log, spark_log, strict=True)):
        a, b = _sorted(a), _sorted(b)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), f"aggregate {i}: shapes differ"
        for col in a.columns:
            if pd.api.types.is_float_dtype(a[col]):
                np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-9, err_msg=f"aggregate {i}, {col}")
            else:
                assert a[col].tolist() == b[col].tolist(), f"aggregate {i}, column {col} differs"
    assert set(duck_tables) == set(spark_tables)
    for name, table in duck_tables.items():
        pd.testing.assert_frame_equal(
            table.reset_index(drop=True), spark_tables[name].reset_index(drop=True), check_dtype=False, obj=name
        )
