"""The cases real extracts hold that a clean simulation would not (issue 11), planted on the simulated population.

Each case is small, drawn from its own generator (so the rest of the population
is the same with or without it), and flagged per student in ``truth/students.parquet``:

- **Incomplete cohorts** (``continuing``): a sample of the grade-9 cohorts
  2023-2025 is still in grades 9-11 in the last school year; its 4-year window
  is not over, so no metric may count it as non-graduates.
- **Same-year transfer and diploma** (``same_year_transfer_diploma``): a
  4-year graduate has a second row in the diploma year at another high school,
  ``transferred_out``, listed after the diploma. The diploma wins.
- **Returns** (``returned_in_year5``, ``returned_within_4yrs``): a documented
  ``transferred_out`` row in the 4th year followed by a diploma in the 5th (the
  student joins the 5-year cohort only), or in the 2nd year followed by a diploma
  in the 4th (the student stays in the 4-year cohort).
- **Co-enrolment** (``co_enrolled``): a college student also enrolled at a
  second college, of the other level, in one term (same term start), as
  Clearinghouse detail files list it: one row per student x term x institution.
- **Repeated grades** (``repeated_grade``): students retained in a tested grade
  sit its tests twice (the retention model of :mod:`.schooling` makes them; the
  truth counts each student's tests).
- **Top-coded earners** (``top_coded``): a few students earn several times the
  usual wage, so some annual earnings pass the $100,000 open top bin.
- **An extract that ends early** (``last_year``): :func:`observe` cuts every
  record after the last year and marks histories still open then as
  ``continuing``; ``extract.json`` declares the year.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analytics import schema
from analytics.synth.common import N_STEPS
from analytics.synth.geography import Geography, pick_destinations
from analytics.synth.schooling import Paths
from analytics.synth.students import Students

#: Younger cohorts still in high school at the end of the data, and the share of students drawn into them.
OPEN_COHORTS: tuple[int, ...] = (2023, 2024, 2025)
P_OPEN_COHORT = 0.04
#: Share of 4-year graduates with a second, 'transferred_out' row at another high school in the diploma year.
P_SAME_YEAR_TRANSFER_DIPLOMA = 0.01
#: Share of 5th-year graduates who left with a documented transfer out in their 4th year and came back.
P_RETURN_YEAR5 = 0.15
#: Share of 4-year graduates (enrolled from their 2nd year) with a documented transfer out in their 2nd year.
P_RETURN_WITHIN_4YRS = 0.005
#: Share of college students enrolled at a second college in one of their terms.
P_CO_ENROL = 0.03
#: Share of students whose earnings are HIGH_EARNER_MULTIPLIER times the usual (trades, fishing, tech).
P_HIGH_EARNER = 0.006
HIGH_EARNER_MULTIPLIER = 3.2
#: The open top bin of published earnings (2024 dollars): a figure there is top-coded.
TOP_CODE_USD = 100_000.0

_TRANSFERRED_OUT = schema.EXIT_TYPES.index("transferred_out")
_GRADUATED = schema.EXIT_TYPES.index("graduated")
_CONTINUING = schema.EXIT_TYPES.index("continuing")


def open_cohorts(rng: np.random.Generator, stu: Students) -> np.ndarray:
    """Move a share P_OPEN_COHORT of students into the cohorts 2023-2025 (in place); returns the mask."""
    n = len(stu.cohort)
    chosen = rng.random(n) < P_OPEN_COHORT
    cohort = np.array(OPEN_COHORTS)[rng.integers(0, len(OPEN_COHORTS), n)]
    stu.cohort[:] = np.where(chosen, cohort, stu.cohort)
    return chosen


def interim_exits(rng: np.random.Generator, paths: Paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documented transfers out after which the student returns.

    Returns ``interim`` [n, N_STEPS] (the exit code written on a row that is not
    the student's last, -1 for 'continuing') and the masks of students who
    return to graduate in year 5 and of those who return within the 4 years.
    """
    n = len(paths.end)
    graduated = (paths.exit_code == _GRADUATED) & paths.in_cohort
    hs_lo = np.maximum(paths.start, paths.t9)
    u_five, u_four = rng.random(n), rng.random(n)
    year5 = graduated & (paths.end == paths.t9 + 4) & (hs_lo <= paths.t9 + 3) & (u_five < P_RETURN_YEAR5)
    within4 = graduated & (paths.end == paths.t9 + 3) & (hs_lo <= paths.t9 + 1) & (u_four < P_RETURN_WITHIN_4YRS)
    interim = np.full((n, N_STEPS), -1, dtype=np.int64)
    rows = np.arange(n)
    interim[rows[year5], paths.t9[year5] + 3] = _TRANSFERRED_OUT
    interim[rows[within4], paths.t9[within4] + 1] = _TRANSFERRED_OUT
    return interim, year5, within4


