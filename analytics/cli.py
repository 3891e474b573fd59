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

    p = sub.add_parser("contract-doc", help="write docs/data-contract.md from analytics/schema.py")
    p.add_argument("--out", default=str(config.REPO_ROOT / "docs" / "data-contract.md"))
    p.set_defaults(handler=_contract_doc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
