"""Student subgroups for disaggregation (CEDS element names), as one public list of labels.

A student belongs to one group of each of the five subgroup families, so a
table "by subgroup" counts each student once per family: five rows per
student, and the noise is scaled to that bound.
"""

from __future__ import annotations

import pandas as pd

from analytics import schema

FAMILIES: dict[str, str] = {
    "sex": "Sex",
    "race_ethnicity": "Race/ethnicity",
    "economically_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "disability": "Disability (IDEA)",
}
_BOOL_LABEL = {True: "yes", False: "no"}

#: Every subgroup label, in a fixed order: the public group keys of subgroup tables.
SUBGROUPS: tuple[str, ...] = (
    *(f"Sex: {s}" for s in schema.SEXES),
    *(f"Race/ethnicity: {r}" for r in schema.RACE_ETHNICITY),
    *(
        f"{FAMILIES[c]}: {v}"
        for c in ("economically_disadvantaged", "english_learner", "disability")
        for v in ("yes", "no")
    ),
)
ROWS_PER_STUDENT = len(FAMILIES)


def expand_subgroups(rows: pd.DataFrame) -> pd.DataFrame:
    """One copy of each row per subgroup family, with a ``subgroup`` label column.

    ``rows`` must carry the students table's subgroup columns.

    >>> df = pd.DataFrame({"student_key": ["K1"], "sex": ["F"], "race_ethnicity": ["Asian"],
    ...                    "economically_disadvantaged": [True], "english_learner": [False], "disability": [False]})
    >>> expand_subgroups(df)["subgroup"].tolist()[:2]
    ['Sex: F', 'Race/ethnicity: Asian']
    """
    parts = []
    for col, label in FAMILIES.items():
        values = rows[col].map(_BOOL_LABEL) if rows[col].dtype == bool else rows[col].astype(str)
        parts.append(rows.assign(subgroup=label + ": " + values))
    return pd.concat(parts, ignore_index=True)
