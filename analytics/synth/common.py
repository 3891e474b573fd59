"""Calendar, sampling helpers and deterministic writing shared by the generator's parts."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analytics import schema
from analytics.config import REFERENCE_DIR

GENERATOR_VERSION = "1.1.0"

# ---------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------
#: Cohorts are named by the spring school year of first-time grade 9.
COHORTS: tuple[int, ...] = tuple(range(2011, 2022))
#: Last school year (2024-25) and last calendar year of wage and college data.
LAST_SCHOOL_YEAR = 2025
LAST_DATA_YEAR = 2025
#: Earnings are planted in dollars of this year and converted with CPI-U.
DOLLAR_YEAR = 2024
#: Years of schooling tracked per student: K (step 0) .. 5th high-school year.
N_STEPS = 15

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
}
COUNTIES: tuple[str, ...] = tuple(schema.MAINE_COUNTIES)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1): the index of the category."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1]) * cum[..., -1]
    return np.minimum((u[..., None] >= cum).sum(axis=-1), probs.shape[-1] - 1)


def pick(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(w), size=size, p=w / w.sum())


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def contract_table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    spec = schema.table(name)
    written = tuple(c for c in spec.columns if c.required or c.name in columns)  # optional columns may be left out
    if tuple(columns) != tuple(c.name for c in written):  # pragma: no cover - programming error
        raise RuntimeError(f"{name}: columns {tuple(columns)} differ from the contract {spec.column_names}")
    arrays = [columns[c.name].cast(_ARROW_TYPES[c.dtype]) for c in written]
    fields = [pa.field(c.name, _ARROW_TYPES[c.dtype], nullable=c.nullable) for c in written]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def parquet_writer(path: Path, schema_: pa.Schema) -> pq.ParquetWriter:
    """A deterministic writer: fixed compression; the tables written to it carry no metadata."""
    return pq.ParquetWriter(path, schema_.remove_metadata(), compression="zstd", compression_level=3)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write deterministically: fixed compression, no pandas or time metadata (one :func:`parquet_writer` write)."""
    table = table.replace_schema_metadata(None)
    with parquet_writer(path, table.schema) as writer:
        writer.write_table(table)


def take(values: np.ndarray | Sequence[str], idx: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values)).take(pa.array(np.asarray(idx, dtype=np.int64)))


def read_cpi() -> dict[int, float]:
    with (REFERENCE_DIR / "cpi_u_annual.csv").open(newline="", encoding="utf-8") as fh:
        return {int(row["year"]): float(row["cpi_u_annual_avg"]) for row in csv.DictReader(fh)}
