"""Command line: ``python -m analytics COMMAND``.

Commands print what they did and exit non-zero with a sentence a user can act
on when they could not do it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analytics import config
from analytics.auth import User

Handler = Callable[[argparse.Namespace], int]


def _validate(args: argparse.Namespace) -> int:
    from analytics.validate import validate_dataset

    report = validate_dataset(Path(args.dataset))
    print(report.text(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def _generate(args: argparse.Namespace) -> int:
    from analytics.synth import generate

    if args.students < 100:
        print("--students must be at least 100", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        counts = generate(Path(args.out), n_students=args.students, seed=args.seed, last_year=args.last_year)
    except ValueError as exc:
        print(str(exc).replace("last_year", "--last-year"), file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    rows = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"Wrote {args.out} in {seconds:.1f} s: {rows}. Planted truth in {Path(args.out) / 'truth'}.")
    return 0


def _contract_doc(args: argparse.Namespace) -> int:
    from analytics.contract_doc import write

    print(f"Wrote {write(Path(args.out))}")
    return 0


def _password(args: argparse.Namespace, who: str | None = None) -> str:
    """The password: one line of standard input with --password-stdin, else a prompt on the terminal."""
    import getpass

    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CliError("no password on standard input (--password-stdin reads one line); nothing was done")
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to ask for the password: pipe it with --password-stdin (e.g. from your password manager)"
        )
    return getpass.getpass(f"Password for {who or args.user}: ")


def _principal(args: argparse.Namespace, *, steward: bool) -> User:
    """Sign the caller in against the same accounts as the dashboard; check the role."""
    from analytics import auth, lineage

    user = auth.sign_in(args.user, _password(args))
    if steward:
        lineage.require_steward(user)
    return user


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default=None,
        help="engine for the exact work (default: $ANALYTICS_ENGINE, else duckdb; docs/scale.md)",
    )
    p.add_argument(
        "--spark-master",
        default=None,
        help="Spark master URL for --engine spark (default: $ANALYTICS_SPARK_MASTER, else local[2])",
    )


def _engine(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from analytics.engine import EngineConfig

    cfg = EngineConfig.from_env()
    if args.engine:
        cfg = replace(cfg, kind=args.engine)
    if args.spark_master:
        if cfg.kind != "spark":
            raise CliError(
                f"--spark-master is for the Spark engine, and this command would run on {cfg.kind}: "
                "add --engine spark (or set ANALYTICS_ENGINE=spark)"
            )
        cfg = replace(cfg, spark_master=args.spark_master)
    return cfg


def _release(args: argparse.Namespace) -> int:
    from analytics.release import build_release

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    engine = _engine(args)  # a mistaken engine setting is named before the password is asked for
    user = _principal(args, steward=True)
    started = time.perf_counter()
    result = build_release(
        Path(args.dataset), Path(args.out), user=user, epsilon=args.epsilon, progress=progress, engine=engine
    )
    seconds = time.perf_counter() - started
    state = "already published (nothing written)" if result.already_existed else "written"
    manifest = json.loads((result.release_dir / "manifest.json").read_text(encoding="utf-8"))
    loss = manifest["lineage_privacy_loss"]
    print(
        f"Release {result.release_id} {state} at {result.release_dir} in {seconds:.1f} s.\n"
        f"This build spent {loss['unit']} {result.epsilon_spent:g} and reused stored answers worth "
        f"{result.epsilon_reused:g}. The students of {manifest['lineage']} have now borne {loss['unit']} "
        f"{loss['spent']:g} of its cap of {loss['cap']:g}."
    )
    return 0


def _print_status(name: str, spends: bool = False) -> None:
    from analytics.ledger import Ledger

    st = Ledger.default().status(name)
    eps, delta = st.epsilon_at()
    print(f"Lineage {st.name}: {st.description}")
    print(
        f"  accounting {st.accounting}; cap {st.unit}={st.cap:g}; spent {st.spent:g} "
        f"(epsilon {eps:g}, delta {delta:g}); remaining {st.remaining:g}; "
        f"most one researcher query may cost: {st.max_query:g}"
    )
    for scope, (allocated, spent) in st.allocations.items():
        print(f"  {scope}: allocation {allocated:g}, spent {spent:g}")
    for x in st.extracts:
        print(f"  extract {x.number}: {x.label} (attached {x.attached_at[:10]})")
    for release_id, entry_id in st.releases:
        print(f"  release {release_id} (ledger entry {entry_id})")
    if spends:
        for e in Ledger.default().history(lineage=name, kind="spend"):
            what = (e.query or {}).get("table") or (e.query or {}).get("population") or "query"
            print(
                f"  spend {e.entry_id}: {e.created_at[:19]} {e.scope} {st.unit} {e.charge:g} ({what}, by {e.principal})"
            )


def _lineage(args: argparse.Namespace) -> int:
    from analytics import lineage
    from analytics.ledger import Ledger
    from analytics.validate import load_dataset

    if args.lineage_command == "show":
        names = [args.name] if args.name else Ledger.default().lineages()
        if not names:
            print("No lineage is registered yet.")
        for name in names:
            _print_status(name, spends=args.spends)
        return 0
    user = _principal(args, steward=True)
    ledger = Ledger.default()
    if args.lineage_command == "register":
        lineage.register(
            ledger,
            user,
            args.name,
            cap=args.cap,
            description=args.description,
            public_allocation=args.public,
            accounting=args.accounting,
            max_query=args.max_query,
        )
    elif args.lineage_command == "attach":
        attached = lineage.attach(ledger, user, args.name, load_dataset(Path(args.dataset)).source, label=args.label)
        print(f"Attached {args.dataset} to {attached.lineage} as extract {attached.number}.")
    elif args.lineage_command == "set-cap":
        ledger.set_cap(args.name, args.cap, principal=user.name)
    elif args.lineage_command == "set-max-query":
        ledger.set_max_query(args.name, args.amount, principal=user.name)
    _print_status(args.name)
    return 0


def _moe(args: argparse.Namespace) -> int:
    import math

    from analytics.privacy import CountNoise, expected_moe95

    amount = args.epsilon if args.rho is None else args.rho
    name = "--epsilon" if args.rho is None else "--rho"
    if not (math.isfinite(amount) and amount > 0):
        raise CliError(f"{name} must be a finite number above 0 (for example 0.5).")
    if not (math.isfinite(args.rate) and 0.0 <= args.rate <= 1.0):
        raise CliError("--rate is a share between 0 and 1 (for example 0.3 for 30%).")
    if not (math.isfinite(args.lower) and math.isfinite(args.upper) and args.lower < args.upper):
        raise CliError("--lower and --upper must be finite numbers with --lower below --upper.")
    if any(n < 1 for n in args.students):
        raise CliError("--students takes group sizes of 1 or more.")
    budget: CountNoise | float = args.epsilon
    if args.rho is not None:
        if args.kind == "mean":
            raise CliError("--rho previews count tables (counts and rates); a mean's margin needs --epsilon.")
        if not 1 <= args.rows_per_cell <= args.rows_per_student:
            raise CliError("--rows-per-cell must be between 1 and --rows-per-student.")
        budget = CountNoise.for_histogram("zcdp", args.rho, args.rows_per_student, args.rows_per_cell)
        print(f"95% margin of error of a {args.kind} at rho={args.rho:g}: discrete Gaussian, sd {budget.scale:.2f} per "
              f"count ({args.rows_per_student} row(s) per student, {args.rows_per_cell} per cell; noise only; "
              "nothing is spent)")  # fmt: skip
    else:
        print(f"95% margin of error of a {args.kind} at epsilon={args.epsilon:g} (noise only; nothing is spent)")
    for n in args.students:
        moe = expected_moe95(args.kind, budget, n, rate=args.rate, lower=args.lower, upper=args.upper)
        shown = f"{moe * 100:.1f} percentage points" if args.kind == "rate" else f"{moe:,.2f}"
        print(f"  {n:>8,} students: +/- {shown}")
    return 0


def _users(args: argparse.Namespace) -> int:
    import getpass

    from analytics import auth, lineage

    if args.users_command == "list":
        for user in auth.list_users(allow_unsealed=True):
            print(f"{user.name}\t{user.role}")
        return 0
    if args.users_command == "seal":
        sealed = auth.seal_legacy_file(args.by, _password(args, who=args.by))
        print(f"Sealed {len(sealed)} account(s): {', '.join(f'{u.name} ({u.role})' for u in sealed)}.")
        return 0
    if auth.has_steward():
        if not args.by:
            raise CliError(
                "accounts exist, so a steward must sign in to add or change one: add --by STEWARD "
                "(with --password-stdin, the steward's password is the first line and the new password the second)"
            )
        acting = auth.sign_in(args.by, _password(args, who=args.by))
        lineage.require_steward(acting)
    elif args.role != "steward":
        raise CliError("the first account must be a steward: `users add NAME --role steward`")
    if args.oidc:
        user = auth.add_oidc_user(args.name, args.role)
    else:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise CliError("no password on standard input for the new account; nothing was changed")
        else:
            if not sys.stdin.isatty():
                raise CliError("no terminal to ask for the new password: pipe it with --password-stdin")
            password = getpass.getpass(f"New password for {args.name}: ")
            if getpass.getpass("Again: ") != password:
                raise CliError("the passwords differ; nothing was changed")
        user = auth.add_user(args.name, args.role, password)
    print(f"{user.name} is a {user.role} ({auth.users_path()}).")
    return 0


def _budget(args: argparse.Namespace) -> int:
    from analytics.ledger import Ledger

    if args.budget_command == "set":
        user = _principal(args, steward=True)
        Ledger.default().set_allocation(args.lineage, args.scope, args.amount, principal=user.name)
    _print_status(args.lineage)
    return 0


def _query(args: argparse.Namespace) -> int:
    from analytics import builder, lineage
    from analytics.catalog import BuildContext
    from analytics.ledger import Ledger, query_key
    from analytics.validate import load_dataset

    filters: dict[str, tuple[object, ...]] = {}
    for item in args.filter or []:
        dim, sep, values = item.partition("=")
        if not sep or not values:
            raise CliError(f"--filter {item[:40]!r} must look like DIMENSION=VALUE1,VALUE2")
        filters[dim.strip()] = tuple(v.strip() for v in values.split(","))
    quantiles = tuple(args.quantiles) if args.quantiles else (0.25, 0.5, 0.75)
    req = builder.TableRequest(
        args.population,
        args.measure,
        tuple(args.by),
        args.epsilon,
        args.outcome,
        filters,
        args.lower,
        args.upper,
        quantiles,
    ).checked()
    out = Path(args.out)
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a path without a suffix inside it, e.g. {out / 'table'}")
    if out.suffix:
        raise CliError(
            f"--out takes a path without a suffix ({out.with_suffix('')}): .csv, .parquet and .json are added"
        )
    if not out.parent.is_dir():
        raise CliError(f"--out: the folder {out.parent} does not exist; nothing was spent")
    engine = _engine(args)
    user = _principal(args, steward=False)
    dataset = load_dataset(Path(args.dataset))
    ledger = Ledger.default()
    with BuildContext(dataset.source, engine=engine) as ctx:
        req = req.canonical(ctx)
        attached = lineage.resolve(ledger, dataset.source, dataset.path)
        free = query_key(req.query()) in ledger.answered(attached.lineage, attached.extract_id, user.budget_scope)
        if free:
            print("You asked this before: the stored answer is returned and nothing is spent.")
        else:
            ledger.check_affordable(
                attached.lineage, user.budget_scope, ledger.charge_of(attached.lineage, epsilon=req.epsilon)
            )
            print(
                f"This query costs epsilon={req.epsilon:g} from {user.budget_scope} on {attached.lineage}. "
                "Expected margins of error:"
            )
            print(builder.preview(req).to_string(index=False))
        if not args.yes and not free:
            if not sys.stdin.isatty():
                raise CliError("no terminal to confirm the spend: add --yes to run it; nothing was spent")
            if input("Run it? [y/N] ").strip().lower() not in ("y", "yes"):
                print("Not run; nothing was spent.")
                return 1
        result = builder.run(req, dataset, user, ledger, ctx=ctx)
        paths = builder.write_outputs(result, out)
        state = "the stored answer (nothing spent)" if result.spend.reused else f"spent epsilon={req.epsilon:g}"
        print(f"Wrote {', '.join(str(p) for p in paths.values())}; {state}.")
        return 0


def _ledger(args: argparse.Namespace) -> int:
    from analytics.ledger import Ledger

    head = Ledger.default().verify()
    print(f"The ledger verifies: {head.n_entries} entries, chain, seal and anchor intact.")
    return 0


def _report(args: argparse.Namespace) -> int:
    from analytics.release import load_release
    from analytics.report import build_report

    releases_dir = Path(args.releases or config.analytics_home() / "releases")
    try:
        release = load_release(releases_dir, None if args.release in (None, "latest") else args.release)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    started = time.perf_counter()
    paths = build_report(release, Path(args.out))
    print(f"Wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - started:.1f} s.")
    return 0


def _design(args: argparse.Namespace) -> int:
    from analytics import catalog
    from analytics.release import DEFAULT_RELEASE_EPSILON

    totals = args.epsilon or [2.0, 4.0, DEFAULT_RELEASE_EPSILON, 10.0]
    table = catalog.design_tradeoff(sorted(set(totals)), tuple(args.cells))
    print(f"zCDP release design: total privacy loss against expected 95% margins (delta {catalog.RELEASE_DELTA:g}; "
          "nothing is spent).")  # fmt: skip
    head = ["epsilon", "rho", "graduation rho"] + [f"grad n={n} (pts)" for n in args.cells]
    head += ["rho of the largest one-row count table", "its rate at 50%, n=100 (pts)"]
    print(" | ".join(head))
    for _, r in table.iterrows():
        cells = [f"{r['epsilon']:g}", f"{r['rho']:.4f}", f"{r['graduation_rho']:.4f}"]
        cells += [f"{r[f'moe_n{n}']:.1f}" for n in args.cells]
        cells += [f"{r['largest_count_rho']:.4f}", f"{r['count_rate_moe_n100']:.1f}"]
        print(" | ".join(cells))
    if args.show_tables:
        plan = catalog.plan_release(float(args.show_tables), "zcdp")
        assert plan.design is not None
        print(f"\nDesign at epsilon {args.show_tables:g} (rho {plan.total_rho:.4f}); rate_moe95 at 50 students and 87% "
              "for graduation levels, 100 rows and 50% for count tables; for growth tables, epsilon is that of each of "
              "their pure parts (pure_parts):")  # fmt: skip
        print(plan.design.preview().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("Graduation margins are direct (school and district levels of a one-school district, rate 87%); "
          "model-based figures are narrower where districts are alike. The one-row count table with the most rho "
          f"is {table['largest_count_table'].iloc[0]} (discrete Gaussian; tables with more rows per student have "
          "their own sensitivity, see --show-tables). See docs/privacy.md.")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a dataset folder against the data contract")
    p.add_argument("dataset", help="folder with one <table>.parquet or <table>.csv per table")
    p.set_defaults(handler=_validate)

    p = sub.add_parser("generate", help="write a synthetic SLDS dataset with planted truth")
    p.add_argument("--out", required=True, help="folder to write (created if missing)")
    p.add_argument("--students", type=int, default=20_000, help="number of students (default 20000)")
    p.add_argument("--seed", type=int, default=2010, help="random seed (default 2010)")
    p.add_argument(
        "--last-year",
        type=int,
        default=2025,
        help="end the extract after this school and calendar year (2011-2025; default 2025); extract.json declares it",
    )
    p.set_defaults(handler=_generate)

    p = sub.add_parser("release", help="build a versioned, noisy public release of an extract (stewards)")
    p.add_argument("dataset", help="dataset folder (attached to a lineage)")
    p.add_argument("--out", default=None, help="releases folder (default: $ANALYTICS_HOME/releases)")
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help=f"total privacy loss of the release (default {_default_release_epsilon():g})",
    )
    _signin_args(p, "the steward building the release")
    _engine_args(p)
    p.set_defaults(handler=_release)

    p = sub.add_parser("design", help="the release design: total privacy loss against margins, before spending")
    p.add_argument("--epsilon", type=float, action="append", help="a total (epsilon at delta 1e-10); repeatable")
    p.add_argument("--cells", type=int, nargs="+", default=[20, 50, 100], help="cell sizes to preview")
    p.add_argument("--show-tables", type=float, default=None, metavar="EPSILON", help="every table's share at a total")
    p.set_defaults(handler=_design)

    p = sub.add_parser("lineage", help="student populations: register, attach extracts, caps (stewards)")
    lin = p.add_subparsers(dest="lineage_command", required=True)
    q = lin.add_parser("register", help="register a student population once, with its cap")
    q.add_argument("name", help="lower-case letters, digits and dashes, e.g. maine-slds")
    q.add_argument("--cap", type=float, required=True, help="the most privacy loss any one student may bear, ever")
    q.add_argument("--description", required=True, help="which students it covers (public words)")
    q.add_argument("--public", type=float, default=None, help="allocation of the public releases (default: none)")
    q.add_argument("--accounting", choices=["epsilon", "zcdp"], default="epsilon")
    q.add_argument("--max-query", type=float, default=None, help="most one researcher query may cost (default 0.5)")
    _signin_args(q, "the steward registering it")
    q = lin.add_parser("attach", help="attach an extract (a folder) to a lineage")
    q.add_argument("name")
    q.add_argument("dataset")
    q.add_argument("--label", required=True, help="e.g. '2025 annual extract'")
    _signin_args(q, "the steward attaching it")
    q = lin.add_parser("set-cap", help="change a lineage's cap (never below what is spent)")
    q.add_argument("name")
    q.add_argument("--cap", type=float, required=True)
    _signin_args(q, "the steward")
    q = lin.add_parser("set-max-query", help="the most one researcher query may cost")
    q.add_argument("name")
    q.add_argument("--amount", type=float, required=True)
    _signin_args(q, "the steward")
    q = lin.add_parser("show", help="cap, allocations, extracts and releases (and every spend with --spends)")
    q.add_argument("name", nargs="?")
    q.add_argument("--spends", action="store_true", help="list every spend: when, who, allocation, cost, what")
    p.set_defaults(handler=_lineage)

    p = sub.add_parser("ledger", help="check the privacy ledger")
    led = p.add_subparsers(dest="ledger_command", required=True)
    led.add_parser("verify", help="verify guards, chain, seal, anchor and stored answers")
    p.set_defaults(handler=_ledger)

    p = sub.add_parser("moe", help="margin of error a query would get, before anything is spent")
    p.add_argument("--kind", choices=["count", "rate", "mean"], default="rate")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--epsilon", type=float, help="pure epsilon: geometric counts (researchers' tables)")
    budget.add_argument(
        "--rho", type=float, help="rho: discrete Gaussian counts, as a release's count tables on a zCDP population"
    )
    p.add_argument("--rows-per-student", type=int, default=1, help="with --rho: rows a student keeps in all")
    p.add_argument("--rows-per-cell", type=int, default=1, help="with --rho: rows a student keeps in one cell")
    p.add_argument("--students", type=int, nargs="+", default=[20, 100, 1000])
    p.add_argument("--rate", type=float, default=0.5, help="assumed rate, for --kind rate")
    p.add_argument("--lower", type=float, default=0.0, help="value bounds, for --kind mean")
    p.add_argument("--upper", type=float, default=1.0)
    p.set_defaults(handler=_moe)

    p = sub.add_parser("users", help="manage local sign-in users (salted password hashes)")
    users = p.add_subparsers(dest="users_command", required=True)
    q = users.add_parser("add", help="add or replace a user")
    q.add_argument("name")
    q.add_argument("--role", choices=["researcher", "steward"], required=True)
    q.add_argument("--oidc", action="store_true", help="an OIDC e-mail address: record the role, no password")
    q.add_argument("--by", default=None, help="the steward adding or changing the account (needed once one exists)")
    q.add_argument(
        "--password-stdin",
        action="store_true",
        help="read passwords from standard input: the steward's (with --by) first, then the new one",
    )
    users.add_parser("list", help="list users and roles")
    q = users.add_parser("seal", help="seal an accounts file written by an older version (a steward in it)")
    q.add_argument("--by", required=True, help="a steward listed in the file")
    q.add_argument("--password-stdin", action="store_true", help="read the steward's password from standard input")
    p.set_defaults(handler=_users)

    p = sub.add_parser("budget", help="show or set allocations within a lineage's cap (stewards set)")
    budgets = p.add_subparsers(dest="budget_command", required=True)
    q = budgets.add_parser("set", help="set an allocation")
    q.add_argument("lineage")
    q.add_argument("--scope", required=True, help="public or researcher:NAME")
    q.add_argument("--amount", "--epsilon", dest="amount", type=float, required=True, help="in the lineage's unit")
    _signin_args(q, "the steward setting it")
    q = budgets.add_parser("show", help="show allocations and spends")
    q.add_argument("lineage")
    p.set_defaults(handler=_budget)

    p = sub.add_parser("query", help="a researcher's custom noisy table, paid from their allocation")
    p.add_argument("dataset")
    _signin_args(p, "the researcher (their allocation is charged)")
    p.add_argument(
        "--population", required=True, help="adjusted_cohort, graduates, workforce_all, workforce_matched or employed"
    )
    p.add_argument("--measure", required=True, choices=["count", "rate", "mean", "percentile"])
    p.add_argument("--outcome", default=None, help="boolean outcome (rate) or value (mean, percentile)")
    p.add_argument("--by", nargs="+", required=True, help="group-by dimensions")
    p.add_argument("--filter", action="append", help="DIM=V1,V2 (repeatable)")
    p.add_argument("--lower", type=float, default=None)
    p.add_argument("--upper", type=float, default=None)
    p.add_argument("--quantiles", type=float, nargs="+", default=None, help="for percentiles (default 0.25 0.5 0.75)")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--out", required=True, help="output path without suffix: writes .csv, .parquet, .json")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _engine_args(p)
    p.set_defaults(handler=_query)

    p = sub.add_parser("report", help="the annual SLDS grant report package (xlsx, CSV zip, PDF) of a release")
    p.add_argument("release", nargs="?", default="latest", help="release id, or 'latest'")
    p.add_argument("--releases", default=None, help="releases folder (default: $ANALYTICS_HOME/releases)")
    p.add_argument("--out", required=True, help="output path; .xlsx, .zip and .pdf are written beside it")
    p.set_defaults(handler=_report)

    p = sub.add_parser("contract-doc", help="write docs/data-contract.md from analytics/schema.py")
    p.add_argument("--out", default=str(config.REPO_ROOT / "docs" / "data-contract.md"))
    p.set_defaults(handler=_contract_doc)
    return parser


def _default_release_epsilon() -> float:
    from analytics.release import DEFAULT_RELEASE_EPSILON

    return DEFAULT_RELEASE_EPSILON


def _signin_args(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--user", required=True, help=f"{who}: a local account (`users add`)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


class CliError(Exception):
    """A command-line mistake; the message says what to do."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every refusal is a sentence on standard error and a non-zero exit, never a traceback."""
    import logging

    from analytics.auth import AuthError
    from analytics.builder import RequestError
    from analytics.engine import EngineError
    from analytics.ledger import LedgerError
    from analytics.validate import DataValidationError

    logging.getLogger("analytics").addHandler(logging.NullHandler())  # the server's log, not this terminal
    logging.getLogger("analytics").propagate = False
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "release":
        from analytics.release import DEFAULT_RELEASE_EPSILON

        args.out = args.out or str(config.analytics_home() / "releases")
        args.epsilon = DEFAULT_RELEASE_EPSILON if args.epsilon is None else args.epsilon
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # here, where a closed pipe is caught below, not at the interpreter's exit
        return code
    except (CliError, AuthError, LedgerError, RequestError, DataValidationError, EngineError) as exc:
        print(f"Refused: {exc}" if not str(exc).startswith("Refused") else exc, file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader stopped reading (``lineage show | head``): nothing of ours failed, so say nothing, and
        # point standard output at /dev/null so the interpreter's last flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"Could not do it: {exc.strerror or exc} ({exc.filename or 'file'}). Nothing was spent.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; anything not committed to the ledger was not spent.", file=sys.stderr)
        return 130
