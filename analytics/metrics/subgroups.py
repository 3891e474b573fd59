"""Student subgroups for disaggregation (CEDS element names), as one public list of labels.

A student belongs to one group of each of the five subgroup families, so a
table "by subgroup" counts each student once per family: five rows per
student, and the noise is scaled to that bound.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics import exact, schema
from analytics.engine import as_relation

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
#: What a missing subgroup value reads as (not in :data:`SUBGROUPS`, so never counted).
_MISSING = "(missing)"
assert not any(a != b and f"{b}: ".startswith(f"{a}: ") for a in FAMILIES.values() for b in FAMILIES.values()), (
    "a family's label must not begin another's: the copies' labels would meet"
)


def expand_subgroups(rows: pd.DataFrame | ir.Table) -> ir.Table:
    """One copy of each row per subgroup family, with a ``subgroup`` label column (a relation on the engine).

    ``rows`` must carry the students table's subgroup columns.

    >>> from analytics.engine import execute
    >>> df = pd.DataFrame({"student_key": ["K1"], "sex": ["F"], "race_ethnicity": ["Asian"],
    ...                    "economically_disadvantaged": [True], "english_learner": [False], "disability": [False]})
    >>> sorted(execute(expand_subgroups(df))["subgroup"])[:2]
    ['Disability (IDEA): no', 'Economically disadvantaged: yes']
    """
    t = as_relation(rows)
    parts = []
    for col, label in FAMILIES.items():
        v = t[col]
        if v.type().is_boolean():
            text = ibis.cases((v, _BOOL_LABEL[True]), (~v, _BOOL_LABEL[False]), else_=ibis.null("string"))
        else:
            text = v.cast("string")
        # a missing value gets its family's own label (no public list holds it), so no two copies share a label
        parts.append(t.mutate(subgroup=ibis.literal(f"{label}: ") + text.fill_null(_MISSING)))
    return exact.labelled_copies(ibis.union(*parts, distinct=False), t, "subgroup", len(parts))
