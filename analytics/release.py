"""Versioned releases: every public table, noisy, with a manifest, written atomically.

A release is a folder ``RELEASES_DIR/<release_id>/`` holding one Parquet file per
public table and ``manifest.json`` (dataset fingerprint, code version, created
time, per-table epsilon, mechanism, bounds, total). Public pages read only
releases, never microdata.

Each table is one question put to the privacy ledger under the dataset's public
budget: the first build pays for it and stores the noisy answer; every later
build of the same question on the same data (a rebuild, a refresh, a report)
gets the stored answer and pays nothing. A release whose new questions would
overrun the budget is refused before anything is spent.

The release id is derived from the dataset and the answers, so rebuilding an
identical release finds the existing folder and writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import analytics
from analytics import config, privacy
from analytics.catalog import EPSILON_SHARES, TABLES, BuildContext, TableSpec
from analytics.ledger import BudgetExceededError, Ledger, query_key
from analytics.validate import Dataset, load_dataset

MANIFEST = "manifest.json"
#: Public budget set for a dataset that has none when its first release is built.
DEFAULT_PUBLIC_BUDGET = 20.0
#: Total epsilon of a release when none is given: the sum of the catalogue's shares (docs/privacy.md).
DEFAULT_RELEASE_EPSILON = round(sum(EPSILON_SHARES.values()), 6)
#: Bump when a table's definition changes, so the ledger treats it as a new question.
DEFINITION_VERSION = 1


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What a release build did."""

    release_dir: Path
    release_id: str
    epsilon_spent: float
    epsilon_reused: float
    already_existed: bool
    tables: dict[str, int] = field(default_factory=dict)


def _to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression="zstd")
    return buf.getvalue()


def _code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{analytics.__version__}+{commit}" if commit else analytics.__version__


def split_epsilon(total: float, tables: Sequence[str] | None = None) -> dict[str, float]:
    """Divide a release's total epsilon across its noisy tables by :data:`EPSILON_SHARES`.

    >>> split_epsilon(DEFAULT_RELEASE_EPSILON)["graduation_by_district"]
    0.4
    """
    names = list(tables) if tables is not None else [t.name for t in TABLES]
    weight = sum(EPSILON_SHARES[n] for n in names)
    return {n: round(total * EPSILON_SHARES[n] / weight, 12) for n in names}


