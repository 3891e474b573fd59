"""The planted truth: ``truth/*.parquet`` and ``truth/parameters.json`` (see the package docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics import schema
from analytics.synth import assessments, cases, geography, postsecondary, schooling, students, wages
from analytics.synth.cases import TOP_CODE_USD, Observed
from analytics.synth.common import (
    COHORTS,
    COUNTIES,
    DOLLAR_YEAR,
    GENERATOR_VERSION,
    LAST_DATA_YEAR,
    LAST_SCHOOL_YEAR,
    read_cpi,
    write_parquet,
)
from analytics.synth.geography import Geography
from analytics.synth.students import Students


def parameters(n: int, seed: int, last_year: int = LAST_SCHOOL_YEAR) -> dict[str, object]:
    grades = list(schema.ASSESSED_GRADES)
    cuts = assessments.cut_scores(np.array(grades))
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_students": int(n),
        "cohorts": list(COHORTS),
        "last_school_year": last_year,
        "last_data_year": min(last_year, LAST_DATA_YEAR),
        "planted_cases": {
            "open_cohorts": list(cases.OPEN_COHORTS),
            "p_open_cohort": cases.P_OPEN_COHORT,
            "p_same_year_transfer_diploma": cases.P_SAME_YEAR_TRANSFER_DIPLOMA,
            "p_return_year5": cases.P_RETURN_YEAR5,
            "p_return_within_4yrs": cases.P_RETURN_WITHIN_4YRS,
            "p_co_enrol": cases.P_CO_ENROL,
            "p_high_earner": cases.P_HIGH_EARNER,
            "high_earner_multiplier": cases.HIGH_EARNER_MULTIPLIER,
            "top_code_usd": cases.TOP_CODE_USD,
        },
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
            "last record": "of a window: the high-school row with the latest school year; within a year a "
            "diploma, then a row at a school the student attends the next year, then dropped_out or other, then "
            "a documented exit, then continuing; then the smallest school_id",
            "graduated_4yr": "'graduated' row with school_year <= cohort + 3; NULL if cohort + 3 is after the "
            "last school year",
            "graduated_5yr": "'graduated' row with school_year <= cohort + 4; NULL if cohort + 4 is after the "
            "last school year",
            "removed_from_cohort": "removed from the adjusted 4-year cohort: the last record within 4 years is "
            "transferred_out, emigrated or deceased and there is no diploma within 4 years; NULL if cohort + 3 "
            "is after the last school year",
            "acgr_category": "the student's ACGR category (analytics.metrics.cohort.ACGR_CATEGORIES); NULL in "
            "neither adjusted cohort or before the 4 years are over",
            "acgr_school_id": "school of the last record within 4 years (within 5 years for a student removed "
            "within 4)",
            "p_graduate": "planted probability of a diploma: expit of the graduation logit (graduation.model), "
            "for a student in the cohort and not removed from it",
            "p_graduate_4yr": "planted probability of a diploma within 4 years: p_graduate * (1 - expit(fifth-year "
            "logit)); the underlying 4-year rate of a cell is its mean over the cell's adjusted cohort",
            "graduation_school_id": "high school whose graduation_effect enters the student's graduation logit (the "
            "school of the student's district and attendance area in year cohort + 3)",
            "graduation_logit_schools": "the schools' part of the graduation logit: graduation_effect of "
            "graduation_school_id + prior_achievement_coef x the growth effects of the schools attended in grades "
            "3-8 carried to grade 8 by the score autoregression (in score SDs); the rest is the student's own",
            "continuing": "still enrolled at the end of the data: the last row is 'continuing' in the last school year",
            "same_year_transfer_diploma": "a second row in the diploma year at another high school, transferred_out",
            "returned_in_year5": "transferred out in the 4th year, back with a diploma in the 5th (observed)",
            "returned_within_4yrs": "transferred out in the 2nd year, back, diploma within 4 years (observed)",
            "co_enrolled": "two colleges in one term (rows with the same term_start)",
            "college_level": "level of the first enrolment between July 1 of the diploma year and October 31 of "
            "the next (same first day: 4-year, in-state, public, smallest institution_id first); NULL "
            "without a diploma or an enrolment in that window",
            "college_by_oct31": "that first enrolment starts by October 31 of the diploma year",
            "n_tests": "assessment rows of the student",
            "repeated_grade": "tested twice in one grade and subject (retained in a tested grade)",
            "employed_yk": "at least 2 quarters with wages and at least $3,000 nominal in calendar year "
            "cohort + 3 + k, from all wages whether or not the SSN was provided; NULL if that "
            "year is after the last wage year",
            "earnings_yk": "nominal wages in calendar year cohort + 3 + k (0 when none); NULL after the last wage year",
            "top_coded": "earnings_y1, _y3 or _y5 at or above $100,000 in 2024 dollars (CPI-U)",
        },
    }


def district_optout_counts(
    ask_district: np.ndarray, provided: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per district: students in the extract asked for the SSN (int) and those who declined (float, exact).

    Counts of several blocks of students add up to those of the whole population.
    """
    asked = np.bincount(ask_district[seen], minlength=geography.N_DISTRICTS).astype(np.int64)
    declined = np.bincount(
        ask_district[seen], weights=(~provided[seen]).astype(np.float64), minlength=geography.N_DISTRICTS
    )
    return asked, declined


