"""Writing the package: temporary files renamed into place all at once, and zips with fixed timestamps."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# ---------------------------------------------------------------------------
# Writing: atomic files and deterministic zips
# ---------------------------------------------------------------------------


def _file_mode() -> int:
    """Permissions of a newly created file under the process umask (mkstemp makes them 0600)."""
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        found = re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE)
        if found:
            umask = int(found.group(1), 8)
    return 0o666 & ~umask


def _write_temp(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a complete temporary file next to ``path`` (flushed to disk) and return it; removed on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _atomic_write_all(files: dict[Path, Callable[[IO[bytes]], None]]) -> None:
    """Write every file to a temporary file first; rename them into place only when all are complete.

    If any writer fails, every temporary file is removed and no target is touched.
    """
    done: dict[Path, Path] = {}
    try:
        for path, write in files.items():
            done[path] = _write_temp(path, write)
    except BaseException:
        for tmp in done.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    try:
        for path, tmp in done.items():
            os.replace(tmp, path)
    finally:
        for tmp in done.values():
            with contextlib.suppress(OSError):
                tmp.unlink()  # only those not renamed are still there


class _FixedTimeZip(zipfile.ZipFile):
    """A zip writer whose members all carry one timestamp and fixed permissions (reproducible bytes)."""

    def __init__(self, file: IO[bytes], date_time: tuple[int, int, int, int, int, int]) -> None:
        super().__init__(file, "w", compression=zipfile.ZIP_DEFLATED)
        self._date_time = date_time

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        info.create_system = 3
        return info

    def writestr(
        self,
        zinfo_or_arcname: str | zipfile.ZipInfo,
        data: Any,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        info = zinfo_or_arcname if isinstance(zinfo_or_arcname, zipfile.ZipInfo) else self._info(zinfo_or_arcname)
        info.date_time = self._date_time
        super().writestr(info, data, compress_type, compresslevel)

    def write(
        self,
        filename: Any,
        arcname: Any = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        name = str(arcname) if arcname is not None else os.path.basename(str(filename))
        self.writestr(self._info(name), Path(filename).read_bytes(), compress_type, compresslevel)
