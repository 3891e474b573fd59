"""Hostile cases found by review of the engine work: what must never reach disk, ties, domains, settings.

Each test failed before its fix: refused values written into the on-disk dataset database; kept
rows depending on row order when an identity repeats; long public lists matching values IN would
not; a Spark master misspelt; a memory default above a container's limit; a refused key shown
in part.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics import exact, validate
from analytics.engine import execute

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
SSN = "078-05-1120"


def test_refused_ssn_never_reaches_the_database_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing enters the database (a file, for a large extract) before every check has passed."""
    data = tmp_path / "ds"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("truth"))
    wages = data / "wages.parquet"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{wages}')")
    con.execute(f"UPDATE t SET naics2 = '{SSN}' WHERE rowid < 2")
    wages.unlink()
    con.execute(f"COPY t TO '{wages}' (FORMAT parquet)")
    monkeypatch.setitem(validate.open_database.__globals__, "ON_DISK_ABOVE_BYTES", 0)  # as a > 16 MiB extract
    seen: list[str] = []
    checked = validate._Checker.check_relationships

    def spy(self: validate._Checker) -> None:
        folder = Path(self.con.execute("PRAGMA database_list").fetchall()[0][2]).parent
        seen.extend(p.name for p in folder.rglob("*") if p.is_file() and SSN.encode() in p.read_bytes())
        checked(self)

    monkeypatch.setattr(validate._Checker, "check_relationships", spy)
    assert not validate.validate_dataset(data).ok
    assert seen == [], f"refused SSN values written to {seen}"


def test_bound_by_identity_is_order_free_when_an_identity_repeats() -> None:
    """Kept rows must depend only on the student's rows, not on their order (ties on a repeated or NULL identity)."""
    rows = pd.DataFrame(
        {
            "student_key": ["a", "a", "b", "b"],
            "school_year": [2019, 2019, None, None],
            "subject": ["math", "math", "ela", "ela"],
            "score": [300.0, 600.0, 310.0, 610.0],
        }
    )
    kept = {
        tuple(
            sorted(
                execute(exact.bound(rows.sample(frac=1, random_state=s), 1, identity=("school_year", "subject")))[
                    "score"
                ]
            )
        )
        for s in range(20)
    }
    assert len(kept) == 1, kept


def _padded(short: list[object], filler: object) -> list[object]:
    return short + [filler(i) for i in range(getattr(exact, "_INLINE_VALUES", 16) + 4)]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("frame", "short", "filler"),
    [
        (pd.DataFrame({"k": [2015, 2016]}), [2015.6], lambda i: 3000.5 + i),
        (
            pd.DataFrame({"k": pd.to_datetime(["2020-01-01", "2020-01-02"]).date}),
            [pd.Timestamp("2020-01-01 12:00")],
            lambda i: pd.Timestamp("1990-01-01") + pd.Timedelta(days=i),
        ),
    ],
    ids=["fractional-float-on-int", "timestamp-on-date"],
)
def test_semi_joined_list_drops_what_in_drops(frame: pd.DataFrame, short: list[object], filler: object) -> None:
    inline = execute(exact._in_domain(exact.as_relation(frame), {"k": short}))
    joined = execute(exact._in_domain(exact.as_relation(frame), {"k": _padded(short, filler)}))
    assert sorted(map(str, joined["k"])) == sorted(map(str, inline["k"]))


def test_histogram_over_a_long_timestamp_list_on_a_date_column_does_not_fail() -> None:
    rows = pd.DataFrame(
        {"student_key": ["s1", "s2"], "k": pd.to_datetime(["2020-01-01", "2020-01-02"]).date, "c": ["a", "a"]}
    )
    listed = _padded([pd.Timestamp("2020-01-01 12:00")], lambda i: pd.Timestamp("1990-01-01") + pd.Timedelta(days=i))
    out = exact.histogram(rows, {"k": listed}, "c", ["a"], max_rows=5)  # the inline IN path returns zeros
    assert int(out["n"].sum()) == 0


def test_an_identity_must_name_columns() -> None:
    with pytest.raises(ValueError, match="identity is empty"):
        exact.bound(pd.DataFrame({"student_key": ["a"], "v": [1]}), 1, identity=())


def test_a_misspelt_spark_master_is_named_before_java_starts() -> None:
    from analytics.engine import EngineError, check_master

    for good in ("local", "local[2]", "local[*]", "local[4,3]", "spark://h:7077", "yarn", "k8s://https://h:6443"):
        assert check_master(good) == good
    with pytest.raises(EngineError, match="is not a Spark master URL: use local"):
        check_master("sprk://x:7077")


def test_spark_master_without_the_spark_engine_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from analytics.cli import main

    code = main(["release", str(SAMPLE), "--user", "nobody", "--spark-master", "local[1]", "--engine", "duckdb"])
    assert code == 1 and "--spark-master is for the Spark engine" in capsys.readouterr().err


def test_memory_default_respects_a_container_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from analytics import io

    limit = tmp_path / "memory.max"
    limit.write_text(str(2 * 2**30))  # a 2 GiB container on a big host
    monkeypatch.setattr(io, "CGROUP_MEMORY_FILES", (str(limit),))
    assert io.default_memory_limit(10**9) == "1024MIB"
    limit.write_text("max")
    assert io.container_memory() is None


def test_a_key_the_gate_would_refuse_is_never_shown_even_in_part() -> None:
    from analytics.pii import mask_value

    assert mask_value("1990-04-12") == "(withheld)" and mask_value(SSN) == "(withheld)"
    assert mask_value("K3F9A2B7C1") == "K3********"


def test_a_cached_in_memory_relation_lands_in_the_engine_that_cached_it() -> None:
    """Ibis's own ``cache()`` puts a relation of in-memory tables in its default DuckDB; on Spark that
    would have run the growth model's lookups outside the cluster. Engine.cache uses its own backend."""
    import ibis
    import pyarrow as pa

    from analytics.engine import Engine, duckdb_backend

    engine = Engine(duckdb_backend(duckdb.connect()), "duckdb", ())
    try:
        cached = engine.cache(ibis.memtable(pa.table({"a": [1, 2, 3]})))
        tables = engine.backend.con.sql("SELECT table_name FROM duckdb_tables()").fetchall()
        assert (cached.op().name,) in tables
        assert execute(cached.aggregate(n=cached.count()))["n"].iloc[0] == 3
    finally:
        engine.close()
