"""The growth model behind the assessments: scores, cut scores and achievement levels.

Each year a student's deviation from the grade's base score regresses toward
the subgroup level gap and gains the school's planted growth effect; grades 3-8
and 11 are tested in math and ELA, and a few tests are missing.
"""

from __future__ import annotations

import numpy as np

SCORE_BASE_GRADE3 = 400.0
#: The reporting scale declared in extract.json: base 400 (+15 per grade) +/- SCORE_CLIP stays inside it.
SCORE_SCALE_LOW, SCORE_SCALE_HIGH = 200, 700
SCORE_GROWTH_PER_GRADE = 15.0
SCORE_SD = 30.0
SCORE_AUTOREGRESSION = 0.8
SCORE_INNOVATION_SD = 18.0
SCORE_SUBJECT_CORR_START = 0.8
SCORE_SUBJECT_CORR_INNOVATION = 0.5
SCORE_CLIP = 160.0
#: Yearly growth gap (scale points); the level gap is gap / (1 - autoregression).
GROWTH_GAPS: dict[str, float] = {"economically_disadvantaged": -2.5, "english_learner": -4.0, "disability": -6.0}
#: Cut scores relative to the grade's base score: level 2, 3 (proficient), 4.
CUT_OFFSETS: tuple[float, ...] = (-35.0, -10.0, 28.0)
P_TEST_MISSING = 0.03


def correlated_normals(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    """[n, 2] standard normals with correlation ``corr`` (math, ela)."""
    z = rng.standard_normal((n, 2))
    z[:, 1] = corr * z[:, 0] + np.sqrt(1.0 - corr**2) * z[:, 1]
    return z


def school_effect(
    effect: np.ndarray, enrolled: np.ndarray, school: np.ndarray, prev: np.ndarray, mid: np.ndarray
) -> np.ndarray:
    """Growth effect of the year's school(s); the mean of both for a mid-year mover."""
    eff = np.where(mid, 0.5 * (effect[school] + effect[prev]), effect[school])
    return np.where(enrolled, eff, 0.0)


def cut_scores(grade: np.ndarray) -> np.ndarray:
    base = SCORE_BASE_GRADE3 + SCORE_GROWTH_PER_GRADE * (grade - 3)
    return base[..., None] + np.array(CUT_OFFSETS)


def draw_scores(
    rng: np.random.Generator, tested: np.ndarray, year: np.ndarray, grade: np.ndarray, dev: np.ndarray
) -> dict[str, np.ndarray]:
    present = tested[:, None] & (rng.random(dev.shape) >= P_TEST_MISSING)
    student, subject = np.nonzero(present)
    g = grade[student]
    base = SCORE_BASE_GRADE3 + SCORE_GROWTH_PER_GRADE * (g - 3)
    score = np.round(base + np.clip(dev[student, subject], -SCORE_CLIP, SCORE_CLIP))
    level = 1 + (score[:, None] >= cut_scores(g)).sum(axis=1)
    return {
        "student": student.astype(np.int64),
        "year": year[student].astype(np.int64),
        "grade": g.astype(np.int64),
        "subject": subject.astype(np.int64),
        "score": score.astype(np.float64),
        "level": level.astype(np.int64),
    }
