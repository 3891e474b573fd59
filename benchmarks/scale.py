"""Release cost against the DuckDB floor, per step, each step in its own process.

    python -m benchmarks.scale --students N [--engine duckdb|spark] [--floor] [--opendp]
                               [--keep DIR] [--data DIR] [--seed 2010] [--accounting epsilon|zcdp]
                               [--skip-validate] [--repeat R]

Generates ``N`` students with the project's generator (or reuses the dataset in ``--data``, or in
``--keep DIR`` when it already holds one of that size), then runs each step in a child process and
measures it: CPU seconds (user + system of the child and everything it waited for, from
``os.wait4``; for children it does not wait for, such as a Spark JVM, the larger of that and the
sum over the process tree sampled from ``/proc``), wall seconds, and peak RSS (the child's
``ru_maxrss``, or the sampled peak of the whole tree's resident memory where that is larger).

Steps: ``generate`` (when no dataset is given), ``validate`` (validation and load), ``release``
(``analytics.release.build_release`` into a temporary ``ANALYTICS_HOME`` with a fresh steward key in
``ANALYTICS_KEY_FILE`` outside it, a new ledger and a registered lineage; ``engine=`` is passed only
with ``--engine`` and only when ``build_release`` takes it), ``floor`` (with ``--floor``:
:mod:`benchmarks.floor`, every table) and, with ``--opendp``, ``floor-four``, ``product-four`` (the
product's own build of those tables, :data:`PRODUCT_FOUR`, validation included) and ``opendp-four``:
OpenDP's Polars context releasing the four peer tables (graduation by district x cohort, workforce
and earnings by district x years out, opt-out by district x year) with the noise scale given
directly, from per-student rows the floor exports (export time reported apart). OpenDP 0.16 needs
polars 1.36.1 (and pyarrow to read its results), which the project does not install: give an interpreter
that has them with
``--opendp-python`` (default: this one, then ``/tmp/opendp-venv/bin/python``); the table says so
when none can import them.

With ``--repeat R`` the release (each time with a new home, key and ledger, so nothing is reused)
and the floor run R times, alternating, and a last line gives the median release/floor CPU ratio
with its range: this machine's speed drifts within a day (the floor measured 9.9 to 17.4 s CPU on
30 Nov 2026), and alternating runs put the drift into both sides of the ratio.

The table printed: students, step, CPU s, wall s, peak RSS MiB, and the release's CPU over the
floor's (each release over the floor run right after it). This file is also run as a plain script
by the OpenDP interpreter, so its top level imports only the standard library.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OPENDP_PYTHONS = ("/tmp/opendp-venv/bin/python",)
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------
# Measuring a child process
# ---------------------------------------------------------------------------
@dataclass
class Measure:
    """One step's cost: CPU seconds, wall seconds, peak resident memory (MiB), and what it printed."""

    step: str
    cpu_s: float
    wall_s: float
    peak_mib: float
    ok: bool
    output: str = ""


def _tree(root: int) -> list[int]:
    """The pids of ``root``'s live descendants (from /proc/*/stat parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def _own_cpu_and_rss(pid: int) -> tuple[float, int] | None:
    """(own user + system seconds, resident bytes) of a live process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE


class _Sampler(threading.Thread):
    """Samples a process tree every ``interval`` seconds: peak summed RSS and last-seen CPU per process."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            for pid in [self.pid, *_tree(self.pid)]:
                got = _own_cpu_and_rss(pid)
                if got is not None:
                    self.cpu[pid] = got[0]
                    total += got[1]
            self.peak_rss = max(self.peak_rss, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def measure(step: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Measure:
    """Run ``argv`` as a child process and measure it (see the module doc)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        sampler.stop()
        log.seek(0)
        output = log.read()
    cpu = max(usage.ru_utime + usage.ru_stime, sum(sampler.cpu.values()))
    peak = max(usage.ru_maxrss * 1024, sampler.peak_rss) / 2**20
    return Measure(step, cpu, wall, peak, proc.returncode == 0, output)


