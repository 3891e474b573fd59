"""A realistic synthetic SLDS for Maine, with planted truth.

:func:`generate` writes one ``<table>.parquet`` per table of the data contract
(:mod:`analytics.schema`) and a ``truth/`` folder holding the effects the
generator planted and each student's true outcomes. The app never reads
``truth/``; tests use it to check that metrics recover what was planted.

What the data look like:

- 150 fictional districts (the count does not depend on ``n_students``, so the
  public lists are the same for every size of a given seed) in the 16 real
  counties, with lognormal sizes: many small rural units, a few large City and
  Suburb ones in Cumberland, York, Penobscot, Androscoggin and Kennebec. Place
  names are invented compounds ("Birchwater", "Loon Hollow").
- Grade-9 cohorts 2011-2021 with K-12 histories: elementary -> middle -> high
  school moves within the district, moves between districts (some mid-year:
  two rows in that school year), transfers in from out of state after K,
  grade retention, and exits (graduated in 4 or 5 years, dropped out,
  transferred out, emigrated, deceased, other). A few students leave the
  state before grade 9 and so belong to no cohort.
- Assessments from a growth model with a planted school growth effect;
  graduation from a logit model with a planted school graduation effect;
  SSN opt-out from a planted district propensity (higher for English
  learners); postsecondary terms; quarterly UI wages (only for students whose
  SSN was provided) from a planted county labour-market effect.

Planted truth (``out_dir/truth/``); the generator also declares the data's end years and score
scale in ``out_dir/extract.json``:

- ``districts.parquet``: district_id, optout_propensity (planted probability
  that a non-EL family declines), n_asked, realised_optout_rate (declined /
  asked; NULL where nobody was asked).
- ``schools.parquet``: school_id, growth_effect (scale points added to a
  student's score in each year at the school), graduation_effect (logit shift
  of graduating, for the high school of the student's year cohort + 3).
- ``counties.parquet``: county, employment_effect (logit shift),
  earnings_multiplier (on real earnings); the county is that of the district
  of the student's last enrolment.
- ``students.parquet``: student_key, cohort (NULL for students who left the
  state before grade 9), graduated_4yr, graduated_5yr, removed_from_cohort,
  acgr_school_id (school of the last enrolment row with school_year <=
  cohort + 3; for a mid-year mover, the later row, which the file lists
  second), employed_y1/y3/y5 and earnings_y1/y3/y5 (nominal, calendar year
  cohort + 3 + k, from all wages whether or not the SSN was provided; NULL
  after 2025 or without a cohort).
- ``parameters.json``: every planted parameter, with sorted keys.

Everything is drawn from ``numpy.random.default_rng(seed)`` (and generators
spawned from it), so the same ``(n_students, seed)`` gives byte-identical files.
The districts and schools use their own spawned generator, so the public lists
depend on the seed only, not on ``n_students``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analytics import schema
from analytics.config import REFERENCE_DIR

GENERATOR_VERSION = "1.0.0"

# ---------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------
#: Cohorts are named by the spring school year of first-time grade 9.
COHORTS: tuple[int, ...] = tuple(range(2011, 2022))
#: Last school year (2024-25) and last calendar year of wage and college data.
LAST_SCHOOL_YEAR = 2025
LAST_DATA_YEAR = 2025
#: Earnings are planted in dollars of this year and converted with CPI-U.
DOLLAR_YEAR = 2024
#: Years of schooling tracked per student: K (step 0) .. 5th high-school year.
N_STEPS = 15

# ---------------------------------------------------------------------------
# Districts and schools
# ---------------------------------------------------------------------------
N_DISTRICTS = 150
#: Districts per county (sums to N_DISTRICTS): many small units Down East and in
#: Aroostook, fewer and larger ones in the southern counties.
DISTRICTS_PER_COUNTY: dict[str, int] = {
    "Androscoggin": 6,
    "Aroostook": 19,
    "Cumberland": 16,
    "Franklin": 4,
    "Hancock": 14,
    "Kennebec": 10,
    "Knox": 5,
    "Lincoln": 7,
    "Oxford": 6,
    "Penobscot": 16,
    "Piscataquis": 4,
    "Sagadahoc": 3,
    "Somerset": 7,
    "Waldo": 4,
    "Washington": 17,
    "York": 12,
}
#: Shift of log district size by county.
COUNTY_SIZE_SHIFT: dict[str, float] = {
    "Androscoggin": 0.9,
    "Aroostook": -0.3,
    "Cumberland": 0.9,
    "Franklin": 0.4,
    "Hancock": -0.6,
    "Kennebec": 0.6,
    "Knox": 0.0,
    "Lincoln": -0.3,
    "Oxford": 0.5,
    "Penobscot": 0.3,
    "Piscataquis": -0.2,
    "Sagadahoc": 0.4,
    "Somerset": 0.3,
    "Waldo": 0.4,
    "Washington": -0.8,
    "York": 0.9,
}
METRO_COUNTIES: tuple[str, ...] = ("Cumberland", "York", "Penobscot", "Androscoggin", "Kennebec")
DISTRICT_SIZE_MEDIAN = 550.0  # K-12 students
DISTRICT_SIZE_LOG_SD = 0.9
#: Planted SSN opt-out propensity (probability for a non-EL student): share of
#: districts in each band and the band's uniform range.
OPTOUT_BANDS: tuple[tuple[int, float, float], ...] = (
    (120, 0.02, 0.08),  # most districts
    (22, 0.10, 0.20),  # some
    (8, 0.25, 0.30),  # boards advised parents to refuse (2010)
)
EL_OPTOUT_ODDS_RATIO = 3.0

_PLACE_STEMS: tuple[str, ...] = (
    "Alder",
    "Balsam",
    "Bayberry",
    "Birch",
    "Bittern",
    "Bramble",
    "Cedar",
    "Chickadee",
    "Driftwood",
    "Fern",
    "Fiddlehead",
    "Granite",
    "Hemlock",
    "Heron",
    "Juniper",
    "Kestrel",
    "Kettle",
    "Lantern",
    "Larch",
    "Loon",
    "Lupine",
    "Marten",
    "Mica",
    "Mink",
    "Moss",
    "Osprey",
    "Otter",
    "Pinecone",
    "Plover",
    "Puffin",
    "Quarry",
    "Sandpiper",
    "Spruce",
    "Starling",
    "Sumac",
    "Tamarack",
    "Tern",
    "Thistle",
    "Trillium",
    "Whitecap",
    "Wren",
    "Yarrow",
    "Aster",
    "Bunchberry",
    "Cattail",
    "Crowberry",
    "Foxglove",
    "Goldthread",
    "Kingfisher",
    "Lichen",
    "Merganser",
    "Nuthatch",
    "Rockweed",
    "Sweetfern",
    "Teaberry",
    "Vireo",
    "Warbler",
    "Woodcock",
)
_PLACE_ENDINGS: tuple[str, ...] = (
    "water",
    " Hollow",
    " Ledge",
    " Landing",
    " Crossing",
    "mere",
    "haven",
    " Narrows",
    " Ridge",
    " Notch",
    " Meadow",
    " Glen",
    " Reach",
    " Cove",
    " Bluff",
    " Knoll",
    " Point",
)
_RURAL_UNIT_KINDS: tuple[tuple[str, float], ...] = (
    ("Regional School Unit", 0.45),
    ("School Administrative District", 0.25),
    ("Community School District", 0.15),
    ("School Department", 0.15),
)

# ---------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------
# Enrolment paths
# ---------------------------------------------------------------------------
P_RETAINED_BEFORE_9 = 0.06
RETENTION_GRADE_WEIGHTS: tuple[float, ...] = (0.30, 0.18, 0.12, 0.08, 0.06, 0.06, 0.06, 0.07, 0.07)
P_TRANSFER_IN = 0.14
#: Weights of the entry grade 1..12 of students who transfer in from out of state.
TRANSFER_IN_GRADE_WEIGHTS: tuple[float, ...] = (1.2, 1, 1, 1, 1, 1, 1, 1, 0.9, 0.9, 0.8, 0.6)
P_MOVE_DISTRICT_PER_YEAR = 0.018
P_MOVE_SAME_COUNTY = 0.6
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

# ---------------------------------------------------------------------------
# Assessments (growth model)
# ---------------------------------------------------------------------------
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
SCHOOL_GROWTH_EFFECT_SD = 4.0
#: Yearly growth gap (scale points); the level gap is gap / (1 - autoregression).
GROWTH_GAPS: dict[str, float] = {"economically_disadvantaged": -2.5, "english_learner": -4.0, "disability": -6.0}
#: Cut scores relative to the grade's base score: level 2, 3 (proficient), 4.
CUT_OFFSETS: tuple[float, ...] = (-35.0, -10.0, 28.0)
P_TEST_MISSING = 0.03

# ---------------------------------------------------------------------------
# Graduation
# ---------------------------------------------------------------------------
GRAD_INTERCEPT = 3.75
SCHOOL_GRAD_EFFECT_SD = 0.5
GRAD_PRIOR_ACHIEVEMENT_COEF = 0.9  # per score SD of grade-8 achievement
GRAD_GAPS: dict[str, float] = {"economically_disadvantaged": -0.5, "english_learner": -0.3, "disability": -0.6}
FIFTH_YEAR_INTERCEPT = -3.2
FIFTH_YEAR_ACHIEVEMENT_COEF = -0.5
FIFTH_YEAR_DISABILITY = 0.5

# ---------------------------------------------------------------------------
# Postsecondary
# ---------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------
# Wages
# ---------------------------------------------------------------------------
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

_KEY_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
}
_COUNTIES: tuple[str, ...] = tuple(schema.MAINE_COUNTIES)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1): the index of the category."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1]) * cum[..., -1]
    return np.minimum((u[..., None] >= cum).sum(axis=-1), probs.shape[-1] - 1)


def _pick(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(w), size=size, p=w / w.sum())


# ---------------------------------------------------------------------------
# Districts and schools
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geography:
    """Districts and schools as arrays, plus the grade -> school lookup."""

    district_ids: np.ndarray  # str, D001..
    district_names: np.ndarray  # str
    district_county: np.ndarray  # int, index into _COUNTIES
    district_locale: np.ndarray  # int, index into schema.LOCALES
    district_size: np.ndarray  # float, K-12 students
    optout: np.ndarray  # float, planted opt-out propensity
    school_ids: np.ndarray  # str, S0001..
    school_names: np.ndarray  # str
    school_district: np.ndarray  # int
    school_level: np.ndarray  # int, index into schema.SCHOOL_LEVELS
    growth_effect: np.ndarray  # float, scale points
    grad_effect: np.ndarray  # float, logit
    serve_ids: np.ndarray  # int [district, grade, j]: j-th school serving the grade
    serve_n: np.ndarray  # int [district, grade]: how many schools serve the grade

    def school_of(self, district: np.ndarray, grade: np.ndarray, area: np.ndarray) -> np.ndarray:
        """School attended for a district, grade and attendance area in [0, 1).

        Areas nest: a student in the first half of the district goes to the first
        of two middle schools whatever the number of elementary schools.
        """
        g = np.clip(grade, 0, 12)
        n_serve = self.serve_n[district, g]
        j = np.minimum((area * n_serve).astype(np.int64), n_serve - 1)
        return self.serve_ids[district, g, j]


def _place_names(rng: np.random.Generator) -> list[str]:
    """All invented place names, shuffled."""
    names = [stem + ending for stem in _PLACE_STEMS for ending in _PLACE_ENDINGS]
    return [names[i] for i in rng.permutation(len(names))]


def _assign_locales(county: np.ndarray, size: np.ndarray) -> np.ndarray:
    """City for the largest districts of the metro counties, Suburb around them, else Town/Rural."""
    locale = np.full(len(size), schema.LOCALES.index("Rural"))
    metro = np.isin(county, [_COUNTIES.index(c) for c in METRO_COUNTIES])
    n_cities = {"Cumberland": 2, "York": 2, "Androscoggin": 2, "Penobscot": 1, "Kennebec": 1}
    for name, k in n_cities.items():
        members = np.flatnonzero(county == _COUNTIES.index(name))
        largest = members[np.argsort(-size[members], kind="stable")][:k]
        locale[largest[size[largest] >= 1500]] = schema.LOCALES.index("City")
    rest = locale != schema.LOCALES.index("City")
    locale[rest & metro & (size >= 800)] = schema.LOCALES.index("Suburb")
    locale[rest & ~metro & (size >= 900)] = schema.LOCALES.index("Town")
    locale[rest & metro & (size < 800) & (size >= 450)] = schema.LOCALES.index("Town")
    return locale


def _school_plan(rng: np.random.Generator, size: float) -> list[tuple[str, int, int]]:
    """Schools of one district as (level, lowest grade, highest grade)."""
    if size < 180:
        return [("Combined", 0, 12)]
    if size < 450:
        if rng.random() < 0.5:
            return [("Elementary", 0, 8), ("High", 9, 12)]
        return [("Elementary", 0, 5), ("Combined", 6, 12)]
    if size < 1400:
        n_elem = 1 + int(size >= 900)
        return [("Elementary", 0, 5)] * n_elem + [("Middle", 6, 8), ("High", 9, 12)]
    n_elem = int(np.clip(round(size / 420), 2, 16))
    n_mid = int(np.clip(round(size / 1700), 1, 4))
    n_high = int(np.clip(round(size / 3200), 1, 3))
    return [("Elementary", 0, 5)] * n_elem + [("Middle", 6, 8)] * n_mid + [("High", 9, 12)] * n_high


def _school_name(place: str, level: str, low: int) -> str:
    if level == "Combined":
        return f"{place} Community School" if low == 0 else f"{place} Middle/High School"
    return f"{place} {level} School"


def _make_geography(rng: np.random.Generator) -> _Geography:
    county = np.repeat(np.arange(len(_COUNTIES)), [DISTRICTS_PER_COUNTY[c] for c in _COUNTIES])
    shift = np.array([COUNTY_SIZE_SHIFT[c] for c in _COUNTIES])[county]
    log_size = np.log(DISTRICT_SIZE_MEDIAN) + shift + DISTRICT_SIZE_LOG_SD * rng.standard_normal(N_DISTRICTS)
    size = np.exp(log_size)
    size = np.clip(np.round(size), 60, 9000)
    locale = _assign_locales(county, size)

    places = _place_names(rng)
    district_places, spare_places = places[:N_DISTRICTS], places[N_DISTRICTS:]
    kinds = [k for k, _ in _RURAL_UNIT_KINDS]
    kind_draw = _pick(rng, [w for _, w in _RURAL_UNIT_KINDS], N_DISTRICTS)
    regional = rng.random(N_DISTRICTS) < 0.3
    names = []
    for i, place in enumerate(district_places):
        loc = schema.LOCALES[locale[i]]
        if loc == "City":
            kind = "Public Schools"
        elif loc in ("Suburb", "Town"):
            kind = "Regional School Unit" if regional[i] else "School Department"
        else:
            kind = kinds[kind_draw[i]]
        names.append(f"{place} {kind}")

    optout = np.empty(N_DISTRICTS)
    band_of = np.repeat(np.arange(len(OPTOUT_BANDS)), [n for n, _, _ in OPTOUT_BANDS])
    band_of = band_of[rng.permutation(N_DISTRICTS)]
    lows = np.array([lo for _, lo, _ in OPTOUT_BANDS])[band_of]
    highs = np.array([hi for _, _, hi in OPTOUT_BANDS])[band_of]
    optout[:] = np.round(lows + (highs - lows) * rng.random(N_DISTRICTS), 4)

    # District ids follow the alphabetical order of names.
    order = np.argsort(np.array(names), kind="stable")
    names_sorted = np.array(names)[order]
    county, locale, size, optout = county[order], locale[order], size[order], optout[order]
    district_ids = np.array([f"D{i + 1:03d}" for i in range(N_DISTRICTS)])

    school_names: list[str] = []
    school_district: list[int] = []
    school_level: list[int] = []
    school_grades: list[tuple[int, int]] = []
    spare = iter(spare_places)
    for d in range(N_DISTRICTS):
        place = district_places[order[d]]
        used_levels: set[str] = set()
        for level, low, high in _school_plan(rng, float(size[d])):
            name_place = place if level not in used_levels else next(spare)
            used_levels.add(level)
            school_names.append(_school_name(name_place, level, low))
            school_district.append(d)
            school_level.append(schema.SCHOOL_LEVELS.index(level))
            school_grades.append((low, high))
    n_schools = len(school_names)
    school_ids = np.array([f"S{i + 1:04d}" for i in range(n_schools)])

    max_k = 1
    serving: dict[tuple[int, int], list[int]] = {}
    for s, (d, (low, high)) in enumerate(zip(school_district, school_grades, strict=True)):
        for g in range(low, high + 1):
            serving.setdefault((d, g), []).append(s)
            max_k = max(max_k, len(serving[(d, g)]))
    serve_ids = np.zeros((N_DISTRICTS, 13, max_k), dtype=np.int64)
    serve_n = np.zeros((N_DISTRICTS, 13), dtype=np.int64)
    for (d, g), members in serving.items():
        serve_ids[d, g, : len(members)] = members
        serve_n[d, g] = len(members)
    if (serve_n == 0).any():  # pragma: no cover - every plan covers K-12
        raise RuntimeError("a district has a grade no school serves")

    growth = np.round(SCHOOL_GROWTH_EFFECT_SD * rng.standard_normal(n_schools), 3)
    grad = np.round(SCHOOL_GRAD_EFFECT_SD * rng.standard_normal(n_schools), 4)
    return _Geography(
        district_ids=district_ids,
        district_names=names_sorted,
        district_county=county,
        district_locale=locale,
        district_size=size,
        optout=optout,
        school_ids=school_ids,
        school_names=np.array(school_names),
        school_district=np.array(school_district),
        school_level=np.array(school_level),
        growth_effect=growth,
        grad_effect=grad,
        serve_ids=serve_ids,
        serve_n=serve_n,
    )


# ---------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------
def _student_keys(rng: np.random.Generator, n: int) -> np.ndarray:
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
class _Students:
    """Per-student attributes (arrays of length n)."""

    sex: np.ndarray
    race: np.ndarray
    ed: np.ndarray
    el: np.ndarray
    dis: np.ndarray
    cohort: np.ndarray  # nominal cohort; truth cohort is NULL for early leavers


def _make_students(rng: np.random.Generator, n: int, geo: _Geography, home: np.ndarray) -> _Students:
    locale = geo.district_locale[home]
    locale_names = np.array(schema.LOCALES)[locale]
    sex = _pick(rng, SEX_PROBS, n)
    race_probs = np.array([RACE_PROBS_BY_LOCALE[loc] for loc in schema.LOCALES])[locale]
    race = _categorical(rng, race_probs)
    race_names = np.array(schema.RACE_ETHNICITY)[race]
    ed_base = np.array([ED_PROB_BY_LOCALE[loc] for loc in schema.LOCALES])[locale]
    minority = np.isin(race_names, ["Black or African American", "Hispanic/Latino", "American Indian or Alaska Native"])
    ed = rng.random(n) < _expit(_logit(ed_base) + ED_LOGIT_SHIFT_RACE * minority)
    el_p = np.array(EL_PROB_CITY_BY_RACE)[race] * np.where(locale_names == "City", 1.0, EL_NON_CITY_FACTOR)
    el = rng.random(n) < el_p
    dis = rng.random(n) < np.array(DISABILITY_PROB)[sex]
    weights = [1.0 - COHORT_DECLINE_PER_YEAR * i for i in range(len(COHORTS))]
    cohort = np.array(COHORTS)[_pick(rng, weights, n)]
    return _Students(sex=sex, race=race, ed=ed, el=el, dis=dis, cohort=cohort)


# ---------------------------------------------------------------------------
# Enrolment paths
# ---------------------------------------------------------------------------
@dataclass
class _Paths:
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

    @property
    def enrolled(self) -> np.ndarray:
        t = np.arange(N_STEPS)[None, :]
        return (t >= self.start[:, None]) & (t <= self.end[:, None])


def _pick_destinations(rng: np.random.Generator, origin: np.ndarray, geo: _Geography) -> np.ndarray:
    """New district for movers: same county with probability P_MOVE_SAME_COUNTY, by size."""
    order = np.argsort(geo.district_county, kind="stable")
    cum = np.cumsum(geo.district_size[order])
    county_sorted = geo.district_county[order]
    n_counties = len(_COUNTIES)
    hi = np.searchsorted(county_sorted, np.arange(n_counties), side="right")
    lo = np.searchsorted(county_sorted, np.arange(n_counties), side="left")
    cum_before = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    county_total = cum[hi - 1] - cum_before
    k = geo.district_county[origin]
    same = rng.random(len(origin)) < P_MOVE_SAME_COUNTY
    u = rng.random(len(origin))
    target = np.where(same, cum_before[k] + u * county_total[k], u * cum[-1])
    pos = np.minimum(np.searchsorted(cum, target, side="right"), len(cum) - 1)
    dest = order[pos]
    clash = dest == origin
    dest[clash] = order[(pos[clash] + 1) % len(order)]
    return dest


def _grade_before_9(t: np.ndarray, retained_at: np.ndarray) -> np.ndarray:
    return t - (t > retained_at)


def _high_school_grade(t: np.ndarray, t9: np.ndarray, hs_retained_at: np.ndarray) -> np.ndarray:
    k = t - t9
    return np.minimum(9 + k - (k > hs_retained_at - 9), 12)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def _contract_table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    spec = schema.table(name)
    written = tuple(c for c in spec.columns if c.required or c.name in columns)  # optional columns may be left out
    if tuple(columns) != tuple(c.name for c in written):  # pragma: no cover - programming error
        raise RuntimeError(f"{name}: columns {tuple(columns)} differ from the contract {spec.column_names}")
    arrays = [columns[c.name].cast(_ARROW_TYPES[c.dtype]) for c in written]
    fields = [pa.field(c.name, _ARROW_TYPES[c.dtype], nullable=c.nullable) for c in written]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write deterministically: fixed compression, no pandas or time metadata."""
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd", compression_level=3)


