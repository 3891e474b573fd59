"""Tests of the synthetic SLDS generator (analytics.synth)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import schema, synth

N_STUDENTS = 3_000
SEED = 7
ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "date": pa.date32()}
TRUTH_COLUMNS = {
    "districts": ["district_id", "optout_propensity", "n_asked", "realised_optout_rate"],
    "schools": ["school_id", "growth_effect", "graduation_effect"],
    "counties": ["county", "employment_effect", "earnings_multiplier"],
    "students": [
        "student_key",
        "cohort",
        "graduated_4yr",
        "graduated_5yr",
        "removed_from_cohort",
        "acgr_category",
        "acgr_school_id",
        "p_graduate",
        "p_graduate_4yr",
        "graduation_school_id",
        "graduation_logit_schools",
        "continuing",
        "same_year_transfer_diploma",
        "returned_in_year5",
        "returned_within_4yrs",
        "co_enrolled",
        "college_level",
        "college_by_oct31",
        "n_tests",
        "repeated_grade",
        "employed_y1",
        "employed_y3",
        "employed_y5",
        "earnings_y1",
        "earnings_y3",
        "earnings_y5",
        "top_coded",
    ],
}
#: Optional contract columns the generator writes.
OPTIONAL_WRITTEN = {"postsecondary": ("institution_id",)}
#: Truth flags of the planted cases (analytics.synth.cases).
PLANTED_FLAGS = (
    "continuing",
    "same_year_transfer_diploma",
    "returned_in_year5",
    "returned_within_4yrs",
    "co_enrolled",
    "repeated_grade",
    "top_coded",
)
#: A sample of real Maine municipalities: no generated name may use one.
REAL_MAINE_TOWNS = (
    "Portland",
    "Lewiston",
    "Bangor",
    "Auburn",
    "Biddeford",
    "Sanford",
    "Saco",
    "Augusta",
    "Westbrook",
    "Waterville",
    "Brunswick",
    "Scarborough",
    "Windham",
    "Gorham",
    "York",
    "Kennebunk",
    "Falmouth",
    "Yarmouth",
    "Orono",
    "Old Town",
    "Brewer",
    "Ellsworth",
    "Presque Isle",
    "Caribou",
    "Houlton",
    "Machias",
    "Calais",
    "Skowhegan",
    "Farmington",
    "Rumford",
    "Bath",
    "Belfast",
    "Camden",
    "Rockland",
    "Bar Harbor",
    "Fort Kent",
    "Millinocket",
    "Greenville",
    "Wiscasset",
    "Damariscotta",
    "Fairfield",
    "Winslow",
    "Gardiner",
    "Hallowell",
    "Bucksport",
    "Lincoln",
    "Madawaska",
    "Eastport",
    "Lubec",
    "Jonesport",
    "Stonington",
    "Searsport",
    "Winterport",
    "Vinalhaven",
    "Cumberland",
    "Freeport",
    "Topsham",
    "Norway",
    "Paris",
    "Mexico",
    "Poland",
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("synth") / "data"
    counts = synth.generate(out, n_students=N_STUDENTS, seed=SEED)
    return out, counts


@pytest.fixture(scope="module")
def tables(dataset: tuple[Path, dict[str, int]]) -> dict[str, pd.DataFrame]:
    out, _ = dataset
    return {name: pq.read_table(out / f"{name}.parquet").to_pandas() for name in schema.TABLE_NAMES}


@pytest.fixture(scope="module")
def truth(dataset: tuple[Path, dict[str, int]]) -> dict[str, pd.DataFrame]:
    out, _ = dataset
    return {name: pq.read_table(out / "truth" / f"{name}.parquet").to_pandas() for name in TRUTH_COLUMNS}


def _file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes(dataset: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    out, counts = dataset
    again = synth.generate(tmp_path / "again", n_students=N_STUDENTS, seed=SEED)
    assert again == counts
    first, second = _file_bytes(out), _file_bytes(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert len(first) == len(schema.TABLE_NAMES) + len(TRUTH_COLUMNS) + 2  # + parameters.json, extract.json
    for name in first:
        assert first[name] == second[name], name


def test_other_seed_differs(dataset: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    out, _ = dataset
    synth.generate(tmp_path / "other", n_students=N_STUDENTS, seed=SEED + 1)
    first, second = _file_bytes(out), _file_bytes(tmp_path / "other")
    assert first["students.parquet"] != second["students.parquet"]
    assert first["wages.parquet"] != second["wages.parquet"]


def test_public_lists_do_not_depend_on_n(dataset: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """The district and school lists depend on the seed only: 150 districts for every n."""
    out, _ = dataset
    synth.generate(tmp_path / "small", n_students=100, seed=SEED)
    for name in ("districts.parquet", "schools.parquet", "truth/schools.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "small" / name).read_bytes()


def test_rejects_no_students(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synth.generate(tmp_path, n_students=0, seed=1)


# ---------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------
def test_row_counts_match_files(dataset: tuple[Path, dict[str, int]], tables: dict[str, pd.DataFrame]) -> None:
    _, counts = dataset
    assert list(counts) == list(schema.TABLE_NAMES)
    for name, df in tables.items():
        assert counts[name] == len(df) > 0, name
    assert counts["students"] == N_STUDENTS


@pytest.mark.parametrize("name", schema.TABLE_NAMES)
def test_columns_and_types(dataset: tuple[Path, dict[str, int]], name: str) -> None:
    out, _ = dataset
    arrow_schema = pq.read_schema(out / f"{name}.parquet")
    spec = schema.table(name)
    written = [c for c in spec.columns if c.required or c.name in OPTIONAL_WRITTEN.get(name, ())]
    assert tuple(arrow_schema.names) == tuple(c.name for c in written)
    for col in written:
        assert arrow_schema.field(col.name).type == ARROW_TYPES[col.dtype], (name, col.name)
    assert arrow_schema.metadata is None or b"pandas" not in arrow_schema.metadata


@pytest.mark.parametrize("name", schema.TABLE_NAMES)
def test_values_follow_the_contract(tables: dict[str, pd.DataFrame], name: str) -> None:
    df = tables[name]
    for col in schema.table(name).columns:
        if not col.required and col.name not in df:
            continue
        values = df[col.name]
        assert not values.isna().any(), (name, col.name)
        if col.allowed is not None:
            assert set(values.unique()) <= set(col.allowed), (name, col.name)
        if col.min_value is not None:
            assert values.min() >= col.min_value, (name, col.name)
        if col.max_value is not None:
            assert values.max() <= col.max_value, (name, col.name)
        if col.dtype == "float":
            assert np.isfinite(values.to_numpy()).all()
        if col.pattern is not None:
            assert values.str.fullmatch(col.pattern[1:-1]).all(), (name, col.name)
        if col.pseudonymous_key:
            assert not values.str.contains(r"(?:^|\D)\d{9}(?:\D|$)").any(), (name, col.name)
            assert values.str.fullmatch(r"K[A-Z2-7]{10}").all()


@pytest.mark.parametrize("name", schema.TABLE_NAMES)
def test_primary_keys_unique(tables: dict[str, pd.DataFrame], name: str) -> None:
    spec = schema.table(name)
    assert not tables[name].duplicated(list(spec.key_columns(list(tables[name].columns)))).any()


@pytest.mark.parametrize("name", [t.name for t in schema.TABLES if t.foreign_keys])
def test_foreign_keys_resolve(tables: dict[str, pd.DataFrame], name: str) -> None:
    for fk in schema.table(name).foreign_keys:
        child = tables[name][list(fk.columns)].drop_duplicates()
        parent = tables[fk.ref_table][list(fk.ref_columns)].drop_duplicates()
        parent.columns = list(fk.columns)
        merged = child.merge(parent, how="left", on=list(fk.columns), indicator=True)
        assert (merged["_merge"] == "both").all(), (name, fk)


def test_wages_only_for_provided_ssn(tables: dict[str, pd.DataFrame]) -> None:
    ssn = tables["ssn_collection"]
    provided = set(ssn.loc[ssn["status"] == "provided", "student_key"])
    assert set(tables["wages"]["student_key"]) <= provided
    assert len(provided) < len(ssn)  # some declined


def test_every_student_has_history_and_ssn_row(tables: dict[str, pd.DataFrame]) -> None:
    keys = set(tables["students"]["student_key"])
    assert set(tables["enrollments"]["student_key"]) == keys
    assert set(tables["ssn_collection"]["student_key"]) == keys


def test_dataset_passes_the_validator(dataset: tuple[Path, dict[str, int]]) -> None:
    from analytics.validate import validate_dataset

    out, _ = dataset
    report = validate_dataset(out)
    assert report.ok, report.text()


# ---------------------------------------------------------------------------
# Geography
# ---------------------------------------------------------------------------
def test_geography_feels_like_maine(tables: dict[str, pd.DataFrame]) -> None:
    districts, schools = tables["districts"], tables["schools"]
    assert len(districts) == synth.N_DISTRICTS == 150
    assert set(districts["county"]) == set(schema.MAINE_COUNTIES)
    assert set(districts["locale"]) == set(schema.LOCALES)
    assert districts["district_id"].str.fullmatch(r"D\d{3}").all()
    assert schools["school_id"].str.fullmatch(r"S\d{4}").all()
    assert districts["district_name"].is_unique and schools["school_name"].is_unique
    cities = districts.loc[districts["locale"] == "City", "county"]
    assert set(cities) <= set(synth.METRO_COUNTIES)
    assert set(schools["district_id"]) == set(districts["district_id"])  # every district runs schools
    per_district = schools.groupby("district_id").size()
    assert per_district.min() >= 1 and per_district.max() >= 8  # a few large units
    assert (per_district <= 3).mean() > 0.5  # many small ones


def test_names_are_fictional(tables: dict[str, pd.DataFrame]) -> None:
    names = list(tables["districts"]["district_name"]) + list(tables["schools"]["school_name"])
    for town in REAL_MAINE_TOWNS:
        pattern = re.compile(rf"\b{re.escape(town)}\b")
        assert not any(pattern.search(name) for name in names), town


def test_school_levels_match_grades(tables: dict[str, pd.DataFrame]) -> None:
    rows = tables["enrollments"].merge(tables["schools"], on="school_id")
    by_level = rows.groupby("school_level")["grade"].agg(["min", "max"])
    assert by_level.loc["Elementary", "max"] <= 8
    assert by_level.loc["Middle", "min"] >= 6 and by_level.loc["Middle", "max"] <= 8
    assert by_level.loc["High", "min"] >= 9
    # The school of a row belongs to a district the student attends at that time.
    assert rows["school_id"].notna().all()


# ---------------------------------------------------------------------------
# Enrolment histories
# ---------------------------------------------------------------------------
def test_histories_are_plausible(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]) -> None:
    enr = tables["enrollments"]
    assert enr["school_year"].max() <= synth.LAST_SCHOOL_YEAR
    assert enr["school_year"].min() >= schema.MIN_SCHOOL_YEAR
    # One grade per student-year, and it rises by 0 or 1 a year.
    per_year = enr.groupby(["student_key", "school_year"])["grade"].agg(["nunique", "first"])
    assert (per_year["nunique"] == 1).all()
    per_year = per_year.reset_index().sort_values(["student_key", "school_year"])
    same = per_year["student_key"].eq(per_year["student_key"].shift())
    assert per_year["school_year"].diff().loc[same].eq(1).all()  # no gaps
    assert per_year["first"].diff().loc[same].isin([0, 1]).all()
    # Graduation is on a grade-12 row; exits end a history (but for the planted returns and
    # same-year transfers, tested below); mid-year moves are 'continuing'.
    assert (enr.loc[enr["exit_type"] == "graduated", "grade"] == 12).all()
    t = truth["students"]
    planted = t.loc[
        t[["same_year_transfer_diploma", "returned_in_year5", "returned_within_4yrs"]].fillna(False).any(axis=1),
        "student_key",
    ]
    plain = enr[~enr["student_key"].isin(set(planted))]
    last_year = plain.groupby("student_key")["school_year"].transform("max")
    exited = plain["exit_type"] != "continuing"
    assert (plain.loc[exited, "school_year"] == last_year[exited]).all()
    assert plain.loc[plain["exit_type"] != "continuing"].groupby("student_key").size().max() == 1
    two_rows = plain.groupby(["student_key", "school_year"])["school_id"].transform("size") == 2
    assert two_rows.any()
    assert (
        plain.loc[two_rows]
        .groupby(["student_key", "school_year"])["exit_type"]
        .apply(lambda s: (s == "continuing").sum() >= 1)
        .all()
    )
    exits = set(enr["exit_type"])
    assert exits == set(schema.EXIT_TYPES)


def test_mobility_and_transfers_in(tables: dict[str, pd.DataFrame]) -> None:
    enr = tables["enrollments"].merge(tables["schools"][["school_id", "district_id"]], on="school_id")
    n_districts = enr.groupby("student_key")["district_id"].nunique()
    assert 0.05 < (n_districts > 1).mean() < 0.4
    first_grade = enr.sort_values("school_year").groupby("student_key")["grade"].first()
    assert 0.75 < (first_grade == 0).mean() < 0.95
    assert (first_grade >= 10).sum() > 0  # some join after grade 9


def test_assessments_follow_enrollment(tables: dict[str, pd.DataFrame]) -> None:
    ass, enr = tables["assessments"], tables["enrollments"]
    grades = enr.drop_duplicates(["student_key", "school_year"])[["student_key", "school_year", "grade"]]
    merged = ass.merge(grades, on=["student_key", "school_year"], how="left", suffixes=("", "_enrolled"))
    assert (merged["grade"] == merged["grade_enrolled"]).all()
    proficient = (ass["achievement_level"] >= schema.PROFICIENT_LEVEL).mean()
    assert 0.4 < proficient < 0.6
    # Levels follow the published cut scores.
    params = synth.parameters(N_STUDENTS, SEED)["assessment"]
    cuts = params["cut_scores"]  # type: ignore[index]
    for g, c in cuts.items():
        rows = ass[ass["grade"] == int(g)]
        expected = 1 + sum((rows["scale_score"] >= c[k]).astype(int) for k in ("level2", "level3", "level4"))
        assert (rows["achievement_level"] == expected).all()


def test_postsecondary_terms(tables: dict[str, pd.DataFrame]) -> None:
    post = tables["postsecondary"]
    start = pd.to_datetime(post["term_start"])
    assert set(start.dt.month) <= {1, 8, 9}
    assert start.dt.year.max() <= synth.LAST_DATA_YEAR
    grads = tables["enrollments"].query("exit_type == 'graduated'")[["student_key", "school_year"]]
    first = post.assign(start=start).groupby("student_key")["start"].min().rename("first").reset_index()
    g = grads.merge(first, on="student_key", how="left")
    ever = g["first"].notna().mean()
    by_oct31 = (g["first"] <= pd.to_datetime(g["school_year"].astype(str) + "-10-31")).mean()
    assert 0.45 < ever < 0.75 and 0.35 < by_oct31 < 0.6
    assert 0.6 < post.drop_duplicates("student_key")["in_state"].mean() < 0.9


# ---------------------------------------------------------------------------
# SSN opt-out
# ---------------------------------------------------------------------------
def test_ssn_asked_in_first_year_from_2011(tables: dict[str, pd.DataFrame]) -> None:
    enr = tables["enrollments"].merge(tables["schools"][["school_id", "district_id"]], on="school_id")
    first = (
        enr[enr["school_year"] >= schema.FIRST_SSN_SCHOOL_YEAR]
        .groupby("student_key")["school_year"]
        .min()
        .rename("first_year")
    )
    ssn = tables["ssn_collection"].set_index("student_key").join(first)
    assert (ssn["school_year"] == ssn["first_year"]).all()
    asked_where = ssn.reset_index().merge(enr, on=["student_key", "school_year", "district_id"])
    assert asked_where["student_key"].nunique() == len(ssn)


def test_district_optout_spreads_widely(truth: dict[str, pd.DataFrame]) -> None:
    d = truth["districts"]
    assert d["optout_propensity"].between(0.02, 0.30).all()
    assert (d["optout_propensity"] >= 0.25).sum() >= 5
    assert (d["optout_propensity"] < 0.08).mean() > 0.7
    rate = d["realised_optout_rate"].dropna()
    assert (rate < 0.05).sum() >= 5 and (rate > 0.20).sum() >= 3


def test_english_learners_opt_out_more(tables: dict[str, pd.DataFrame]) -> None:
    ssn = tables["ssn_collection"].merge(tables["students"], on="student_key")
    declined = ssn.assign(declined=ssn["status"] == "declined").groupby("english_learner")["declined"].mean()
    assert declined[True] > 1.5 * declined[False]


def test_realised_rate_matches_table(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]) -> None:
    ssn = tables["ssn_collection"]
    rate = (ssn["status"] == "declined").groupby(ssn["district_id"]).mean()
    t = truth["districts"].set_index("district_id")
    np.testing.assert_allclose(t.loc[rate.index, "realised_optout_rate"], rate)
    assert t.loc[rate.index, "n_asked"].sum() == N_STUDENTS


# ---------------------------------------------------------------------------
# Planted truth
# ---------------------------------------------------------------------------
def test_truth_files_and_columns(dataset: tuple[Path, dict[str, int]], truth: dict[str, pd.DataFrame]) -> None:
    out, _ = dataset
    for name, columns in TRUTH_COLUMNS.items():
        assert list(truth[name].columns) == columns, name
    assert len(truth["districts"]) == 150 and len(truth["counties"]) == 16
    assert len(truth["students"]) == N_STUDENTS
    text = (out / "truth" / "parameters.json").read_text(encoding="utf-8")
    params = json.loads(text)
    assert text == json.dumps(params, indent=2, sort_keys=True) + "\n"
    assert params["seed"] == SEED and params["n_students"] == N_STUDENTS
    assert params["el_optout_odds_ratio"] == 3.0
    assert params["generator_version"] == synth.GENERATOR_VERSION
    assert 3.0 <= params["assessment"]["school_growth_effect_sd"] <= 5.0


def test_truth_graduation_agrees_with_enrollments(
    tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]
) -> None:
    enr = tables["enrollments"]
    t = truth["students"].set_index("student_key")
    in_cohort = t[t["cohort"].notna()]
    grad_year = enr[enr["exit_type"] == "graduated"].set_index("student_key")["school_year"]
    g = in_cohort.join(grad_year.rename("grad_year"))
    done4 = g["graduated_4yr"].notna()
    assert (g.loc[done4, "graduated_4yr"] == (g.loc[done4, "grad_year"] <= g.loc[done4, "cohort"] + 3)).all()
    done5 = g["graduated_5yr"].notna()
    assert (g.loc[done5, "graduated_5yr"] == (g.loc[done5, "grad_year"] <= g.loc[done5, "cohort"] + 4)).all()
    assert (g.loc[done5, "graduated_5yr"] >= g.loc[done5, "graduated_4yr"]).all()
    # Windows not over by the last school year have no outcome.
    assert (g["graduated_4yr"].isna() == (g["cohort"] + 3 > synth.LAST_SCHOOL_YEAR)).all()
    assert (g["graduated_5yr"].isna() == (g["cohort"] + 4 > synth.LAST_SCHOOL_YEAR)).all()
    # Cohort: first grade-9 year, or for a later transfer in, entry year minus grades past 9.
    first = enr.sort_values("school_year").groupby("student_key")[["school_year", "grade"]].first()
    hs = enr[enr["grade"] >= 9].sort_values("school_year").groupby("student_key")[["school_year", "grade"]].first()
    derived = hs["school_year"] - (hs["grade"] - 9)
    assert (derived.reindex(in_cohort.index) == in_cohort["cohort"]).all()
    assert t.loc[~t.index.isin(hs.index), "cohort"].isna().all()
    assert first.loc[t.index[t["cohort"].isna()], "grade"].max() <= 8
    # Removed: a documented exit is the last record within 4 years, and no diploma within 4 years.
    plain = in_cohort[
        ~in_cohort[["same_year_transfer_diploma", "returned_in_year5", "returned_within_4yrs"]].any(axis=1)
        & in_cohort["removed_from_cohort"].notna()
    ]
    last = enr.sort_values("school_year", kind="stable").groupby("student_key").tail(1).set_index("student_key")
    removed = last["exit_type"].isin(schema.COHORT_REMOVING_EXITS) & (
        last["school_year"] <= plain["cohort"].reindex(last.index) + 3
    )
    assert (removed.reindex(plain.index) == plain["removed_from_cohort"].astype(bool)).all()
    # Categories: the 4-year rate's numerator and denominator agree with the flags.
    cat = in_cohort["acgr_category"]
    assert (cat.isin(["grad4", "grad4_open"]) == in_cohort["graduated_4yr"].fillna(False).astype(bool)).all()
    removed_cat = cat[in_cohort["removed_from_cohort"].fillna(False).astype(bool)]
    assert (removed_cat.isna() | removed_cat.isin(["returned_grad5", "returned_not_graduated"])).all()
    # ACGR school: a high school the student attended in the window's last year.
    window = enr.merge(in_cohort[["cohort", "acgr_school_id"]], left_on="student_key", right_index=True)
    attended = window[window["school_id"] == window["acgr_school_id"]]
    assert set(attended["student_key"]) == set(in_cohort.index[in_cohort["acgr_school_id"].notna()])
    assert (attended["grade"] >= 9).groupby(attended["student_key"]).any().all()


def test_truth_rates_are_realistic(truth: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame]) -> None:
    t = truth["students"]
    cohort = t[t["cohort"].notna()]
    kept = cohort[cohort["acgr_category"].notna() & ~cohort["removed_from_cohort"].astype(bool)]
    acgr = kept["graduated_4yr"].astype(bool).mean()
    assert 0.80 < acgr < 0.93
    five = kept[kept["graduated_5yr"].notna()]
    assert five["graduated_5yr"].astype(bool).mean() > five["graduated_4yr"].astype(bool).mean()
    grads = cohort[cohort["graduated_5yr"].fillna(False).astype(bool)]
    y1 = grads[grads["employed_y1"].notna()]
    assert 0.55 < y1["employed_y1"].astype(bool).mean() < 0.8
    assert t.loc[t["cohort"] + 3 + 1 > synth.LAST_DATA_YEAR, "employed_y1"].isna().all()
    assert t.loc[t["cohort"] + 3 + 5 > synth.LAST_DATA_YEAR, "earnings_y5"].isna().all()
    students = tables["students"]
    assert 0.30 < students["economically_disadvantaged"].mean() < 0.46
    assert 0.02 < students["english_learner"].mean() < 0.07
    assert 0.13 < students["disability"].mean() < 0.21
    assert 0.84 < (students["race_ethnicity"] == "White").mean() < 0.92


def test_planted_graduation_probabilities_match_outcomes(truth: dict[str, pd.DataFrame]) -> None:
    """Each student's planted P(4-year diploma) is calibrated: in every fifth of p, outcomes agree within 4 SE."""
    t = truth["students"]
    cohort = t[t["cohort"].notna()]
    assert cohort[["p_graduate", "p_graduate_4yr", "graduation_school_id"]].notna().all().all()
    assert t.loc[t["cohort"].isna(), "p_graduate"].isna().all()
    assert ((cohort["p_graduate_4yr"] > 0) & (cohort["p_graduate_4yr"] <= cohort["p_graduate"])).all()
    assert (cohort["p_graduate"] < 1).all()
    kept = cohort[cohort["removed_from_cohort"].notna() & ~cohort["removed_from_cohort"].fillna(False).astype(bool)]
    fifth = pd.qcut(kept["p_graduate_4yr"], 5, labels=False)
    for _, g in kept.groupby(fifth):
        p = g["p_graduate_4yr"].to_numpy(float)
        se = np.sqrt(np.sum(p * (1 - p))) / len(p)
        assert abs(g["graduated_4yr"].astype(bool).mean() - p.mean()) < 4 * se
    schools = truth["schools"].set_index("school_id")["graduation_effect"]
    growth = cohort["graduation_logit_schools"] - schools.reindex(cohort["graduation_school_id"]).to_numpy()
    assert abs(growth.mean()) < 0.1 and 0.05 < growth.std() < 1.0  # grade 3-8 growth effects, carried to grade 8


