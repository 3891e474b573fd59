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
        "acgr_school_id",
        "employed_y1",
        "employed_y3",
        "employed_y5",
        "earnings_y1",
        "earnings_y3",
        "earnings_y5",
    ],
}
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
    written = [c for c in spec.columns if c.required]  # the generator leaves optional columns out
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
def test_histories_are_plausible(tables: dict[str, pd.DataFrame]) -> None:
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
    # Graduation is on a grade-12 row; exits end a history; mid-year moves are 'continuing'.
    assert (enr.loc[enr["exit_type"] == "graduated", "grade"] == 12).all()
    last_year = enr.groupby("student_key")["school_year"].transform("max")
    exited = enr["exit_type"] != "continuing"
    assert (enr.loc[exited, "school_year"] == last_year[exited]).all()
    assert enr.loc[enr["exit_type"] != "continuing"].groupby("student_key").size().max() == 1
    two_rows = enr.groupby(["student_key", "school_year"])["school_id"].transform("size") == 2
    assert two_rows.any()
    assert (
        enr.loc[two_rows]
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
    assert (g["graduated_4yr"] == (g["grad_year"] <= g["cohort"] + 3)).all()
    assert (g["graduated_5yr"] == (g["grad_year"] <= g["cohort"] + 4)).all()
    assert (g["graduated_5yr"] >= g["graduated_4yr"]).all()
    # Cohort: first grade-9 year, or for a later transfer in, entry year minus grades past 9.
    first = enr.sort_values("school_year").groupby("student_key")[["school_year", "grade"]].first()
    hs = enr[enr["grade"] >= 9].sort_values("school_year").groupby("student_key")[["school_year", "grade"]].first()
    derived = hs["school_year"] - (hs["grade"] - 9)
    assert (derived.reindex(in_cohort.index) == in_cohort["cohort"]).all()
    assert t.loc[~t.index.isin(hs.index), "cohort"].isna().all()
    assert first.loc[t.index[t["cohort"].isna()], "grade"].max() <= 8
    # Removed: last row is a documented transfer out, emigration or death within 4 years.
    # Within a school year the file lists a mid-year mover's rows in order.
    last = enr.sort_values("school_year", kind="stable").groupby("student_key").tail(1).set_index("student_key")
    removed = last["exit_type"].isin(schema.COHORT_REMOVING_EXITS) & (
        last["school_year"] <= in_cohort["cohort"].reindex(last.index) + 3
    )
    assert (removed.reindex(in_cohort.index) == in_cohort["removed_from_cohort"]).all()
    # ACGR school: a school of the student's last year within the window.
    window = enr.merge(in_cohort[["cohort"]], left_on="student_key", right_index=True)
    window = window[window["school_year"] <= window["cohort"] + 3]
    last_school = window.groupby("student_key")["school_id"].last()  # file order: later row second
    assert (last_school == in_cohort.loc[last_school.index, "acgr_school_id"]).all()
    assert set(last_school.index) == set(in_cohort.index)


def test_truth_rates_are_realistic(truth: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame]) -> None:
    t = truth["students"]
    cohort = t[t["cohort"].notna()]
    kept = cohort[~cohort["removed_from_cohort"].astype(bool)]
    acgr = kept["graduated_4yr"].astype(bool).mean()
    assert 0.80 < acgr < 0.93
    assert kept["graduated_5yr"].astype(bool).mean() > acgr
    grads = cohort[cohort["graduated_5yr"].astype(bool)]
    y1 = grads[grads["employed_y1"].notna()]
    assert 0.55 < y1["employed_y1"].astype(bool).mean() < 0.8
    assert t.loc[t["cohort"] + 3 + 1 > synth.LAST_DATA_YEAR, "employed_y1"].isna().all()
    assert t.loc[t["cohort"] + 3 + 5 > synth.LAST_DATA_YEAR, "earnings_y5"].isna().all()
    students = tables["students"]
    assert 0.30 < students["economically_disadvantaged"].mean() < 0.46
    assert 0.02 < students["english_learner"].mean() < 0.07
    assert 0.13 < students["disability"].mean() < 0.21
    assert 0.84 < (students["race_ethnicity"] == "White").mean() < 0.92


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