@dataclass(frozen=True)
class Observed:
    """What the extract shows of each student's schooling: histories cut at the last school year.

    ``paths`` is the simulated schooling with ``end`` cut at the last school
    year and ``exit_code`` 'continuing' where the history goes on after it;
    ``seen`` marks students enrolled at least once by then (the others are not
    in the extract); ``cut`` marks histories that go on after the last year.
    """

    paths: Paths
    interim: np.ndarray
    seen: np.ndarray
    cut: np.ndarray
    last_year: int


def observe(paths: Paths, interim: np.ndarray, last_year: int) -> Observed:
    """Cut every history at ``last_year`` (a spring school year)."""
    last_step = last_year - paths.year0
    cut = paths.end > last_step
    end = np.minimum(paths.end, last_step)
    rows = np.arange(len(end))
    at_end = interim[rows, np.clip(end, 0, N_STEPS - 1)]
    exit_code = np.where(cut, np.where(at_end >= 0, at_end, _CONTINUING), paths.exit_code)
    steps = np.arange(N_STEPS)[None, :]
    mid_move = paths.mid_move & (steps <= end[:, None])
    hs_start = np.maximum(paths.start, paths.t9)
    in_cohort = paths.in_cohort & (hs_start <= end)
    observed = replace(paths, end=end, exit_code=exit_code, mid_move=mid_move, in_cohort=in_cohort)
    return Observed(observed, interim, paths.start <= last_step, cut & (paths.start <= last_step), int(last_year))


def same_year_transfer_rows(rng: np.random.Generator, paths: Paths, geo: Geography) -> dict[str, np.ndarray]:
    """Second rows in the diploma year: another high school, grade 12, 'transferred_out'.

    Planted on a share of 4-year graduates who did not also move mid-year that
    year (drawn on the simulated paths, so an extract that ends early shows the
    same rows up to its last year). Returns enrollment-row arrays (student,
    year, school, grade, exit), each to be listed after the student's diploma row.
    """
    n = len(paths.end)
    rows = np.arange(n)
    end = np.clip(paths.end, 0, N_STEPS - 1)
    chosen = (
        (paths.exit_code == _GRADUATED)
        & paths.in_cohort
        & (paths.end == paths.t9 + 3)
        & ~paths.mid_move[rows, end]
        & (rng.random(n) < P_SAME_YEAR_TRANSFER_DIPLOMA)
    )
    who = rows[chosen]
    dest = pick_destinations(rng, paths.district[who, end[who]], geo)
    area = rng.random(len(who))
    school = geo.school_of(dest, np.full(len(who), 12), area)
    return {
        "student": who.astype(np.int64),
        "year": (paths.year0[who] + paths.end[who]).astype(np.int64),
        "school": school.astype(np.int64),
        "grade": np.full(len(who), 12, dtype=np.int64),
        "exit": np.full(len(who), _TRANSFERRED_OUT, dtype=np.int64),
    }


def high_earners(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-student earnings multiplier: HIGH_EARNER_MULTIPLIER for a share P_HIGH_EARNER, else 1."""
    return np.where(rng.random(n) < P_HIGH_EARNER, HIGH_EARNER_MULTIPLIER, 1.0)