def write_place_truth(folder: Path, geo: Geography, asked: np.ndarray, declined: np.ndarray) -> None:
    """Write ``districts.parquet`` (realised opt-out from the counts), ``schools.parquet``, ``counties.parquet``."""
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


def write_parameters(folder: Path, n: int, seed: int, last_year: int) -> None:
    """Write ``parameters.json``: every planted parameter, with sorted keys."""
    text = json.dumps(parameters(n, seed, last_year), indent=2, sort_keys=True)
    (folder / "parameters.json").write_text(text + "\n", encoding="utf-8")


def student_truth_table(
    n: int,
    keys: np.ndarray,
    geo: Geography,
    stu: Students,
    obs: Observed,
    work: dict[str, np.ndarray],
    rows: dict[str, dict[str, np.ndarray]],
    planted: dict[str, np.ndarray],
) -> pa.Table:
    """The rows of ``students.parquet`` for the students of one block in the extract (``obs.seen``).

    ``keys`` are the block's student keys; ``rows`` holds the written rows (block
    student index per row) of ``enrollments``, ``assessments`` and ``postsecondary``;
    ``planted`` the per-student masks of :mod:`.cases` (``same_year``,
    ``returned_in_year5``, ``returned_within_4yrs``).
    """
    seen = obs.seen
    per_student = student_truth(n, stu, obs, work, rows, planted)
    columns = {"student_key": pa.array(keys[seen])}
    for name, (values, null) in per_student.items():
        if name in ("acgr_school_id", "graduation_school_id"):
            values = geo.school_ids[values]
        columns[name] = pa.array(values[seen], mask=null[seen])
    return pa.table(columns)


def _last_records(enr: pd.DataFrame, cohort: np.ndarray, window: int) -> pd.DataFrame:
    """Per student: the last high-school record with school_year <= cohort + window (the metric's order)."""
    hs = enr[(enr["grade"] >= 9) & (enr["year"] <= cohort[enr["student"].to_numpy()] + window)]
    return hs.sort_values(["student", "year", "rank", "school"], ascending=[True, False, False, True]).drop_duplicates(
        "student"
    )


