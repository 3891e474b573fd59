"""Margins of error of district figures at the default budget, and what n<10 suppression would hide.

    python -m benchmarks.district_margins [--students N]

With --students, a synthetic dataset of that size (seed 2010) is generated and
used instead of the bundled sample, to see margins at state scale.

Builds the default release of the bundled sample in a temporary ANALYTICS_HOME
(the real ledger is untouched), then prints, for each district table and its
main measure, the median 95% margin of error over districts, and, for district
x cohort tables, how many cells a traditional "fewer than 10 students"
suppression rule would have hidden (computed from the exact counts, which only
this developer tool sees).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from analytics import catalog, config, lineage
from analytics.release import build_release, load_release
from analytics.synth import generate
from analytics.validate import load_dataset
from tests.accounting import STEWARD, new_ledger

MAIN_MEASURE = {
    "ssn_collection_by_district": None,
    "match_by_district_cohort": "wage_match_rate",
    "graduation_by_district": "acgr_4yr",
    "graduation_by_district_pooled": "acgr_4yr",
    "proficiency_by_district": "proficiency_rate",
    "growth_by_district": "median_growth_percentile",
    "college_by_district": "enrolled_by_oct31",
    "workforce_by_district": "employment_rate",
    "earnings_by_district": "p50",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = config.SAMPLE_DATA_DIR
        if args.students:
            data = root / "data"
            generate(data, args.students, seed=2010)
        print(f"Dataset: {data} ({args.students or 20_000:,} students), default release epsilon")
        ledger = new_ledger(root, seeded=False)  # a throw-away steward key, ledger and zCDP lineage
        lineage.register(ledger, STEWARD, "bench", cap=10.0, description="benchmark", public_allocation=10.0,
                         accounting="zcdp")  # fmt: skip
        ds = load_dataset(data)
        lineage.attach(ledger, STEWARD, "bench", ds.source, label="benchmark extract")
        build_release(data, root / "releases", user=STEWARD, ledger=ledger, dataset=ds)
        release = load_release(root / "releases")
        print("| table | measure | privacy loss | median 95% MOE over districts | share flagged unreliable |")
        print("|---|---|---|---|---|")
        for name, measure in MAIN_MEASURE.items():
            t = release.table(name)
            if measure is None:
                moe, unit, share = t["optout_rate_moe95"].median() * 100, "pts", (t["flag"] == "unreliable").mean()
                measure = "optout_rate"
            else:
                t = t[t["measure"] == measure]
                scale = 1 if measure in ("p50", "median_growth_percentile") else 100
                unit = {"p50": "$", "median_growth_percentile": "SGP points"}.get(measure, "pts")
                moe, share = t["value_moe95"].median() * scale, (t["flag"] == "unreliable").mean()
            info = release.manifest["tables"][name]
            eps = f"epsilon {info['epsilon']:g}"
            if "noise" in info:  # a count table: its noise and the rho it costs
                eps = f"rho {info.get('rho', 0.0):.3g} ({info['noise']['kind']}, sd {info['noise']['scale']:.1f})"
            elif not info["epsilon"] and info.get("rho"):  # pure parts composed in zCDP (growth)
                eps = f"rho {info['rho']:.3g} (pure parts composed in zCDP)"
            if info.get("derived_from"):  # graduation: post-processing of the measurements, which carry the cost
                source = release.manifest["tables"][info["derived_from"][0]]
                eps = f"from {info['derived_from'][0]} (rho {source.get('rho', 0.0):.3g})"
            print(f"| {name} | {measure} | {eps} | {moe:,.1f} {unit} | {share:.0%} |")
            if "model_moe95" in t:  # graduation: the model-based figure beside the direct one
                moe, share = t["model_moe95"].median() * 100, (t["model_flag"] == "unreliable").mean()
                print(f"| {name}, model-based | {measure} | {eps} | {moe:,.1f} {unit} | {share:.0%} |")

        ds = load_dataset(data)
        ctx = catalog.BuildContext(ds.source)
        print("\nDistrict x cohort cells a 'fewer than 10 students' rule would hide (exact counts):")
        cells = pd.MultiIndex.from_product([ctx.lists.district_ids, range(2011, 2022)]).size
        for label, rows in (("adjusted cohort (graduation, linkage)", ctx.cohort),):
            n = ctx.engine.execute(rows.group_by(["acgr_district_id", "cohort"]).aggregate(n=rows.count()))["n"]
            hidden = cells - int((n >= 10).sum())
            print(
                f"  {label}: {hidden:,} of {cells:,} district x cohort cells ({hidden / cells:.0%}), "
                "including the empty ones; every one is published here with noise and a flag"
            )
        college = ctx.college
        grads = ctx.engine.execute(college.group_by("acgr_district_id").aggregate(n=college.count()))["n"]
        print(f"  graduates by district (college-going): {int((grads < 10).sum()) + 150 - len(grads)} of 150")


if __name__ == "__main__":
    main()
