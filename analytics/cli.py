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
    counts = generate(Path(args.out), n_students=args.students, seed=args.seed)
    seconds = time.perf_counter() - started
    rows = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"Wrote {args.out} in {seconds:.1f} s: {rows}. Planted truth in {Path(args.out) / 'truth'}.")
    return 0


def _contract_doc(args: argparse.Namespace) -> int:
    from analytics.contract_doc import write

    print(f"Wrote {write(Path(args.out))}")
    return 0


def _password(args: argparse.Namespace) -> str:
    """The password: one line of standard input with --password-stdin, else a prompt on the terminal."""
    import getpass

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to ask for the password: pipe it with --password-stdin (e.g. from your password manager)"
        )
    return getpass.getpass(f"Password for {args.user}: ")


def _principal(args: argparse.Namespace, *, steward: bool) -> User:
    """Sign the caller in against the same accounts as the dashboard; check the role."""
    from analytics import auth, lineage

    user = auth.sign_in(args.user, _password(args))
    if steward:
        lineage.require_steward(user)
    return user


def _release(args: argparse.Namespace) -> int:
    from analytics.release import build_release

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    user = _principal(args, steward=True)
    started = time.perf_counter()
    result = build_release(Path(args.dataset), Path(args.out), user=user, epsilon=args.epsilon, progress=progress)
    seconds = time.perf_counter() - started
    state = "already published (nothing written)" if result.already_existed else "written"
    print(
        f"Release {result.release_id} {state} at {result.release_dir} in {seconds:.1f} s; "
        f"spent now {result.epsilon_spent:g}, answers reused worth epsilon {result.epsilon_reused:g}."
    )
    return 0


def _print_status(name: str) -> None:
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


def _lineage(args: argparse.Namespace) -> int:
    from analytics import lineage
    from analytics.ledger import Ledger
    from analytics.validate import load_dataset

    if args.lineage_command == "show":
        names = [args.name] if args.name else Ledger.default().lineages()
        if not names:
            print("No lineage is registered yet.")
        for name in names:
            _print_status(name)
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

    if args.budget_command == "set":
        user = _principal(args, steward=True)
        Ledger.default().set_allocation(args.lineage, args.scope, args.amount, principal=user.name)
    _print_status(args.lineage)
    return 0


def _query(args: argparse.Namespace) -> int:
    from analytics import builder
    from analytics.catalog import BuildContext
    from analytics.ledger import Ledger
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
    if not out.parent.is_dir():
        raise CliError(f"--out: the folder {out.parent} does not exist; nothing was spent")
    user = _principal(args, steward=False)
    print(f"This query costs epsilon={req.epsilon:g} from {user.budget_scope}. Expected margins of error:")
    print(builder.preview(req).to_string(index=False))
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("no terminal to confirm the spend: add --yes to run it; nothing was spent")
        if input("Run it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Not run; nothing was spent.")
            return 1
    dataset = load_dataset(Path(args.dataset))
    result = builder.run(req, dataset, user, Ledger.default(), ctx=BuildContext(dataset.source))
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
    head += ["largest pure eps", "pure rate n=100 (pts)"]
    print(" | ".join(head))
    for _, r in table.iterrows():
        cells = [f"{r['epsilon']:g}", f"{r['rho']:.4f}", f"{r['graduation_rho']:.4f}"]
        cells += [f"{r[f'moe_n{n}']:.1f}" for n in args.cells]
        cells += [f"{r['largest_pure_epsilon']:.3f}", f"{r['pure_rate_moe_n100']:.1f}"]
        print(" | ".join(cells))
    if args.show_tables:
        plan = catalog.plan_release(float(args.show_tables), "zcdp")
        assert plan.design is not None
        print(f"\nDesign at epsilon {args.show_tables:g} (rho {plan.total_rho:.4f}):")
        print(plan.design.preview().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("Graduation margins are direct (school and district levels of a one-school district, rate 87%); "
          "model-based figures are narrower where districts are alike. See docs/privacy.md.")  # fmt: skip
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

    p = sub.add_parser("release", help="build a versioned, noisy public release of an extract (stewards)")
    p.add_argument("dataset", help="dataset folder (attached to a lineage)")
    p.add_argument("--out", default=None, help="releases folder (default: $ANALYTICS_HOME/releases)")
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="total privacy loss of the release (default: analytics.release.DEFAULT_RELEASE_EPSILON)",
    )
    _signin_args(p, "the steward building the release")
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
    q = lin.add_parser("show", help="cap, spends, allocations, extracts and releases")
    q.add_argument("name", nargs="?")
    p.set_defaults(handler=_lineage)

    p = sub.add_parser("ledger", help="check the privacy ledger")
    led = p.add_subparsers(dest="ledger_command", required=True)
    led.add_parser("verify", help="verify guards, chain, seal, anchor and stored answers")
    p.set_defaults(handler=_ledger)

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


def _signin_args(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--user", required=True, help=f"{who}: a local account (`users add`)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


class CliError(Exception):
    """A command-line mistake; the message says what to do."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every refusal is a sentence on standard error and a non-zero exit, never a traceback."""
    from analytics.auth import AuthError
    from analytics.builder import RequestError
    from analytics.ledger import LedgerError
    from analytics.validate import DataValidationError

    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "release":
        from analytics.release import DEFAULT_RELEASE_EPSILON

        args.out = args.out or str(config.analytics_home() / "releases")
        args.epsilon = DEFAULT_RELEASE_EPSILON if args.epsilon is None else args.epsilon
    handler: Handler = args.handler
    try:
        return handler(args)
    except (CliError, AuthError, LedgerError, RequestError, DataValidationError) as exc:
        print(f"Refused: {exc}" if not str(exc).startswith("Refused") else exc, file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Could not do it: {exc.strerror or exc} ({exc.filename or 'file'}). Nothing was spent.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; anything not committed to the ledger was not spent.", file=sys.stderr)
        return 130
