"""The dataset's public configuration: where its data end and which score scales its tests use.

A dataset folder may hold one small file, ``extract.json``, written by the data
steward. Every field is optional:

``last_school_year``
    Last school year of K-12 records, as its spring year (2025 = 2024-25).
    Default: the latest ``enrollments.school_year``.
``last_wage_year``
    Last calendar year whose four quarters of wage records are complete.
    Default: the latest year with wage rows in quarter 4 (or the year before the
    latest wage year when no year has a 4th quarter).
``last_postsecondary_year``
    Last calendar year of postsecondary records (terms starting by December 31).
    Default: the year of the latest ``postsecondary.term_start``.
``score_scales``
    Reporting range of the scale scores, by subject, either one range for every
    grade (``{"math": [200, 700]}``) or one per grade (``{"ela": {"3": [2114,
    2623], ...}}``). Default: :data:`DEFAULT_SCORE_SCALE` for every subject and
    grade. A score outside its declared range is refused by the validator, so a
    test on another scale cannot be silently mis-read by the growth model.

A cohort, graduate or year-out cell whose window runs past these years is not
published: it is not yet observable (see ``docs/metrics.md``). Declared years
are public facts; years derived from the data are a fallback, and a steward
should declare them. This module is the only place the file is read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analytics import schema

EXTRACT_FILE = "extract.json"
#: Reporting range assumed when ``score_scales`` does not name a subject (the Maine-like 200-700 scale).
DEFAULT_SCORE_SCALE: tuple[float, float] = (200.0, 700.0)
YEAR_FIELDS: tuple[str, ...] = ("last_school_year", "last_wage_year", "last_postsecondary_year")
FIELDS: tuple[str, ...] = (*YEAR_FIELDS, "score_scales")

ScoreScales = dict[tuple[str, int], tuple[float, float]]


def _default_scales() -> ScoreScales:
    return {(s, g): DEFAULT_SCORE_SCALE for s in schema.SUBJECTS for g in schema.ASSESSED_GRADES}


@dataclass(frozen=True)
class ExtractConfig:
    """End years and score scales of one dataset; ``None`` years are derived from the data by :func:`resolve`."""

    last_school_year: int | None = None
    last_wage_year: int | None = None
    last_postsecondary_year: int | None = None
    score_scales: ScoreScales = field(default_factory=_default_scales)
    declared: frozenset[str] = frozenset()

    def scale(self, subject: str, grade: int) -> tuple[float, float]:
        """(low, high) reporting range of ``subject`` tests in ``grade``."""
        return self.score_scales.get((subject, int(grade)), DEFAULT_SCORE_SCALE)

    def undeclared_years(self) -> list[str]:
        """End-year fields the steward did not declare in extract.json (so they were read from the data)."""
        return [f for f in YEAR_FIELDS if f not in self.declared]

    def require_declared(self, where: str) -> None:
        """Raise ValueError naming extract.json unless all three end years are declared.

        A year read from the data would decide, without noise, which cells are published: one
        student with a later record would move it (invariant 7). Releases and researcher tables
        therefore need the years declared.
        """
        missing = self.undeclared_years()
        if missing:
            raise ValueError(
                f"{EXTRACT_FILE} in {where} does not declare {', '.join(missing)}: a release needs the steward to "
                "declare all three end years (a year read from the data could reveal that one student exists); "
                f"add them to {EXTRACT_FILE} (docs/data-contract.md shows the format)"
            )

    def require_years(self) -> tuple[int, int, int]:
        """The three end years; raises ValueError if :func:`resolve` has not filled them."""
        years = (self.last_school_year, self.last_wage_year, self.last_postsecondary_year)
        if any(y is None for y in years):
            raise ValueError("the extract's end years are not resolved; call analytics.extract.resolve first")
        return int(years[0]), int(years[1]), int(years[2])  # type: ignore[arg-type]


def _year(value: Any, name: str, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{EXTRACT_FILE}: '{name}' must be a whole number such as 2025 (a spring year)")
        return None
    if not schema.MIN_SCHOOL_YEAR <= value <= schema.MAX_SCHOOL_YEAR:
        problems.append(
            f"{EXTRACT_FILE}: '{name}' must lie between {schema.MIN_SCHOOL_YEAR} and {schema.MAX_SCHOOL_YEAR}"
        )
        return None
    return value


def _range(value: Any, where: str, problems: list[str]) -> tuple[float, float] | None:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] < value[1] <= schema.MAX_SCALE_SCORE
    )
    if not ok:
        problems.append(
            f"{EXTRACT_FILE}: {where} must be [low, high] with 0 <= low < high <= {schema.MAX_SCALE_SCORE:g}, "
            "for example [200, 700]"
        )
        return None
    return float(value[0]), float(value[1])


def parse(data: Any) -> tuple[ExtractConfig, list[str]]:
    """Check the decoded JSON of an ``extract.json`` and return the configuration and its problems.

    >>> cfg, problems = parse({"last_school_year": 2022, "score_scales": {"math": [2100, 2900]}})
    >>> cfg.last_school_year, cfg.scale("math", 5), cfg.scale("ela", 5), problems
    (2022, (2100.0, 2900.0), (200.0, 700.0), [])
    >>> parse({"end": 2022})[1][0].split(";")[0]
    "extract.json: unknown field 'end'"
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        return ExtractConfig(), [f'{EXTRACT_FILE}: must hold one JSON object, such as {{"last_school_year": 2025}}']
    for key in data:
        if key not in FIELDS:
            problems.append(f"{EXTRACT_FILE}: unknown field '{key}'; fields are {', '.join(FIELDS)}")
    years = {name: _year(data[name], name, problems) for name in YEAR_FIELDS if name in data}
    scales = _default_scales()
    raw = data.get("score_scales", {})
    if not isinstance(raw, dict):
        problems.append(f"{EXTRACT_FILE}: 'score_scales' must map each subject to [low, high] or to grades")
        raw = {}
    for subject, spec in raw.items():
        if subject not in schema.SUBJECTS:
            problems.append(f"{EXTRACT_FILE}: score_scales names an unknown subject; subjects are math, ela")
            continue
        if isinstance(spec, dict):
            for grade_text, rng in spec.items():
                grade = int(grade_text) if str(grade_text).isdigit() else -1
                if grade not in schema.ASSESSED_GRADES:
                    problems.append(
                        f"{EXTRACT_FILE}: score_scales.{subject} names a grade that is not tested; "
                        f"grades are {', '.join(map(str, schema.ASSESSED_GRADES))}"
                    )
                    continue
                got = _range(rng, f"score_scales.{subject}.{grade}", problems)
                if got:
                    scales[(subject, grade)] = got
        else:
            got = _range(spec, f"score_scales.{subject}", problems)
            if got:
                for grade in schema.ASSESSED_GRADES:
                    scales[(subject, grade)] = got
    declared = frozenset(k for k in data if k in FIELDS)
    return ExtractConfig(**{k: v for k, v in years.items()}, score_scales=scales, declared=declared), problems


