"""Postsecondary terms of graduates (and a few leavers), Clearinghouse style."""

from __future__ import annotations

import numpy as np

from analytics import schema
from analytics.synth.common import LAST_DATA_YEAR, expit, pick
from analytics.synth.schooling import Paths
from analytics.synth.students import Students

ENROL_INTERCEPT = 0.9
ENROL_ACHIEVEMENT_COEF = 1.0
ENROL_GAPS: dict[str, float] = {
    "economically_disadvantaged": -0.55,
    "disability": -0.35,
    "english_learner": -0.2,
    "female": 0.25,
}
#: First enrolled term, counted in semesters from the fall after graduation
#: (0 = that fall, 1 = the next spring, 2 = the next fall, ...), and its probability.
FIRST_TERM_PROBS: tuple[tuple[int, float], ...] = ((0, 0.83), (1, 0.07), (2, 0.05), (3, 0.02), (4, 0.02), (6, 0.01))
FOUR_YEAR_INTERCEPT = 0.35
FOUR_YEAR_ACHIEVEMENT_COEF = 1.2
FOUR_YEAR_ED = -0.5
FOUR_YEAR_DELAYED = -0.8
P_PRIVATE: dict[str, float] = {"2-year": 0.04, "4-year": 0.30}
P_IN_STATE: dict[str, float] = {
    "2-year public": 0.94,
    "2-year private": 0.8,
    "4-year public": 0.75,
    "4-year private": 0.40,
}
#: Probability of enrolling in term j+1 given term j (j = 0, 1, ...).
TERM_CONTINUATION: dict[str, tuple[float, ...]] = {
    "4-year": (0.93, 0.80, 0.96, 0.90, 0.97, 0.92, 0.97),
    "2-year": (0.87, 0.68, 0.90, 0.30, 0.80, 0.50, 0.80),
}
FALL_TERM_DAY = (8, 29)  # month, day; plus a per-student offset of -6..+6 days
SPRING_TERM_DAY = (1, 9)  # plus 0..10 days
P_NONGRAD_ENROL = 0.06


def _term_dates(years: np.ndarray, spring: np.ndarray, offset: np.ndarray) -> np.ndarray:
    months = np.where(spring, SPRING_TERM_DAY[0], FALL_TERM_DAY[0]) - 1
    days = np.where(spring, SPRING_TERM_DAY[1], FALL_TERM_DAY[1]) - 1
    first = (years - 1970).astype("datetime64[Y]").astype("datetime64[M]") + months
    return first.astype("datetime64[D]") + days + offset


def simulate_postsecondary(
    rng: np.random.Generator,
    stu: Students,
    paths: Paths,
    a11: np.ndarray,
) -> dict[str, np.ndarray]:
    """Terms of graduates (and a few leavers), with per-student degree and college years."""
    n = len(stu.cohort)
    graduated = paths.exit_code == schema.EXIT_TYPES.index("graduated")
    exit_year = paths.year0 + paths.end
    female = stu.sex == schema.SEXES.index("F")
    enrol_logit = (
        ENROL_INTERCEPT
        + ENROL_ACHIEVEMENT_COEF * a11
        + ENROL_GAPS["economically_disadvantaged"] * stu.ed
        + ENROL_GAPS["disability"] * stu.dis
        + ENROL_GAPS["english_learner"] * stu.el
        + ENROL_GAPS["female"] * female
    )
    grad_enrol = graduated & (rng.random(n) < expit(enrol_logit))
    leaver = np.isin(paths.exit_code, [schema.EXIT_TYPES.index(e) for e in ("dropped_out", "other")])
    leaver_enrol = leaver & (rng.random(n) < P_NONGRAD_ENROL)

    first_term = np.array([j for j, _ in FIRST_TERM_PROBS])[pick(rng, [p for _, p in FIRST_TERM_PROBS], n)]
    four = rng.random(n) < expit(
        FOUR_YEAR_INTERCEPT
        + FOUR_YEAR_ACHIEVEMENT_COEF * a11
        + FOUR_YEAR_ED * stu.ed
        + FOUR_YEAR_DELAYED * (first_term > 0)
    )
    four &= grad_enrol
    level = np.where(four, schema.INSTITUTION_LEVELS.index("4-year"), schema.INSTITUTION_LEVELS.index("2-year"))
    private = rng.random(n) < np.where(four, P_PRIVATE["4-year"], P_PRIVATE["2-year"])
    private &= grad_enrol
    p_in = np.select(
        [~four & ~private, ~four & private, four & ~private],
        [P_IN_STATE["2-year public"], P_IN_STATE["2-year private"], P_IN_STATE["4-year public"]],
        default=P_IN_STATE["4-year private"],
    )
    in_state = (rng.random(n) < p_in) | leaver_enrol
    control = np.where(private, schema.CONTROLS.index("private"), schema.CONTROLS.index("public"))
    # Leavers: 2-year public, in state, from the fall a year or two after leaving.
    base_year = np.where(leaver_enrol, exit_year + rng.integers(0, 2, n), exit_year)
    first_term = np.where(leaver_enrol, 0, first_term)

    max_terms = 1 + max(len(v) for v in TERM_CONTINUATION.values())
    cont = np.array([TERM_CONTINUATION[lv] for lv in schema.INSTITUTION_LEVELS])[level]  # [n, max_terms-1]
    cont = np.where(leaver_enrol[:, None], np.array([0.6, 0.5] + [0.0] * (max_terms - 3)), cont)
    keep = np.concatenate([np.ones((n, 1), dtype=bool), rng.random((n, max_terms - 1)) < cont], axis=1)
    keep = np.cumprod(keep, axis=1).astype(bool) & (grad_enrol | leaver_enrol)[:, None]
    term_index = first_term[:, None] + np.arange(max_terms)[None, :]  # semesters from fall of base_year
    spring = term_index % 2 == 1
    cal_year = base_year[:, None] + (term_index + 1) // 2
    keep &= cal_year <= LAST_DATA_YEAR
    offset_fall = rng.integers(-6, 7, n)
    offset_spring = rng.integers(0, 11, n)
    student, j = np.nonzero(keep)
    sp = spring[student, j]
    dates = _term_dates(cal_year[student, j], sp, np.where(sp, offset_spring[student], offset_fall[student]))
    n_terms = keep.sum(axis=1)
    last_year = np.where(n_terms > 0, (cal_year * keep).max(axis=1), 0)
    first_year = np.where(n_terms > 0, np.where(keep, cal_year, 9999).min(axis=1), 0)
    return {
        "student": student.astype(np.int64),
        "term_start": dates,
        "level": level[student],
        "control": control[student],
        "in_state": in_state[student],
        "term_year": cal_year[student, j],
        # per student
        "n_terms": n_terms,
        "first_year": first_year,
        "last_year": last_year,
        "four_year": four,
        "student_in_state": in_state,
    }


