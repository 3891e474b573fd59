"""Differential-privacy mechanisms and their accuracy, with the student as the unit.

Every query here takes one row per (student, cell) after contribution bounding,
groups by keys drawn from public lists, and adds noise from mechanisms chosen
with their known problems in mind:

- counts and histograms: the discrete Gaussian (rho-zCDP, L2 sensitivity) on a zCDP
  lineage, the two-sided geometric (discrete Laplace; pure epsilon, L1 sensitivity) on a
  pure-epsilon one (:meth:`CountNoise.for_histogram`), both drawn by OpenDP's exact
  samplers (:mod:`analytics.noise`): integer output from exact arithmetic, so neither the
  floating-point attacks on the float Laplace (diffprivlib #94) nor diffprivlib Geometric's
  53-bit inverse-CDF tail apply;
- bounded real-valued sums: diffprivlib's Snapping mechanism (Mironov 2012).
  Caveat: Snapping's guarantee assumes a correctly rounded logarithm; diffprivlib
  uses ``crlibm.log_rn`` when that package is installed, but ``crlibm`` does not
  build on current Python, so numpy's log (accurate to about one ulp) is used and
  the stated epsilon holds up to that rounding (docs/privacy.md);
- percentiles: the PSEO method, a noisy histogram on fixed bins turned into a
  monotone CDF (never ``diffprivlib.tools.quantile``, which crashes on ties, #107).

Noise is drawn from a cryptographically secure source unless a seed is given;
seeds are for tests only: release and builder accept one only with a test ledger
(``Ledger(..., allow_seeded_noise=True)``).

Accuracy: every noisy value carries a 95% margin of error (``moe95``) that
covers the noise only, not the bias of clamping values to their bounds.
For counts and sums it follows from the mechanism's distribution exactly; for
ratios and percentiles it is estimated by re-running the mechanism on the
published (noisy) counts, a seeded parametric bootstrap that spends nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from diffprivlib.mechanisms import Snapping

from analytics import noise

Seed = int | None

#: Below about this many students a figure is rough whatever the noise.
SMALL_CELL_STUDENTS = 30
#: A rate whose 95% margin of error exceeds this many points is flagged.
UNRELIABLE_RATE_MOE = 0.10
#: A count whose margin of error exceeds this share of the value is flagged.
UNRELIABLE_RELATIVE_MOE = 0.5
#: A mean or percentile (an amount) whose margin of error exceeds this share of the value is flagged.
UNRELIABLE_RELATIVE_MOE_AMOUNT = 0.25
#: Draws of the seeded parametric bootstrap for ratio and percentile margins.
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 20101


def seed_for(seed: Seed, offset: int) -> Seed:
    return None if seed is None else (seed * 1_000_003 + offset) % (2**32)


# ---------------------------------------------------------------------------
# Mechanisms
# ---------------------------------------------------------------------------


def geometric_noise_counts(counts: np.ndarray, epsilon: float, sensitivity: int = 1, seed: Seed = None) -> np.ndarray:
    """Add two-sided geometric (discrete Laplace) noise of scale ``sensitivity / epsilon`` to integer counts.

    ``sensitivity`` is the L1 change of the whole vector when one student is
    added or removed: 1 for a disjoint histogram of one row per student. The
    noise comes from OpenDP's exact sampler (:func:`analytics.noise.add_discrete_laplace`);
    a seed (tests only) switches to a reproducible, non-private numpy path.
    """
    scale = float(sensitivity) / float(epsilon)
    rng = None if seed is None else noise.TestRng(int(seed))
    return noise.add_discrete_laplace(np.asarray(counts, dtype=np.int64), scale, rng=rng)


@dataclass(frozen=True)
class CountNoise:
    """Integer noise added independently to every cell of a count vector, with its exact accuracy.

    ``kind`` is ``'gaussian'`` (discrete Gaussian of scale sigma: rho-zCDP with
    rho = D2^2 / (2 sigma^2) for L2 sensitivity D2; Canonne, Kamath & Steinke 2020) or
    ``'laplace'`` (discrete Laplace of scale t: epsilon-DP with epsilon = D1 / t). Build one
    with :meth:`gaussian` or :meth:`laplace`; both sample exactly through OpenDP
    (:mod:`analytics.noise`), or reproducibly (and not privately) with a seed, for tests.

    >>> CountNoise.gaussian(rho=0.125).scale, CountNoise.laplace(epsilon=0.5).scale
    (2.0, 2.0)
    """

    kind: str
    scale: float

    def __post_init__(self) -> None:
        if self.kind not in ("gaussian", "laplace"):
            raise ValueError(f"CountNoise: kind must be 'gaussian' or 'laplace', not {self.kind!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError("CountNoise: scale must be a positive finite number")

    @classmethod
    def gaussian(cls, rho: float, l2_sensitivity: float = 1.0) -> CountNoise:
        return cls("gaussian", noise.discrete_gaussian_scale(rho, l2_sensitivity))

    @classmethod
    def laplace(cls, epsilon: float, l1_sensitivity: float = 1.0) -> CountNoise:
        return cls("laplace", noise.discrete_laplace_scale(epsilon, l1_sensitivity))

    @classmethod
    def for_histogram(
        cls, accounting: str, amount: float, max_rows_per_student: int = 1, max_per_bin: int | None = None
    ) -> CountNoise:
        """The noise of a histogram to which a student adds at most k = ``max_rows_per_student`` rows in all
        and c = ``max_per_bin`` (default k) in any one bin, as :func:`analytics.exact.histogram` bounds them.

        ``accounting`` is the lineage's: ``'zcdp'`` (``amount`` is rho) gives the discrete Gaussian
        of L2 sensitivity D2 = :func:`analytics.exact.histogram_l2_sensitivity` (k, c), sqrt(k) when
        c = 1: the noise is independent per bin, so the Renyi divergence between neighbours is the
        sum over the bins a student changes, by integers x_b, of at most alpha x_b^2 / (2 sigma^2)
        (Canonne, Kamath & Steinke 2020, Prop. 5), hence rho = D2^2 / (2 sigma^2). ``'epsilon'``
        (``amount`` is epsilon) gives the discrete Laplace of L1 sensitivity k. Raises ValueError
        for another accounting, an amount that is not positive, or bounds that are not whole
        numbers with 1 <= c <= k.

        >>> CountNoise.for_histogram("zcdp", 0.5, 4, 1).scale, CountNoise.for_histogram("epsilon", 0.5, 4).scale
        (2.0, 8.0)
        """
        from analytics.exact import histogram_l2_sensitivity

        k = int(max_rows_per_student)
        c = k if max_per_bin is None else int(max_per_bin)
        if k < 1 or k != max_rows_per_student or (max_per_bin is not None and c != max_per_bin) or not 1 <= c <= k:
            raise ValueError(
                f"a histogram's bounds must be whole numbers with 1 <= rows per bin ({max_per_bin!r}) <= "
                f"rows per student ({max_rows_per_student!r})"
            )
        if accounting == "zcdp":
            return cls.gaussian(amount, histogram_l2_sensitivity(k, c))
        if accounting == "epsilon":
            return cls.laplace(amount, k)
        raise ValueError(f"accounting must be 'epsilon' or 'zcdp', not {accounting!r}")

    @classmethod
    def from_record(cls, record: dict[str, object]) -> CountNoise:
        """Rebuild the noise of a release table from its manifest record (:meth:`record`)."""
        return cls(str(record["kind"]), float(record["scale"]))  # type: ignore[arg-type]

    def record(self) -> dict[str, object]:
        """What a release manifest states about this noise: kind, scale, variance and 95% margin per cell."""
        return {"kind": self.kind, "scale": self.scale, "variance": self.variance, "moe95_per_cell": self.moe95}

    @property
    def variance(self) -> float:
        """Exact variance of one cell's noise."""
        if self.kind == "gaussian":
            return noise.discrete_gaussian_variance(self.scale)
        return noise.discrete_laplace_variance(self.scale)

    @property
    def moe95(self) -> float:
        """Exact 95% margin of one cell's noise (counts)."""
        if self.kind == "gaussian":
            return noise.discrete_gaussian_moe(self.scale)
        return noise.discrete_laplace_moe(self.scale)

    def add(self, counts: np.ndarray, seed: Seed = None) -> np.ndarray:
        """Noisy counts (int64, same shape); a seed (tests only) makes the draw reproducible and not private."""
        rng = None if seed is None else noise.TestRng(int(seed))
        arr = np.asarray(counts, dtype=np.int64)
        if self.kind == "gaussian":
            return noise.add_discrete_gaussian(arr, self.scale, rng=rng)
        return noise.add_discrete_laplace(arr, self.scale, rng=rng)

    def bank(self, draws: int, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
        """Seeded draws of this noise for bootstrapped margins (read-only; never touches data)."""
        return _count_noise_bank(self.kind, self.scale, draws, seed)

    def summed_bank(self, cells: int, draws: int, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
        """Draws of the noise of a sum of ``cells`` independently noised counts (read-only).

        Resamples a large bank of the mechanism's own draws (a seeded choice of indices, not
        new noise), so it is cheap for any number of cells.
        """
        return _summed_bank(self.kind, self.scale, cells, draws, seed)


def as_count_noise(noise_or_epsilon: CountNoise | float, sensitivity: int = 1) -> CountNoise:
    """A :class:`CountNoise` as given, or the discrete Laplace of a pure ``epsilon`` and L1 ``sensitivity``."""
    if isinstance(noise_or_epsilon, CountNoise):
        return noise_or_epsilon
    return CountNoise.laplace(float(noise_or_epsilon), float(sensitivity))


@functools.lru_cache(maxsize=64)
def _count_noise_bank(kind: str, scale: float, draws: int, seed: int) -> np.ndarray:
    bank = CountNoise(kind, scale).add(np.zeros(draws, dtype=np.int64), seed)
    bank.flags.writeable = False
    return bank


def snapping_noise_sums(
    sums: np.ndarray, epsilon: float, sensitivity: float, lower: float, upper: float, seed: Seed = None
) -> np.ndarray:
    """Add Snapping-mechanism noise to bounded real sums, each clamped to [lower, upper]."""
    mech = Snapping(
        epsilon=epsilon, sensitivity=float(sensitivity), lower=float(lower), upper=float(upper), random_state=seed
    )
    return np.fromiter((mech.randomise(float(s)) for s in sums), dtype=np.float64, count=len(sums))


# ---------------------------------------------------------------------------
# Margins of error
# ---------------------------------------------------------------------------


def geometric_moe95(epsilon: float, sensitivity: float = 1) -> float:
    """Half-width k of the smallest interval [-k, k] holding the geometric noise with probability >= 95%.

    The noise of the two-sided geometric mechanism with alpha = exp(-epsilon /
    sensitivity) has P(|X| > k) = 2 alpha^(k+1) / (1 + alpha).

    >>> geometric_moe95(1.0)
    3.0
    >>> geometric_moe95(0.1)
    30.0
    """
    if not (math.isfinite(epsilon) and epsilon > 0 and sensitivity > 0):
        raise ValueError("epsilon and sensitivity must be finite numbers above 0")
    alpha = math.exp(-epsilon / sensitivity)
    if alpha == 0.0:
        return 0.0
    if alpha >= 1.0:  # epsilon so small that the noise has no finite 95% range
        return math.inf
    # smallest integer k with 2 alpha^(k+1) / (1 + alpha) <= 0.05
    k = math.log(0.05 * (1 + alpha) / 2) / math.log(alpha) - 1
    return float(max(0, math.ceil(k - 1e-9)))


def laplace_moe95(scale: float) -> float:
    """95% half-width of Laplace noise of scale ``b``: b * ln(20), about 3b.

    >>> round(laplace_moe95(2.0), 2)
    5.99
    """
    return scale * math.log(20.0)


def snapping_moe95(epsilon: float, sensitivity: float, lower: float, upper: float) -> float:
    """95% half-width of the Snapping mechanism's error (Laplace plus rounding to its grid).

    The output is rounded to a multiple of Lambda, the power of two at or above
    the Laplace scale, so the error is Laplace(b) plus a rounding error spread
    over [-Lambda/2, Lambda/2]; the quantile of their sum is found numerically.
    """
    mech = Snapping(epsilon=epsilon, sensitivity=float(sensitivity), lower=float(lower), upper=float(upper))
    scale = 1.0 / mech.effective_epsilon()  # in units of the sensitivity
    lam = mech._get_nearest_power_of_2(scale)  # the grid the mechanism rounds to (a private helper)
    # P(|L + U| <= t) for L ~ Laplace(scale), U ~ Uniform(-lam/2, lam/2): integrate over U.
    u = np.linspace(-lam / 2, lam / 2, 401)

    def coverage(t: float) -> float:
        hi, lo = t - u, -t - u
        cdf_hi = np.where(hi >= 0, 1 - 0.5 * np.exp(-hi / scale), 0.5 * np.exp(hi / scale))
        cdf_lo = np.where(lo >= 0, 1 - 0.5 * np.exp(-lo / scale), 0.5 * np.exp(lo / scale))
        return float(np.mean(cdf_hi - cdf_lo))

    lo_t, hi_t = 0.0, 20 * scale + lam
    for _ in range(60):
        mid = (lo_t + hi_t) / 2
        lo_t, hi_t = (mid, hi_t) if coverage(mid) < 0.95 else (lo_t, mid)
    return hi_t * sensitivity


def noise_bank(epsilon: float, sensitivity: int, draws: int, seed: int) -> np.ndarray:
    """Seeded draws of the geometric mechanism's noise distribution, for the bootstrap of margins.

    The bank of :meth:`CountNoise.bank` for the discrete Laplace of ``epsilon`` and L1
    ``sensitivity``: cached and read-only; it only estimates margins of error from published
    values, it never touches data, so its seeded (non-private) draws are fine.
    """
    return CountNoise.laplace(epsilon, sensitivity).bank(draws, seed)


@functools.lru_cache(maxsize=64)
def snapping_noise_bank(
    epsilon: float, sensitivity: float, lower: float, upper: float, draws: int, seed: int
) -> np.ndarray:
    """Seeded draws of the Snapping mechanism's error, for the bootstrap of means.

    Drawn at the middle of [lower, upper], where the mechanism's output clamp
    does not cut the noise.
    """
    middle = (lower + upper) / 2
    bank = snapping_noise_sums(np.full(draws, middle), epsilon, sensitivity, lower, upper, seed) - middle
    bank.flags.writeable = False
    return bank


@functools.lru_cache(maxsize=256)
def _summed_bank(kind: str, scale: float, cells: int, draws: int, seed: int) -> np.ndarray:
    bank = _count_noise_bank(kind, scale, 20_000, seed)
    if cells == 1:
        return bank[:draws]
    idx = np.random.default_rng(seed + cells).integers(0, len(bank), size=(draws, cells))
    sums = bank[idx].sum(axis=1)
    sums.flags.writeable = False
    return sums


def summed_count_moe95(
    epsilon: CountNoise | float, sensitivity: int = 1, cells: int = 1, seed: int = BOOTSTRAP_SEED
) -> float:
    """95% margin of error of a total that sums ``cells`` noisy counts (exact for one cell).

    ``epsilon`` is the counts' :class:`CountNoise`, or a pure epsilon (discrete Laplace of L1
    ``sensitivity``).
    """
    mech = as_count_noise(epsilon, sensitivity)
    if cells == 1:
        return mech.moe95 if isinstance(epsilon, CountNoise) else geometric_moe95(epsilon, sensitivity)
    sums = mech.summed_bank(cells, BOOTSTRAP_DRAWS * 2, seed)
    return float(np.quantile(np.abs(sums), 0.95))


def ratio_moe95(
    numerator: np.ndarray,
    other: np.ndarray,
    epsilon: CountNoise | float,
    sensitivity: int = 1,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
    cells: int = 1,
) -> np.ndarray:
    """95% margin of error of rate = numerator / (numerator + other), both noisy counts.

    ``epsilon`` is the counts' :class:`CountNoise`, or a pure epsilon (discrete Laplace of L1
    ``sensitivity``).

    A parametric bootstrap on the published counts: re-noise them many times
    with the same mechanism and take the 95th percentile of the rate's change.
    It uses only published values, so it spends no privacy. When each count is
    a total of ``cells`` noisy cells, the simulated noise is summed likewise.
    """
    bank = as_count_noise(epsilon, sensitivity).summed_bank(cells, 2 * draws, seed)
    return bootstrap_rate_moe95(numerator, other, bank[:draws], bank[draws:])


def bootstrap_rate_moe95(
    numerator: np.ndarray, other: np.ndarray, numerator_noise: np.ndarray, other_noise: np.ndarray
) -> np.ndarray:
    """The bootstrap core of every rate margin: re-noise the published parts and read the 95th percentile.

    ``numerator_noise`` and ``other_noise`` are draws (one per simulation) of the
    noise on each part. Counts are floored at 0 as in publication; an undefined
    rate (published or simulated) counts as a total miss, so its margin is 1.
    """
    num = np.clip(np.asarray(numerator, dtype=float), 0, None)
    oth = np.clip(np.asarray(other, dtype=float), 0, None)
    if num.size > 1:
        # Published counts repeat (small cells above all): simulate each distinct pair once.
        pairs, inverse = np.unique(np.column_stack([num, oth]), axis=0, return_inverse=True)
        if len(pairs) < num.size:
            moe = bootstrap_rate_moe95(pairs[:, 0], pairs[:, 1], numerator_noise, other_noise)
            return moe[inverse.reshape(-1)]
    # The cells x draws arrays in single precision: six times faster, and a rate's margin moves by < 1e-7.
    base = rate_from_counts(num, oth).astype(np.float32)[:, None]
    num, oth = num.astype(np.float32)[:, None], oth.astype(np.float32)[:, None]
    sim_num = np.clip(num + np.asarray(numerator_noise, dtype=np.float32)[None, :], 0, None)
    sim_den = sim_num + np.clip(oth + np.asarray(other_noise, dtype=np.float32)[None, :], 0, None)
    sim = np.divide(sim_num, sim_den, out=np.full_like(sim_num, np.nan), where=sim_den > 0)
    dev = np.abs(sim - base)
    dev = np.where(np.isnan(dev), np.float32(1.0), dev)
    return np.minimum(np.quantile(dev, 0.95, axis=1), 1.0).astype(float)


def rate_from_counts(numerator: np.ndarray, other: np.ndarray) -> np.ndarray:
    """numerator / (numerator + other) after clamping noisy counts at 0; NaN when both are 0.

    >>> rate_from_counts(np.array([3, 0]), np.array([1, 0])).tolist()
    [0.75, nan]
    """
    num = np.clip(np.asarray(numerator, dtype=float), 0, None)
    den = num + np.clip(np.asarray(other, dtype=float), 0, None)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def expected_moe95(
    kind: str,
    epsilon: CountNoise | float,
    n_students: int,
    rate: float = 0.5,
    lower: float = 0.0,
    upper: float = 1.0,
    max_cells_per_student: int = 1,
) -> float:
    """The 95% margin of error a query would get, before anything is spent.

    ``kind`` is 'count', 'rate' (in rate units, 0-1) or 'mean' (of values in
    [lower, upper], assuming a cell mean at the middle of the range). Lets the
    budget be chosen from utility: try epsilons until the margin is acceptable.
    For a count or a rate, ``epsilon`` may instead be the :class:`CountNoise` of the
    table (e.g. a release's discrete Gaussian, rebuilt by :meth:`CountNoise.from_record`).

    >>> expected_moe95("count", 1.0, 100)
    3.0
    >>> round(expected_moe95("rate", 1.0, 100, rate=0.5), 3)
    0.02
    """
    if kind == "count":
        if isinstance(epsilon, CountNoise):
            return epsilon.moe95
        return geometric_moe95(epsilon, max_cells_per_student)
    if kind == "rate":
        yes = np.array([round(n_students * rate)])
        return float(ratio_moe95(yes, np.array([n_students]) - yes, epsilon)[0])
    if isinstance(epsilon, CountNoise):
        raise ValueError("the margin of a mean needs a pure epsilon (a count and a Snapping sum), not count noise")
    if kind == "mean":
        n = np.array([n_students])
        middle = (lower + upper) / 2
        draws = BOOTSTRAP_DRAWS
        sens = max(abs(lower), abs(upper))
        count_noise = noise_bank(epsilon / 2, 1, draws, BOOTSTRAP_SEED)
        sum_noise = snapping_noise_bank(
            epsilon / 2, sens, min(0.0, lower) * 1e7, max(0.0, upper) * 1e7, draws, BOOTSTRAP_SEED + 1
        )
        sim_n = np.clip(n + count_noise, 1, None)
        sim = np.clip((middle * n + sum_noise) / sim_n, lower, upper)
        return float(np.quantile(np.abs(sim - middle), 0.95))
    raise ValueError(f"kind must be 'count', 'rate' or 'mean', not {kind!r}")


# ---------------------------------------------------------------------------
# Reliability
# ---------------------------------------------------------------------------


def reliability(n_students: np.ndarray, moe95: np.ndarray, value: np.ndarray, kind: str) -> tuple[list[str], list[str]]:
    """Flag each cell 'reliable', 'rough' or 'unreliable' with a reason in plain words.

    ``n_students`` is the (noisy) number of students behind the cell; ``kind`` is
    'count', 'rate' or 'amount' and sets what "a large margin" means.
    """
    flags: list[str] = []
    reasons: list[str] = []
    for n, moe, v in zip(
        np.asarray(n_students, float), np.asarray(moe95, float), np.asarray(value, float), strict=True
    ):
        if not np.isfinite(v):
            flags.append("unreliable")
            reasons.append("no estimate: the noisy count of students is zero")
            continue
        if kind == "rate":
            too_wide = moe > UNRELIABLE_RATE_MOE
            wide_words = f"margin of error above {UNRELIABLE_RATE_MOE * 100:.0f} percentage points"
        else:
            limit = UNRELIABLE_RELATIVE_MOE_AMOUNT if kind == "amount" else UNRELIABLE_RELATIVE_MOE
            too_wide = moe > limit * abs(v)
            wide_words = f"margin of error above {limit * 100:.0f}% of the value"
        if kind == "rate" and v in (0, 1):  # a floor, not an estimate: a noisy count fell to zero or below
            flags.append("unreliable")
            reasons.append(
                "shown as 0% because the noisy count fell to zero or below: the rate is small, not measured as zero; "
                "do not compare"
                if v == 0
                else "shown as 100% because the noisy count of the rest fell to zero or below: the rate is high, not "
                "measured as 100%; do not compare"
            )
            continue
        if n < SMALL_CELL_STUDENTS and too_wide:
            flags.append("unreliable")
            reasons.append(f"fewer than about {SMALL_CELL_STUDENTS} students and {wide_words}: do not compare")
        elif too_wide:
            flags.append("unreliable")
            reasons.append(f"{wide_words}: do not compare")
        elif n < SMALL_CELL_STUDENTS:
            flags.append("rough")
            reasons.append(f"fewer than about {SMALL_CELL_STUDENTS} students: treat as rough")
        else:
            flags.append("reliable")
            reasons.append("")
    return flags, reasons


# ---------------------------------------------------------------------------
# Percentiles by the PSEO method
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Fixed, public histogram bins over ``edges`` (ascending).

    With ``open_top`` False, values above the last edge are clamped into the last
    bin. With ``open_top`` True there is one more, open bin ``[edges[-1], inf)``
    (top-coding, as in Census PSEO): a percentile that lands there is published
    as ">= edges[-1]", never as a number inside it.
    """

    edges: tuple[float, ...]
    open_top: bool = False

    @property
    def n_bins(self) -> int:
        return len(self.edges) - (0 if self.open_top else 1)

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (clamped into the first and last bin)."""
        idx = np.searchsorted(np.asarray(self.edges), np.asarray(values, float), side="right") - 1
        return np.clip(idx, 0, self.n_bins - 1)


def _percentile_bins(h: np.ndarray, quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = h.sum(axis=1)
    cdf = np.cumsum(h, axis=1)
    bins = np.empty((h.shape[0], len(quantiles)), dtype=np.int64)
    for j, q in enumerate(quantiles):
        target = q * total
        bins[:, j] = np.clip((cdf < target[:, None]).sum(axis=1), 0, h.shape[1] - 1)  # row-wise searchsorted
    return bins, cdf, total


def percentiles_from_histogram(
    hist: np.ndarray, edges: Sequence[float], quantiles: Sequence[float], open_top: bool = False
) -> np.ndarray:
    """Read percentiles off a (noisy) histogram, PSEO style.

    Negative counts are set to 0, the cumulative sum is a monotone CDF, and each
    percentile is interpolated linearly inside its bin. ``hist`` is (cells, bins);
    the result is (cells, len(quantiles)); NaN where a cell's total is 0. With
    ``open_top`` the last bin is ``[edges[-1], inf)`` and a percentile in it reads
    as ``edges[-1]``, a lower bound (see :func:`percentiles_top_coded`).

    >>> percentiles_from_histogram(np.array([[10, 10]]), [0, 10, 20], [0.5]).tolist()
    [[10.0]]
    >>> percentiles_from_histogram(np.array([[40, 60]]), [0, 100], [0.25, 0.5], open_top=True).tolist()
    [[62.5, 100.0]]
    """
    h = np.clip(np.atleast_2d(np.asarray(hist, float)), 0, None)
    e = np.asarray(edges, float)
    if open_top:
        e = np.append(e, e[-1])  # the open bin has no width: a percentile there reads as its lower edge
    bins, cdf, total = _percentile_bins(h, quantiles)
    out = np.full((h.shape[0], len(quantiles)), np.nan)
    rows = np.arange(h.shape[0])
    for j, q in enumerate(quantiles):
        target = q * total
        b = bins[:, j]
        below = np.where(b > 0, cdf[rows, np.maximum(b - 1, 0)], 0.0)
        in_bin = h[rows, b]
        frac = np.divide(target - below, in_bin, out=np.zeros_like(target), where=in_bin > 0)
        val = e[b] + np.clip(frac, 0, 1) * (e[b + 1] - e[b])
        out[:, j] = np.where(total > 0, val, np.nan)
    return out


def percentiles_top_coded(hist: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """True where a percentile lands in the last (open, top-coded) bin of ``hist`` (cells, bins).

    >>> percentiles_top_coded(np.array([[40, 60]]), [0.25, 0.5, 0.75]).tolist()
    [[False, True, True]]
    """
    h = np.clip(np.atleast_2d(np.asarray(hist, float)), 0, None)
    bins, _, total = _percentile_bins(h, quantiles)
    return (bins == h.shape[1] - 1) & (total[:, None] > 0)


def percentile_moe95(
    noisy_hist: np.ndarray,
    edges: Sequence[float],
    quantiles: Sequence[float],
    epsilon: CountNoise | float,
    draws: int = 500,
    seed: int = BOOTSTRAP_SEED,
    sensitivity: int = 1,
    open_top: bool = False,
) -> np.ndarray:
    """95% margin of error of histogram percentiles by the seeded parametric bootstrap.

    ``epsilon`` is the histogram's :class:`CountNoise`, or a pure epsilon (discrete Laplace of L1
    ``sensitivity``).

    With ``open_top``, a top-coded percentile's margin covers only how far below
    the top edge the noise could move it (the value above it is not estimated).
    """
    h = np.clip(np.atleast_2d(np.asarray(noisy_hist, float)), 0, None)
    base = percentiles_from_histogram(h, edges, quantiles, open_top)
    cells, bins = h.shape
    bank = as_count_noise(epsilon, sensitivity).bank(draws * bins, seed).reshape(draws, bins)
    out = np.empty((cells, len(quantiles)))
    chunk = max(1, 200_000 // (draws * bins))  # cells per vectorised step, to bound memory
    for start in range(0, cells, chunk):
        part = h[start : start + chunk]
        sims = (part[:, None, :] + bank[None, :, :]).reshape(-1, bins)  # (cells*draws, bins)
        pct = percentiles_from_histogram(sims, edges, quantiles, open_top).reshape(len(part), draws, -1)
        devs = np.abs(pct - base[start : start + chunk, None, :])
        devs = np.where(np.isnan(devs), float(edges[-1] - edges[0]), devs)
        out[start : start + chunk] = np.quantile(devs, 0.95, axis=1)
    return out