def test_truth_workforce_matches_released_wages(
    tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]
) -> None:
    """For students whose SSN was provided, the released wages reproduce the true outcome."""
    wages = tables["wages"]
    ssn = tables["ssn_collection"]
    t = truth["students"].merge(ssn[["student_key", "status"]], on="student_key")
    t = t[(t["status"] == "provided") & t["employed_y3"].notna()]
    year = (t["cohort"] + 3 + 3).astype("int64")
    wy = wages.groupby(["student_key", "year"])["wages"].agg(["size", "sum"])
    key = pd.MultiIndex.from_arrays([t["student_key"], year])
    got = wy.reindex(key).fillna(0)
    employed = (got["size"].to_numpy() >= 2) & (got["sum"].to_numpy() >= 3000)
    assert (employed == t["employed_y3"].astype(bool).to_numpy()).all()
    np.testing.assert_allclose(got["sum"].to_numpy(), t["earnings_y3"].to_numpy(), atol=0.02)
    assert wages["wages"].max() < schema.MAX_QUARTERLY_WAGES / 10
    assert (wages["wages"].round(2) == wages["wages"]).all()


# ---------------------------------------------------------------------------
# Planted cases of real extracts (analytics.synth.cases)
# ---------------------------------------------------------------------------
def test_planted_cases_are_present_and_rare(truth: dict[str, pd.DataFrame]) -> None:
    t = truth["students"]
    shares = {flag: t[flag].fillna(False).astype(bool).mean() for flag in PLANTED_FLAGS}
    assert all(share > 0 for share in shares.values()), shares
    # small enough that the population stays realistic
    assert shares["continuing"] < 0.06 and shares["repeated_grade"] < 0.05 and shares["co_enrolled"] < 0.03
    for flag in ("same_year_transfer_diploma", "returned_in_year5", "returned_within_4yrs", "top_coded"):
        assert shares[flag] < 0.012, flag


