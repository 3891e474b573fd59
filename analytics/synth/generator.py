"""The generator: draws every part in a fixed order from one seed and writes the dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from analytics import schema
from analytics.synth import cases
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
from analytics.synth.postsecondary import simulate_postsecondary, with_institutions
from analytics.synth.schooling import enrollment_rows, simulate_schooling
from analytics.synth.students import make_students, student_keys
from analytics.synth.truth import write_truth
from analytics.synth.wages import simulate_wages


def generate(out_dir: Path, n_students: int, seed: int, last_year: int = LAST_SCHOOL_YEAR) -> dict[str, int]:
    """Write a full synthetic dataset to ``out_dir`` plus ``out_dir/truth/``.

    Args:
        out_dir: Folder to write (created if missing). Receives one
            ``<table>.parquet`` per contract table, ``extract.json`` and a
            ``truth/`` folder with ``districts.parquet``, ``schools.parquet``,
            ``counties.parquet``, ``students.parquet`` and ``parameters.json``.
        n_students: Number of students simulated, spread over the grade-9
            cohorts 2011-2021 (and a planted sample of 2023-2025, still in
            school) and over the 150 districts in proportion to their size.
        seed: Seed of ``numpy.random.default_rng``; the same ``(n_students,
            seed, last_year)`` gives byte-identical files.
        last_year: Last school year and calendar year of the extract
            (2011-2025; default 2025). An earlier year writes the same
            population cut after that year: later records are left out, a
            history still open then ends on a 'continuing' row, students who
            arrive later are not in the extract, and ``extract.json`` declares
            the year.

    Returns:
        Rows written per contract table, in contract order.

    Raises:
        ValueError: if ``n_students`` is below 1 or ``last_year`` is outside 2011-2025.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     counts = generate(Path(tmp), n_students=200, seed=1)
        >>> counts["students"], counts["districts"]
        (200, 150)
    """
    if n_students < 1:
        raise ValueError(f"n_students must be at least 1, got {n_students}")
    if not schema.FIRST_SSN_SCHOOL_YEAR <= last_year <= LAST_SCHOOL_YEAR:
        raise ValueError(
            f"last_year must lie between {schema.FIRST_SSN_SCHOOL_YEAR} and {LAST_SCHOOL_YEAR}, got {last_year}"
        )
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    n = int(n_students)
    last_year = int(last_year)
    root = np.random.default_rng(seed)
    rng_geo, rng_stu, rng_path, rng_score, rng_out, rng_ssn, rng_ps, rng_wage, rng_case = root.spawn(9)

    geo = make_geography(rng_geo)
    keys = student_keys(rng_stu, n)
    home = rng_stu.choice(N_DISTRICTS, size=n, p=geo.district_size / geo.district_size.sum())
    stu = make_students(rng_stu, n, geo, home)
    cases.open_cohorts(rng_case, stu)

    paths, scores, a11 = simulate_schooling(rng_path, rng_score, rng_out, n, geo, stu, home)
    interim, returned5, returned4 = cases.interim_exits(rng_case, paths)
    obs = cases.observe(paths, interim, last_year)
    extra = cases.same_year_transfer_rows(rng_case, paths, geo)
    same_year = np.zeros(n, dtype=bool)
    same_year[extra["student"][extra["year"] <= last_year]] = True
    same_year &= obs.seen
    enrol_rows = enrollment_rows(obs.paths, interim, extra)

    # SSN: asked in the first school year >= 2011 in which the student was enrolled.
    t_ask = np.maximum(paths.start, schema.FIRST_SSN_SCHOOL_YEAR - paths.year0)
    rows = np.arange(n)
    moved_before = paths.mid_move[rows, t_ask] & (t_ask > paths.start)
    ask_district = np.where(moved_before, paths.district[rows, np.maximum(t_ask - 1, 0)], paths.district[rows, t_ask])
    ask_year = paths.year0 + t_ask
    p_decline = expit(logit(geo.optout[ask_district]) + np.log(EL_OPTOUT_ODDS_RATIO) * stu.el)
    provided = rng_ssn.random(n) >= p_decline

    post = simulate_postsecondary(rng_ps, stu, paths, a11)
    boost = cases.high_earners(rng_case, n)
    wages, truth_work = simulate_wages(rng_wage, stu, paths, geo, post, provided, boost)
    terms, _ = with_institutions(rng_case, post, n, cases.P_CO_ENROL)

    # What the extract shows: students seen by the last year, records up to it.
    seen = obs.seen
    keep_students = np.flatnonzero(seen)
    scores = _rows_until(scores, scores["year"], last_year, seen)
    terms = _rows_until(terms, terms["term_year"], last_year, seen)
    wages = _rows_until(wages, wages["year"], last_year, seen)
    enrol_rows = _rows_until(enrol_rows, enrol_rows["year"], last_year, seen)

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
                "student_key": take(keys, keep_students),
                "sex": take(schema.SEXES, stu.sex[keep_students]),
                "race_ethnicity": take(schema.RACE_ETHNICITY, stu.race[keep_students]),
                "economically_disadvantaged": pa.array(stu.ed[keep_students]),
                "english_learner": pa.array(stu.el[keep_students]),
                "disability": pa.array(stu.dis[keep_students]),
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
                "student_key": take(keys, keep_students),
                "school_year": pa.array(ask_year[keep_students].astype(np.int64)),
                "district_id": take(geo.district_ids, ask_district[keep_students]),
                "status": take(schema.SSN_STATUSES, np.where(provided[keep_students], 0, 1)),
            },
        ),
        "postsecondary": contract_table(
            "postsecondary",
            {
                "student_key": take(keys, terms["student"]),
                "term_start": pa.array(terms["term_start"].astype("datetime64[D]"), type=pa.date32()),
                "institution_level": take(schema.INSTITUTION_LEVELS, terms["level"]),
                "control": take(schema.CONTROLS, terms["control"]),
                "in_state": pa.array(terms["in_state"]),
                "institution_id": pa.array(terms["institution"]),
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
    write_extract(out_dir, last_year)

    planted = {"same_year": same_year, "returned_in_year5": returned5, "returned_within_4yrs": returned4}
    written = {"enrollments": enrol_rows, "assessments": scores, "postsecondary": terms}
    write_truth(out_dir / "truth", n, seed, keys, geo, stu, obs, ask_district, provided, truth_work, written, planted)
    return {name: tables[name].num_rows for name in schema.TABLE_NAMES}


def _rows_until(
    rows: dict[str, np.ndarray], year: np.ndarray, last_year: int, seen: np.ndarray
) -> dict[str, np.ndarray]:
    """The rows of students in the extract dated ``last_year`` or earlier."""
    keep = (year <= last_year) & seen[rows["student"]]
    return {k: v[keep] for k, v in rows.items()}


def write_extract(out_dir: Path, last_year: int = LAST_SCHOOL_YEAR) -> None:
    """Declare the dataset's end years and score scale in ``extract.json`` (see :mod:`analytics.extract`)."""
    config = {
        "last_school_year": last_year,
        "last_wage_year": min(last_year, LAST_DATA_YEAR),
        "last_postsecondary_year": min(last_year, LAST_DATA_YEAR),
        "score_scales": {s: [SCORE_SCALE_LOW, SCORE_SCALE_HIGH] for s in schema.SUBJECTS},
    }
    (out_dir / "extract.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
