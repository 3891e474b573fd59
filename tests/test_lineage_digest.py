"""The extract's content digest: order-free, content-only, and the same as its first definition.

Ledgers and anchors written before name extracts by this digest under the steward's key, so
the digest of every extract must stay what ``slds-extract-v1`` defined: per table, the row
count and the 128-bit sums of ``md5_number_upper`` and ``md5_number_lower`` of each row's text.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from analytics import config, schema
from analytics.lineage import content_digest
from analytics.validate import load_dataset


def _first_definition(source) -> bytes:
    digest = hashlib.sha256(b"slds-extract-v1")
    for name in sorted(schema.TABLE_NAMES):
        columns = sorted(schema.table(name).column_names)
        text = ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '\\N')" for c in columns)
        row = source.sql(
            f"SELECT count(*) AS n, sum(md5_number_upper(t)::HUGEINT)::VARCHAR AS hi, "
            f"sum(md5_number_lower(t)::HUGEINT)::VARCHAR AS lo "
            f"FROM (SELECT concat_ws(chr(31), {text}) AS t FROM {name})"
        ).iloc[0]
        digest.update(f"{name}|{','.join(columns)}|{int(row['n'])}|{row['hi']}|{row['lo']}\n".encode())
    cfg = source.extract
    years = (cfg.last_school_year, cfg.last_wage_year, cfg.last_postsecondary_year)
    scales = sorted((s, g, lo, hi) for (s, g), (lo, hi) in cfg.score_scales.items())
    digest.update(f"extract|{years}|{scales}\n".encode())
    return digest.digest()


def test_digest_is_the_first_definition_so_existing_extracts_keep_their_identity() -> None:
    source = load_dataset(config.SAMPLE_DATA_DIR).source
    assert content_digest(source) == _first_definition(source)


def test_digest_ignores_row_order_and_sees_one_changed_value(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DATA_DIR, data)
    before = content_digest(load_dataset(data).source)
    path = data / "wages.parquet"
    table = pq.read_table(path)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), path)
    assert content_digest(load_dataset(data).source) == before
    frame = table.to_pandas()
    frame.loc[0, "quarter"] = 2 if frame.loc[0, "quarter"] != 2 else 3
    frame.to_parquet(path, index=False)
    assert content_digest(load_dataset(data).source) != before