def test_incomplete_cohorts_are_continuing_in_the_last_year(
    tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]
) -> None:
    t = truth["students"]
    cont = t[t["continuing"].fillna(False).astype(bool)]
    assert set(cont["cohort"]) <= set(synth.cases.OPEN_COHORTS)
    assert cont["acgr_category"].isna().all() and cont["graduated_4yr"].isna().all()
    enr = tables["enrollments"]
    last = enr[enr["student_key"].isin(set(cont["student_key"]))].groupby("student_key").tail(1)
    assert (last["school_year"] == synth.LAST_SCHOOL_YEAR).all()
    assert (last["exit_type"] == "continuing").all()
    assert last["grade"].between(9, 11).all()
    # the open cohorts are small: a sample, not whole cohorts
    full = t[t["cohort"] == 2021].shape[0]
    assert 0 < t[t["cohort"] == 2024].shape[0] < 0.3 * full


def test_same_year_transfer_and_diploma_rows(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]) -> None:
    t = truth["students"].set_index("student_key")
    flagged = t.index[t["same_year_transfer_diploma"].fillna(False).astype(bool)]
    enr = tables["enrollments"].merge(tables["schools"][["school_id", "school_level"]], on="school_id")
    for key in flagged:
        rows = enr[enr["student_key"] == key]
        year = rows["school_year"].max()
        final = rows[rows["school_year"] == year]
        assert final["exit_type"].tolist() == ["graduated", "transferred_out"]  # the transfer is listed last
        assert final["school_id"].nunique() == 2 and (final["grade"] == 12).all()
        assert final["school_level"].isin(["High", "Combined"]).all()
        assert year == t.loc[key, "cohort"] + 3
        assert t.loc[key, "graduated_4yr"] and not t.loc[key, "removed_from_cohort"]
        assert t.loc[key, "acgr_school_id"] == final.loc[final["exit_type"] == "graduated", "school_id"].item()


