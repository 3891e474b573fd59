"""Students: pseudonymous keys, demographics by locale, and nominal grade-9 cohorts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import schema
from analytics.synth.common import COHORTS, categorical, expit, logit, pick
from analytics.synth.geography import Geography

SEX_PROBS: tuple[float, ...] = (0.4885, 0.4885, 0.003)  # F, M, X
#: Race/ethnicity by locale, in the order of schema.RACE_ETHNICITY
#: (Hispanic, AI/AN, Asian, Black, NH/PI, White, Two or more).
RACE_PROBS_BY_LOCALE: dict[str, tuple[float, ...]] = {
    "City": (0.040, 0.005, 0.035, 0.120, 0.003, 0.752, 0.045),
    "Suburb": (0.025, 0.004, 0.022, 0.028, 0.001, 0.880, 0.040),
    "Town": (0.018, 0.008, 0.010, 0.018, 0.001, 0.910, 0.035),
    "Rural": (0.014, 0.014, 0.006, 0.008, 0.001, 0.927, 0.030),
}
ED_PROB_BY_LOCALE: dict[str, float] = {"City": 0.46, "Suburb": 0.22, "Town": 0.38, "Rural": 0.44}
ED_LOGIT_SHIFT_RACE = 0.8  # Black, Hispanic, AI/AN
#: English-learner probability by race in City districts; elsewhere times 0.6.
EL_PROB_CITY_BY_RACE: tuple[float, ...] = (0.30, 0.02, 0.38, 0.50, 0.15, 0.015, 0.03)
EL_NON_CITY_FACTOR = 0.5
DISABILITY_PROB: tuple[float, ...] = (0.13, 0.21, 0.17)  # F, M, X
COHORT_DECLINE_PER_YEAR = 0.012  # Maine enrolment shrinks slowly
_KEY_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)


def student_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique keys 'K' + 10 base32 characters (A-Z, 2-7) with no run of 5 or more digits.

    A key is never SSN-shaped (the PII gate refuses 9-digit runs). Keys come
    out in increasing order of their random code, so key order says nothing
    about the student.
    """
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n:
        draw = rng.integers(0, 32**10, size=n - len(keys) + 16, dtype=np.int64)
        digits = (draw[:, None] // (32 ** np.arange(9, -1, -1, dtype=np.int64))) % 32
        # Characters '2'..'7' are digits (codes 26..31); refuse any run of 5 or more.
        is_digit = digits >= 26
        run = np.zeros(len(draw), dtype=np.int64)
        longest = np.zeros(len(draw), dtype=np.int64)
        for j in range(10):
            run = np.where(is_digit[:, j], run + 1, 0)
            longest = np.maximum(longest, run)
        keys = np.unique(np.concatenate([keys, draw[longest < 5]]))[:n]
    digits = (keys[:, None] // (32 ** np.arange(9, -1, -1, dtype=np.int64))) % 32
    chars = np.concatenate([np.full((n, 1), ord("K"), dtype=np.uint8), _KEY_ALPHABET[digits]], axis=1)
    return np.ascontiguousarray(chars).view("S11").ravel().astype(str)


@dataclass
class Students:
    """Per-student attributes (arrays of length n)."""

    sex: np.ndarray
    race: np.ndarray
    ed: np.ndarray
    el: np.ndarray
    dis: np.ndarray
    cohort: np.ndarray  # nominal cohort; truth cohort is NULL for early leavers


def make_students(rng: np.random.Generator, n: int, geo: Geography, home: np.ndarray) -> Students:
    locale = geo.district_locale[home]
    locale_names = np.array(schema.LOCALES)[locale]
    sex = pick(rng, SEX_PROBS, n)
    race_probs = np.array([RACE_PROBS_BY_LOCALE[loc] for loc in schema.LOCALES])[locale]
    race = categorical(rng, race_probs)
    race_names = np.array(schema.RACE_ETHNICITY)[race]
    ed_base = np.array([ED_PROB_BY_LOCALE[loc] for loc in schema.LOCALES])[locale]
    minority = np.isin(race_names, ["Black or African American", "Hispanic/Latino", "American Indian or Alaska Native"])
    ed = rng.random(n) < expit(logit(ed_base) + ED_LOGIT_SHIFT_RACE * minority)
    el_p = np.array(EL_PROB_CITY_BY_RACE)[race] * np.where(locale_names == "City", 1.0, EL_NON_CITY_FACTOR)
    el = rng.random(n) < el_p
    dis = rng.random(n) < np.array(DISABILITY_PROB)[sex]
    weights = [1.0 - COHORT_DECLINE_PER_YEAR * i for i in range(len(COHORTS))]
    cohort = np.array(COHORTS)[pick(rng, weights, n)]
    return Students(sex=sex, race=race, ed=ed, el=el, dis=dis, cohort=cohort)