def _take(values: np.ndarray | Sequence[str], idx: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values)).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _read_cpi() -> dict[int, float]:
    with (REFERENCE_DIR / "cpi_u_annual.csv").open(newline="", encoding="utf-8") as fh:
        return {int(row["year"]): float(row["cpi_u_annual_avg"]) for row in csv.DictReader(fh)}


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------
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

    geo = _make_geography(rng_geo)
    keys = _student_keys(rng_stu, n)
    home = rng_stu.choice(N_DISTRICTS, size=n, p=geo.district_size / geo.district_size.sum())
    stu = _make_students(rng_stu, n, geo, home)

    paths, scores, a11 = _simulate_schooling(rng_path, rng_score, rng_out, n, geo, stu, home)
    enrol_rows = _enrollment_rows(paths)

    # SSN: asked in the first school year >= 2011 in which the student was enrolled.
    t_ask = np.maximum(paths.start, schema.FIRST_SSN_SCHOOL_YEAR - paths.year0)
    rows = np.arange(n)
    moved_before = paths.mid_move[rows, t_ask] & (t_ask > paths.start)
    ask_district = np.where(moved_before, paths.district[rows, np.maximum(t_ask - 1, 0)], paths.district[rows, t_ask])
    ask_year = paths.year0 + t_ask
    p_decline = _expit(_logit(geo.optout[ask_district]) + np.log(EL_OPTOUT_ODDS_RATIO) * stu.el)
    provided = rng_ssn.random(n) >= p_decline

    post = _postsecondary(rng_ps, stu, paths, a11)
    wages, truth_work = _wages(rng_wage, stu, paths, geo, post, provided)

    tables = {
        "districts": _contract_table(
            "districts",
            {
                "district_id": pa.array(geo.district_ids),
                "district_name": pa.array(geo.district_names),
                "county": _take(_COUNTIES, geo.district_county),
                "locale": _take(schema.LOCALES, geo.district_locale),
            },
        ),
        "schools": _contract_table(
            "schools",
            {
                "school_id": pa.array(geo.school_ids),
                "school_name": pa.array(geo.school_names),
                "district_id": _take(geo.district_ids, geo.school_district),
                "school_level": _take(schema.SCHOOL_LEVELS, geo.school_level),
            },
        ),
        "students": _contract_table(
            "students",
            {
                "student_key": pa.array(keys),
                "sex": _take(schema.SEXES, stu.sex),
                "race_ethnicity": _take(schema.RACE_ETHNICITY, stu.race),
                "economically_disadvantaged": pa.array(stu.ed),
                "english_learner": pa.array(stu.el),
                "disability": pa.array(stu.dis),
            },
        ),
        "enrollments": _contract_table(
            "enrollments",
            {
                "student_key": _take(keys, enrol_rows["student"]),
                "school_year": pa.array(enrol_rows["year"]),
                "school_id": _take(geo.school_ids, enrol_rows["school"]),
                "grade": pa.array(enrol_rows["grade"]),
                "exit_type": _take(schema.EXIT_TYPES, enrol_rows["exit"]),
            },
        ),
        "assessments": _contract_table(
            "assessments",
            {
                "student_key": _take(keys, scores["student"]),
                "school_year": pa.array(scores["year"]),
                "grade": pa.array(scores["grade"]),
                "subject": _take(schema.SUBJECTS, scores["subject"]),
                "scale_score": pa.array(scores["score"]),
                "achievement_level": pa.array(scores["level"]),
            },
        ),
        "ssn_collection": _contract_table(
            "ssn_collection",
            {
                "student_key": pa.array(keys),
                "school_year": pa.array(ask_year.astype(np.int64)),
                "district_id": _take(geo.district_ids, ask_district),
                "status": _take(schema.SSN_STATUSES, np.where(provided, 0, 1)),
            },
        ),
        "postsecondary": _contract_table(
            "postsecondary",
            {
                "student_key": _take(keys, post["student"]),
                "term_start": pa.array(post["term_start"].astype("datetime64[D]"), type=pa.date32()),
                "institution_level": _take(schema.INSTITUTION_LEVELS, post["level"]),
                "control": _take(schema.CONTROLS, post["control"]),
                "in_state": pa.array(post["in_state"]),
            },
        ),
        "wages": _contract_table(
            "wages",
            {
                "student_key": _take(keys, wages["student"]),
                "year": pa.array(wages["year"]),
                "quarter": pa.array(wages["quarter"]),
                "wages": pa.array(wages["wages"]),
                "naics2": _take(list(schema.NAICS_SECTORS), wages["naics2"]),
            },
        ),
    }
    for name in schema.TABLE_NAMES:
        _write_parquet(tables[name], out_dir / f"{name}.parquet")
    _write_extract(out_dir)

    _write_truth(out_dir / "truth", n, seed, keys, geo, stu, paths, ask_district, provided, truth_work)
    return {name: tables[name].num_rows for name in schema.TABLE_NAMES}