# ---------------------------------------------------------------------------
# Steps (each runs in a child: python -m benchmarks.scale --step NAME ...)
# ---------------------------------------------------------------------------
def _step_generate(args: argparse.Namespace) -> None:
    from analytics.synth import generate

    counts = generate(Path(args.data), args.students, seed=args.seed)
    print(json.dumps(counts))


def _step_validate(args: argparse.Namespace) -> None:
    from analytics.validate import load_dataset

    ds = load_dataset(Path(args.data))
    print(json.dumps(ds.row_counts))


def _step_release(args: argparse.Namespace) -> None:
    """Build a release the steward's way, without the UI (as tests/accounting.py does), in a temporary home."""
    from analytics import lineage
    from analytics.auth import User
    from analytics.ledger import Ledger
    from analytics.release import build_release
    from analytics.seal import StewardKey
    from analytics.validate import load_dataset

    home = Path(os.environ["ANALYTICS_HOME"])
    key = StewardKey.load(Path(os.environ["ANALYTICS_KEY_FILE"]), home=home)
    ledger = Ledger(home / "ledger.sqlite3", key=key)
    steward = User("bench-steward", "steward")
    lineage.register(
        ledger,
        steward,
        "bench",
        cap=1_000.0,
        description="scale benchmark population",
        public_allocation=1_000.0,
        accounting=args.accounting,
    )
    ds = load_dataset(Path(args.data))
    lineage.attach(ledger, steward, "bench", ds.source, label="benchmark extract")
    kwargs = {}
    if args.engine:
        if "engine" not in inspect.signature(build_release).parameters:
            raise SystemExit("--engine given, but analytics.release.build_release takes no engine= yet")
        kwargs["engine"] = args.engine
    result = build_release(Path(args.data), home / "releases", user=steward, ledger=ledger, dataset=ds, **kwargs)
    print(json.dumps({"tables": len(result.tables), "epsilon_spent": result.epsilon_spent}))


def _step_floor(args: argparse.Namespace) -> None:
    from benchmarks import floor

    result = floor.run_floor(Path(args.data), args.tables, args.memory_limit)
    print(json.dumps({"tables": len(result.noisy), "cells": result.cells, "seconds": result.seconds}))


def _step_export(args: argparse.Namespace) -> None:
    from benchmarks import floor

    print(json.dumps(floor.export_peer_inputs(Path(args.data), Path(args.peer))))


def _step_opendp(args: argparse.Namespace) -> None:
    """OpenDP's Polars context on the four peer tables, the noise scale given directly (needs polars 1.36.1)."""
    import opendp.prelude as dp
    import polars as pl

    dp.enable_features("contrib")
    peer = Path(args.peer)
    lists = json.loads((peer / "public_lists.json").read_text(encoding="utf-8"))
    epsilon = 1.0  # per table; the scale below spends exactly this
    employed = ["qualifying_part", "qualifying_full"]

    def keys(**columns: list[object]) -> pl.LazyFrame:
        frame = pl.DataFrame({"_k": [0]}).lazy()
        for name, values in columns.items():
            frame = frame.join(pl.DataFrame({name: values}).lazy(), how="cross")
        return frame.drop("_k")

    specs = [
        # (file, rows per student, filter, group columns, public key lists)
        ("graduation", 1, None, {"district_id": lists["high_school_districts"], "cohort": lists["cohorts"],
                                 "graduated": [True, False]}),
        ("workforce", 3, None, {"district_id": lists["districts"], "years_out": lists["years_out"],
                                "category": lists["workforce_categories"]}),
        ("workforce", 3, pl.col("category").is_in(employed), {"district_id": lists["districts"],
                                                              "years_out": lists["years_out"],
                                                              "earnings_bin": list(range(lists["earnings_bins"]))}),
        ("optout", 1, None, {"district_id": lists["districts"], "school_year": lists["ssn_years"],
                             "declined": [True, False]}),
    ]  # fmt: skip
    cells = 0
    for name, k, where, domain in specs:
        data = pl.scan_parquet(peer / f"{name}.parquet")
        if where is not None:
            data = data.filter(where)
        by = list(domain)
        data = data.select(by)
        dtypes = data.collect_schema()
        key_frame = keys(**domain).with_columns([pl.col(c).cast(dtypes[c]) for c in by])
        context = dp.Context.compositor(
            data=data,
            privacy_unit=dp.unit_of(contributions=k),
            privacy_loss=dp.loss_of(epsilon=epsilon * 1.000001),
            split_evenly_over=1,
            margins=[dp.polars.Margin(by=by, invariant="keys")],
        )
        query = context.query().group_by(by).agg(dp.len(scale=k / epsilon, signed=True)).with_keys(key_frame)
        released = query.release().collect()
        cells += released.height
    print(json.dumps({"tables": len(specs), "cells": cells}))