def table_queries(split: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The normalised question each table puts to the ledger.

    A table computed from another published table (growth from the growth
    model) names that table's question, which the ledger answers only one way.
    """
    out: dict[str, dict[str, Any]] = {}
    for spec in TABLES:
        out[spec.name] = {
            "kind": "release_table",
            "table": spec.name,
            "definition_version": DEFINITION_VERSION,
            "epsilon": split[spec.name],
            "mechanism": spec.mechanism,
            "contribution_bound": spec.contribution_bound,
            "bounds": spec.bounds,
            "depends_on": {d: query_key(out[d]) for d in spec.depends_on},
        }
    return out


def build_release(
    data_dir: Path,
    releases_dir: Path,
    epsilon: float = DEFAULT_RELEASE_EPSILON,
    ledger: Ledger | None = None,
    principal: str = "release-builder",
    seed: privacy.Seed = None,
    progress: Callable[[str, float], None] | None = None,
    dataset: Dataset | None = None,
) -> BuildResult:
    """Build (or find) the release of ``data_dir`` at total ``epsilon``.

    Args:
        data_dir: the dataset folder; validated before anything else.
        releases_dir: parent folder of release folders.
        epsilon: total privacy loss of the release, split by :func:`split_epsilon`.
        ledger: the privacy ledger (default: :meth:`Ledger.default`).
        principal: who is spending, recorded in the ledger.
        seed: tests only; production noise comes from a secure source.
        progress: called with (message, fraction done) for a progress bar.
        dataset: an already loaded dataset of ``data_dir`` (skips loading it again).

    Raises:
        DataValidationError: the dataset breaks the contract; nothing is spent.
        BudgetExceededError: the new questions would overrun the public budget; nothing is spent.
    """
    report = progress or (lambda _m, _f: None)
    ledger = ledger or Ledger.default()
    report("Validating the dataset", 0.0)
    ds = dataset or load_dataset(Path(data_dir))
    fp = ds.fingerprint
    if ledger.budget("public", fp) is None:
        ledger.set_budget(
            "public",
            fp,
            DEFAULT_PUBLIC_BUDGET,
            set_by=f"default (analytics.release.DEFAULT_PUBLIC_BUDGET={DEFAULT_PUBLIC_BUDGET})",
        )
    split = split_epsilon(epsilon)
    queries_by_table = table_queries(split)

    # Refuse the whole release before spending anything if its new questions do not fit.
    answered = {e.query_key for e in ledger.history(scope=None, dataset_fingerprint=fp) if e.kind == "spend"}
    new_cost = sum(split[n] for n, q in queries_by_table.items() if query_key(q) not in answered)
    remaining = ledger.remaining("public", fp)
    if new_cost > remaining + 1e-12:
        budget = ledger.budget("public", fp)
        raise BudgetExceededError(
            principal=principal,
            scope="public",
            dataset_fingerprint=fp,
            epsilon_requested=new_cost,
            epsilon_remaining=remaining,
            epsilon_total=budget,
        )

    ctx = BuildContext(ds.source)
    entries: dict[str, dict[str, Any]] = {}
    spent = reused = 0.0
    for i, spec in enumerate(TABLES):
        report(f"Computing {spec.title}", 0.05 + 0.9 * i / len(TABLES))
        eps = split[spec.name]

        def compute(spec: TableSpec = spec, eps: float = eps, i: int = i) -> bytes:
            return _to_parquet_bytes(spec.build(ctx, eps, privacy.seed_for(seed, i)))

        result = ledger.spend_or_reuse(
            principal=principal,
            scope="public",
            dataset_fingerprint=fp,
            query=queries_by_table[spec.name],
            epsilon=eps,
            compute=compute,
        )
        ctx.published[spec.name] = pd.read_parquet(io.BytesIO(result.answer))
        spent += result.epsilon_charged
        reused += 0.0 if not result.reused else eps
        entries[spec.name] = {"ledger_entry_id": result.entry_id, "reused_stored_answer": result.reused}
    tables = dict(ctx.published)
    tables["districts"] = ctx.lists.districts
    tables["schools"] = ctx.lists.schools

    report("Writing the release", 0.95)
    payload = {name: _to_parquet_bytes(df) for name, df in tables.items()}
    digest = hashlib.sha256(fp.encode())
    for name in sorted(payload):
        digest.update(name.encode() + hashlib.sha256(payload[name]).digest())
    release_id = f"{fp[:10]}-{digest.hexdigest()[:10]}"
    releases_dir = Path(releases_dir)
    final = releases_dir / release_id
    if (final / MANIFEST).exists():
        report("Done (identical release already published)", 1.0)
        return BuildResult(final, release_id, spent, reused, True, {n: len(d) for n, d in tables.items()})

    loss = ledger.total_spent(fp)
    manifest: dict[str, Any] = {
        "release_id": release_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": _code_version(),
        "dataset_fingerprint": fp,
        "dataset_description": (
            "the bundled synthetic sample (fictional districts and students)"
            if Path(data_dir).resolve() == config.SAMPLE_DATA_DIR.resolve()
            else f"dataset folder {Path(data_dir).name}"
        ),
        "unit_of_privacy": "student (all of a student's rows in every table)",
        "epsilon_total": float(sum(split.values())),
        "delta_total": 0.0,
        "dataset_privacy_loss": {
            "epsilon": loss.epsilon,
            "delta": loss.delta,
            "public_budget": ledger.budget("public", fp),
        },
        "ledger_head": ledger.verify().head_hash,
        "tables": {},
    }
    for spec in TABLES:
        manifest["tables"][spec.name] = {
            "file": f"{spec.name}.parquet",
            "title": spec.title,
            "description": spec.description,
            "noisy": True,
            "epsilon": split[spec.name],
            "delta": 0.0,
            "mechanism": spec.mechanism,
            "contribution_bound": spec.contribution_bound,
            "bounds": spec.bounds,
            "rows": len(tables[spec.name]),
            **entries[spec.name],
        }
    manifest["tables"]["schools"] = {
        "file": "schools.parquet",
        "title": "Schools (public list)",
        "description": "The public list of schools; not noisy, not about students.",
        "noisy": False,
        "epsilon": 0.0,
        "rows": len(ctx.lists.schools),
    }
    manifest["tables"]["districts"] = {
        "file": "districts.parquet",
        "title": "Districts (public list)",
        "description": "The public list of districts; not noisy, not about students.",
        "noisy": False,
        "epsilon": 0.0,
        "rows": len(ctx.lists.districts),
    }

    releases_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".building-{release_id}-", dir=releases_dir))
    try:
        for name, data in payload.items():
            (tmp / f"{name}.parquet").write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)  # atomic on one file system: readers see all of it or nothing
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)  # a concurrent build published the same release
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / MANIFEST).exists():
            raise OSError(f"could not write release {release_id} to {releases_dir}: {exc}") from exc
    report("Done", 1.0)
    return BuildResult(final, release_id, spent, reused, False, {n: len(d) for n, d in tables.items()})


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A published release: its manifest and its tables."""

    release_id: str
    path: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]

    def table(self, name: str) -> pd.DataFrame:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(
                f"release {self.release_id} has no table {name!r}; it has {', '.join(sorted(self.tables))}"
            ) from None


def list_releases(releases_dir: Path) -> list[dict[str, Any]]:
    """Manifests of the complete releases in ``releases_dir``, newest first."""
    releases_dir = Path(releases_dir)
    if not releases_dir.is_dir():
        return []
    found = []
    for d in releases_dir.iterdir():
        m = d / MANIFEST
        if d.is_dir() and not d.name.startswith(".") and m.is_file():
            found.append(json.loads(m.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: (m["created_at"], m["release_id"]), reverse=True)


def load_release(releases_dir: Path, release_id: str | None = None) -> Release:
    """Read a release (the newest when ``release_id`` is None).

    Raises:
        FileNotFoundError: no release there, or no release with that id.
    """
    manifests = list_releases(releases_dir)
    if not manifests:
        raise FileNotFoundError(f"no release in {releases_dir}; build one with `python -m analytics release`")
    chosen = manifests[0] if release_id is None else next((m for m in manifests if m["release_id"] == release_id), None)
    if chosen is None:
        raise FileNotFoundError(f"no release {release_id!r} in {releases_dir}")
    path = Path(releases_dir) / chosen["release_id"]
    tables = {name: pd.read_parquet(path / info["file"]) for name, info in chosen["tables"].items()}
    return Release(chosen["release_id"], path, chosen, tables)