def _write_extract(out_dir: Path) -> None:
    """Declare the dataset's end years and score scale in ``extract.json`` (see :mod:`analytics.extract`)."""
    config = {
        "last_school_year": LAST_SCHOOL_YEAR,
        "last_wage_year": LAST_DATA_YEAR,
        "last_postsecondary_year": LAST_DATA_YEAR,
        "score_scales": {s: [SCORE_SCALE_LOW, SCORE_SCALE_HIGH] for s in schema.SUBJECTS},
    }
    (out_dir / "extract.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _simulate_schooling(
    rng: np.random.Generator,
    rng_score: np.random.Generator,
    rng_out: np.random.Generator,
    n: int,
    geo: _Geography,
    stu: _Students,
    home: np.ndarray,
) -> tuple[_Paths, dict[str, np.ndarray], np.ndarray]:
    """Enrolment paths, assessment scores and exits.

    Returns the paths, the assessment rows, and standardised grade-11
    achievement (mean of math and ELA deviation from the grade base, in score
    SDs), which drives postsecondary enrolment.
    """
    steps = np.arange(N_STEPS)
    c = stu.cohort

    # Retention before grade 9 and the step of first-time grade 9.
    retained = rng.random(n) < P_RETAINED_BEFORE_9
    retained_at = np.where(retained, _pick(rng, RETENTION_GRADE_WEIGHTS, n), 99)
    t9 = 9 + retained.astype(np.int64)
    year0 = c - t9

    # Entry: kindergarten, or a transfer in from out of state at grade 1..12.
    transfer_in = rng.random(n) < P_TRANSFER_IN
    start_grade = np.where(transfer_in, 1 + _pick(rng, TRANSFER_IN_GRADE_WEIGHTS, n), 0)
    start = np.where(start_grade <= 8, start_grade + (start_grade > retained_at), t9 + start_grade - 9)

    # District and attendance area per step; moves between districts.
    district = np.repeat(home[:, None], N_STEPS, axis=1)
    area = np.repeat(rng.random(n)[:, None], N_STEPS, axis=1)
    mid_move = np.zeros((n, N_STEPS), dtype=bool)
    for t in range(1, N_STEPS):
        moves = (rng.random(n) < P_MOVE_DISTRICT_PER_YEAR) & (t > start)
        new_area = rng.random(n)
        mid = rng.random(n) < P_MOVE_MID_YEAR
        if moves.any():
            dest = _pick_destinations(rng, district[moves, t], geo)
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
        _pick(rng, [p for _, p in LEAVE_BEFORE_9_EXITS], n)
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
    z = _correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_START)
    dev = level_gap[:, None] + SCORE_SD * z
    nongrad_exit_step = np.where(early, early_step, -1)
    score_rows: list[dict[str, np.ndarray]] = []
    pre_mid = mid_move & (t_mat > start[:, None])
    for t in range(N_STEPS):
        g = grade_pre[:, t]
        active = (t < t9) & (g >= 3)
        if not active.any():
            continue
        eff = _school_effect(geo.growth_effect, enrolled_pre[:, t], school_pre[:, t], prev_pre[:, t], pre_mid[:, t])
        innov = SCORE_INNOVATION_SD * _correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_INNOVATION)
        new = SCORE_AUTOREGRESSION * dev + (gap + eff)[:, None] + innov
        dev = np.where(active[:, None], new, dev)
        tested = active & enrolled_pre[:, t] & (nongrad_exit_step != t)
        score_rows.append(_score_rows(rng_score, tested, year0 + t, g, dev))
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
    graduates = in_cohort & ~removed & (rng_out.random(n) < _expit(grad_logit))
    fifth = graduates & (
        rng_out.random(n)
        < _expit(FIFTH_YEAR_INTERCEPT + FIFTH_YEAR_ACHIEVEMENT_COEF * a8 + FIFTH_YEAR_DISABILITY * stu.dis)
    )
    nongrad = in_cohort & ~removed & ~graduates
    hs_retained = fifth | (nongrad & (rng_out.random(n) < P_NONGRAD_HS_RETAINED))
    hs_retained_at = np.where(
        hs_retained, np.maximum(9 + _pick(rng_out, HS_RETENTION_GRADE_WEIGHTS, n), start_grade), 99
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
    paths = _Paths(
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
    )

    # Growth model, phase 2: grades 9-11 (tested in grade 11).
    enrolled = paths.enrolled
    leaver_step = np.where(exit_code != schema.EXIT_TYPES.index("graduated"), end, -1)
    for t in range(N_STEPS):
        g = grade[:, t]
        active = in_cohort & (t >= t9) & (g <= 11) & (t <= end)
        if not active.any():
            continue
        eff = _school_effect(geo.growth_effect, enrolled[:, t], school[:, t], prev_school[:, t], mid_move[:, t])
        innov = SCORE_INNOVATION_SD * _correlated_normals(rng_score, n, SCORE_SUBJECT_CORR_INNOVATION)
        new = SCORE_AUTOREGRESSION * dev + (gap + eff)[:, None] + innov
        dev = np.where(active[:, None], new, dev)
        tested = active & enrolled[:, t] & (g == 11) & (leaver_step != t)
        score_rows.append(_score_rows(rng_score, tested, year0 + t, g, dev))
    a11 = dev.mean(axis=1) / SCORE_SD

    scores = {k: np.concatenate([r[k] for r in score_rows]) for k in score_rows[0]}
    order = np.lexsort((scores["subject"], scores["year"], scores["student"]))
    scores = {k: v[order] for k, v in scores.items()}
    return paths, scores, a11


def _correlated_normals(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    """[n, 2] standard normals with correlation ``corr`` (math, ela)."""
    z = rng.standard_normal((n, 2))
    z[:, 1] = corr * z[:, 0] + np.sqrt(1.0 - corr**2) * z[:, 1]
    return z


def _school_effect(
    effect: np.ndarray, enrolled: np.ndarray, school: np.ndarray, prev: np.ndarray, mid: np.ndarray
) -> np.ndarray:
    """Growth effect of the year's school(s); the mean of both for a mid-year mover."""
    eff = np.where(mid, 0.5 * (effect[school] + effect[prev]), effect[school])
    return np.where(enrolled, eff, 0.0)


def _cut_scores(grade: np.ndarray) -> np.ndarray:
    base = SCORE_BASE_GRADE3 + SCORE_GROWTH_PER_GRADE * (grade - 3)
    return base[..., None] + np.array(CUT_OFFSETS)


def _score_rows(
    rng: np.random.Generator, tested: np.ndarray, year: np.ndarray, grade: np.ndarray, dev: np.ndarray
) -> dict[str, np.ndarray]:
    present = tested[:, None] & (rng.random(dev.shape) >= P_TEST_MISSING)
    student, subject = np.nonzero(present)
    g = grade[student]
    base = SCORE_BASE_GRADE3 + SCORE_GROWTH_PER_GRADE * (g - 3)
    score = np.round(base + np.clip(dev[student, subject], -SCORE_CLIP, SCORE_CLIP))
    level = 1 + (score[:, None] >= _cut_scores(g)).sum(axis=1)
    return {
        "student": student.astype(np.int64),
        "year": year[student].astype(np.int64),
        "grade": g.astype(np.int64),
        "subject": subject.astype(np.int64),
        "score": score.astype(np.float64),
        "level": level.astype(np.int64),
    }


def _enrollment_rows(paths: _Paths) -> dict[str, np.ndarray]:
    """One row per enrolled step, plus a 'continuing' row at the old school for mid-year movers."""
    enrolled = paths.enrolled
    student, t = np.nonzero(enrolled)
    last = t == paths.end[student]
    continuing = schema.EXIT_TYPES.index("continuing")
    exit_code = np.where(last, paths.exit_code[student], continuing)
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
    order = np.lexsort((rows["seq"], rows["year"], rows["student"]))
    return {k: v[order].astype(np.int64) for k, v in rows.items() if k != "seq"}


# ---------------------------------------------------------------------------
# Postsecondary
# ---------------------------------------------------------------------------
def _term_dates(years: np.ndarray, spring: np.ndarray, offset: np.ndarray) -> np.ndarray:
    months = np.where(spring, SPRING_TERM_DAY[0], FALL_TERM_DAY[0]) - 1
    days = np.where(spring, SPRING_TERM_DAY[1], FALL_TERM_DAY[1]) - 1
    first = (years - 1970).astype("datetime64[Y]").astype("datetime64[M]") + months
    return first.astype("datetime64[D]") + days + offset


def _postsecondary(
    rng: np.random.Generator,
    stu: _Students,
    paths: _Paths,
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
    grad_enrol = graduated & (rng.random(n) < _expit(enrol_logit))
    leaver = np.isin(paths.exit_code, [schema.EXIT_TYPES.index(e) for e in ("dropped_out", "other")])
    leaver_enrol = leaver & (rng.random(n) < P_NONGRAD_ENROL)

    first_term = np.array([j for j, _ in FIRST_TERM_PROBS])[_pick(rng, [p for _, p in FIRST_TERM_PROBS], n)]
    four = rng.random(n) < _expit(
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


# ---------------------------------------------------------------------------
# Wages
# ---------------------------------------------------------------------------
def _wages(
    rng: np.random.Generator,
    stu: _Students,
    paths: _Paths,
    geo: _Geography,
    post: dict[str, np.ndarray],
    provided: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Quarterly UI wages of every student (truth), of which provided SSNs are released."""
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
    emp_effect = np.array([COUNTY_EFFECTS[c][0] for c in _COUNTIES])[county]
    earn_mult = np.array([COUNTY_EFFECTS[c][1] for c in _COUNTIES])[county]

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
    employed = valid & (rng.random((n, n_rel)) < _expit(logit))
    n_quarters = 1 + _categorical(rng, np.array(QUARTERS_PROBS)[status])
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
    cpi = _read_cpi()
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
    young = young_codes[_pick(rng, list(NAICS_MIX_YOUNG.values()), len(s_idx))]
    adult_codes = np.array([sectors.index(s) for s in NAICS_MIX_ADULT])
    adult_p = list(NAICS_MIX_ADULT.values())
    own = adult_codes[_pick(rng, adult_p, n)]
    fresh = adult_codes[_pick(rng, adult_p, len(s_idx))]
    adult = np.where(rng.random(len(s_idx)) < P_KEEP_SECTOR, own[s_idx], fresh)
    naics = np.where(status[s_idx, r_idx] == 4, adult, young)[cell]

    # Truth: annual nominal earnings and the >= 2 quarters and >= $3,000 rule, for everyone.
    flat = student * n_rel + r_idx[cell]
    annual_nominal = np.bincount(flat, weights=nominal, minlength=n * n_rel).reshape(n, n_rel)
    quarters_paid = np.bincount(flat, minlength=n * n_rel).reshape(n, n_rel)
    truth: dict[str, np.ndarray] = {}
    for k_out in (1, 3, 5):
        r = WAGE_RELATIVE_YEARS.index(k_out)
        known = paths.in_cohort & (expected + k_out <= LAST_DATA_YEAR)
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


# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------
def _parameters(n: int, seed: int) -> dict[str, object]:
    grades = list(schema.ASSESSED_GRADES)
    cuts = _cut_scores(np.array(grades))
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_students": int(n),
        "cohorts": list(COHORTS),
        "last_school_year": LAST_SCHOOL_YEAR,
        "last_data_year": LAST_DATA_YEAR,
        "dollar_year": DOLLAR_YEAR,
        "n_districts": N_DISTRICTS,
        "districts_per_county": DISTRICTS_PER_COUNTY,
        "county_size_shift": COUNTY_SIZE_SHIFT,
        "district_size_median": DISTRICT_SIZE_MEDIAN,
        "district_size_log_sd": DISTRICT_SIZE_LOG_SD,
        "optout_bands": [{"n_districts": k, "low": lo, "high": hi} for k, lo, hi in OPTOUT_BANDS],
        "el_optout_odds_ratio": EL_OPTOUT_ODDS_RATIO,
        "demographics": {
            "sex_probs": dict(zip(schema.SEXES, SEX_PROBS, strict=True)),
            "race_probs_by_locale": {
                k: dict(zip(schema.RACE_ETHNICITY, v, strict=True)) for k, v in RACE_PROBS_BY_LOCALE.items()
            },
            "economically_disadvantaged_by_locale": ED_PROB_BY_LOCALE,
            "economically_disadvantaged_logit_shift_black_hispanic_aian": ED_LOGIT_SHIFT_RACE,
            "english_learner_city_by_race": dict(zip(schema.RACE_ETHNICITY, EL_PROB_CITY_BY_RACE, strict=True)),
            "english_learner_non_city_factor": EL_NON_CITY_FACTOR,
            "disability_by_sex": dict(zip(schema.SEXES, DISABILITY_PROB, strict=True)),
            "cohort_decline_per_year": COHORT_DECLINE_PER_YEAR,
        },
        "paths": {
            "p_retained_before_9": P_RETAINED_BEFORE_9,
            "p_transfer_in": P_TRANSFER_IN,
            "p_move_district_per_year": P_MOVE_DISTRICT_PER_YEAR,
            "p_move_same_county": P_MOVE_SAME_COUNTY,
            "p_move_mid_year": P_MOVE_MID_YEAR,
            "p_leave_before_9": P_LEAVE_BEFORE_9,
            "p_hs_transferred_out": P_HS_TRANSFERRED_OUT,
            "p_hs_emigrated": P_HS_EMIGRATED,
            "p_hs_deceased": P_HS_DECEASED,
            "p_nongrad_dropped_out": P_NONGRAD_DROPPED_OUT,
            "p_nongrad_hs_retained": P_NONGRAD_HS_RETAINED,
        },
        "assessment": {
            "score_base_grade3": SCORE_BASE_GRADE3,
            "score_growth_per_grade": SCORE_GROWTH_PER_GRADE,
            "score_sd": SCORE_SD,
            "autoregression": SCORE_AUTOREGRESSION,
            "innovation_sd": SCORE_INNOVATION_SD,
            "school_growth_effect_sd": SCHOOL_GROWTH_EFFECT_SD,
            "growth_gaps_per_year": GROWTH_GAPS,
            "level_gaps": {k: round(v / (1 - SCORE_AUTOREGRESSION), 6) for k, v in GROWTH_GAPS.items()},
            "cut_scores": {
                str(g): {"level2": float(c[0]), "level3": float(c[1]), "level4": float(c[2])}
                for g, c in zip(grades, cuts, strict=True)
            },
            "p_test_missing": P_TEST_MISSING,
            "model": "score_t - base_g = autoregression * (score_{t-1} - base_{g-1}) + growth_effect(school) "
            "+ sum(growth_gaps) + N(0, innovation_sd); both subjects; mid-year movers get the mean "
            "effect of their two schools",
        },
        "graduation": {
            "intercept": GRAD_INTERCEPT,
            "school_graduation_effect_sd": SCHOOL_GRAD_EFFECT_SD,
            "prior_achievement_coef": GRAD_PRIOR_ACHIEVEMENT_COEF,
            "gaps_logit": GRAD_GAPS,
            "fifth_year_intercept": FIFTH_YEAR_INTERCEPT,
            "fifth_year_achievement_coef": FIFTH_YEAR_ACHIEVEMENT_COEF,
            "fifth_year_disability": FIFTH_YEAR_DISABILITY,
            "model": "logit P(graduate) = intercept + graduation_effect(high school the student would attend "
            "in year cohort+3) + coef * grade-8 achievement (score SDs) + gaps",
        },
        "postsecondary": {
            "enrol_intercept": ENROL_INTERCEPT,
            "enrol_achievement_coef": ENROL_ACHIEVEMENT_COEF,
            "enrol_gaps_logit": ENROL_GAPS,
            "first_term_probs": {str(j): p for j, p in FIRST_TERM_PROBS},
            "four_year_intercept": FOUR_YEAR_INTERCEPT,
            "four_year_achievement_coef": FOUR_YEAR_ACHIEVEMENT_COEF,
            "four_year_ed": FOUR_YEAR_ED,
            "four_year_delayed": FOUR_YEAR_DELAYED,
            "p_private": P_PRIVATE,
            "p_in_state": P_IN_STATE,
            "term_continuation": {k: list(v) for k, v in TERM_CONTINUATION.items()},
            "p_nongrad_enrol": P_NONGRAD_ENROL,
        },
        "wages": {
            "relative_years": list(WAGE_RELATIVE_YEARS),
            "statuses": list(STATUSES),
            "employ_base_logit": dict(zip(STATUSES, EMPLOY_BASE_LOGIT, strict=True)),
            "employ_work_experience_logit": EMPLOY_WORK_EXPERIENCE_LOGIT,
            "employ_persistent_sd": EMPLOY_PERSISTENT_SD,
            "employ_gaps_logit": EMPLOY_GAPS,
            "quarters_probs": {s: list(p) for s, p in zip(STATUSES, QUARTERS_PROBS, strict=True)},
            "annual_base_earnings_real": dict(zip(STATUSES, ANNUAL_BASE_EARNINGS, strict=True)),
            "work_earnings_growth": list(WORK_EARNINGS_GROWTH),
            "work_earnings_growth_later": WORK_EARNINGS_GROWTH_LATER,
            "earnings_persistent_sd": EARNINGS_PERSISTENT_SD,
            "earnings_quarter_sd": EARNINGS_QUARTER_SD,
            "earnings_multipliers": EARNINGS_MULTIPLIERS,
            "p_leave_maine_per_year": P_LEAVE_MAINE_PER_YEAR,
            "p_away_student_stays_away": P_AWAY_STUDENT_STAYS_AWAY,
            "p_other_leaver_left_maine": P_OTHER_LEAVER_LEFT_MAINE,
            "employed_rule": {"min_quarters": EMPLOYED_MIN_QUARTERS, "min_annual_nominal": EMPLOYED_MIN_ANNUAL},
            "naics_mix_young": NAICS_MIX_YOUNG,
            "naics_mix_adult": NAICS_MIX_ADULT,
            "p_keep_sector": P_KEEP_SECTOR,
            "cpi_file": "data/reference/cpi_u_annual.csv",
        },
        "county_effects": {
            c: {"employment_effect": e, "earnings_multiplier": m} for c, (e, m) in COUNTY_EFFECTS.items()
        },
        "truth_definitions": {
            "cohort": "spring school year of first-time grade 9 (or, for a student who transferred in after "
            "grade 9, the year they would have been in grade 9); NULL if the student left the "
            "state before grade 9",
            "graduated_4yr": "'graduated' row with school_year <= cohort + 3",
            "graduated_5yr": "'graduated' row with school_year <= cohort + 4",
            "removed_from_cohort": "last row is transferred_out, emigrated or deceased with school_year <= cohort + 3",
            "acgr_school_id": "school of the last enrolment row with school_year <= cohort + 3 (the later "
            "row for a mid-year mover)",
            "employed_yk": "at least 2 quarters with wages and at least $3,000 nominal in calendar year "
            "cohort + 3 + k, from all wages whether or not the SSN was provided; NULL if that "
            "year is after 2025",
            "earnings_yk": "nominal wages in calendar year cohort + 3 + k (0 when none); NULL after 2025",
        },
    }


def _write_truth(
    folder: Path,
    n: int,
    seed: int,
    keys: np.ndarray,
    geo: _Geography,
    stu: _Students,
    paths: _Paths,
    ask_district: np.ndarray,
    provided: np.ndarray,
    work: dict[str, np.ndarray],
) -> None:
    asked = np.bincount(ask_district, minlength=N_DISTRICTS)
    declined = np.bincount(ask_district, weights=(~provided).astype(np.float64), minlength=N_DISTRICTS)
    rate = np.divide(declined, asked, out=np.zeros(N_DISTRICTS), where=asked > 0)
    _write_parquet(
        pa.table(
            {
                "district_id": pa.array(geo.district_ids),
                "optout_propensity": pa.array(geo.optout),
                "n_asked": pa.array(asked.astype(np.int64)),
                "realised_optout_rate": pa.array(rate, mask=asked == 0),
            }
        ),
        folder / "districts.parquet",
    )
    _write_parquet(
        pa.table(
            {
                "school_id": pa.array(geo.school_ids),
                "growth_effect": pa.array(geo.growth_effect),
                "graduation_effect": pa.array(geo.grad_effect),
            }
        ),
        folder / "schools.parquet",
    )
    _write_parquet(
        pa.table(
            {
                "county": pa.array(list(_COUNTIES)),
                "employment_effect": pa.array([COUNTY_EFFECTS[c][0] for c in _COUNTIES], type=pa.float64()),
                "earnings_multiplier": pa.array([COUNTY_EFFECTS[c][1] for c in _COUNTIES], type=pa.float64()),
            }
        ),
        folder / "counties.parquet",
    )

    rows = np.arange(n)
    c = stu.cohort
    no_cohort = ~paths.in_cohort
    exit_year = paths.year0 + paths.end
    graduated = paths.exit_code == schema.EXIT_TYPES.index("graduated")
    removing = np.isin(paths.exit_code, [schema.EXIT_TYPES.index(e) for e in schema.COHORT_REMOVING_EXITS])
    t_window = np.minimum(paths.end, paths.t9 + 3)
    acgr_school = paths.school[rows, t_window]
    columns: dict[str, pa.Array] = {
        "student_key": pa.array(keys),
        "cohort": pa.array(c.astype(np.int64), mask=no_cohort),
        "graduated_4yr": pa.array(graduated & (exit_year <= c + 3), mask=no_cohort),
        "graduated_5yr": pa.array(graduated & (exit_year <= c + 4), mask=no_cohort),
        "removed_from_cohort": pa.array(removing & (exit_year <= c + 3), mask=no_cohort),
        "acgr_school_id": pa.array(geo.school_ids[acgr_school], mask=no_cohort),
    }
    for k in (1, 3, 5):
        unknown = ~work[f"known_y{k}"]
        columns[f"employed_y{k}"] = pa.array(work[f"employed_y{k}"], mask=unknown)
    for k in (1, 3, 5):
        unknown = ~work[f"known_y{k}"]
        columns[f"earnings_y{k}"] = pa.array(work[f"earnings_y{k}"], mask=unknown)
    _write_parquet(pa.table(columns), folder / "students.parquet")

    text = json.dumps(_parameters(n, seed), indent=2, sort_keys=True)
    (folder / "parameters.json").write_text(text + "\n", encoding="utf-8")