def test_returns_after_a_documented_transfer_out(
    tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]
) -> None:
    t = truth["students"].set_index("student_key")
    enr = tables["enrollments"]
    for flag, out_year, category in (("returned_in_year5", 3, "returned_grad5"), ("returned_within_4yrs", 1, "grad4")):
        keys = t.index[t[flag].fillna(False).astype(bool)]
        assert len(keys) > 0, flag
        rows = enr[enr["student_key"].isin(set(keys))].merge(t[["cohort"]], left_on="student_key", right_index=True)
        out = rows[rows["exit_type"] == "transferred_out"]
        assert (out["school_year"] == out["cohort"] + out_year).all()
        assert set(out["student_key"]) == set(keys)
        grads = rows[rows["exit_type"] == "graduated"].set_index("student_key")
        assert (grads["school_year"] > out.set_index("student_key")["school_year"].reindex(grads.index)).all()
        assert (t.loc[keys, "acgr_category"] == category).all()
    five = t[t["returned_in_year5"].fillna(False).astype(bool)]
    assert five["removed_from_cohort"].astype(bool).all() and five["graduated_5yr"].astype(bool).all()


def test_co_enrolment_rows(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]) -> None:
    post = tables["postsecondary"]
    assert post["institution_id"].str.fullmatch(r"(ME|US)[24][UP]\d{2}").all()
    # one college per student outside co-enrolment terms
    t = truth["students"]
    co_keys = set(t.loc[t["co_enrolled"], "student_key"])
    same_term = post[post.duplicated(["student_key", "term_start"], keep=False)]
    assert set(same_term["student_key"]) == co_keys
    per_term = same_term.groupby(["student_key", "term_start"]).agg(
        n=("institution_id", "nunique"), levels=("institution_level", "nunique")
    )
    assert (per_term["n"] == 2).all() and (per_term["levels"] == 2).all()
    plain = post[~post["student_key"].isin(co_keys)]
    assert (plain.groupby("student_key")["institution_id"].nunique() == 1).all()


