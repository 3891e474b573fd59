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
