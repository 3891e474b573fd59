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
- The cases real extracts hold (:mod:`.cases`): a sample of the cohorts
  2023-2025 still in school at the end of the data, a diploma and a transfer
  out in the same year, returns after a documented transfer out, co-enrolment
  at two colleges in one term (postsecondary rows carry an ``institution_id``),
  students tested twice in a repeated grade, earners above $100,000, and, with
  ``last_year``, an extract that ends early.
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
- ``students.parquet``, one row per student in the extract: student_key,
  cohort (NULL for students with no high-school row by the last year),
  graduated_4yr, graduated_5yr, removed_from_cohort (NULL where the window is
  not over), acgr_category (the category of
  :data:`analytics.metrics.cohort.ACGR_CATEGORIES`), acgr_school_id (school of
  the last record within 4 years, within 5 for a student removed within 4),
  p_graduate and p_graduate_4yr (the planted probability of a diploma, and of
  one within 4 years, from the graduation and fifth-year logits; the
  underlying rate of a cell is their mean over its students),
  graduation_school_id (the high school whose graduation_effect enters the
  student's logit), graduation_logit_schools (the part of that logit the
  student's schools planted: that effect and the grade 3-8 growth effects),
  the planted-case flags continuing, same_year_transfer_diploma,
  returned_in_year5, returned_within_4yrs, co_enrolled, college_level and
  college_by_oct31 (of the first enrolment after the diploma), n_tests, repeated_grade,
  employed_y1/y3/y5 and earnings_y1/y3/y5 (nominal, calendar year cohort + 3 +
  k, from all wages whether or not the SSN was provided; NULL after the last
  year or without a cohort), top_coded. ``parameters.json`` states each
  definition (``truth_definitions``).
- ``parameters.json``: every planted parameter, with sorted keys.

Everything is drawn from ``numpy.random.default_rng(seed)`` (and generators
spawned from it), so the same ``(n_students, seed, last_year)`` gives
byte-identical files, and an earlier ``last_year`` cuts the same population.
The districts and schools use their own spawned generator, so the public lists
depend on the seed only, not on ``n_students``.

The package's parts, in the order the generator draws them:

- :mod:`.geography`: districts, schools, planted school effects, moves;
- :mod:`.students`: keys and demographics;
- :mod:`.schooling`: enrolment paths, graduation and exits (with :mod:`.assessments`,
  the growth model);
- :mod:`.cases`: the planted cases of real extracts, and the cut at the last year;
- :mod:`.postsecondary`: college terms and colleges;
- :mod:`.wages`: quarterly UI wages;
- :mod:`.truth`: the truth files and ``parameters.json``;
- :mod:`.generator`: :func:`generate`, which runs them and writes the folder.
"""

from analytics.synth.common import COHORTS, GENERATOR_VERSION, LAST_DATA_YEAR, LAST_SCHOOL_YEAR
from analytics.synth.generator import generate
from analytics.synth.geography import METRO_COUNTIES, N_DISTRICTS
from analytics.synth.truth import parameters

__all__ = [
    "COHORTS",
    "GENERATOR_VERSION",
    "LAST_DATA_YEAR",
    "LAST_SCHOOL_YEAR",
    "METRO_COUNTIES",
    "N_DISTRICTS",
    "generate",
    "parameters",
]