def test_repeated_grades_keep_every_test(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]) -> None:
    from analytics.metrics.assessment import MAX_TESTS_PER_STUDENT

    t = truth["students"].set_index("student_key")
    ass = tables["assessments"]
    counts = ass.groupby("student_key").size().reindex(t.index, fill_value=0)
    assert (counts == t["n_tests"]).all()
    twice = ass.groupby(["student_key", "grade", "subject"]).size()
    repeated = set(twice[twice >= 2].index.get_level_values("student_key"))
    assert repeated == set(t.index[t["repeated_grade"]])
    # the metric's per-student bound covers every student's tests: none is dropped
    assert t["n_tests"].max() <= MAX_TESTS_PER_STUDENT
    assert t.loc[t["repeated_grade"], "n_tests"].max() > len(schema.SUBJECTS) * len(schema.ASSESSED_GRADES)


def test_top_coded_earners(truth: dict[str, pd.DataFrame]) -> None:
    from analytics.metrics.workforce import EARNINGS_TOP_USD, cpi_factors

    t = truth["students"]
    factors = cpi_factors()
    top = pd.Series(False, index=t.index)
    for k in (1, 3, 5):
        known = t[f"earnings_y{k}"].notna()
        real = t.loc[known, f"earnings_y{k}"] * (t.loc[known, "cohort"] + 3 + k).map(factors)
        top |= (real >= EARNINGS_TOP_USD).reindex(t.index, fill_value=False)
    assert (top == t["top_coded"].fillna(False).astype(bool)).all()
    assert top.sum() > 0


