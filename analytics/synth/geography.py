"""Districts and schools: 150 fictional districts in Maine's 16 counties, their schools and planted effects.

District sizes are lognormal with a county shift; locales follow size (City and
Suburb only in the metro counties); names are invented compounds. Each school
gets a planted growth effect (scale points a year) and graduation effect
(logit). Movers pick a destination district by size, mostly in their county.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics import schema
from analytics.synth.common import COUNTIES, pick

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
#: Planted school effects: growth (scale points a year, see .assessments) and graduation (logit, see .schooling).
SCHOOL_GROWTH_EFFECT_SD = 4.0
SCHOOL_GRAD_EFFECT_SD = 0.5
#: A mover stays in their county with this probability (else anywhere, by district size).
P_MOVE_SAME_COUNTY = 0.6

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


@dataclass(frozen=True)
class Geography:
    """Districts and schools as arrays, plus the grade -> school lookup."""

    district_ids: np.ndarray  # str, D001..
    district_names: np.ndarray  # str
    district_county: np.ndarray  # int, index into COUNTIES
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
    metro = np.isin(county, [COUNTIES.index(c) for c in METRO_COUNTIES])
    n_cities = {"Cumberland": 2, "York": 2, "Androscoggin": 2, "Penobscot": 1, "Kennebec": 1}
    for name, k in n_cities.items():
        members = np.flatnonzero(county == COUNTIES.index(name))
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


def make_geography(rng: np.random.Generator) -> Geography:
    county = np.repeat(np.arange(len(COUNTIES)), [DISTRICTS_PER_COUNTY[c] for c in COUNTIES])
    shift = np.array([COUNTY_SIZE_SHIFT[c] for c in COUNTIES])[county]
    log_size = np.log(DISTRICT_SIZE_MEDIAN) + shift + DISTRICT_SIZE_LOG_SD * rng.standard_normal(N_DISTRICTS)
    size = np.exp(log_size)
    size = np.clip(np.round(size), 60, 9000)
    locale = _assign_locales(county, size)

    places = _place_names(rng)
    district_places, spare_places = places[:N_DISTRICTS], places[N_DISTRICTS:]
    kinds = [k for k, _ in _RURAL_UNIT_KINDS]
    kind_draw = pick(rng, [w for _, w in _RURAL_UNIT_KINDS], N_DISTRICTS)
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
    return Geography(
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


def pick_destinations(rng: np.random.Generator, origin: np.ndarray, geo: Geography) -> np.ndarray:
    """New district for movers: same county with probability P_MOVE_SAME_COUNTY, by size."""
    order = np.argsort(geo.district_county, kind="stable")
    cum = np.cumsum(geo.district_size[order])
    county_sorted = geo.district_county[order]
    n_counties = len(COUNTIES)
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
