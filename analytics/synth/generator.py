"""The generator: draws every part in a fixed order from one seed and writes the dataset folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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
    parquet_writer,
    take,
)
from analytics.synth.geography import EL_OPTOUT_ODDS_RATIO, N_DISTRICTS, Geography, make_geography
from analytics.synth.postsecondary import simulate_postsecondary, with_institutions
from analytics.synth.schooling import enrollment_rows, simulate_schooling
from analytics.synth.students import make_students, student_keys
from analytics.synth.truth import (
    district_optout_counts,
    student_truth_table,
    write_parameters,
    write_place_truth,
)
from analytics.synth.wages import simulate_wages

#: Students simulated at once. A larger dataset is simulated in blocks of at most this many students,
#: each from its own generators spawned from the seed, and streamed to the files block by block, so
#: the generator's memory does not grow with the number of students (about 2 GB per 200,000).
BLOCK_STUDENTS = 250_000


def generate(
    out_dir: Path,
    n_students: int,
    seed: int,
    last_year: int = LAST_SCHOOL_YEAR,
    block_students: int = BLOCK_STUDENTS,
) -> dict[str, int]:
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
            seed, last_year, block_students)`` gives byte-identical files.
        last_year: Last school year and calendar year of the extract
            (2011-2025; default 2025). An earlier year writes the same
            population cut after that year: later records are left out, a
            history still open then ends on a 'continuing' row, students who
            arrive later are not in the extract, and ``extract.json`` declares
            the year.
        block_students: Most students simulated at once. Up to this many, the
            whole population is one block (the files of every dataset made
            before blocks existed, the bundled sample among them, are unchanged).
            Above it, the students are split into equal consecutive blocks of
            student keys, each drawn from its own generators (spawned from the
            seed's, so blocks are independent and every student follows the same
            model), and each block is appended to the files as Parquet row groups:
            memory stays that of one block. The files then differ from a
            one-block run of the same seed, not in distribution.

    Returns:
        Rows written per contract table, in contract order.

    Raises:
        ValueError: if ``n_students`` or ``block_students`` is below 1 or ``last_year`` is outside 2011-2025.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     counts = generate(Path(tmp), n_students=200, seed=1)
        >>> counts["students"], counts["districts"]
        (200, 150)
    """
    if n_students < 1:
        raise ValueError(f"n_students must be at least 1, got {n_students}")
    if block_students < 1:
        raise ValueError(f"block_students must be at least 1, got {block_students}")
    if not schema.FIRST_SSN_SCHOOL_YEAR <= last_year <= LAST_SCHOOL_YEAR:
        raise ValueError(
            f"last_year must lie between {schema.FIRST_SSN_SCHOOL_YEAR} and {LAST_SCHOOL_YEAR}, got {last_year}"
        )
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    n = int(n_students)
    last_year = int(last_year)
    root = np.random.default_rng(seed)
    rng_geo, rng_stu, *rest = root.spawn(9)

    geo = make_geography(rng_geo)
    keys = student_keys(rng_stu, n)
    if n <= block_students:
        blocks = [(0, n, [rng_stu, *rest])]
    else:
        n_blocks = -(-n // block_students)
        bounds = np.linspace(0, n, n_blocks + 1).round().astype(np.int64)
        children = [g.spawn(n_blocks) for g in (rng_stu, *rest)]
        blocks = [(int(bounds[b]), int(bounds[b + 1]), [c[b] for c in children]) for b in range(n_blocks)]

    sinks = {name: _Sink(out_dir / f"{name}.parquet") for name in schema.TABLE_NAMES}
    student_truth_sink = _Sink(out_dir / "truth" / "students.parquet")
    sinks["districts"].write(_districts_table(geo))
    sinks["schools"].write(_schools_table(geo))
    asked = np.zeros(N_DISTRICTS, dtype=np.int64)
    declined = np.zeros(N_DISTRICTS, dtype=np.float64)
    try:
        for lo, hi, rngs in blocks:
            block = _simulate_block(hi - lo, last_year, geo, keys[lo:hi], rngs)
            for name, table in block.tables.items():
                sinks[name].write(table)
            student_truth_sink.write(block.student_truth)
            asked += block.asked
            declined += block.declined
    finally:
        for sink in (*sinks.values(), student_truth_sink):
            sink.close()
    write_extract(out_dir, last_year)
    write_place_truth(out_dir / "truth", geo, asked, declined)
    write_parameters(out_dir / "truth", n, seed, last_year)
    return {name: sinks[name].rows for name in schema.TABLE_NAMES}


class _Sink:
    """One Parquet file written a table at a time (one write gives what :func:`write_parquet` writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        table = table.replace_schema_metadata(None)
        if self._writer is None:
            self._writer = parquet_writer(self.path, table.schema)
        elif table.schema != self._writer.schema:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _districts_table(geo: Geography) -> pa.Table:
    return contract_table(
        "districts",
        {
            "district_id": pa.array(geo.district_ids),
            "district_name": pa.array(geo.district_names),
            "county": take(COUNTIES, geo.district_county),
            "locale": take(schema.LOCALES, geo.district_locale),
        },
    )


def _schools_table(geo: Geography) -> pa.Table:
    return contract_table(
        "schools",
        {
            "school_id": pa.array(geo.school_ids),
            "school_name": pa.array(geo.school_names),
            "district_id": take(geo.district_ids, geo.school_district),
            "school_level": take(schema.SCHOOL_LEVELS, geo.school_level),
        },
    )


@dataclass
class _Block:
    """What one block of students adds: rows of the student-level tables, their truth, opt-out counts."""

    tables: dict[str, pa.Table]
    student_truth: pa.Table
    asked: np.ndarray  # per district: students of the block asked for the SSN (in the extract)
    declined: np.ndarray  # per district: of those, declined (float counts, exact)


def _simulate_block(
    n: int, last_year: int, geo: Geography, keys: np.ndarray, rngs: list[np.random.Generator]
) -> _Block:
    """Simulate ``n`` students (keys ``keys``) with the generators ``rngs`` in the generator's fixed order."""
    rng_stu, rng_path, rng_score, rng_out, rng_ssn, rng_ps, rng_wage, rng_case = rngs
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
    planted = {"same_year": same_year, "returned_in_year5": returned5, "returned_within_4yrs": returned4}
    written = {"enrollments": enrol_rows, "assessments": scores, "postsecondary": terms}
    truth = student_truth_table(n, keys, geo, stu, obs, truth_work, written, planted)
    asked, declined = district_optout_counts(ask_district, provided, seen)
    return _Block(tables, truth, asked, declined)


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
