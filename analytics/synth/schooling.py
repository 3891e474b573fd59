"""K-12 enrolment paths: entry, retention, moves between districts, graduation and exits.

:func:`simulate_schooling` walks each student from kindergarten (step 0) to
the 5th high-school year, runs the growth model of :mod:`.assessments` along
the way, and draws the exit (graduated in 4 or 5 years, dropped out, 'other',
or a documented transfer out, emigration or death) from a logit model with a
planted school graduation effect. :func:`enrollment_rows` turns paths into rows
of the enrollments table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import schema
from analytics.synth.assessments import (
    GROWTH_GAPS,
    SCORE_AUTOREGRESSION,
    SCORE_INNOVATION_SD,
    SCORE_SD,
    SCORE_SUBJECT_CORR_INNOVATION,
    SCORE_SUBJECT_CORR_START,
    correlated_normals,
    draw_scores,
    school_effect,
)
from analytics.synth.common import LAST_SCHOOL_YEAR, N_STEPS, expit, pick
from analytics.synth.geography import Geography, pick_destinations
from analytics.synth.students import Students

#: Enrolment paths.
P_RETAINED_BEFORE_9 = 0.06
RETENTION_GRADE_WEIGHTS: tuple[float, ...] = (0.30, 0.18, 0.12, 0.08, 0.06, 0.06, 0.06, 0.07, 0.07)
P_TRANSFER_IN = 0.14
#: Weights of the entry grade 1..12 of students who transfer in from out of state.
TRANSFER_IN_GRADE_WEIGHTS: tuple[float, ...] = (1.2, 1, 1, 1, 1, 1, 1, 1, 0.9, 0.9, 0.8, 0.6)
P_MOVE_DISTRICT_PER_YEAR = 0.018
P_MOVE_MID_YEAR = 0.45
P_LEAVE_BEFORE_9 = 0.05  # cohorts 2012+, leaving in 2011 or later
LEAVE_BEFORE_9_EXITS: tuple[tuple[str, float], ...] = (
    ("transferred_out", 0.90),
    ("emigrated", 0.08),
    ("deceased", 0.02),
)
P_HS_TRANSFERRED_OUT = 0.05
P_HS_EMIGRATED = 0.005
P_HS_DECEASED = 0.0015
P_NONGRAD_DROPPED_OUT = 0.7  # the rest leave undocumented ('other')
P_NONGRAD_HS_RETAINED = 0.3
HS_RETENTION_GRADE_WEIGHTS: tuple[float, ...] = (0.35, 0.20, 0.15, 0.30)  # grade 9, 10, 11, 12
#: Graduation: logit model with the planted school effect (of the high school in year cohort + 3).
GRAD_INTERCEPT = 3.75
GRAD_PRIOR_ACHIEVEMENT_COEF = 0.9  # per score SD of grade-8 achievement
GRAD_GAPS: dict[str, float] = {"economically_disadvantaged": -0.5, "english_learner": -0.3, "disability": -0.6}
FIFTH_YEAR_INTERCEPT = -3.2
FIFTH_YEAR_ACHIEVEMENT_COEF = -0.5
FIFTH_YEAR_DISABILITY = 0.5


@dataclass
class Paths:
    """Each student's schooling, indexed by step t = 0 (kindergarten year) .. N_STEPS-1."""

    year0: np.ndarray  # school year of step 0
    t9: np.ndarray  # step of first-time grade 9
    start: np.ndarray  # first enrolled step
    end: np.ndarray  # last enrolled step
    exit_code: np.ndarray  # index into schema.EXIT_TYPES of the last row
    in_cohort: np.ndarray  # bool: reached grade 9 in Maine or joined after it
    grade: np.ndarray  # [n, N_STEPS]
    district: np.ndarray  # [n, N_STEPS], district after any move in that step
    area: np.ndarray  # [n, N_STEPS]
    mid_move: np.ndarray  # [n, N_STEPS] bool: moved district during that school year
    school: np.ndarray  # [n, N_STEPS] school after any move
    prev_school: np.ndarray  # [n, N_STEPS] school before a mid-year move
    p_graduate: np.ndarray  # planted P(diploma) from the graduation logit (meaningful in the cohort)
    p_graduate_4yr: np.ndarray  # planted P(diploma within 4 years) = p_graduate * (1 - P(fifth year))
    planned_school: np.ndarray  # high school (index) whose graduation effect enters the logit
    logit_schools: np.ndarray  # the schools' part of the graduation logit (graduation and grade 3-8 growth effects)

    @property
    def enrolled(self) -> np.ndarray:
        t = np.arange(N_STEPS)[None, :]
        return (t >= self.start[:, None]) & (t <= self.end[:, None])


