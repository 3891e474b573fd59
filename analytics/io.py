"""Data access behind one small interface.

Everything that reads microdata goes through a :class:`DataSource`: a handful of
named, typed tables that answer SQL. :class:`DuckDBSource` is the embedded
engine (Parquet and CSV, in memory or spilling to disk), so the same code serves
the bundled sample and state-scale files; another engine plugs in by
implementing the same two methods.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from analytics import schema

DATA_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")


class DataSource(Protocol):
    """Validated, typed contract tables that answer SQL (DuckDB dialect)."""

    def tables(self) -> tuple[str, ...]:
        """Names of the tables the source holds."""
        ...

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a read-only query and return its result."""
        ...


class DuckDBSource:
    """A :class:`DataSource` over an embedded DuckDB connection.

    The connection is owned by the source; tables are created by
    :func:`analytics.validate.load_dataset` only after the whole dataset passed
    validation, so a source never holds a half-loaded dataset.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, table_names: Sequence[str]) -> None:
        self._con = connection
        self._tables = tuple(table_names)
        #: The dataset's resolved :class:`analytics.extract.ExtractConfig` (end years, score scales), set on load.
        self.extract: Any = None

    def tables(self) -> tuple[str, ...]:
        return self._tables

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the validated tables (for :mod:`analytics.engine`)."""
        return self._con

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        cursor = self._con.cursor()  # a cursor per call: safe to use from several threads
        try:
            return cursor.execute(query, list(params) if params else None).df()
        finally:
            cursor.close()

    def close(self) -> None:
        self._con.close()


#: DuckDB's default memory limit for the validated dataset and the exact work is this many times the
#: extract's file size, within [DEFAULT_DUCKDB_MEMORY_MIN, half the machine's memory]; beyond it DuckDB
#: spills to its private folder on disk. Measured: 200,000 students (33 MB of Parquet) build in 1.0 GB
#: peak RSS at 640MB; 6,000,000 students (970 MB) need about 3 GB (1 GB runs out in the linkage window).
DEFAULT_DUCKDB_MEMORY_PER_INPUT = 3.1
DEFAULT_DUCKDB_MEMORY_MIN = 640 * 2**20
#: Below this DuckDB runs out of memory on operators that cannot spill (ANALYTICS_DUCKDB_MEMORY is refused).
MIN_DUCKDB_MEMORY_BYTES = 256 * 10**6


#: Extracts whose files total more than this many bytes are loaded into a database file on disk
#: (smaller ones stay in memory, which is faster to open and close).
ON_DISK_ABOVE_BYTES = 16 * 1024 * 1024


#: Where a container's memory limit is (cgroup v2, then v1).
CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def container_memory() -> int | None:
    """This process's container memory limit in bytes (cgroup), or None when there is none."""
    for name in CGROUP_MEMORY_FILES:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number means no limit
            return int(text)
    return None


def default_memory_limit(input_bytes: int) -> str:
    """DuckDB's memory limit for an extract of ``input_bytes`` bytes of files, as a size text (MiB).

    :data:`DEFAULT_DUCKDB_MEMORY_PER_INPUT` times the input, at least :data:`DEFAULT_DUCKDB_MEMORY_MIN`,
    at most half of this machine's physical memory or of its container's limit (but never below
    the minimum).

    >>> default_memory_limit(10 * 2**20)
    '640MIB'
    """
    wanted = max(DEFAULT_DUCKDB_MEMORY_MIN, int(DEFAULT_DUCKDB_MEMORY_PER_INPUT * max(int(input_bytes), 0)))
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # not available on this system: no cap
        memory = 2 * wanted
    half = min(memory, container_memory() or memory) // 2
    return duckdb_size(f"{max(DEFAULT_DUCKDB_MEMORY_MIN, min(wanted, half)) // 2**20}MiB")


def open_database(input_bytes: int = ON_DISK_ABOVE_BYTES + 1) -> duckdb.DuckDBPyConnection:
    """A DuckDB database for one loaded dataset, with a memory limit and a private spill folder (mode 0700).

    An extract whose files total more than :data:`ON_DISK_ABOVE_BYTES` (``input_bytes``) goes into
    a database file in that folder, so DuckDB can evict its pages beyond the memory limit; a smaller
    one stays in memory. The folder holds (de-identified) extract data only while the dataset is
    loaded: it is deleted when the connection is garbage-collected or the process exits. The
    memory limit is ``ANALYTICS_DUCKDB_MEMORY``, checked to be a size (raises ValueError otherwise),
    or by default :func:`default_memory_limit` of ``input_bytes``.
    """
    limit = duckdb_size(os.environ.get("ANALYTICS_DUCKDB_MEMORY") or default_memory_limit(input_bytes))
    folder = private_folder("slds-dataset-", os.environ.get("ANALYTICS_DUCKDB_DIR") or None)
    try:
        con = duckdb.connect(
            str(folder / "dataset.duckdb") if input_bytes > ON_DISK_ABOVE_BYTES else ":memory:",
            config={"memory_limit": limit, "temp_directory": str(folder / "spill")},
        )
        con.execute("SET enable_progress_bar = false")
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(con, shutil.rmtree, folder, True)
    return con


