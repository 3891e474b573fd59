"""Versioned releases: every public table, noisy, with a manifest, written atomically.

A release is a folder ``RELEASES_DIR/<release_id>/`` holding one Parquet file per
public table and ``manifest.json`` (the lineage and extract number, code version,
created time, per-table epsilon, mechanism, bounds, the lineage's cumulative loss and
the ledger entry that records the release). Public pages read only releases, never
microdata.

A release is built by a steward for an extract attached to a registered student
population (:mod:`analytics.lineage`); each table is one question put to the privacy
ledger under the lineage's ``public`` allocation and cap. The first build pays for
it and stores the noisy answer; a rebuild of the same extract (whatever format it is
saved in) gets the stored answers and pays nothing. A release whose new questions
would overrun the allocation or the cap is refused before anything is spent, and so
is one whose output folder cannot be written.

Nothing published is a hash of the data: the release id is random, the extract is
named by its number within the lineage, and the digest that lets a rebuild find its
release is keyed and stays in the ledger.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
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
from analytics import accounting, lineage, privacy
from analytics.auth import User
from analytics.catalog import EPSILON_SHARES, TABLES, TABLES_BY_NAME, BuildContext, ReleasePlan, TableSpec, plan_release
from analytics.engine import EngineConfig
from analytics.ledger import Ledger, LedgerError, LedgerTamperedError, query_key
from analytics.validate import Dataset, load_dataset

MANIFEST = "manifest.json"
#: Total epsilon of a release when none is given: the sum of the catalogue's shares (docs/privacy.md).
DEFAULT_RELEASE_EPSILON = round(sum(EPSILON_SHARES.values()), 6)
#: Bump when a table's definition changes, so the ledger treats it as a new question.
DEFINITION_VERSION = 1
#: What a release id looks like (checked when written and when read).
RELEASE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{2,90}")
_BUILDING = ".building-"


class ReleaseError(LedgerError):
    """A release cannot be built or read as asked; the message says what to do. Nothing was spent."""


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What a release build did.

    Attributes:
        release_dir, release_id: Where the release is.
        epsilon_spent: What this build charged (in the lineage's unit).
        epsilon_reused: The cost of the answers reused from the ledger (nothing charged for them).
        already_existed: The identical release was already published.
        tables: Rows per table.
    """

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

    >>> split_epsilon(DEFAULT_RELEASE_EPSILON)["graduation_measurements"]
    1.1
    """
    names = list(tables) if tables is not None else [t.name for t in TABLES]
    weight = sum(EPSILON_SHARES[n] for n in names)
    return {n: round(total * EPSILON_SHARES[n] / weight, 12) for n in names}


def table_queries(split: dict[str, float], plan: ReleasePlan | None = None) -> dict[str, dict[str, Any]]:
    """The normalised question each table puts to the ledger.

    A table computed from another published table (growth from the growth
    model) names that table's question, which the ledger answers only one way.
    With a zCDP ``plan``, a measurement table's question names its rho per level.
    """
    out: dict[str, dict[str, Any]] = {}
    for spec in TABLES:
        q: dict[str, Any] = {
            "kind": "release_table",
            "table": spec.name,
            "definition_version": DEFINITION_VERSION,
            "epsilon": split[spec.name],
            "mechanism": spec.mechanism,
            "contribution_bound": spec.contribution_bound,
            "bounds": spec.bounds,
            "depends_on": {d: query_key(out[d]) for d in spec.depends_on},
        }
        if spec.cost == "levels" and plan is not None:
            q["accounting"] = plan.accounting
            q["levels"] = plan.levels
        if spec.cost in ("counts", "composed") and plan is not None:  # the amount buys other noise per accounting
            q["accounting"] = plan.accounting
        if spec.cost == "counts" and plan is not None:
            q["rows_per_student"] = spec.rows_per_student
            q["rows_per_bin"] = spec.rows_per_bin
        out[spec.name] = q
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_builds(releases_dir: Path) -> list[str]:
    """Remove the temporary folders of builds whose process is gone (killed mid-write).

    A build writes into ``.building-<pid>-<random>`` and renames it into place; a kill
    before the rename leaves that folder behind, which this removes. Returns their names.
    """
    removed: list[str] = []
    if not Path(releases_dir).is_dir():
        return removed
    for d in Path(releases_dir).iterdir():
        if not d.name.startswith(_BUILDING) or d.is_symlink() or not d.is_dir():
            continue
        pid_text = d.name[len(_BUILDING) :].split("-", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d.name)
    return removed


def _check_writable(releases_dir: Path) -> None:
    """Refuse before anything is spent when the releases folder cannot be written."""
    try:
        if releases_dir.exists() and (releases_dir.is_symlink() or not releases_dir.is_dir()):
            raise ReleaseError(f"{releases_dir} is not a folder; choose a folder for releases (--out).")
        releases_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=releases_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ReleaseError(
            f"cannot write releases to {releases_dir} ({exc.strerror or exc}); choose a writable folder (--out). "
            "Nothing was spent."
        ) from None


def check_recorded(ledger: Ledger, releases_dir: Path, lineage_name: str) -> None:
    """Refuse when a published release of this lineage is unknown to the ledger.

    Every manifest carries the id and hash of the ledger entry that recorded it. A
    ledger without that entry was rolled back, replaced or deleted, and spending
    from it would start the population's loss afresh.

    Raises:
        LedgerTamperedError: naming the release the ledger has no record of.
    """
    for manifest in list_releases(releases_dir):
        if manifest.get("lineage") != lineage_name:
            continue
        record = manifest["ledger"]
        entry = ledger.entry(record["entry_id"])
        if entry is None or entry.entry_hash != record.get("entry_hash") or entry.kind != "release":
            raise LedgerTamperedError(
                record.get("entry_id"),
                f"release {manifest['release_id']} of lineage {lineage_name!r} is published, but this ledger has "
                "no record of it: the ledger was rolled back, replaced or deleted.",
            )


def build_release(
    data_dir: Path,
    releases_dir: Path,
    *,
    user: User,
    epsilon: float = DEFAULT_RELEASE_EPSILON,
    ledger: Ledger | None = None,
    seed: privacy.Seed = None,
    progress: Callable[[str, float], None] | None = None,
    dataset: Dataset | None = None,
    engine: EngineConfig | str | None = None,
) -> BuildResult:
    """Build (or find) the release of the extract in ``data_dir`` at total ``epsilon``.

    Args:
        data_dir: the dataset folder; validated before anything else.
        releases_dir: parent folder of release folders.
        user: the steward building it (an authenticated :class:`analytics.auth.User`).
        epsilon: total privacy loss of the release, split by :func:`split_epsilon`.
        ledger: the privacy ledger (default: :meth:`Ledger.default`).
        seed: tests only, and only with a ledger made with ``allow_seeded_noise=True``.
        progress: called with (message, fraction done) for a progress bar.
        dataset: an already loaded dataset of ``data_dir`` (skips loading it again).
        engine: the engine that does the exact work: ``'duckdb'`` (default), ``'spark'``, an
            :class:`analytics.engine.EngineConfig`, or None for ``ANALYTICS_ENGINE``'s.

    Raises:
        DataValidationError: the dataset breaks the contract; nothing is spent.
        PermissionDenied: ``user`` is not a steward; nothing is spent.
        LineageError: the extract is attached to no lineage; nothing is spent.
        BudgetExceededError: the new questions would overrun the public allocation or the cap.
        LedgerTamperedError: the ledger cannot be trusted, or has no record of a published release.
        ReleaseError: the releases folder cannot be written; nothing is spent.
        EngineError: the engine could not start; nothing is spent.
    """
    report = progress or (lambda _m, _f: None)
    ledger = ledger or Ledger.default()
    if seed is not None and not ledger.allow_seeded_noise:
        raise ValueError("a seed is for tests only: pass a test ledger made with allow_seeded_noise=True.")
    if not (isinstance(epsilon, (int, float)) and 0 < float(epsilon) < float("inf")):
        raise ValueError("the release's total epsilon must be a finite number above 0.")
    lineage.require_steward(user)
    releases_dir = Path(releases_dir)
    _check_writable(releases_dir)
    clean_stale_builds(releases_dir)
    report("Validating the dataset", 0.0)
    ds = dataset or load_dataset(Path(data_dir))
    try:
        ds.extract.require_declared(str(data_dir))
    except ValueError as exc:
        raise ReleaseError(str(exc)) from None
    attached = lineage.resolve(ledger, ds.source, Path(data_dir))
    check_recorded(ledger, releases_dir, attached.lineage)
    plan = plan_release(float(epsilon), ledger.status(attached.lineage).accounting)
    split = plan.amounts
    queries_by_table = table_queries(split, plan)
    paid = [spec for spec in TABLES if spec.cost != "none"]

    def charge_args(name: str) -> dict[str, float]:
        """What the ledger is told a table costs: a Gaussian measurement carries its rho."""
        if TABLES_BY_NAME[name].cost in ("levels", "counts", "composed") and plan.accounting == "zcdp":
            return {"epsilon": accounting.rho_to_epsilon(plan.rhos[name], plan.delta), "rho": plan.rhos[name]}
        return {"epsilon": split[name]}

    # Refuse the whole release before spending anything if its new questions do not fit.
    answered = ledger.answered(attached.lineage, attached.extract_id, "public")
    new_cost = sum(
        ledger.charge_of(attached.lineage, **charge_args(s.name))
        for s in paid
        if query_key(queries_by_table[s.name]) not in answered
    )
    if new_cost > 0:
        ledger.check_affordable(attached.lineage, "public", new_cost)

    report("Starting the query engine", 0.02)
    with BuildContext(ds.source, plan.accounting, plan.levels, engine=EngineConfig.of(engine)) as ctx:
        entries: dict[str, dict[str, Any]] = {}
        spent = reused = 0.0
        for i, spec in enumerate(TABLES):
            report(f"Computing {spec.title}", 0.05 + 0.9 * i / len(TABLES))
            try:
                spent, reused = _build_table(
                    ctx,
                    spec,
                    i,
                    split,
                    seed,
                    ledger,
                    user,
                    attached,
                    queries_by_table,
                    charge_args,
                    entries,
                    spent,
                    reused,
                )
            except (LedgerError, KeyboardInterrupt):
                raise
            except Exception as exc:  # an engine or estimation failure: say what was kept and spent
                raise ReleaseError(_stopped_words(spec, exc, entries, spent)) from exc
        tables = dict(ctx.published)
        tables["districts"] = ctx.lists.districts
        tables["schools"] = ctx.lists.schools

        report("Writing the release", 0.95)
        payload = {name: _to_parquet_bytes(df) for name, df in tables.items()}
        digest = ledger.key.mac(
            "release",
            attached.extract_id + "".join(f"|{n}:{hashlib.sha256(payload[n]).hexdigest()}" for n in sorted(payload)),
        )
        now = datetime.now(UTC)
        fresh_id = f"{attached.lineage}-{now:%Y%m%d}-{secrets.token_hex(3)}"
        record = ledger.record_release(
            lineage=attached.lineage,
            extract_id=attached.extract_id,
            release_id=fresh_id,
            digest=digest,
            principal=user.name,
        )
        release_id = record.detail["release_id"]
        final = releases_dir / release_id
        sizes = {n: len(d) for n, d in tables.items()}
        if (final / MANIFEST).exists():
            report("Done (identical release already published)", 1.0)
            return BuildResult(final, release_id, spent, reused, True, sizes)

        status = ledger.status(attached.lineage)
        total_eps, total_delta = status.epsilon_at()
        published_at = datetime.fromisoformat(record.created_at)
        manifest: dict[str, Any] = {
            "release_id": release_id,
            "label": f"{attached.label} release (published {published_at:%-d %b %Y})",
            "created_at": published_at.isoformat(timespec="seconds"),
            "code_version": _code_version(),
            "lineage": attached.lineage,
            "dataset_description": status.description,
            "extract": {"number": attached.number, "label": attached.label},
            "unit_of_privacy": "student (all of a student's rows in every table)",
            "accounting": status.accounting,
            "epsilon_total": plan.total_epsilon,
            "delta_total": plan.delta,
            "release_privacy_loss": _release_loss(plan),
            "design": _design_record(plan),
            "lineage_privacy_loss": {
                "unit": status.unit,
                "spent": status.spent,
                "epsilon": total_eps,
                "delta": total_delta,
                "cap": status.cap,
                "public_allocation": status.allocations.get("public", (0.0, 0.0))[0],
                "note": "the most privacy loss any one student of this population bears so far, over every extract, "
                "release and researcher query",
            },
            "ledger": {"entry_id": record.entry_id, "entry_hash": record.entry_hash},
            "tables": {},
        }
        for spec in TABLES:
            manifest["tables"][spec.name] = {
                "file": f"{spec.name}.parquet",
                "title": spec.title,
                "description": spec.description,
                "noisy": True,
                "epsilon": plan.epsilons[spec.name],
                "rho": plan.rhos.get(spec.name, 0.0),
                "delta": 0.0,
                "mechanism": spec.mechanism,
                "contribution_bound": spec.contribution_bound,
                "bounds": spec.bounds,
                "rows": sizes[spec.name],
                **entries[spec.name],
            }
            count_noise = spec.count_noise(plan.accounting, split[spec.name])
            if count_noise is not None:  # what a reader needs to redo the margins: the noise of every bin
                manifest["tables"][spec.name]["noise"] = {
                    **count_noise.record(),
                    "rows_per_student": spec.rows_per_student,
                    "rows_per_bin": spec.rows_per_bin,
                    "l2_sensitivity": spec.l2_sensitivity,
                }
        for name, title in (("schools", "Schools (public list)"), ("districts", "Districts (public list)")):
            manifest["tables"][name] = {
                "file": f"{name}.parquet",
                "title": title,
                "description": f"The public list of {name}; not noisy, not about students.",
                "noisy": False,
                "epsilon": 0.0,
                "rows": sizes[name],
            }
        _write_atomically(releases_dir, release_id, payload, manifest)
        report("Done", 1.0)
        return BuildResult(final, release_id, spent, reused, False, sizes)


def _build_table(
    ctx: BuildContext,
    spec: TableSpec,
    i: int,
    split: dict[str, float],
    seed: privacy.Seed,
    ledger: Ledger,
    user: User,
    attached: Any,
    queries_by_table: dict[str, dict[str, Any]],
    charge_args: Callable[[str], dict[str, float]],
    entries: dict[str, dict[str, Any]],
    spent: float,
    reused: float,
) -> tuple[float, float]:
    """Compute (or reuse) one table of a release; returns the running totals spent and reused."""
    eps = split[spec.name]

    def compute(spec: TableSpec = spec, eps: float = eps, i: int = i) -> bytes:
        return _to_parquet_bytes(spec.build(ctx, eps, privacy.seed_for(seed, i)))

    if spec.cost == "none":  # post-processing of published tables: nothing to spend
        ctx.published[spec.name] = pd.read_parquet(io.BytesIO(compute()))
        entries[spec.name] = {"derived_from": list(spec.depends_on)}
        return spent, reused
    result = ledger.spend_or_reuse(
        principal=user.name,
        lineage=attached.lineage,
        extract_id=attached.extract_id,
        scope="public",
        query=queries_by_table[spec.name],
        compute=compute,
        **charge_args(spec.name),
    )
    ctx.published[spec.name] = pd.read_parquet(io.BytesIO(result.answer))
    spent += result.charged
    reused += 0.0 if not result.reused else ledger.charge_of(attached.lineage, **charge_args(spec.name))
    entries[spec.name] = {"ledger_entry_id": result.entry_id, "reused_stored_answer": result.reused}
    return spent, reused


def _stopped_words(spec: TableSpec, exc: Exception, entries: dict[str, dict[str, Any]], spent: float) -> str:
    """A build that failed mid-way, in words: where, why (never a data value), and what was kept and spent."""
    import duckdb

    if isinstance(exc, duckdb.OutOfMemoryException):
        why = (
            "DuckDB ran out of its memory limit; raise ANALYTICS_DUCKDB_MEMORY (now "
            f"{os.environ.get('ANALYTICS_DUCKDB_MEMORY') or 'the default'}) or free memory on this machine"
        )
    else:
        why = f"the engine failed ({type(exc).__name__})"
    kept = sum(1 for e in entries.values() if "ledger_entry_id" in e)
    return (
        f"The release stopped while computing {spec.title}: {why}. Nothing was published. The {kept} noisy "
        f"table(s) computed before it are stored in the ledger (privacy spent by this run: {spent:g}); building "
        "again reuses them and spends nothing for them again."
    )


def _release_loss(plan: ReleasePlan) -> dict[str, Any]:
    """This release's own total, as rho and as (epsilon, delta) (zCDP), or as pure epsilon."""
    if plan.accounting == "epsilon":
        return {"unit": "epsilon", "epsilon": plan.total_epsilon, "delta": 0.0}
    return {
        "unit": "rho",
        "rho": plan.total_rho,
        "epsilon": accounting.rho_to_epsilon(plan.total_rho, plan.delta),
        "delta": plan.delta,
        "conversion": accounting.CONVERSION,
    }


