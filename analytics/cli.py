"""Command line: ``python -m analytics COMMAND``.

Commands print what they did and exit non-zero with a sentence a user can act
on when they could not do it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from analytics import config

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
    counts = generate(Path(args.out), n_students=args.students, seed=args.seed)
    seconds = time.perf_counter() - started
    rows = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"Wrote {args.out} in {seconds:.1f} s: {rows}. Planted truth in {Path(args.out) / 'truth'}.")
    return 0


def _contract_doc(args: argparse.Namespace) -> int:
    from analytics.contract_doc import write

    print(f"Wrote {write(Path(args.out))}")
    return 0


def _release(args: argparse.Namespace) -> int:
    from analytics.ledger import BudgetExceededError
    from analytics.release import build_release
    from analytics.validate import DataValidationError

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    started = time.perf_counter()
    try:
        result = build_release(
            Path(args.dataset), Path(args.out), epsilon=args.epsilon, progress=progress, principal=args.principal
        )
    except (DataValidationError, BudgetExceededError) as exc:
        print(exc, file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    state = "already published (nothing written)" if result.already_existed else "written"
    print(
        f"Release {result.release_id} {state} at {result.release_dir} in {seconds:.1f} s; "
        f"epsilon spent now {result.epsilon_spent:g}, answers reused worth epsilon {result.epsilon_reused:g}."
    )
    return 0


def _moe(args: argparse.Namespace) -> int:
    from analytics.privacy import expected_moe95

    print(f"95% margin of error of a {args.kind} at epsilon={args.epsilon:g} (noise only; nothing is spent)")
    for n in args.students:
        moe = expected_moe95(args.kind, args.epsilon, n, rate=args.rate, lower=args.lower, upper=args.upper)
        shown = f"{moe * 100:.1f} percentage points" if args.kind == "rate" else f"{moe:,.2f}"
        print(f"  {n:>8,} students: +/- {shown}")
    return 0


def _users(args: argparse.Namespace) -> int:
    import getpass

    from analytics import auth

    try:
        if args.users_command == "add":
            if args.oidc:
                user = auth.add_oidc_user(args.name, args.role)
            else:
                password = (
                    sys.stdin.readline().rstrip("\n")
                    if args.password_stdin
                    else getpass.getpass(f"Password for {args.name}: ")
                )
                if not args.password_stdin and getpass.getpass("Again: ") != password:
                    print("The passwords differ; nothing was changed.", file=sys.stderr)
                    return 1
                user = auth.add_user(args.name, args.role, password)
            print(f"{user.name} is a {user.role} ({auth.users_path()}).")
        else:
            for user in auth.list_users():
                print(f"{user.name}\t{user.role}")
    except auth.AuthError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _budget(args: argparse.Namespace) -> int:
    from analytics.ledger import Ledger
    from analytics.validate import DataValidationError, validate_dataset

    report = validate_dataset(Path(args.dataset))
    if report.fingerprint is None:
        print(DataValidationError(report), file=sys.stderr)
        return 1
    ledger = Ledger.default()
    if args.budget_command == "set":
        try:
            ledger.set_budget(args.scope, report.fingerprint, args.epsilon, set_by=args.by)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
    fp = report.fingerprint
    scopes = sorted({e.scope for e in ledger.history(dataset_fingerprint=fp)})
    print(f"Dataset {fp[:12]}: total privacy loss so far epsilon={ledger.total_spent(fp).epsilon:g}")
    for scope in scopes:
        print(f"  {scope}: spent {ledger.spent(scope, fp):g} of {ledger.budget(scope, fp)}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from analytics import builder
    from analytics.ledger import BudgetExceededError, Ledger
    from analytics.validate import DataValidationError, load_dataset

    filters: dict[str, tuple[object, ...]] = {}
    for item in args.filter or []:
        dim, _, values = item.partition("=")
        filters[dim] = tuple(
            int(v) if v.lstrip("-").isdigit() else {"true": True, "false": False}.get(v.lower(), v)
            for v in values.split(",")
        )
    req = builder.TableRequest(
        args.population, args.measure, tuple(args.by), args.epsilon, args.outcome, filters, args.lower, args.upper
    )
    try:
        req = req.checked()
        print(f"This query costs epsilon={req.epsilon:g} from researcher:{args.user}. Expected margins of error:")
        print(builder.preview(req).to_string(index=False))
        if not args.yes and input("Run it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Not run; nothing was spent.")
            return 1
        result = builder.run(req, load_dataset(Path(args.dataset)), args.user, Ledger.default())
    except (builder.RequestError, BudgetExceededError, DataValidationError) as exc:
        print(exc, file=sys.stderr)
        return 1
    paths = builder.write_outputs(result, Path(args.out))
    state = "the stored answer (nothing spent)" if result.spend.reused else f"spent epsilon={req.epsilon:g}"
    print(f"Wrote {', '.join(str(p) for p in paths.values())}; {state}.")
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
    p.set_defaults(handler=_generate)

    p = sub.add_parser("release", help="build a versioned, noisy public release of a dataset")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--out", default=None, help="releases folder (default: $ANALYTICS_HOME/releases)")
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="total privacy loss of the release (default: analytics.release.DEFAULT_RELEASE_EPSILON)",
    )
    p.add_argument("--principal", default="release-builder", help="who is spending, as recorded in the ledger")
    p.set_defaults(handler=_release)

    p = sub.add_parser("moe", help="margin of error a query would get, before anything is spent")
    p.add_argument("--kind", choices=["count", "rate", "mean"], default="rate")
    p.add_argument("--epsilon", type=float, required=True)
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
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_parser("list", help="list users and roles")
    p.set_defaults(handler=_users)

    p = sub.add_parser("budget", help="show or set privacy budgets of a dataset (public or researcher:NAME)")
    budgets = p.add_subparsers(dest="budget_command", required=True)
    q = budgets.add_parser("set", help="set a budget")
    q.add_argument("dataset")
    q.add_argument("--scope", required=True, help="public or researcher:NAME")
    q.add_argument("--epsilon", type=float, required=True)
    q.add_argument("--by", required=True, help="the steward setting it, recorded in the ledger")
    q = budgets.add_parser("show", help="show budgets and spends")
    q.add_argument("dataset")
    p.set_defaults(handler=_budget)

    p = sub.add_parser("query", help="a researcher's custom noisy table, paid from their allocation")
    p.add_argument("dataset")
    p.add_argument("--user", required=True, help="the researcher (their allocation is charged)")
    p.add_argument(
        "--population", required=True, help="adjusted_cohort, graduates, workforce_all, workforce_matched or employed"
    )
    p.add_argument("--measure", required=True, choices=["count", "rate", "mean", "percentile"])
    p.add_argument("--outcome", default=None, help="boolean outcome (rate) or value (mean, percentile)")
    p.add_argument("--by", nargs="+", required=True, help="group-by dimensions")
    p.add_argument("--filter", action="append", help="DIM=V1,V2 (repeatable)")
    p.add_argument("--lower", type=float, default=None)
    p.add_argument("--upper", type=float, default=None)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--out", required=True, help="output path without suffix: writes .csv, .parquet, .json")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "release":
        from analytics.release import DEFAULT_RELEASE_EPSILON

        args.out = args.out or str(config.analytics_home() / "releases")
        args.epsilon = DEFAULT_RELEASE_EPSILON if args.epsilon is None else args.epsilon
    handler: Handler = args.handler
    return handler(args)