_OWNER = "owner.pid"


def private_folder(prefix: str, parent: str | Path | None = None) -> Path:
    """A new folder (mode 0700) for a copy of extract data, owned by this process.

    Folders of the same prefix left by a process of this host that no longer runs (killed before
    it could clean up) are deleted first, so a crash never leaves microdata behind for long; a
    folder another host owns (a shared staging folder) is left to that host.
    """
    base = Path(parent) if parent else Path(tempfile.gettempdir())
    host = socket.gethostname()
    for old in base.glob(f"{prefix}*"):
        try:
            owner_host, _, pid_text = (old / _OWNER).read_text().rpartition(" ")
            if owner_host and owner_host != host:
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError):  # not ours, still being created, or its owner runs
            continue
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(folder, 0o700)
    (folder / _OWNER).write_text(f"{host} {os.getpid()}")
    return folder


def duckdb_size(value: str) -> str:
    """A DuckDB size setting, checked to be a number and a unit (it is never passed as SQL text)."""
    text = value.strip().upper().replace(" ", "")
    number = text.rstrip("KMGTIB")
    unit = text[len(number) :]
    if not number.replace(".", "", 1).isdigit() or unit not in {"KB", "MB", "GB", "TB", "KIB", "MIB", "GIB", "TIB"}:
        raise ValueError(f"ANALYTICS_DUCKDB_MEMORY must be a size such as 2GB, not {value!r}")
    scale = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    if float(number) * scale[unit] < MIN_DUCKDB_MEMORY_BYTES:
        raise ValueError(f"ANALYTICS_DUCKDB_MEMORY must be at least 256MB (DuckDB needs it to work), not {value!r}")
    return text


@dataclass(frozen=True)
class TableFile:
    """Where one contract table of a dataset lives on disk."""

    table: str
    path: Path

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".").lower()


def _problem_files(problems: list[str]) -> list[str]:
    """The file names that problems found so far are about (the text before the first colon)."""
    return [text.split(": ", 1)[0].strip("'") for text in problems]


def find_table_files(dataset_dir: Path) -> tuple[dict[str, TableFile], list[str]]:
    """Map contract tables to their files in ``dataset_dir``.

    Returns the files found and a list of problems in words (a table with no
    file, a table with both a CSV and a Parquet file, a ``.csv`` or ``.parquet``
    file that is not a contract table, with a hint when its name differs only in
    case). Other files (``extract.json``, a README) and sub-folders (such as a
    generator's ``truth/``) are not data and are ignored, as the contract says.
    """
    problems: list[str] = []
    found: dict[str, TableFile] = {}
    data_files: list[Path] = []
    for p in sorted(dataset_dir.iterdir()):
        if p.suffix.lower() not in DATA_SUFFIXES:
            continue
        if p.is_symlink():
            problems.append(
                f"{p.name}: is a symbolic link; copy the file itself into the folder (links are not followed, so "
                "nothing outside the dataset folder is read)"
            )
        elif not p.is_file():
            problems.append(f"{p.name}: is not a regular file (a folder, pipe or device); put the table's file here")
        elif not p.name.isascii():
            problems.append(
                f"{p.name!a}: the file name has non-ASCII characters (often a letter from another alphabet that looks "
                "Latin); type the name again in plain ASCII"
            )
        else:
            data_files.append(p)
    for name in schema.TABLE_NAMES:
        candidates = [p for p in data_files if p.stem == name]
        if not candidates:
            if not any(Path(q).stem == name for q in _problem_files(problems)):
                problems.append(f"{name}: no file {name}.parquet or {name}.csv in {dataset_dir}")
        elif len(candidates) > 1:
            problems.append(f"{name}: both {' and '.join(p.name for p in candidates)} exist; keep exactly one")
        else:
            found[name] = TableFile(name, candidates[0])
    for p in data_files:
        if p.stem not in schema.TABLES_BY_NAME:
            near = [t for t in schema.TABLE_NAMES if t == p.stem.strip().lower().replace(" ", "_")]
            hint = f"rename it to {near[0]}{p.suffix.lower()}" if near else "remove it from the folder"
            problems.append(
                f"{p.name}: not a table of the data contract (tables are {', '.join(schema.TABLE_NAMES)}); "
                f"{hint} so nothing outside the contract is read"
            )
    return found, problems


def first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """Return (line, byte offset) of the first byte that is not UTF-8, or None.

    Streams the file, so it works on files larger than memory.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                with path.open("rb") as again:
                    line = again.read(bad).count(b"\n") + 1
                return line, bad
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line, offset
    return None
