"""Time the generator, validation and a release build; print the figures.

    python -m benchmarks.build_times [--students 200000]

Builds in a temporary folder with its own steward key, ledger and zCDP lineage (as a steward
would), so the real ledger is never touched.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analytics import config, lineage
from analytics.release import build_release
from analytics.synth import generate
from analytics.validate import load_dataset
from tests.accounting import STEWARD, new_ledger


def _du(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False).stdout.split()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        generate(root / "big", args.students, seed=2010)
        print(f"generate {args.students:,} students: {time.perf_counter() - t:.1f} s, {_du(root / 'big')} on disk")
        t = time.perf_counter()
        load_dataset(root / "big")
        print(f"validate + load {args.students:,} students: {time.perf_counter() - t:.1f} s")
        for label, data in (
            ("bundled sample (20,000 students)", config.SAMPLE_DATA_DIR),
            (f"{args.students:,} students", root / "big"),
        ):
            t = time.perf_counter()
            ledger = new_ledger(root / label.split()[0], seeded=False)
            lineage.register(ledger, STEWARD, "bench", cap=10.0, description="benchmark", public_allocation=10.0,
                             accounting="zcdp")  # fmt: skip
            ds = load_dataset(data)
            lineage.attach(ledger, STEWARD, "bench", ds.source, label="benchmark extract")
            build_release(data, root / label.split()[0] / "releases", user=STEWARD, ledger=ledger, dataset=ds)
            print(f"validate + release build, {label}: {time.perf_counter() - t:.1f} s")
        print(f"bundled sample on disk: {_du(config.SAMPLE_DATA_DIR)}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {peak:,.0f} MB")
    sys.exit(0)


if __name__ == "__main__":
    main()
