"""The query engine that does the exact work: DuckDB embedded by default, Apache Spark for larger states.

Every metric is one relational definition (SQL in the DuckDB dialect, or an Ibis
expression) that Ibis runs on the configured engine; SQL is translated for Spark
by sqlglot inside Ibis. Python receives only aggregated cells
(:mod:`analytics.exact`), then adds noise and post-processes.

Engines (``ANALYTICS_ENGINE`` or the ``--engine`` option of ``release`` and ``query``):

- ``duckdb`` (default): runs in this process on the connection that validation
  loaded, with a memory limit and a spill folder, so datasets larger than memory work.
- ``spark``: PySpark, local mode on one machine (``local[2]``) or any cluster given
  its master URL (``ANALYTICS_SPARK_MASTER``). The validated tables are staged as
  typed Parquet in ``ANALYTICS_SPARK_STAGING`` (default: a private temporary
  folder; on a cluster give a folder every executor can read) and deleted after the build.

Library versions that work together (checked in CI): ibis-framework 12.0.0, sqlglot
29.0.0, duckdb 2.0.1, pyspark 4.0.5 on Java 17. docs/scale.md tells a state how to run
a release on its cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import os
import re
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.schema as sch
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends.duckdb import Backend as _IbisDuckDB

from analytics.io import duckdb_size, private_folder

ENGINES: tuple[str, ...] = ("duckdb", "spark")
#: The SQL dialect metric definitions are written in.
DIALECT = "duckdb"


class EngineError(RuntimeError):
    """The engine could not be started or configured (a sentence naming the setting to fix)."""


@dataclass(frozen=True)
class EngineConfig:
    """Which engine runs the exact work, and its settings.

    ``kind`` is ``'duckdb'`` or ``'spark'``; ``spark_master`` a Spark master URL
    (``local[2]``, ``spark://host:7077``, ``yarn``); ``spark_staging`` the folder
    where validated tables are written as Parquet for Spark to read;
    ``duckdb_memory_limit`` DuckDB's memory limit for this build (e.g. ``'3GB'``; default: the
    dataset database's, :func:`analytics.io.default_memory_limit`).
    """

    kind: str = "duckdb"
    spark_master: str = "local[2]"
    spark_staging: Path | None = None
    duckdb_memory_limit: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise EngineError(f"unknown engine {self.kind!r}: choose one of {', '.join(ENGINES)}")

    @classmethod
    def from_env(cls) -> EngineConfig:
        """The engine named by ``ANALYTICS_ENGINE`` (default duckdb) and its ``ANALYTICS_*`` settings."""
        staging = os.environ.get("ANALYTICS_SPARK_STAGING")
        return cls(
            kind=os.environ.get("ANALYTICS_ENGINE", "duckdb").strip().lower() or "duckdb",
            spark_master=os.environ.get("ANALYTICS_SPARK_MASTER", "local[2]"),
            spark_staging=Path(staging) if staging else None,
            duckdb_memory_limit=os.environ.get("ANALYTICS_DUCKDB_MEMORY") or None,
        )

    @classmethod
    def of(cls, value: EngineConfig | str | None) -> EngineConfig:
        """Normalise an engine argument: a config, an engine name, or None (the environment's)."""
        if isinstance(value, EngineConfig):
            return value
        if value is None:
            return cls.from_env()
        return dataclasses.replace(cls.from_env(), kind=str(value).strip().lower())


class _DuckDBBackend(_IbisDuckDB):
    """Ibis's DuckDB backend with the schema look-ups that duckdb 2.0 renamed.

    ibis-framework 12.0.0 reads query results with ``fetch_arrow_table``, which
    duckdb 2.0 renamed ``to_arrow_table``; the two methods Ibis needs to learn a
    table's or a query's schema are repeated here with the new name.
    """

    def _describe(self, query: str) -> sch.Schema:
        meta = self.con.sql(query).to_arrow_table().to_pydict()  # the connection itself: it sees temp tables
        mapper = self.compiler.type_mapper
        return sch.Schema(
            {
                name: mapper.from_string(typ, nullable=null == "YES")
                for name, typ, null in zip(meta["column_name"], meta["column_type"], meta["null"], strict=True)
            }
        )

    def _get_schema_using_query(self, query: str) -> sch.Schema:
        return self._describe(f"DESCRIBE {query}")

    def get_schema(self, table_name: str, *, catalog: str | None = None, database: str | None = None) -> sch.Schema:
        import sqlglot as sg
        import sqlglot.expressions as sge

        query = sge.Describe(this=sg.table(table_name, db=database, catalog=catalog, quoted=self.compiler.quoted)).sql(
            self.dialect
        )
        try:
            return self._describe(query)
        except duckdb.CatalogException:
            import ibis.common.exceptions as exc

            raise exc.TableNotFound(table_name) from None


def duckdb_backend(con: duckdb.DuckDBPyConnection | None = None) -> Any:
    """An Ibis DuckDB backend over ``con`` (a new in-memory database when None), with no progress bar."""
    con = con if con is not None else duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    return _DuckDBBackend.from_connection(con)


@functools.lru_cache(maxsize=1)
def _scratch() -> Any:
    """A private in-memory DuckDB for small frames handed over by callers (tests, one-off tables)."""
    return duckdb_backend()


class Engine:
    """A running engine over one validated dataset's contract tables.

    Implements :class:`analytics.io.DataSource` (``tables()``, ``sql()`` returning
    pandas) for small look-ups, and adds lazy relations: :meth:`relation` (SQL in
    the DuckDB dialect), :meth:`table`, :meth:`cache` and :meth:`execute`.
    """

    def __init__(self, backend: Any, kind: str, table_names: Sequence[str], cleanup: Path | None = None) -> None:
        self.backend = backend
        self.kind = kind
        self._tables = tuple(table_names)
        self._cleanup = cleanup
        self._cached: list[ir.Table] = []
        #: The dataset's resolved extract configuration, when built from a loaded dataset.
        self.extract: Any = None

    # --- construction -----------------------------------------------------------------

    @classmethod
    def for_source(cls, source: Any, config: EngineConfig | str | None = None) -> Engine:
        """The engine for a loaded dataset (:class:`analytics.io.DuckDBSource`).

        DuckDB reuses the validated connection; Spark stages the typed tables as
        Parquet and reads them. Raises :class:`EngineError` when Spark cannot start.
        """
        if isinstance(source, Engine):
            return source
        cfg = EngineConfig.of(config)
        con = source.connection
        if cfg.kind == "duckdb":
            if cfg.duckdb_memory_limit:
                con.execute(f"SET memory_limit = '{duckdb_size(cfg.duckdb_memory_limit)}'")
            engine = cls(duckdb_backend(con), "duckdb", source.tables())
        else:
            engine = _spark_engine(con, source.tables(), cfg)
        engine.extract = getattr(source, "extract", None)
        return engine

    # --- DataSource -------------------------------------------------------------------

    def tables(self) -> tuple[str, ...]:
        return self._tables

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a read-only query (DuckDB dialect) and return its (small) result as pandas."""
        if params:
            raise ValueError("Engine.sql takes no parameters: build the relation with literals from public lists")
        return self.execute(self.relation(query))

    # --- relations --------------------------------------------------------------------

    def relation(self, query: str) -> ir.Table:
        """A lazy relation defined by SQL in the DuckDB dialect (translated by Ibis for other engines)."""
        return self.backend.sql(query, dialect=DIALECT)

    def table(self, name: str) -> ir.Table:
        return self.backend.table(name)

    def rows(self, data: pd.DataFrame | ir.Table) -> ir.Table:
        """``data`` as a relation of this engine (a pandas frame is uploaded; use for small frames only)."""
        if isinstance(data, ir.Table):
            return data
        return self.backend.create_table(_temp_name(), data, temp=self.kind == "duckdb")

    def cache(self, expr: ir.Table) -> ir.Table:
        """Materialise ``expr`` inside the engine (a temporary table; cached and spilled by the engine)."""
        if self.kind == "spark":
            # Ibis 12's PySpark backend caches without registering the expression's in-memory
            # tables (its create_table and execute do): register them first, as they do.
            self.backend._run_pre_execute_hooks(expr)
        # this engine's backend, not the one Ibis would find: a relation made only of in-memory
        # tables has no backend of its own, and ``expr.cache()`` would put it in Ibis's default DuckDB
        cached = self.backend._cached_table(expr)
        self._cached.append(cached)
        return cached

    def execute(self, expr: ir.Expr) -> pd.DataFrame:
        """Run ``expr`` and return its result; call only on aggregated (small) relations."""
        return _to_pandas(self.backend, expr)

    def release_cache(self) -> None:
        """Drop what :meth:`cache` materialised (the build is over)."""
        for cached in self._cached:
            with contextlib.suppress(Exception):  # a cache the engine already dropped
                cached.release()
        self._cached.clear()

    def close(self) -> None:
        """Release caches and, for Spark, delete the staged Parquet (the session stays for reuse)."""
        self.release_cache()
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None


def engine_of(source: Any) -> Engine:
    """The engine of a data source: an :class:`Engine` as it is; a DuckDB source's own (made once, DuckDB)."""
    if isinstance(source, Engine):
        return source
    engine = getattr(source, "_analytics_engine", None)
    if engine is None:
        engine = Engine.for_source(source, EngineConfig())
        source._analytics_engine = engine
    return engine


_counter = iter(range(1 << 62))


def _temp_name() -> str:
    return f"analytics_rows_{os.getpid()}_{next(_counter)}"


def scratch_engine() -> Engine:
    """An engine over a private in-memory DuckDB, for relations built from pandas frames."""
    return Engine(_scratch(), "duckdb", ())


def as_relation(rows: pd.DataFrame | ir.Table) -> ir.Table:
    """A relation for ``rows``: an Ibis table as it is, a pandas frame as an in-memory table."""
    if isinstance(rows, ir.Table):
        return rows
    # through Arrow: Ibis 12's own pandas type inference reads an option pandas 3 deprecated
    return ibis.memtable(pa.Table.from_pandas(rows, preserve_index=False))


def execute(expr: ir.Expr) -> pd.DataFrame:
    """Run an expression on the backend it is bound to (the scratch DuckDB for in-memory tables)."""
    backends = expr._find_backends()[0]
    return _to_pandas(backends[0] if backends else _scratch(), expr)


def _to_pandas(backend: Any, expr: ir.Expr) -> pd.DataFrame:
    """Run ``expr`` and convert its result through Arrow (Ibis 12's own pandas conversion reads an option
    pandas 3 deprecated)."""
    table = expr if isinstance(expr, ir.Table) else expr.as_table()
    with warnings.catch_warnings():  # pyspark 4.0's toPandas uses pandas options and keywords pandas 3 deprecated
        warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
        return backend.to_pyarrow(table).to_pandas()


# ---------------------------------------------------------------------------
# Spark
# ---------------------------------------------------------------------------


#: The master URLs Spark 4.0 accepts (Mesos support was removed in Spark 4).
_MASTER = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://\S+|yarn|k8s://\S+")


def check_master(master: str) -> str:
    """``master`` if Spark accepts its form (local, local[N], local[*], spark://..., yarn, k8s://...).

    Raises EngineError naming the accepted forms otherwise (checked before Java starts, whose own
    message about it is lost behind a gateway error).

    >>> check_master("local[2]")
    'local[2]'
    """
    if not _MASTER.fullmatch(master.strip()):
        raise EngineError(
            f"{master!r} is not a Spark master URL: use local[N], local[*], spark://host:port, yarn or "
            "k8s://https://host:port (ANALYTICS_SPARK_MASTER or --spark-master)"
        )
    return master.strip()


@functools.lru_cache(maxsize=4)
def _spark_session(master: str) -> Any:
    master = check_master(master)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a pinned requirement
        raise EngineError("the Spark engine needs pyspark (pip install -r requirements.txt)") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        # A notebook's or job's session (Databricks): its cluster, in a session of our own (separate SQL
        # settings and temporary views), so the user's session is left as it was.
        session = active.newSession()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        session.conf.set("spark.sql.ansi.enabled", "false")
        if os.environ.get("ANALYTICS_SPARK_PARTITIONS"):
            session.conf.set("spark.sql.shuffle.partitions", os.environ["ANALYTICS_SPARK_PARTITIONS"])
        return session
    try:
        local_dir = Path(tempfile.mkdtemp(prefix="slds-spark-local-"))  # shuffle and spill files: private
        os.chmod(local_dir, 0o700)
        atexit.register(shutil.rmtree, local_dir, True)
        builder = (
            SparkSession.builder.master(master)
            .config("spark.local.dir", str(local_dir))
            .appName("slds-analytics")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.shuffle.partitions", os.environ.get("ANALYTICS_SPARK_PARTITIONS", _partitions(master)))
        )
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session
    except Exception as exc:  # Java missing, master unreachable or misspelt: one sentence
        raise EngineError(
            f"Spark could not start with master {master!r} ({_first_reason(exc)}). Check the master URL "
            "(ANALYTICS_SPARK_MASTER or --spark-master: local[N], spark://host:port, yarn or k8s://...), that the "
            "master is reachable, and that Java 17 is installed (apt-get install openjdk-17-jre-headless)."
        ) from None


def _first_reason(exc: Exception) -> str:
    """The first line of Spark's own explanation (a start-up error names settings, never data)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "py4j", "An error occurred", "Traceback")):
            return line[:200]
    return type(exc).__name__


def _partitions(master: str) -> str:
    """Shuffle partitions: one per local core (small tables, few tasks), Spark's usual 200 on a cluster."""
    if master.startswith("local"):
        inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
        return inside if inside.isdigit() else str(os.cpu_count() or 2)
    return "200"


def _spark_engine(con: duckdb.DuckDBPyConnection, table_names: Sequence[str], cfg: EngineConfig) -> Engine:
    session = _spark_session(cfg.spark_master)
    base = cfg.spark_staging
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    staging = private_folder("slds-spark-", base)
    backend = ibis.pyspark.connect(session)
    try:
        for name in table_names:
            path = staging / f"{name}.parquet"
            literal = "'" + str(path).replace("'", "''") + "'"
            con.execute(f"COPY {name} TO {literal} (FORMAT PARQUET)")
            backend.read_parquet(path.as_uri(), table_name=name)  # file:, not the default file system
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    engine = Engine(backend, "spark", table_names, cleanup=staging)
    # the staged copy goes when the engine does, even if its user never closes it (and at exit)
    weakref.finalize(engine, shutil.rmtree, staging, True)
    return engine
