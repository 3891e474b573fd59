"""Quarterly UI wages of every student (the truth), of which those with a provided SSN are released.

A student-year has a status (in high school, graduation year, in college in or
out of state, working); employment, quarters and earnings follow it, with a
planted county labour-market effect (by the district of the last enrolment).
"""

from __future__ import annotations

import numpy as np

from analytics import schema
from analytics.synth.common import COUNTIES, DOLLAR_YEAR, LAST_DATA_YEAR, categorical, expit, pick, read_cpi
from analytics.synth.geography import Geography
from analytics.synth.schooling import Paths
from analytics.synth.students import Students

#: Calendar years relative to the expected graduation year (cohort + 3).
WAGE_RELATIVE_YEARS: tuple[int, ...] = tuple(range(-2, 12))
STATUSES: tuple[str, ...] = ("high_school", "graduation_year", "college_in_state", "college_away", "working")
EMPLOY_BASE_LOGIT: tuple[float, ...] = (-0.5, 0.8, 2.0, -1.0, 2.9)
EMPLOY_WORK_EXPERIENCE_LOGIT = 0.08  # per year out of school, up to 5
EMPLOY_PERSISTENT_SD = 1.0
EMPLOY_GAPS: dict[str, float] = {
    "economically_disadvantaged": -0.2,
    "disability": -0.6,
    "english_learner": -0.2,
    "dropped_out": -0.7,
    "other_leaver": -0.5,
}
QUARTERS_PROBS: tuple[tuple[float, ...], ...] = (
    (0.35, 0.30, 0.20, 0.15),
    (0.20, 0.30, 0.25, 0.25),
    (0.10, 0.20, 0.20, 0.50),
    (0.70, 0.25, 0.05, 0.0),
    (0.05, 0.07, 0.10, 0.78),
)
#: Full-year-equivalent real earnings (2024 dollars) by status; 'working' grows with years out.
ANNUAL_BASE_EARNINGS: tuple[float, ...] = (8_000.0, 15_000.0, 18_000.0, 9_000.0, 32_000.0)
WORK_EARNINGS_GROWTH: tuple[float, ...] = (0.9, 1.0, 1.07, 1.14, 1.21, 1.28)  # years out 0..5, then +3%/yr
WORK_EARNINGS_GROWTH_LATER = 1.03
EARNINGS_PERSISTENT_SD = 0.35
EARNINGS_QUARTER_SD = 0.15
EARNINGS_MULTIPLIERS: dict[str, float] = {
    "female": 0.92,
    "disability": 0.90,
    "economically_disadvantaged": 0.93,
    "dropped_out": 0.82,
    "bachelor_degree": 1.25,
    "associate_degree": 1.08,
}
P_LEAVE_MAINE_PER_YEAR = 0.025
P_AWAY_STUDENT_STAYS_AWAY = 0.5
P_OTHER_LEAVER_LEFT_MAINE = 0.5
EMPLOYED_MIN_QUARTERS = 2
EMPLOYED_MIN_ANNUAL = 3_000.0

#: Planted county labour-market effects: employment (logit shift) and earnings multiplier.
COUNTY_EFFECTS: dict[str, tuple[float, float]] = {
    "Androscoggin": (0.00, 0.97),
    "Aroostook": (-0.35, 0.86),
    "Cumberland": (0.35, 1.15),
    "Franklin": (-0.15, 0.90),
    "Hancock": (0.05, 0.95),
    "Kennebec": (0.10, 0.98),
    "Knox": (0.10, 0.96),
    "Lincoln": (0.00, 0.94),
    "Oxford": (-0.20, 0.90),
    "Penobscot": (0.05, 0.97),
    "Piscataquis": (-0.40, 0.85),
    "Sagadahoc": (0.15, 1.04),
    "Somerset": (-0.30, 0.88),
    "Waldo": (-0.15, 0.91),
    "Washington": (-0.50, 0.83),
    "York": (0.25, 1.06),
}
#: Main-employer sector mix (NAICS 2-digit) for teens and students, and for adults.
NAICS_MIX_YOUNG: dict[str, float] = {
    "72": 0.35,
    "44": 0.17,
    "45": 0.08,
    "71": 0.07,
    "62": 0.10,
    "61": 0.05,
    "56": 0.05,
    "81": 0.05,
    "23": 0.05,
    "11": 0.03,
}
NAICS_MIX_ADULT: dict[str, float] = {
    "62": 0.20,
    "44": 0.09,
    "45": 0.04,
    "72": 0.11,
    "31": 0.03,
    "32": 0.03,
    "33": 0.05,
    "23": 0.08,
    "61": 0.09,
    "92": 0.04,
    "52": 0.04,
    "54": 0.04,
    "56": 0.04,
    "48": 0.025,
    "49": 0.015,
    "42": 0.03,
    "81": 0.03,
    "11": 0.015,
    "71": 0.015,
    "53": 0.01,
    "51": 0.01,
    "22": 0.005,
    "21": 0.001,
    "55": 0.009,
}
P_KEEP_SECTOR = 0.8