#: The product's tables that publish the four peer tables (graduation comes from its measurements).
PRODUCT_FOUR = (
    "graduation_measurements",
    "graduation_by_district",
    "workforce_by_district",
    "earnings_by_district",
    "ssn_collection_by_district_year",
)


def _step_product_four(args: argparse.Namespace) -> None:
    """The product's own build of the four peer tables over the loaded dataset (seeded noise: a benchmark)."""
    from analytics.catalog import TABLES_BY_NAME, BuildContext, plan_release
    from analytics.estimation import cohort_rates
    from analytics.validate import load_dataset

    ds = load_dataset(Path(args.data))
    plan = plan_release(6.55, args.accounting)
    estimation = [0.0]
    fit = cohort_rates.model_rates

    def timed_fit(*a: object, **k: object) -> object:
        start = time.process_time()
        try:
            return fit(*a, **k)  # type: ignore[arg-type]
        finally:
            estimation[0] += time.process_time() - start

    cohort_rates.model_rates = timed_fit  # type: ignore[assignment]
    start = time.process_time()
    engine = {"engine": args.engine} if args.engine else {}
    with BuildContext(ds.source, plan.accounting, plan.levels, **engine) as ctx:
        for i, name in enumerate(PRODUCT_FOUR):
            ctx.published[name] = TABLES_BY_NAME[name].build(ctx, plan.amounts[name], 9000 + i)
    build = time.process_time() - start
    print(json.dumps({"tables": len(PRODUCT_FOUR), "build_cpu_s": round(build, 2),
                      "model_estimation_cpu_s": round(estimation[0], 2)}))  # fmt: skip


STEPS = {
    "generate": _step_generate,
    "product-four": _step_product_four,
    "validate": _step_validate,
    "release": _step_release,
    "floor": _step_floor,
    "export": _step_export,
    "opendp": _step_opendp,
}


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------
def _opendp_python(explicit: str | None) -> str | None:
    """An interpreter that imports opendp and polars 1.36.x, or None."""
    candidates = [explicit] if explicit else [sys.executable, *DEFAULT_OPENDP_PYTHONS]
    probe = "import opendp.prelude, polars, pyarrow, sys; sys.exit(0 if polars.__version__.startswith('1.36.') else 3)"
    for python in candidates:
        if python and Path(python).exists():
            got = subprocess.run([python, "-c", probe], capture_output=True, check=False)
            if got.returncode == 0:
                return python
    return None


def _dataset_size(folder: Path) -> int | None:
    params = folder / "truth" / "parameters.json"
    if not params.is_file():
        return None
    return int(json.loads(params.read_text(encoding="utf-8")).get("n_students", -1))


def _child(step: str, args: argparse.Namespace, **extra: object) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.scale", "--step", step, "--data", str(args.data)]
    argv += ["--students", str(args.students), "--seed", str(args.seed), "--accounting", args.accounting]
    if args.engine:
        argv += ["--engine", args.engine]
    if args.memory_limit:
        argv += ["--memory-limit", args.memory_limit]
    for k, v in extra.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def _size(value: str) -> str:
    """A DuckDB size (checked as ANALYTICS_DUCKDB_MEMORY is), for argparse."""
    from analytics.io import duckdb_size

    try:
        return duckdb_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("ANALYTICS_DUCKDB_MEMORY", "--memory-limit")) from None


