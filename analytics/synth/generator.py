"""The generator: draws every part in a fixed order from one seed and writes the dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from analytics import schema
from analytics.synth.assessments import SCORE_SCALE_HIGH, SCORE_SCALE_LOW
from analytics.synth.common import (
    COUNTIES,
    LAST_DATA_YEAR,
    LAST_SCHOOL_YEAR,
    contract_table,
    expit,
    logit,
    take,
    write_parquet,
)
from analytics.synth.geography import EL_OPTOUT_ODDS_RATIO, N_DISTRICTS, make_geography
from analytics.synth.postsecondary import simulate_postsecondary
from analytics.synth.schooling import enrollment_rows, simulate_schooling
from analytics.synth.students import make_students, student_keys
from analytics.synth.truth import write_truth
from analytics.synth.wages import simulate_wages


def generate(out_dir: Path, n_students: int, seed: int) -> dict[str, int]:
    """Write a full synthetic dataset to ``out_dir`` plus ``out_dir/truth/``.

    Args:
        out_dir: Folder to write (created if missing). Receives one
            ``<table>.parquet`` per contract table and a ``truth/`` folder with
            ``districts.parquet``, ``schools.parquet``, ``counties.parquet``,
            ``students.parquet`` and ``parameters.json``.
        n_students: Number of students, spread over the grade-9 cohorts
            2011-2021 and over the 150 districts in proportion to their size.
        seed: Seed of ``numpy.random.default_rng``; the same ``(n_students,
            seed)`` gives byte-identical files.

    Returns:
        Rows written per contract table, in contract order.

    Raises:
        ValueError: if ``n_students`` is below 1.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     counts = generate(Path(tmp), n_students=200, seed=1)
        >>> counts["students"], counts["districts"]
        (200, 150)
    """
    if n_students < 1:
        raise ValueError(f"n_students must be at least 1, got {n_students}")
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    n = int(n_students)
    root = np.random.default_rng(seed)
    rng_geo, rng_stu, rng_path, rng_score, rng_out, rng_ssn, rng_ps, rng_wage = root.spawn(8)

    geo = make_geography(rng_geo)
    keys = student_keys(rng_stu, n)
    home = rng_stu.choice(N_DISTRICTS, size=n, p=geo.district_size / geo.district_size.sum())
    stu = make_students(rng_stu, n, geo, home)

    paths, scores, a11 = simulate_schooling(rng_path, rng_score, rng_out, n, geo, stu, home)
    enrol_rows = enrollment_rows(paths)

    # SSN: asked in the first school year >= 2011 in which the student was enrolled.
    t_ask = np.maximum(paths.start, schema.FIRST_SSN_SCHOOL_YEAR - paths.year0)
    rows = np.arange(n)
    moved_before = paths.mid_move[rows, t_ask] & (t_ask > paths.start)
    ask_district = np.where(moved_before, paths.district[rows, np.maximum(t_ask - 1, 0)], paths.district[rows, t_ask])
    ask_year = paths.year0 + t_ask
    p_decline = expit(logit(geo.optout[ask_district]) + np.log(EL_OPTOUT_ODDS_RATIO) * stu.el)
    provided = rng_ssn.random(n) >= p_decline

    post = simulate_postsecondary(rng_ps, stu, paths, a11)
    wages, truth_work = simulate_wages(rng_wage, stu, paths, geo, post, provided)

    tables = {
        "districts": contract_table(
            "districts",
            {
                "district_id": pa.array(geo.district_ids),
                "district_name": pa.array(geo.district_names),
                "county": take(COUNTIES, geo.district_county),
                "locale": take(schema.LOCALES, geo.district_locale),
            },
        ),
        "schools": contract_table(
            "schools",
            {
                "school_id": pa.array(geo.school_ids),
                "school_name": pa.array(geo.school_names),
                "district_id": take(geo.district_ids, geo.school_district),
                "school_level": take(schema.SCHOOL_LEVELS, geo.school_level),
            },
        ),
        "students": contract_table(
            "students",
            {
                "student_key": pa.array(keys),
                "sex": take(schema.SEXES, stu.sex),
                "race_ethnicity": take(schema.RACE_ETHNICITY, stu.race),
                "economically_disadvantaged": pa.array(stu.ed),
                "english_learner": pa.array(stu.el),
                "disability": pa.array(stu.dis),
            },
        ),
        "enrollments": contract_table(
            "enrollments",
            {
                "student_key": take(keys, enrol_rows["student"]),
                "school_year": pa.array(enrol_rows["year"]),
                "school_id": take(geo.school_ids, enrol_rows["school"]),
                "grade": pa.array(enrol_rows["grade"]),
                "exit_type": take(schema.EXIT_TYPES, enrol_rows["exit"]),
            },
        ),
        "assessments": contract_table(
            "assessments",
            {
                "student_key": take(keys, scores["student"]),
                "school_year": pa.array(scores["year"]),
                "grade": pa.array(scores["grade"]),
                "subject": take(schema.SUBJECTS, scores["subject"]),
                "scale_score": pa.array(scores["score"]),
                "achievement_level": pa.array(scores["level"]),
            },
        ),
        "ssn_collection": contract_table(
            "ssn_collection",
            {
                "student_key": pa.array(keys),
                "school_year": pa.array(ask_year.astype(np.int64)),
                "district_id": take(geo.district_ids, ask_district),
                "status": take(schema.SSN_STATUSES, np.where(provided, 0, 1)),
            },
        ),
        "postsecondary": contract_table(
            "postsecondary",
            {
                "student_key": take(keys, post["student"]),
                "term_start": pa.array(post["term_start"].astype("datetime64[D]"), type=pa.date32()),
                "institution_level": take(schema.INSTITUTION_LEVELS, post["level"]),
                "control": take(schema.CONTROLS, post["control"]),
                "in_state": pa.array(post["in_state"]),
            },
        ),
        "wages": contract_table(
            "wages",
            {
                "student_key": take(keys, wages["student"]),
                "year": pa.array(wages["year"]),
                "quarter": pa.array(wages["quarter"]),
                "wages": pa.array(wages["wages"]),
                "naics2": take(list(schema.NAICS_SECTORS), wages["naics2"]),
            },
        ),
    }
    for name in schema.TABLE_NAMES:
        write_parquet(tables[name], out_dir / f"{name}.parquet")
    write_extract(out_dir)

    write_truth(out_dir / "truth", n, seed, keys, geo, stu, paths, ask_district, provided, truth_work)
    return {name: tables[name].num_rows for name in schema.TABLE_NAMES}


def write_extract(out_dir: Path) -> None:
    """Declare the dataset's end years and score scale in ``extract.json`` (see :mod:`analytics.extract`)."""
    config = {
        "last_school_year": LAST_SCHOOL_YEAR,
        "last_wage_year": LAST_DATA_YEAR,
        "last_postsecondary_year": LAST_DATA_YEAR,
        "score_scales": {s: [SCORE_SCALE_LOW, SCORE_SCALE_HIGH] for s in schema.SUBJECTS},
    }
    (out_dir / "extract.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