def simulate_wages(
    rng: np.random.Generator,
    stu: Students,
    paths: Paths,
    geo: Geography,
    post: dict[str, np.ndarray],
    provided: np.ndarray,
    earnings_boost: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Quarterly UI wages of every student (truth), of which provided SSNs are released.

    ``earnings_boost`` multiplies each student's earnings (the planted high
    earners of :mod:`.cases`; default 1). The truth holds, for k = 1, 3, 5,
    ``employed_yk`` and ``earnings_yk`` (nominal) of calendar year cohort + 3 + k
    for every student, whatever the end of the extract.
    """
    n = len(stu.cohort)
    rel = np.array(WAGE_RELATIVE_YEARS)
    n_rel = len(rel)
    expected = stu.cohort + 3
    year = expected[:, None] + rel[None, :]
    exit_year = paths.year0 + paths.end
    code = paths.exit_code
    removed = np.isin(code, [schema.EXIT_TYPES.index(e) for e in schema.COHORT_REMOVING_EXITS])
    dropped = code == schema.EXIT_TYPES.index("dropped_out")
    other = code == schema.EXIT_TYPES.index("other")
    last_district = paths.district[np.arange(n), paths.end]
    county = geo.district_county[last_district]
    emp_effect = np.array([COUNTY_EFFECTS[c][0] for c in COUNTIES])[county]
    earn_mult = np.array([COUNTY_EFFECTS[c][1] for c in COUNTIES])[county]

    # Years in Maine: removed students leave at their exit; others may migrate later.
    leave_year = exit_year + 1 + rng.geometric(P_LEAVE_MAINE_PER_YEAR, n) - 1
    away_student = (post["n_terms"] > 0) & ~post["student_in_state"]
    stays_away = away_student & (rng.random(n) < P_AWAY_STUDENT_STAYS_AWAY)
    leave_year = np.where(stays_away, np.minimum(leave_year, post["last_year"] + 1), leave_year)
    leave_year = np.where(other & (rng.random(n) < P_OTHER_LEAVER_LEFT_MAINE), exit_year, leave_year)
    leave_year = np.where(removed, exit_year, leave_year)
    arrival_year = paths.year0 + paths.start - 1  # calendar year of the fall the student arrived
    valid = (
        (year <= LAST_DATA_YEAR)
        & (year >= arrival_year[:, None])
        & (year < leave_year[:, None])
        & paths.in_cohort[:, None]
    )

    # College terms per calendar year.
    terms = np.zeros((n, n_rel), dtype=np.int64)
    col = post["term_year"] - expected[post["student"]] - rel[0]
    ok = (col >= 0) & (col < n_rel)
    np.add.at(terms, (post["student"][ok], col[ok]), 1)
    in_state = post["student_in_state"][:, None]
    status = np.select(
        [year < exit_year[:, None], year == exit_year[:, None], (terms > 0) & in_state, terms > 0],
        [0, 1, 2, 3],
        default=4,
    )
    years_out = np.clip(year - exit_year[:, None] - 1, 0, 5)

    eta = EMPLOY_PERSISTENT_SD * rng.standard_normal(n)
    logit = (
        np.array(EMPLOY_BASE_LOGIT)[status]
        + np.where(status == 4, EMPLOY_WORK_EXPERIENCE_LOGIT * years_out, 0)
        + (
            emp_effect
            + eta
            + EMPLOY_GAPS["economically_disadvantaged"] * stu.ed
            + EMPLOY_GAPS["disability"] * stu.dis
            + EMPLOY_GAPS["english_learner"] * stu.el
        )[:, None]
        + np.where(
            status >= 1, (EMPLOY_GAPS["dropped_out"] * dropped + EMPLOY_GAPS["other_leaver"] * other)[:, None], 0.0
        )
    )
    employed = valid & (rng.random((n, n_rel)) < expit(logit))
    n_quarters = 1 + categorical(rng, np.array(QUARTERS_PROBS)[status])
    first_q = np.floor(rng.random((n, n_rel)) * (5 - n_quarters)).astype(np.int64)
    first_q = np.where(status == 3, np.where(n_quarters == 1, 2, 1), first_q)  # students away: summer jobs
    first_q = np.minimum(first_q, 4 - n_quarters)

    # Full-year-equivalent real earnings.
    growth = np.array(WORK_EARNINGS_GROWTH)
    k = year - expected[:, None]
    work_growth = np.where(
        k <= 0,
        growth[0],
        growth[np.clip(k, 0, len(growth) - 1)] * WORK_EARNINGS_GROWTH_LATER ** np.maximum(k - (len(growth) - 1), 0),
    )
    base = np.array(ANNUAL_BASE_EARNINGS)[status] * np.where(status == 4, work_growth, 1.0)
    female = stu.sex == schema.SEXES.index("F")
    person = (
        earn_mult
        * (1.0 if earnings_boost is None else earnings_boost)
        * np.exp(EARNINGS_PERSISTENT_SD * rng.standard_normal(n))
        * np.where(female, EARNINGS_MULTIPLIERS["female"], 1.0)
        * np.where(stu.dis, EARNINGS_MULTIPLIERS["disability"], 1.0)
        * np.where(stu.ed, EARNINGS_MULTIPLIERS["economically_disadvantaged"], 1.0)
        * np.where(dropped, EARNINGS_MULTIPLIERS["dropped_out"], 1.0)
    )
    bachelor = post["four_year"] & (post["n_terms"] >= 7)
    associate = ~post["four_year"] & (post["n_terms"] >= 4)
    after_college = year > post["last_year"][:, None]
    degree = np.select(
        [bachelor[:, None] & after_college, associate[:, None] & after_college],
        [EARNINGS_MULTIPLIERS["bachelor_degree"], EARNINGS_MULTIPLIERS["associate_degree"]],
        default=1.0,
    )
    annual = base * person[:, None] * np.where(status == 4, degree, 1.0)

    # Expand employed student-years to quarters.
    cpi = read_cpi()
    s_idx, r_idx = np.nonzero(employed)
    nq = n_quarters[s_idx, r_idx]
    cell = np.repeat(np.arange(len(s_idx)), nq)
    within = np.arange(len(cell)) - np.repeat(np.cumsum(nq) - nq, nq)
    student = s_idx[cell]
    q_year = year[s_idx, r_idx][cell]
    quarter = first_q[s_idx, r_idx][cell] + within + 1
    partial = (nq[cell] < 4) & ((within == 0) | (within == nq[cell] - 1))
    factor = np.where(partial, rng.uniform(0.35, 1.0, len(cell)), 1.0)
    noise = np.exp(EARNINGS_QUARTER_SD * rng.standard_normal(len(cell)))
    real = annual[s_idx, r_idx][cell] / 4.0 * factor * noise
    cpi_years = np.arange(q_year.min(initial=2000), q_year.max(initial=2000) + 1)
    cpi_factor = np.array([cpi.get(int(y), cpi[max(cpi)]) for y in cpi_years]) / cpi[DOLLAR_YEAR]
    nominal = np.maximum(np.round(real * cpi_factor[q_year - cpi_years[0]], 2), 0.01)

    # Main sector: adults keep a sector most years; teens and students take young jobs.
    sectors = list(schema.NAICS_SECTORS)
    young_codes = np.array([sectors.index(s) for s in NAICS_MIX_YOUNG])
    young = young_codes[pick(rng, list(NAICS_MIX_YOUNG.values()), len(s_idx))]
    adult_codes = np.array([sectors.index(s) for s in NAICS_MIX_ADULT])
    adult_p = list(NAICS_MIX_ADULT.values())
    own = adult_codes[pick(rng, adult_p, n)]
    fresh = adult_codes[pick(rng, adult_p, len(s_idx))]
    adult = np.where(rng.random(len(s_idx)) < P_KEEP_SECTOR, own[s_idx], fresh)
    naics = np.where(status[s_idx, r_idx] == 4, adult, young)[cell]

    # Truth: annual nominal earnings and the >= 2 quarters and >= $3,000 rule, for everyone.
    flat = student * n_rel + r_idx[cell]
    annual_nominal = np.bincount(flat, weights=nominal, minlength=n * n_rel).reshape(n, n_rel)
    quarters_paid = np.bincount(flat, minlength=n * n_rel).reshape(n, n_rel)
    truth: dict[str, np.ndarray] = {}
    for k_out in (1, 3, 5):
        r = WAGE_RELATIVE_YEARS.index(k_out)
        known = expected + k_out <= LAST_DATA_YEAR
        earn = np.round(annual_nominal[:, r], 2)
        truth[f"employed_y{k_out}"] = np.where(
            known, (quarters_paid[:, r] >= EMPLOYED_MIN_QUARTERS) & (earn >= EMPLOYED_MIN_ANNUAL), False
        )
        truth[f"earnings_y{k_out}"] = earn
        truth[f"known_y{k_out}"] = known

    release = provided[student]
    wages = {
        "student": student[release].astype(np.int64),
        "year": q_year[release].astype(np.int64),
        "quarter": quarter[release].astype(np.int64),
        "wages": nominal[release].astype(np.float64),
        "naics2": naics[release].astype(np.int64),
    }
    return wages, truth