def _print_table(students: int, rows: list[Measure], notes: list[str]) -> None:
    floor = next((m for m in rows if m.step == "floor" and m.ok), None)
    release = next((m for m in rows if m.step == "release" and m.ok), None)
    print(f"{'students':>10}  {'step':<14} {'CPU s':>9} {'wall s':>9} {'peak RSS MiB':>13}  {'release/floor':>13}")
    for i, m in enumerate(rows):
        ratio = ""
        # a release is compared with the floor run right after it (alternating runs), else with the first floor
        paired = next((f for f in rows[i + 1 : i + 2] if f.step == "floor" and f.ok), floor)
        if m.step == "release" and paired is not None and paired.cpu_s > 0:
            ratio = f"{m.cpu_s / paired.cpu_s:.1f}x"
        status = "" if m.ok else "  FAILED"
        cost = f"{m.cpu_s:>9.1f} {m.wall_s:>9.1f} {m.peak_mib:>13,.0f}"
        print(f"{students:>10,}  {m.step:<14} {cost}  {ratio:>13}{status}")
    if release is not None and floor is not None:
        scope = "" if students == 200_000 else " (issue 13 sets these at 200,000 students)"
        if sum(m.step == "release" for m in rows) > 1:
            scope += ", first pair (the median is below)"
        print(f"target{scope}: release CPU <= 2x floor: {'met' if release.cpu_s <= 2 * floor.cpu_s else 'not met'}; "
              f"release peak RSS <= 1.2 GB: {'met' if release.peak_mib * 2**20 <= 1.2e9 else 'not met'}")  # fmt: skip
    for note in notes:
        print(note)
    for m in rows:
        if not m.ok:
            print(f"--- {m.step} failed; its last output:\n" + "\n".join(m.output.strip().splitlines()[-15:]))


def _fresh_home(tmp: Path, i: int) -> dict[str, str]:
    """The environment of one release: its own ANALYTICS_HOME and steward key (a new ledger, so nothing is reused)."""
    env = dict(os.environ)
    home = tmp / f"home{i}"
    home.mkdir(exist_ok=True)
    env["ANALYTICS_HOME"] = str(home)
    env["ANALYTICS_KEY_FILE"] = str(tmp / f"key{i}" / "steward.key")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def _repeat_summary(pairs: list[tuple[Measure, Measure]], students: int) -> str:
    """The median release/floor CPU ratio over alternating runs, with its range and the medians it comes from."""
    ok = [(r, f) for r, f in pairs if r.ok and f.ok and f.cpu_s > 0]
    if not ok:
        return "repeat: no pair of release and floor completed"
    ratios = sorted(r.cpu_s / f.cpu_s for r, f in ok)
    scope = "" if students == 200_000 else " (issue 13 sets it at 200,000 students)"
    release_cpu = statistics.median(r.cpu_s for r, _f in ok)
    floor_cpu = statistics.median(f.cpu_s for _r, f in ok)
    return (
        f"over {len(ok)} alternating release/floor pairs: release/floor CPU, median of the per-pair ratios "
        f"{statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}x); release median "
        f"{release_cpu:.1f} s CPU, floor median {floor_cpu:.1f} s CPU; target release CPU <= 2x floor{scope}: "
        f"{'met' if statistics.median(ratios) <= 2 else 'not met'} on the median"
    )