def _grade_before_9(t: np.ndarray, retained_at: np.ndarray) -> np.ndarray:
    return t - (t > retained_at)


def _high_school_grade(t: np.ndarray, t9: np.ndarray, hs_retained_at: np.ndarray) -> np.ndarray:
    k = t - t9
    return np.minimum(9 + k - (k > hs_retained_at - 9), 12)


def simulate_schooling(
    rng: np.random.Generator,
    rng_score: np.random.Generator,
    rng_out: np.random.Generator,
    n: int,
    geo: Geography,
    stu: Students,
    home: np.ndarray,
) -> tuple[Paths, dict[str, np.ndarray], np.ndarray]:
    """Enrolment paths, assessment scores and exits.

    Returns the paths, the assessment rows, and standardised grade-11
    achievement (mean of math and ELA deviation from the grade base, in score
    SDs), which drives postsecondary enrolment.
    """
    steps = np.arange(N_STEPS)
    c = stu.cohort

    # Retention before grade 9 and the step of first-time grade 9.
    retained = rng.random(n) < P_RETAINED_BEFORE_9
    retained_at = np.where(retained, pick(rng, RETENTION_GRADE_WEIGHTS, n), 99)
    t9 = 9 + retained.astype(np.int64)
    year0 = c - t9

    # Entry: kindergarten, or a transfer in from out of state at grade 1..12.
    transfer_in = rng.random(n) < P_TRANSFER_IN
    start_grade = np.where(transfer_in, 1 + pick(rng, TRANSFER_IN_GRADE_WEIGHTS, n), 0)
    start = np.where(start_grade <= 8, start_grade + (start_grade > retained_at), t9 + start_grade - 9)
    # Nobody arrives after the last school year (only the cohorts still in school could).
    start = np.minimum(start, LAST_SCHOOL_YEAR - year0)

    # District and attendance area per step; moves between districts.
    district = np.repeat(home[:, None], N_STEPS, axis=1)
    area = np.repeat(rng.random(n)[:, None], N_STEPS, axis=1)
    mid_move = np.zeros((n, N_STEPS), dtype=bool)
    for t in range(1, N_STEPS):
        moves = (rng.random(n) < P_MOVE_DISTRICT_PER_YEAR) & (t > start)
        new_area = rng.random(n)
        mid = rng.random(n) < P_MOVE_MID_YEAR
        if moves.any():
            dest = pick_destinations(rng, district[moves, t], geo)
            district[moves, t:] = dest[:, None]
            area[moves, t:] = new_area[moves, None]
            mid_move[moves, t] = mid[moves]

    # Leaving the state before grade 9 (in school year 2011 or later): no cohort.
    t2011 = schema.FIRST_SSN_SCHOOL_YEAR - year0
    lo = np.maximum(start, t2011)
    hi = t9 - 1
    early = (rng.random(n) < P_LEAVE_BEFORE_9) & (c >= 2012) & (lo <= hi)
    early_step = lo + np.floor(rng.random(n) * np.maximum(hi - lo + 1, 1)).astype(np.int64)
    early_exit = np.array([schema.EXIT_TYPES.index(e) for e, _ in LEAVE_BEFORE_9_EXITS])[
        pick(rng, [p for _, p in LEAVE_BEFORE_9_EXITS], n)
    ]

    t_mat = np.broadcast_to(steps, (n, N_STEPS))
    grade_pre = _grade_before_9(t_mat, retained_at[:, None])
    end_pre = np.where(early, early_step, t9 - 1)
    enrolled_pre = (t_mat >= start[:, None]) & (t_mat <= end_pre[:, None]) & (t_mat < t9[:, None])
    school_pre = geo.school_of(district, grade_pre, area)
    prev_pre = geo.school_of(
        np.concatenate([district[:, :1], district[:, :-1]], axis=1),
        grade_pre,
        np.concatenate([area[:, :1], area[:, :-1]], axis=1),
    )

    # Growth model, phase 1: grades 3-8. dev = score - grade base, per subject.
    gap = sum(
        GROWTH_GAPS[k] * getattr(stu, a)
        for k, a in (("economically_disadvantaged", "ed"), ("english_learner", "el"), ("disability", "dis"))
    )
    level_gap = gap / (1.0 - SCORE_AUTOREGRESSION)
    z = correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_START)
    dev = level_gap[:, None] + SCORE_SD * z
    school_dev = np.zeros(n)  # the schools' part of dev: growth effects carried forward (no draw)
    nongrad_exit_step = np.where(early, early_step, -1)
    score_rows: list[dict[str, np.ndarray]] = []
    pre_mid = mid_move & (t_mat > start[:, None])
    for t in range(N_STEPS):
        g = grade_pre[:, t]
        active = (t < t9) & (g >= 3)
        if not active.any():
            continue
        eff = school_effect(geo.growth_effect, enrolled_pre[:, t], school_pre[:, t], prev_pre[:, t], pre_mid[:, t])
        innov = SCORE_INNOVATION_SD * correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_INNOVATION)
        new = SCORE_AUTOREGRESSION * dev + (gap + eff)[:, None] + innov
        dev = np.where(active[:, None], new, dev)
        school_dev = np.where(active, SCORE_AUTOREGRESSION * school_dev + eff, school_dev)
        tested = active & enrolled_pre[:, t] & (nongrad_exit_step != t)
        score_rows.append(draw_scores(rng_score, tested, year0 + t, g, dev))
    a8 = dev.mean(axis=1) / SCORE_SD

    # Exits for cohort members.
    in_cohort = ~early
    hs_lo = np.maximum(start, t9)
    planned_hs = geo.school_of(district[np.arange(n), t9 + 3], np.full(n, 12), area[np.arange(n), t9 + 3])
    u = rng_out.random(n)
    removed_code = np.select(
        [
            u < P_HS_TRANSFERRED_OUT,
            u < P_HS_TRANSFERRED_OUT + P_HS_EMIGRATED,
            u < P_HS_TRANSFERRED_OUT + P_HS_EMIGRATED + P_HS_DECEASED,
        ],
        [
            schema.EXIT_TYPES.index("transferred_out"),
            schema.EXIT_TYPES.index("emigrated"),
            schema.EXIT_TYPES.index("deceased"),
        ],
        default=-1,
    )
    removed = in_cohort & (removed_code >= 0)
    grad_logit = (
        GRAD_INTERCEPT
        + geo.grad_effect[planned_hs]
        + GRAD_PRIOR_ACHIEVEMENT_COEF * a8
        + GRAD_GAPS["economically_disadvantaged"] * stu.ed
        + GRAD_GAPS["english_learner"] * stu.el
        + GRAD_GAPS["disability"] * stu.dis
    )
    p_graduate = expit(grad_logit)
    p_fifth = expit(FIFTH_YEAR_INTERCEPT + FIFTH_YEAR_ACHIEVEMENT_COEF * a8 + FIFTH_YEAR_DISABILITY * stu.dis)
    graduates = in_cohort & ~removed & (rng_out.random(n) < p_graduate)
    fifth = graduates & (rng_out.random(n) < p_fifth)
    nongrad = in_cohort & ~removed & ~graduates
    hs_retained = fifth | (nongrad & (rng_out.random(n) < P_NONGRAD_HS_RETAINED))
    hs_retained_at = np.where(
        hs_retained, np.maximum(9 + pick(rng_out, HS_RETENTION_GRADE_WEIGHTS, n), start_grade), 99
    )
    u_step = rng_out.random(n)
    removed_step = hs_lo + np.floor(u_step * (t9 + 3 - hs_lo + 1)).astype(np.int64)
    nongrad_last = t9 + 3 + hs_retained.astype(np.int64)
    nongrad_step = hs_lo + np.floor(u_step * (nongrad_last - hs_lo + 1)).astype(np.int64)
    dropout = rng_out.random(n) < P_NONGRAD_DROPPED_OUT
    end = np.select(
        [early, removed, graduates], [early_step, removed_step, t9 + 3 + fifth.astype(np.int64)], default=nongrad_step
    )
    exit_code = np.select(
        [early, removed, graduates, dropout],
        [early_exit, removed_code, schema.EXIT_TYPES.index("graduated"), schema.EXIT_TYPES.index("dropped_out")],
        default=schema.EXIT_TYPES.index("other"),
    )

    grade = np.where(t_mat < t9[:, None], grade_pre, _high_school_grade(t_mat, t9[:, None], hs_retained_at[:, None]))
    school = geo.school_of(district, grade, area)
    prev_school = geo.school_of(
        np.concatenate([district[:, :1], district[:, :-1]], axis=1),
        grade,
        np.concatenate([area[:, :1], area[:, :-1]], axis=1),
    )
    mid_move = mid_move & (t_mat > start[:, None]) & (t_mat <= end[:, None])
    paths = Paths(
        year0=year0,
        t9=t9,
        start=start,
        end=end,
        exit_code=exit_code,
        in_cohort=in_cohort,
        grade=grade,
        district=district,
        area=area,
        mid_move=mid_move,
        school=school,
        prev_school=prev_school,
        p_graduate=p_graduate,
        p_graduate_4yr=p_graduate * (1 - p_fifth),
        planned_school=planned_hs,
        logit_schools=geo.grad_effect[planned_hs] + GRAD_PRIOR_ACHIEVEMENT_COEF * school_dev / SCORE_SD,
    )

    # Growth model, phase 2: grades 9-11 (tested in grade 11).
    enrolled = paths.enrolled
    leaver_step = np.where(exit_code != schema.EXIT_TYPES.index("graduated"), end, -1)
    for t in range(N_STEPS):
        g = grade[:, t]
        active = in_cohort & (t >= t9) & (g <= 11) & (t <= end)
        if not active.any():
            continue
        eff = school_effect(geo.growth_effect, enrolled[:, t], school[:, t], prev_school[:, t], mid_move[:, t])
        innov = SCORE_INNOVATION_SD * correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_INNOVATION)
        new = SCORE_AUTOREGRESSION * dev + (gap + eff)[:, None] + innov
        dev = np.where(active[:, None], new, dev)
        tested = active & enrolled[:, t] & (g == 11) & (leaver_step != t)
        score_rows.append(draw_scores(rng_score, tested, year0 + t, g, dev))
    a11 = dev.mean(axis=1) / SCORE_SD

    scores = {k: np.concatenate([r[k] for r in score_rows]) for k in score_rows[0]}
    order = np.lexsort((scores["subject"], scores["year"], scores["student"]))
    scores = {k: v[order] for k, v in scores.items()}
    return paths, scores, a11


