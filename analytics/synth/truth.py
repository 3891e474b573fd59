"""The planted truth: ``truth/*.parquet`` and ``truth/parameters.json`` (see the package docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from analytics import schema
from analytics.synth import assessments, geography, postsecondary, schooling, students, wages
from analytics.synth.common import (
    COHORTS,
    COUNTIES,
    DOLLAR_YEAR,
    GENERATOR_VERSION,
    LAST_DATA_YEAR,
    LAST_SCHOOL_YEAR,
    write_parquet,
)
from analytics.synth.geography import Geography
from analytics.synth.schooling import Paths
from analytics.synth.students import Students


def parameters(n: int, seed: int) -> dict[str, object]:
    grades = list(schema.ASSESSED_GRADES)
    cuts = assessments.cut_scores(np.array(grades))
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_students": int(n),
        "cohorts": list(COHORTS),
        "last_school_year": LAST_SCHOOL_YEAR,
        "last_data_year": LAST_DATA_YEAR,
        "dollar_year": DOLLAR_YEAR,
        "n_districts": geography.N_DISTRICTS,
        "districts_per_county": geography.DISTRICTS_PER_COUNTY,
        "county_size_shift": geography.COUNTY_SIZE_SHIFT,
        "district_size_median": geography.DISTRICT_SIZE_MEDIAN,
        "district_size_log_sd": geography.DISTRICT_SIZE_LOG_SD,
        "optout_bands": [{"n_districts": k, "low": lo, "high": hi} for k, lo, hi in geography.OPTOUT_BANDS],
        "el_optout_odds_ratio": geography.EL_OPTOUT_ODDS_RATIO,
        "demographics": {
            "sex_probs": dict(zip(schema.SEXES, students.SEX_PROBS, strict=True)),
            "race_probs_by_locale": {
                k: dict(zip(schema.RACE_ETHNICITY, v, strict=True)) for k, v in students.RACE_PROBS_BY_LOCALE.items()
            },
            "economically_disadvantaged_by_locale": students.ED_PROB_BY_LOCALE,
            "economically_disadvantaged_logit_shift_black_hispanic_aian": students.ED_LOGIT_SHIFT_RACE,
            "english_learner_city_by_race": dict(
                zip(schema.RACE_ETHNICITY, students.EL_PROB_CITY_BY_RACE, strict=True)
            ),
            "english_learner_non_city_factor": students.EL_NON_CITY_FACTOR,
            "disability_by_sex": dict(zip(schema.SEXES, students.DISABILITY_PROB, strict=True)),
            "cohort_decline_per_year": students.COHORT_DECLINE_PER_YEAR,
        },
        "paths": {
            "p_retained_before_9": schooling.P_RETAINED_BEFORE_9,
            "p_transfer_in": schooling.P_TRANSFER_IN,
            "p_move_district_per_year": schooling.P_MOVE_DISTRICT_PER_YEAR,
            "p_move_same_county": geography.P_MOVE_SAME_COUNTY,
            "p_move_mid_year": schooling.P_MOVE_MID_YEAR,
            "p_leave_before_9": schooling.P_LEAVE_BEFORE_9,
            "p_hs_transferred_out": schooling.P_HS_TRANSFERRED_OUT,
            "p_hs_emigrated": schooling.P_HS_EMIGRATED,
            "p_hs_deceased": schooling.P_HS_DECEASED,
            "p_nongrad_dropped_out": schooling.P_NONGRAD_DROPPED_OUT,
            "p_nongrad_hs_retained": schooling.P_NONGRAD_HS_RETAINED,
        },
        "assessment": {
            "score_base_grade3": assessments.SCORE_BASE_GRADE3,
            "score_growth_per_grade": assessments.SCORE_GROWTH_PER_GRADE,
            "score_sd": assessments.SCORE_SD,
            "autoregression": assessments.SCORE_AUTOREGRESSION,
            "innovation_sd": assessments.SCORE_INNOVATION_SD,
            "school_growth_effect_sd": geography.SCHOOL_GROWTH_EFFECT_SD,
            "growth_gaps_per_year": assessments.GROWTH_GAPS,
            "level_gaps": {
                k: round(v / (1 - assessments.SCORE_AUTOREGRESSION), 6) for k, v in assessments.GROWTH_GAPS.items()
            },
            "cut_scores": {
                str(g): {"level2": float(c[0]), "level3": float(c[1]), "level4": float(c[2])}
                for g, c in zip(grades, cuts, strict=True)
            },
            "p_test_missing": assessments.P_TEST_MISSING,
            "model": "score_t - base_g = autoregression * (score_{t-1} - base_{g-1}) + growth_effect(school) "
            "+ sum(growth_gaps) + N(0, innovation_sd); both subjects; mid-year movers get the mean "
            "effect of their two schools",
        },
        "graduation": {
            "intercept": schooling.GRAD_INTERCEPT,
            "school_graduation_effect_sd": geography.SCHOOL_GRAD_EFFECT_SD,
            "prior_achievement_coef": schooling.GRAD_PRIOR_ACHIEVEMENT_COEF,
            "gaps_logit": schooling.GRAD_GAPS,
            "fifth_year_intercept": schooling.FIFTH_YEAR_INTERCEPT,
            "fifth_year_achievement_coef": schooling.FIFTH_YEAR_ACHIEVEMENT_COEF,
            "fifth_year_disability": schooling.FIFTH_YEAR_DISABILITY,
            "model": "logit P(graduate) = intercept + graduation_effect(high school the student would attend "
            "in year cohort+3) + coef * grade-8 achievement (score SDs) + gaps",
        },
        "postsecondary": {
            "enrol_intercept": postsecondary.ENROL_INTERCEPT,
            "enrol_achievement_coef": postsecondary.ENROL_ACHIEVEMENT_COEF,
            "enrol_gaps_logit": postsecondary.ENROL_GAPS,
            "first_term_probs": {str(j): p for j, p in postsecondary.FIRST_TERM_PROBS},
            "four_year_intercept": postsecondary.FOUR_YEAR_INTERCEPT,
            "four_year_achievement_coef": postsecondary.FOUR_YEAR_ACHIEVEMENT_COEF,
            "four_year_ed": postsecondary.FOUR_YEAR_ED,
            "four_year_delayed": postsecondary.FOUR_YEAR_DELAYED,
            "p_private": postsecondary.P_PRIVATE,
            "p_in_state": postsecondary.P_IN_STATE,
            "term_continuation": {k: list(v) for k, v in postsecondary.TERM_CONTINUATION.items()},
            "p_nongrad_enrol": postsecondary.P_NONGRAD_ENROL,
        },
        "wages": {
            "relative_years": list(wages.WAGE_RELATIVE_YEARS),
            "statuses": list(wages.STATUSES),
            "employ_base_logit": dict(zip(wages.STATUSES, wages.EMPLOY_BASE_LOGIT, strict=True)),
            "employ_work_experience_logit": wages.EMPLOY_WORK_EXPERIENCE_LOGIT,
            "employ_persistent_sd": wages.EMPLOY_PERSISTENT_SD,
            "employ_gaps_logit": wages.EMPLOY_GAPS,
            "quarters_probs": {s: list(p) for s, p in zip(wages.STATUSES, wages.QUARTERS_PROBS, strict=True)},
            "annual_base_earnings_real": dict(zip(wages.STATUSES, wages.ANNUAL_BASE_EARNINGS, strict=True)),
            "work_earnings_growth": list(wages.WORK_EARNINGS_GROWTH),
            "work_earnings_growth_later": wages.WORK_EARNINGS_GROWTH_LATER,
            "earnings_persistent_sd": wages.EARNINGS_PERSISTENT_SD,
            "earnings_quarter_sd": wages.EARNINGS_QUARTER_SD,
            "earnings_multipliers": wages.EARNINGS_MULTIPLIERS,
            "p_leave_maine_per_year": wages.P_LEAVE_MAINE_PER_YEAR,
            "p_away_student_stays_away": wages.P_AWAY_STUDENT_STAYS_AWAY,
            "p_other_leaver_left_maine": wages.P_OTHER_LEAVER_LEFT_MAINE,
            "employed_rule": {
                "min_quarters": wages.EMPLOYED_MIN_QUARTERS,
                "min_annual_nominal": wages.EMPLOYED_MIN_ANNUAL,
            },
            "naics_mix_young": wages.NAICS_MIX_YOUNG,
            "naics_mix_adult": wages.NAICS_MIX_ADULT,
            "p_keep_sector": wages.P_KEEP_SECTOR,
            "cpi_file": "data/reference/cpi_u_annual.csv",
        },
        "county_effects": {
            c: {"employment_effect": e, "earnings_multiplier": m} for c, (e, m) in wages.COUNTY_EFFECTS.items()
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


def write_truth(
    folder: Path,
    n: int,
    seed: int,
    keys: np.ndarray,
    geo: Geography,
    stu: Students,
    paths: Paths,
    ask_district: np.ndarray,
    provided: np.ndarray,
    work: dict[str, np.ndarray],
) -> None:
    asked = np.bincount(ask_district, minlength=geography.N_DISTRICTS)
    declined = np.bincount(ask_district, weights=(~provided).astype(np.float64), minlength=geography.N_DISTRICTS)
    rate = np.divide(declined, asked, out=np.zeros(geography.N_DISTRICTS), where=asked > 0)
    write_parquet(
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
    write_parquet(
        pa.table(
            {
                "school_id": pa.array(geo.school_ids),
                "growth_effect": pa.array(geo.growth_effect),
                "graduation_effect": pa.array(geo.grad_effect),
            }
        ),
        folder / "schools.parquet",
    )
    write_parquet(
        pa.table(
            {
                "county": pa.array(list(COUNTIES)),
                "employment_effect": pa.array([wages.COUNTY_EFFECTS[c][0] for c in COUNTIES], type=pa.float64()),
                "earnings_multiplier": pa.array([wages.COUNTY_EFFECTS[c][1] for c in COUNTIES], type=pa.float64()),
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
    write_parquet(pa.table(columns), folder / "students.parquet")

    text = json.dumps(parameters(n, seed), indent=2, sort_keys=True)
    (folder / "parameters.json").write_text(text + "\n", encoding="utf-8")