def student_truth(
    n: int,
    stu: Students,
    obs: Observed,
    work: dict[str, np.ndarray],
    rows: dict[str, dict[str, np.ndarray]],
    planted: dict[str, np.ndarray],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each truth column of students.parquet as (values, null mask), for all n simulated students."""
    p = obs.paths
    last = obs.last_year
    c = stu.cohort.astype(np.int64)
    no_cohort = ~p.in_cohort
    exits = schema.EXIT_TYPES
    enr = pd.DataFrame({k: rows["enrollments"][k] for k in ("student", "year", "school", "grade", "exit")})
    following = set(zip(enr["student"], enr["year"] - 1, enr["school"], strict=True))
    attended_next = np.fromiter(
        ((s, y, sc) in following for s, y, sc in zip(enr["student"], enr["year"], enr["school"], strict=True)),
        dtype=bool,
        count=len(enr),
    )
    removing = np.isin(enr["exit"], [exits.index(e) for e in schema.COHORT_REMOVING_EXITS])
    undocumented = np.isin(enr["exit"], [exits.index("dropped_out"), exits.index("other")])
    enr["rank"] = np.select(
        [enr["exit"] == exits.index("graduated"), attended_next, undocumented, removing], [5, 4, 3, 2], default=1
    )
    graduated = enr[enr["exit"] == exits.index("graduated")].groupby("student")["year"].min()
    grad_year = np.full(n, 9999, dtype=np.int64)
    grad_year[graduated.index.to_numpy()] = graduated.to_numpy()
    removing_codes = [exits.index(e) for e in schema.COHORT_REMOVING_EXITS]
    record: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for window in (3, 4):
        lr = _last_records(enr, c, window)
        school = np.full(n, -1, dtype=np.int64)
        exit_code = np.full(n, -1, dtype=np.int64)
        school[lr["student"].to_numpy()] = lr["school"].to_numpy()
        exit_code[lr["student"].to_numpy()] = lr["exit"].to_numpy()
        record[window] = (school, exit_code)
    grad4 = grad_year <= c + 3
    removed4 = np.isin(record[3][1], removing_codes) & ~grad4
    removed5 = np.isin(record[4][1], removing_codes)
    open4, open5 = c + 3 > last, c + 4 > last
    category = np.select(
        [
            open4,
            grad4 & open5,
            grad4,
            removed4 & (open5 | removed5),
            removed4 & (grad_year == c + 4),
            removed4,
            open5,
            grad_year == c + 4,
            removed5,
        ],
        ["", "grad4_open", "grad4", "", "returned_grad5", "returned_not_graduated", "in4_open", "grad5", "removed5"],
        default="not_graduated",
    )
    school = np.where(removed4, record[4][0], record[3][0])

    tests = rows["assessments"]
    n_tests = np.bincount(tests["student"], minlength=n)
    per_grade = pd.DataFrame({"student": tests["student"], "grade": tests["grade"], "subject": tests["subject"]})
    twice = per_grade.groupby(["student", "grade", "subject"]).size()
    repeated = np.zeros(n, dtype=bool)
    repeated[twice[twice >= 2].index.get_level_values("student").unique().to_numpy()] = True

    post = rows["postsecondary"]
    terms = pd.DataFrame(
        {
            "student": post["student"],
            "start": post["term_start"],
            "level": post["level"],
            "in_state": post["in_state"],
            "control": post["control"],
            "institution": post["institution"],
        }
    )
    co = np.zeros(n, dtype=bool)
    co[terms[terms.duplicated(["student", "start"], keep=False)]["student"].unique()] = True
    # The metric's window: July 1 of the diploma year to October 31 of the next year.
    gy = grad_year[terms["student"].to_numpy()].clip(max=3000) - 1970
    july1 = (gy.astype("datetime64[Y]").astype("datetime64[M]") + 6).astype("datetime64[D]")
    oct31 = ((gy + 1).astype("datetime64[Y]").astype("datetime64[M]") + 9).astype("datetime64[D]") + 30
    start = terms["start"].to_numpy().astype("datetime64[D]")
    first = terms[(start >= july1) & (start <= oct31)].sort_values(
        ["student", "start", "level", "in_state", "control", "institution"],
        ascending=[True, True, False, False, True, True],
    )
    first = first.drop_duplicates("student")
    college_level = np.full(n, "", dtype=object)
    college_level[first["student"].to_numpy()] = np.array(schema.INSTITUTION_LEVELS)[first["level"].to_numpy()]
    first_gy = grad_year[first["student"].to_numpy()] - 1970
    oct31_same = (first_gy.astype("datetime64[Y]").astype("datetime64[M]") + 9).astype("datetime64[D]") + 30
    by_oct31 = np.zeros(n, dtype=bool)
    by_oct31[first["student"].to_numpy()] = first["start"].to_numpy().astype("datetime64[D]") <= oct31_same

    continuing = obs.cut & (p.exit_code == exits.index("continuing")) & p.in_cohort
    diploma_seen = p.exit_code == exits.index("graduated")  # the return and the diploma are in the extract
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "cohort": (c, no_cohort),
        "graduated_4yr": (grad4, no_cohort | open4),
        "graduated_5yr": (grad_year <= c + 4, no_cohort | open5),
        "removed_from_cohort": (removed4, no_cohort | open4),
        "acgr_category": (category.astype(object), no_cohort | (category == "")),
        "acgr_school_id": (np.where(school >= 0, school, 0), no_cohort | (school < 0)),
        "p_graduate": (p.p_graduate, no_cohort),
        "p_graduate_4yr": (p.p_graduate_4yr, no_cohort),
        "graduation_school_id": (p.planned_school, no_cohort),
        "graduation_logit_schools": (p.logit_schools, no_cohort),
        "continuing": (continuing, no_cohort),
        "same_year_transfer_diploma": (planted["same_year"], no_cohort),
        "returned_in_year5": (planted["returned_in_year5"] & diploma_seen, no_cohort),
        "returned_within_4yrs": (planted["returned_within_4yrs"] & diploma_seen, no_cohort),
        "co_enrolled": (co, np.zeros(n, dtype=bool)),
        "college_level": (college_level, college_level == ""),
        "college_by_oct31": (by_oct31, college_level == ""),
        "n_tests": (n_tests.astype(np.int64), np.zeros(n, dtype=bool)),
        "repeated_grade": (repeated, np.zeros(n, dtype=bool)),
    }
    cpi = read_cpi()
    top = np.zeros(n, dtype=bool)
    for k in (1, 3, 5):
        unknown = no_cohort | (c + 3 + k > last)
        out[f"employed_y{k}"] = (work[f"employed_y{k}"], unknown)
    for k in (1, 3, 5):
        unknown = no_cohort | (c + 3 + k > last)
        earnings = work[f"earnings_y{k}"]
        out[f"earnings_y{k}"] = (earnings, unknown)
        year = np.clip(c + 3 + k, min(cpi), max(cpi))
        factor = cpi[DOLLAR_YEAR] / np.array([cpi[int(y)] for y in year])
        top |= ~unknown & (earnings * factor >= TOP_CODE_USD)
    out["top_coded"] = (top, no_cohort)
    return out