#: Fictional colleges by (level, control, in Maine): how many of each kind students attend.
INSTITUTION_COUNTS: dict[tuple[str, str, bool], int] = {
    ("2-year", "public", True): 7,
    ("2-year", "private", True): 2,
    ("2-year", "public", False): 25,
    ("2-year", "private", False): 6,
    ("4-year", "public", True): 7,
    ("4-year", "private", True): 12,
    ("4-year", "public", False): 60,
    ("4-year", "private", False): 90,
}


def institution_ids() -> dict[tuple[str, str, bool], list[str]]:
    """Identifiers of the fictional colleges, such as 'ME2U03' (in Maine, 2-year, public, third)."""
    out = {}
    for (level, control, in_state), count in INSTITUTION_COUNTS.items():
        prefix = ("ME" if in_state else "US") + level[0] + ("U" if control == "public" else "P")
        out[(level, control, in_state)] = [f"{prefix}{i + 1:02d}" for i in range(count)]
    return out


def with_institutions(
    rng: np.random.Generator, post: dict[str, np.ndarray], n: int, p_co_enrol: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Give each student's terms one college, and co-enrol a share ``p_co_enrol`` of college students.

    A co-enrolled student is also enrolled, in one of their terms (the first
    with probability one half), at a public in-state college of the other
    level, with the same term start. Returns the rows (the arrays of ``post``
    that are per row, plus ``institution``, a string array; co-enrolment rows
    follow their student's rows) and the mask of co-enrolled students.
    """
    ids = institution_ids()
    kinds = list(ids)
    level_names = np.array(schema.INSTITUTION_LEVELS)[post["level"]]
    control_names = np.array(schema.CONTROLS)[post["control"]]
    # One college per student: the kind of their (first) row, the college drawn once.
    draw = rng.random(n)
    institution = np.empty(len(post["student"]), dtype=object)
    for kind in kinds:
        level, control, in_state = kind
        mask = (level_names == level) & (control_names == control) & (post["in_state"] == in_state)
        pool = np.array(ids[kind])
        institution[mask] = pool[np.minimum((draw[post["student"][mask]] * len(pool)).astype(np.int64), len(pool) - 1)]

    has_terms = np.bincount(post["student"], minlength=n) > 0
    co = has_terms & (rng.random(n) < p_co_enrol)
    first_term = rng.random(n) < 0.5
    pick_u = rng.random(n)
    college_u = rng.random(n)
    student = post["student"]
    n_terms = np.bincount(student, minlength=n)
    first_row = np.cumsum(n_terms) - n_terms
    which = np.where(first_term, 0, np.minimum((pick_u * n_terms).astype(np.int64), np.maximum(n_terms - 1, 0)))
    co_rows = (first_row + which)[co]
    other_level = 1 - post["level"][co_rows]
    in_state_public = [ids[(level, "public", True)] for level in schema.INSTITUTION_LEVELS]
    co_institution = np.array(
        [
            in_state_public[lv][min(int(u * len(in_state_public[lv])), len(in_state_public[lv]) - 1)]
            for lv, u in zip(other_level, college_u[co], strict=True)
        ],
        dtype=object,
    )

    rows = {k: post[k] for k in ("student", "term_start", "level", "control", "in_state", "term_year")}
    extra = {
        "student": student[co_rows],
        "term_start": post["term_start"][co_rows],
        "level": other_level,
        "control": np.full(len(co_rows), schema.CONTROLS.index("public"), dtype=post["control"].dtype),
        "in_state": np.ones(len(co_rows), dtype=bool),
        "term_year": post["term_year"][co_rows],
    }
    out = {k: np.concatenate([rows[k], extra[k]]) for k in rows}
    out["institution"] = np.concatenate([institution, co_institution]).astype(str)
    seq = np.concatenate([np.arange(len(student)), co_rows + 0.5])
    order = np.argsort(seq, kind="stable")
    return {k: v[order] for k, v in out.items()}, co