def _design_record(plan: ReleasePlan) -> dict[str, Any]:
    """The design saved with the release: each measurement's share, noise scale and previewed margin."""
    record: dict[str, Any] = {"accounting": plan.accounting, "graduation_levels": plan.levels}
    if plan.design is not None:
        preview = plan.design.preview()
        record["tables"] = [
            {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in preview.to_dict(orient="records")
        ]
        record["method"] = "analytics.estimation.design.split_total with priority weights (catalog.default_design)"
    return record


def build_sample_release(
    releases_dir: Path,
    *,
    ledger: Ledger | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> BuildResult:
    """The dashboard's first start: register the bundled sample's lineage (once) and release it.

    The registration is the steward path run for the bundled synthetic sample only
    (:func:`analytics.lineage.bootstrap_sample`), recorded in the ledger like any act.
    """
    from analytics import config

    ledger = ledger or Ledger.default()
    ds = load_dataset(config.SAMPLE_DATA_DIR)
    lineage.bootstrap_sample(ledger, ds.source, config.SAMPLE_DATA_DIR)
    system = User(lineage.SAMPLE_PRINCIPAL, "steward")
    return build_release(
        config.SAMPLE_DATA_DIR, releases_dir, user=system, ledger=ledger, progress=progress, dataset=ds
    )


def _write_atomically(releases_dir: Path, release_id: str, payload: dict[str, bytes], manifest: dict[str, Any]) -> None:
    final = releases_dir / release_id
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{_BUILDING}{os.getpid()}-", dir=releases_dir))
    except OSError as exc:
        raise ReleaseError(f"cannot write release {release_id} to {releases_dir}: {exc.strerror or exc}.") from None
    try:
        for name, data in payload.items():
            (tmp / f"{name}.parquet").write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)  # atomic on one file system: readers see all of it or nothing
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / MANIFEST).exists():  # else a concurrent build published the same release
            raise ReleaseError(
                f"could not write release {release_id} to {releases_dir} ({exc.strerror or exc}); its answers are "
                "stored in the ledger, so building it again spends nothing."
            ) from None


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

    def count_noise(self, name: str) -> privacy.CountNoise:
        """The noise every bin of count table ``name`` got, from the manifest (for margins of sums and ratios).

        A manifest records it under ``noise`` (discrete Gaussian on a zCDP lineage, discrete
        Laplace on a pure one); a release written before that has discrete Laplace at the
        table's ``epsilon``, with the L1 sensitivity its contribution bound states ("3 rows per
        student", 1 when it states none). Raises KeyError for a table the manifest does not list,
        ValueError for one with no noisy counts.
        """
        info = self.manifest.get("tables", {}).get(name)
        if info is None:
            raise KeyError(f"release {self.release_id} has no table {name!r}")
        if "noise" in info:
            return privacy.CountNoise.from_record(info["noise"])
        eps = float(info.get("epsilon") or 0.0)
        if not eps > 0:
            raise ValueError(f"table {name!r} of release {self.release_id} has no noisy counts of its own")
        found = re.match(
            r"\s*(\d+)\s+(?:rows?|tests?|score pairs?)\s+per student", str(info.get("contribution_bound", ""))
        )
        return privacy.CountNoise.laplace(eps, int(found.group(1)) if found else 1)