def test_extract_that_ends_early(dataset: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """The same population cut after 2022: nothing later, open histories 'continuing', the year declared."""
    from analytics.validate import validate_dataset

    full_dir, _ = dataset
    cut_dir = tmp_path / "cut"
    counts = synth.generate(cut_dir, n_students=N_STUDENTS, seed=SEED, last_year=2022)
    assert json.loads((cut_dir / "extract.json").read_text())["last_school_year"] == 2022
    assert json.loads((cut_dir / "extract.json").read_text())["last_wage_year"] == 2022
    report = validate_dataset(cut_dir)
    assert report.ok, report.text()
    cut = {name: pq.read_table(cut_dir / f"{name}.parquet").to_pandas() for name in schema.TABLE_NAMES}
    full = {name: pq.read_table(full_dir / f"{name}.parquet").to_pandas() for name in schema.TABLE_NAMES}
    assert counts["students"] == len(cut["students"]) <= N_STUDENTS
    assert cut["enrollments"]["school_year"].max() == 2022 and cut["assessments"]["school_year"].max() <= 2022
    assert cut["wages"]["year"].max() == 2022
    assert pd.to_datetime(cut["postsecondary"]["term_start"]).dt.year.max() <= 2022
    assert set(cut["students"]["student_key"]) <= set(full["students"]["student_key"])
    # the same rows up to 2022: a history that goes on ends on a 'continuing' row in 2022
    before = full["enrollments"][full["enrollments"]["school_year"] <= 2022].reset_index(drop=True)
    pd.testing.assert_frame_equal(cut["enrollments"], before)
    truth_cut = pd.read_parquet(cut_dir / "truth" / "students.parquet")
    open_keys = set(truth_cut.loc[truth_cut["continuing"].fillna(False).astype(bool), "student_key"])
    assert len(open_keys) > 0.1 * len(truth_cut)  # cohorts 2020-2025 are still in school
    last = cut["enrollments"][cut["enrollments"]["student_key"].isin(open_keys)].groupby("student_key").tail(1)
    assert (last["school_year"] == 2022).all() and (last["exit_type"] == "continuing").all()
    c = truth_cut["cohort"]
    assert truth_cut.loc[c + 3 > 2022, "acgr_category"].isna().all()
    assert set(truth_cut.loc[c == 2019, "acgr_category"].dropna()) <= {"grad4_open", "in4_open"}
    assert truth_cut.loc[c + 3 + 1 > 2022, "employed_y1"].isna().all()
    assert json.loads((cut_dir / "truth" / "parameters.json").read_text())["last_school_year"] == 2022


def test_cli_generate_refuses_a_last_year_outside_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics import cli

    assert cli.main(["generate", "--out", str(tmp_path / "x"), "--students", "100", "--last-year", "2009"]) == 2
    assert "--last-year must lie between 2011 and 2025" in capsys.readouterr().err
    assert cli.main(["generate", "--out", str(tmp_path / "y"), "--students", "100", "--last-year", "2020"]) == 0
    assert json.loads((tmp_path / "y" / "extract.json").read_text())["last_school_year"] == 2020


# ---------------------------------------------------------------------------
# Blocks: large populations are simulated a block of students at a time
# ---------------------------------------------------------------------------
BLOCK_N = 6_000
BLOCK_SIZE = 2_000


@pytest.fixture(scope="module")
def blocked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same population size and seed simulated in one block and in three blocks."""
    root = tmp_path_factory.mktemp("blocks")
    synth.generate(root / "one", n_students=BLOCK_N, seed=SEED)
    synth.generate(root / "three", n_students=BLOCK_N, seed=SEED, block_students=BLOCK_SIZE)
    return root / "one", root / "three"


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pq.read_table(folder / f"{name}.parquet").to_pandas()


def test_blocks_write_a_valid_dataset_in_row_groups(blocked: tuple[Path, Path]) -> None:
    from analytics.validate import validate_dataset

    _, three = blocked
    report = validate_dataset(three)
    assert report.ok, report.text()
    students = _read(three, "students")
    assert len(students) == BLOCK_N and students["student_key"].is_unique
    assert pq.ParquetFile(three / "enrollments.parquet").num_row_groups == BLOCK_N // BLOCK_SIZE
    for name in schema.TABLE_NAMES:  # every block writes the contract's schema
        assert pq.read_schema(three / f"{name}.parquet") == pq.read_schema(blocked[0] / f"{name}.parquet"), name
    truth = pq.read_table(three / "truth" / "students.parquet").to_pandas()
    assert truth["student_key"].tolist() == students["student_key"].tolist()
    districts = pq.read_table(three / "truth" / "districts.parquet").to_pandas().set_index("district_id")
    assert districts["n_asked"].sum() == BLOCK_N  # the blocks' opt-out counts add up
    ssn = _read(three, "ssn_collection")
    rate = (ssn["status"] == "declined").groupby(ssn["district_id"]).mean()
    np.testing.assert_allclose(districts.loc[rate.index, "realised_optout_rate"], rate)
    params = json.loads((three / "truth" / "parameters.json").read_text())
    assert params["n_students"] == BLOCK_N
    blocks = [truth.iloc[i : i + BLOCK_SIZE].reset_index(drop=True) for i in range(0, BLOCK_N, BLOCK_SIZE)]
    assert not blocks[0].drop(columns="student_key").equals(blocks[1].drop(columns="student_key"))  # own draws


def test_blocks_are_deterministic_and_keep_the_public_lists(blocked: tuple[Path, Path], tmp_path: Path) -> None:
    one, three = blocked
    synth.generate(tmp_path / "again", n_students=BLOCK_N, seed=SEED, block_students=BLOCK_SIZE)
    first, second = _file_bytes(three), _file_bytes(tmp_path / "again")
    assert first == second
    for name in ("districts.parquet", "schools.parquet", "truth/schools.parquet", "truth/counties.parquet"):
        assert (one / name).read_bytes() == (three / name).read_bytes(), name
    # blocks draw their own students: the files differ from a one-block run, the keys do not
    assert (one / "wages.parquet").read_bytes() != (three / "wages.parquet").read_bytes()
    assert _read(one, "students")["student_key"].tolist() == _read(three, "students")["student_key"].tolist()


def test_one_block_is_the_unblocked_generator(tmp_path: Path) -> None:
    """Up to block_students the population is one block: the files are those of the default call."""
    synth.generate(tmp_path / "a", n_students=400, seed=SEED)
    synth.generate(tmp_path / "b", n_students=400, seed=SEED, block_students=400)
    assert _file_bytes(tmp_path / "a") == _file_bytes(tmp_path / "b")
    with pytest.raises(ValueError, match="block_students must be at least 1"):
        synth.generate(tmp_path / "c", n_students=10, seed=SEED, block_students=0)


def _share_close(a: pd.Series, b: pd.Series, what: str) -> None:
    """Two independent samples' shares agree within 4.5 standard errors of their difference.

    Under the same distribution the difference of two shares of n and m draws has standard
    error sqrt(p (1 - p) (1/n + 1/m)); 4.5 of them fail by chance with probability 7e-6.
    """
    p1, p2 = float(a.mean()), float(b.mean())
    p = (a.sum() + b.sum()) / (len(a) + len(b))
    se = np.sqrt(max(p * (1 - p), 1e-12) * (1 / len(a) + 1 / len(b)))
    assert abs(p1 - p2) <= 4.5 * se, f"{what}: {p1:.4f} in one block, {p2:.4f} in blocks (se {se:.4f})"


def _mean_close(a: pd.Series, b: pd.Series, what: str) -> None:
    """Two independent samples' means agree within 4.5 standard errors of their difference (CLT)."""
    a, b = a.astype(float), b.astype(float)
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) <= 4.5 * se, f"{what}: {a.mean():.3f} vs {b.mean():.3f} (se {se:.3f})"