def enrollment_rows(
    paths: Paths, interim: np.ndarray | None = None, extra: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """One row per enrolled step, plus a 'continuing' row at the old school for mid-year movers.

    ``interim`` [n, N_STEPS] gives the exit code of a row that is not the
    student's last (-1: 'continuing'); ``extra`` holds more rows (student, year,
    school, grade, exit), each listed after the student's other rows of its year.
    """
    enrolled = paths.enrolled
    student, t = np.nonzero(enrolled)
    last = t == paths.end[student]
    continuing = schema.EXIT_TYPES.index("continuing")
    exit_code = np.where(last, paths.exit_code[student], continuing)
    if interim is not None:
        exit_code = np.where(interim[student, t] >= 0, interim[student, t], exit_code)
    mover = paths.mid_move[student, t]
    m_student, m_t = student[mover], t[mover]
    rows = {
        "student": np.concatenate([student, m_student]),
        "year": np.concatenate([paths.year0[student] + t, paths.year0[m_student] + m_t]),
        "school": np.concatenate([paths.school[student, t], paths.prev_school[m_student, m_t]]),
        "grade": np.concatenate([paths.grade[student, t], paths.grade[m_student, m_t]]),
        "exit": np.concatenate([exit_code, np.full(len(m_student), continuing)]),
        "seq": np.concatenate([np.ones(len(student), dtype=np.int64), np.zeros(len(m_student), dtype=np.int64)]),
    }
    if extra is not None:
        for k in ("student", "year", "school", "grade", "exit"):
            rows[k] = np.concatenate([rows[k], extra[k]])
        rows["seq"] = np.concatenate([rows["seq"], np.full(len(extra["student"]), 2, dtype=np.int64)])
    order = np.lexsort((rows["seq"], rows["year"], rows["student"]))
    return {k: v[order].astype(np.int64) for k, v in rows.items() if k != "seq"}