def _valid_id(release_id: object) -> bool:
    return isinstance(release_id, str) and RELEASE_ID_PATTERN.fullmatch(release_id) is not None


def _well_formed(manifest: dict[str, Any]) -> bool:
    """The fields pages and builds rely on have the right shapes (a hand-made manifest may not)."""
    tables, ledger = manifest.get("tables"), manifest.get("ledger")
    return (
        isinstance(tables, dict)
        and all(isinstance(t, dict) and isinstance(t.get("file"), str) for t in tables.values())
        and isinstance(manifest.get("created_at"), str)
        and isinstance(manifest.get("epsilon_total"), (int, float))
        and isinstance(ledger, dict)
        and isinstance(ledger.get("entry_id"), int)
        and isinstance(ledger.get("entry_hash"), str)
    )


def list_releases(releases_dir: Path) -> list[dict[str, Any]]:
    """Manifests of the complete releases in ``releases_dir``, newest first.

    A folder counts only if it is a real folder (not a link) whose name is a valid
    release id equal to its manifest's ``release_id``; anything else is skipped.
    """
    releases_dir = Path(releases_dir)
    if not releases_dir.is_dir():
        return []
    found = []
    for d in releases_dir.iterdir():
        if d.name.startswith(".") or not _valid_id(d.name) or d.is_symlink() or not d.is_dir():
            continue
        m = d / MANIFEST
        if m.is_symlink() or not m.is_file():
            continue
        try:
            manifest = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("release_id") != d.name:
            continue
        if _well_formed(manifest):
            found.append(manifest)
    return sorted(found, key=lambda m: (m["created_at"], m["release_id"]), reverse=True)


def load_release(releases_dir: Path, release_id: str | None = None) -> Release:
    """Read a release (the newest when ``release_id`` is None).

    Raises:
        FileNotFoundError: no release there, or no release with that id.
        ReleaseError: the id is malformed, or a table file is missing or not a plain file.
    """
    if release_id is not None and not _valid_id(release_id):
        raise ReleaseError("a release id is 3-91 lower-case letters, digits and dashes.")
    manifests = list_releases(releases_dir)
    if not manifests:
        raise FileNotFoundError(
            f"no release in {releases_dir}; a steward builds one with `python -m analytics release DATASET_DIR`"
        )
    chosen = manifests[0] if release_id is None else next((m for m in manifests if m["release_id"] == release_id), None)
    if chosen is None:
        raise FileNotFoundError(f"no release {release_id} in {releases_dir}")
    path = Path(releases_dir) / chosen["release_id"]
    tables = {}
    for name, info in chosen["tables"].items():
        file = path / str(info.get("file", ""))
        if file.parent != path or file.is_symlink() or not file.is_file():
            raise ReleaseError(f"release {chosen['release_id']}: table file for {name!r} is missing or not a file.")
        tables[name] = pd.read_parquet(file)
    return Release(chosen["release_id"], path, chosen, tables)