def test_blocks_follow_the_same_distributions(blocked: tuple[Path, Path]) -> None:
    """Every block follows the one-block model: demographics, schooling, opt-out, tests, college and wages agree."""
    one, three = blocked
    s1, s3 = _read(one, "students"), _read(three, "students")
    for col in ("economically_disadvantaged", "english_learner", "disability"):
        _share_close(s1[col], s3[col], col)
    _share_close(s1["sex"] == "F", s3["sex"] == "F", "sex F")
    _share_close(s1["race_ethnicity"] == "White", s3["race_ethnicity"] == "White", "race White")
    o1, o3 = _read(one, "ssn_collection"), _read(three, "ssn_collection")
    _share_close(o1["status"] == "declined", o3["status"] == "declined", "SSN declined")
    t1 = pq.read_table(one / "truth" / "students.parquet").to_pandas()
    t3 = pq.read_table(three / "truth" / "students.parquet").to_pandas()
    for col in ("graduated_4yr", "graduated_5yr", "removed_from_cohort", "employed_y1", "employed_y3"):
        _share_close(t1[col].dropna().astype(bool), t3[col].dropna().astype(bool), col)
    _share_close(t1["cohort"].isna(), t3["cohort"].isna(), "no cohort")
    _share_close(t1["college_level"].notna(), t3["college_level"].notna(), "enrolled in college")
    _mean_close(t1["n_tests"], t3["n_tests"], "tests per student")
    _mean_close(t1["cohort"].dropna(), t3["cohort"].dropna(), "cohort year")
    for name in ("enrollments", "postsecondary", "wages"):
        r1 = _read(one, name)["student_key"].value_counts().reindex(s1["student_key"], fill_value=0)
        r3 = _read(three, name)["student_key"].value_counts().reindex(s3["student_key"], fill_value=0)
        _mean_close(r1, r3, f"{name} rows per student")
    a1, a3 = _read(one, "assessments"), _read(three, "assessments")
    _mean_close(a1["scale_score"], a3["scale_score"], "scale score")
    w1, w3 = _read(one, "wages"), _read(three, "wages")
    _mean_close(np.log1p(w1["wages"]), np.log1p(w3["wages"]), "log quarterly wages")


@pytest.mark.slow
def test_regenerating_the_bundled_sample_gives_its_bytes(tmp_path: Path) -> None:
    from analytics import config

    synth.generate(tmp_path / "sample", n_students=20_000, seed=2010)
    assert _file_bytes(tmp_path / "sample") == _file_bytes(config.SAMPLE_DATA_DIR)