def read(dataset_dir: Path) -> tuple[ExtractConfig, list[str]]:
    """Read ``dataset_dir/extract.json`` if it exists (else the defaults) and return it with its problems."""
    path = Path(dataset_dir) / EXTRACT_FILE
    if not path.is_file():
        return ExtractConfig(), []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        return ExtractConfig(), [f"{EXTRACT_FILE}: is not valid UTF-8 JSON{where}; fix the file or remove it"]
    return parse(data)


def _scalar(source: Any, query: str) -> int | None:
    value = source.sql(query).iloc[0, 0]
    return None if pd.isna(value) else int(value)


def resolve(config: ExtractConfig, source: Any) -> ExtractConfig:
    """Fill the end years the steward did not declare from the data of ``source`` (a DataSource).

    Raises:
        ValueError: if a year cannot be derived (the table is empty) and was not declared.
    """
    school = config.last_school_year
    if school is None:
        school = _scalar(source, "SELECT max(school_year) FROM enrollments")
    wage = config.last_wage_year
    if wage is None:
        wage = _scalar(source, "SELECT max(year) FROM wages WHERE quarter = 4")
        if wage is None:
            latest = _scalar(source, "SELECT max(year) FROM wages")
            wage = None if latest is None else latest - 1
    post = config.last_postsecondary_year
    if post is None:
        post = _scalar(source, "SELECT year(max(term_start)) FROM postsecondary")
    missing = [n for n, v in zip(YEAR_FIELDS, (school, wage, post), strict=True) if v is None]
    if missing:
        raise ValueError(
            f"{EXTRACT_FILE}: the data cannot tell {', '.join(missing)} (its table is empty); declare it in "
            f"{EXTRACT_FILE}"
        )
    return replace(config, last_school_year=school, last_wage_year=wage, last_postsecondary_year=post)


def of(source: Any) -> ExtractConfig:
    """The resolved configuration a loaded source carries, or the defaults resolved from its data."""
    cfg = getattr(source, "extract", None)
    if isinstance(cfg, ExtractConfig) and cfg.last_school_year is not None:
        return cfg
    resolved = resolve(cfg if isinstance(cfg, ExtractConfig) else ExtractConfig(), source)
    with contextlib.suppress(AttributeError):
        source.extract = resolved
    return resolved