def run(args: argparse.Namespace) -> int:
    rows: list[Measure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp_text:
        tmp = Path(tmp_text)
        if args.data is None:
            folder = Path(args.keep) if args.keep else tmp / "data"
            if _dataset_size(folder) == args.students:
                notes.append(f"reused the {args.students:,}-student dataset in {folder}")
            else:
                if folder.exists() and any(folder.iterdir()):
                    raise SystemExit(
                        f"{folder}: exists and holds no {args.students:,}-student dataset; give an empty folder"
                    )
                args.data = folder
                rows.append(measure("generate", _child("generate", args)))
            args.data = folder
        else:  # a given dataset: label the figures with its own size, not --students
            args.students = _dataset_size(Path(args.data)) or args.students
        env = _fresh_home(tmp, 0)
        if not args.skip_validate:
            rows.append(measure("validate", _child("validate", args), env))
        pairs: list[tuple[Measure, Measure]] = []
        for i in range(args.repeat):  # release and floor alternate, so a change in the machine's speed hits both
            release = measure("release", _child("release", args), _fresh_home(tmp, i))
            rows.append(release)
            if args.floor:
                floor_run = measure("floor", _child("floor", args, tables="all"), env)
                rows.append(floor_run)
                pairs.append((release, floor_run))
        if len(pairs) > 1:
            notes.append(_repeat_summary(pairs, args.students))
        if args.opendp:
            python = _opendp_python(args.opendp_python)
            rows.append(measure("floor-four", _child("floor", args, tables="four"), env))
            product = measure("product-four", _child("product-four", args), env)
            rows.append(product)
            if product.ok:
                got = json.loads(product.output.strip().splitlines()[-1])
                notes.append(
                    f"product-four: validation and load included; its build alone took {got['build_cpu_s']} s CPU, "
                    f"{got['model_estimation_cpu_s']} s of it the model-based graduation estimates (which the "
                    "peers do not compute)"
                )
            if python is None:
                notes.append(
                    "OpenDP: not run; no interpreter here imports opendp with polars 1.36.1 and pyarrow (make one: "
                    "python3 -m venv /tmp/opendp-venv && /tmp/opendp-venv/bin/pip install opendp==0.16.0 "
                    "polars==1.36.1 pyarrow)"
                )
            else:
                peer = tmp / "peer"
                export = measure("export-four", _child("export", args, peer=peer), env)
                rows.append(export)
                argv = [python, str(Path(__file__).resolve()), "--step", "opendp", "--peer", str(peer), "--data", "-"]
                rows.append(measure("opendp-four", argv, env))
                notes.append(f"opendp-four ran under {python} (choose another with --opendp-python)")
                notes.append(
                    "OpenDP reads the per-student rows export-four wrote (cohorts built by DuckDB); compare "
                    "opendp-four with floor-four, which also builds them"
                )
        if args.keep and args.data != Path(args.keep):
            shutil.copytree(args.data, args.keep, dirs_exist_ok=True)
    _print_table(args.students, rows, notes)
    return 0 if all(m.ok for m in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--engine", choices=("duckdb", "spark"), default=None)
    parser.add_argument("--floor", action="store_true", help="also run the DuckDB floor (benchmarks/floor.py)")
    parser.add_argument("--opendp", action="store_true", help="also time OpenDP's Polars context on the four tables")
    parser.add_argument("--opendp-python", default=None, help="an interpreter with opendp and polars 1.36.1")
    parser.add_argument("--keep", default=None, help="folder to keep (or reuse) the generated dataset in")
    parser.add_argument("--data", type=Path, default=None, help="an existing dataset folder to measure")
    parser.add_argument("--seed", type=int, default=2010)
    parser.add_argument("--accounting", choices=("epsilon", "zcdp"), default="epsilon")
    parser.add_argument(
        "--memory-limit",
        default=None,
        type=_size,
        help="DuckDB memory limit of the floor only, e.g. 3GB (the release's is ANALYTICS_DUCKDB_MEMORY)",
    )
    parser.add_argument(
        "--skip-validate", action="store_true", help="no separate validate step (the release validates anyway)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="run the release (and, with --floor, the floor) R times, alternating (default 1); with --floor and "
        "R >= 2 the median of the per-pair release/floor ratios is printed: a shared machine's speed drifts "
        "within a day",
    )
    parser.add_argument("--step", choices=sorted(STEPS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tables", default="all", help=argparse.SUPPRESS)
    parser.add_argument("--peer", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.step:
        STEPS[args.step](args)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
