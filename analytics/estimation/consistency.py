"""Consistent estimates from noisy counts measured at several levels of a hierarchy.

The setting (Hay, Rastogi, Miklau & Suciu 2010, "Boosting the Accuracy of Differentially
Private Histograms Through Consistency"; the Census Bureau's 2020 TopDown post-processing):
the same students are counted at several nested levels, e.g. school x cohort, district x
cohort, county x cohort and state x cohort, each count with independent zero-mean noise of
known variance. Every level is a sum of the one below, but the noisy counts do not add up.
The best linear unbiased estimate (BLUE, Gauss-Markov) of the finest cells x from all the
measurements y = A x + e, Var(e) = V, is the weighted least-squares solution

    x_hat = (A' V^-1 A)^-1 A' V^-1 y,        Var(x_hat) = (A' V^-1 A)^-1,

and every published aggregate B x is estimated by B x_hat, so the published levels add up
exactly and each gains from the others.

Two solvers:

- :func:`tree_wls`, the fast one, for hierarchies that are trees (every node has one parent).
  Each node carries a vector of ``k`` values (for example its 11 cohorts), and a measurement
  at a node may be any linear map of that vector (the identity for single cohorts, a row of
  ones for cohorts pooled), so "pooled = sum of cohorts" is part of the same solve. It is the
  two-pass algorithm of Hay et al. 2010 generalised to unequal variances and vector nodes,
  i.e. a Kalman smoother on the tree: an upward pass combines each node's own measurements
  with the sum of its children's, a downward pass shares out each parent's final estimate
  among its children in proportion to their variances. Its output equals the GLS formula
  above (tests check it against :func:`gls`), in O(nodes * k^3).
- :func:`gls`, a direct sparse solve of the normal equations (scipy.sparse), for any linear
  measurement design of moderate size; it returns the covariance of requested aggregates.

Unbiasedness needs only zero-mean noise (discrete Laplace and discrete Gaussian are
symmetric); the covariance needs the noise variances, which the mechanisms state exactly.
The estimates are real numbers that may be negative or fractional: rounding or clamping them
would bias them (see :mod:`analytics.estimation.rates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Hierarchy", "LevelMeasurement", "TreeEstimate", "gls", "tree_wls"]


@dataclass(frozen=True)
class Hierarchy:
    """A tree (or forest) of areas given by levels, top first.

    ``keys[i]`` holds the node keys of level ``i``; ``parent[i]`` gives, for each node of
    level ``i``, the position of its parent in level ``i - 1`` (``parent[0]`` is empty).
    Build one with :meth:`from_frame`.
    """

    levels: tuple[str, ...]
    keys: tuple[np.ndarray, ...]
    parent: tuple[np.ndarray, ...]

    @classmethod
    def from_frame(cls, leaves: pd.DataFrame, levels: Sequence[str]) -> Hierarchy:
        """Hierarchy from one row per leaf with a column per level (top first), e.g. county, district, school.

        Nodes of a level are the distinct values of its column, sorted. Raises ValueError when
        a column is missing, a value is null, a leaf repeats, or a node has two parents.

        >>> h = Hierarchy.from_frame(pd.DataFrame({"d": ["a", "a", "b"], "s": [1, 2, 3]}), ["d", "s"])
        >>> h.parent[1].tolist()
        [0, 0, 1]
        """
        levels = tuple(levels)
        if not levels:
            raise ValueError("Hierarchy: give at least one level")
        missing = [c for c in levels if c not in leaves.columns]
        if missing:
            raise ValueError(f"Hierarchy: leaf table has no column {missing[0]!r}")
        frame = leaves[list(levels)]
        if frame.isna().any().any():
            bad = frame.columns[frame.isna().any()][0]
            raise ValueError(f"Hierarchy: column {bad!r} has missing values")
        if frame[levels[-1]].duplicated().any():
            raise ValueError(f"Hierarchy: column {levels[-1]!r} repeats a leaf")
        keys: list[np.ndarray] = []
        parents: list[np.ndarray] = []
        for i, level in enumerate(levels):
            pairs = frame[list(levels[: i + 1])].drop_duplicates()
            if pairs[level].duplicated().any():
                raise ValueError(f"Hierarchy: a value of column {level!r} has two parents in {levels[i - 1]!r}")
            pairs = pairs.sort_values(level)
            keys.append(pairs[level].to_numpy())
            if i == 0:
                parents.append(np.zeros(0, dtype=np.int64))
            else:
                pos = pd.Index(keys[i - 1]).get_indexer(pairs[levels[i - 1]])
                parents.append(pos.astype(np.int64))
        return cls(levels, tuple(keys), tuple(parents))

    def size(self, level: str) -> int:
        return len(self.keys[self.index(level)])

    def index(self, level: str) -> int:
        if level not in self.levels:
            raise ValueError(f"Hierarchy: no level {level!r}; levels are {list(self.levels)}")
        return self.levels.index(level)

    def leaf_map(self, level: str) -> sp.csr_matrix:
        """Sparse 0/1 matrix (nodes of ``level`` x leaves): row i sums the leaves under node i."""
        i = self.index(level)
        n_leaves = len(self.keys[-1])
        pos = np.arange(n_leaves)
        for j in range(len(self.levels) - 1, i, -1):
            pos = self.parent[j][pos]
        return sp.csr_matrix((np.ones(n_leaves), (pos, np.arange(n_leaves))), shape=(len(self.keys[i]), n_leaves))


@dataclass(frozen=True)
class LevelMeasurement:
    """Noisy measurements of every node of one level through the same linear map.

    For node ``j`` of ``level`` with true vector x_j (length k), ``values[j] = map @ x_j + noise``
    with independent noise of variance ``variances[j]``. Shapes: ``map`` (r, k); ``values``
    (n_nodes, r); ``variances`` broadcastable to (n_nodes, r), all positive and finite.
    ``map`` defaults to the identity (each of the k values measured once).
    """

    level: str
    values: np.ndarray
    variances: np.ndarray | float
    map: np.ndarray | None = None


@dataclass(frozen=True)
class TreeEstimate:
    """Consistent estimates for every node: ``estimate[i]`` (n_i, k), ``covariance[i]`` (n_i, k, k) by level i."""

    hierarchy: Hierarchy
    estimate: tuple[np.ndarray, ...]
    covariance: tuple[np.ndarray, ...]

    def values(self, level: str) -> np.ndarray:
        """Estimates of the nodes of ``level``, shape (n_nodes, k)."""
        return self.estimate[self.hierarchy.index(level)]

    def variances(self, level: str) -> np.ndarray:
        """Variances of those estimates, shape (n_nodes, k)."""
        return np.diagonal(self.covariance[self.hierarchy.index(level)], axis1=1, axis2=2).copy()

    def combined(self, level: str, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimate and variance of w' x_j for every node j of ``level`` (e.g. weights of ones: pooled cohorts)."""
        w = np.asarray(weights, dtype=float)
        i = self.hierarchy.index(level)
        return self.estimate[i] @ w, np.einsum("a,nab,b->n", w, self.covariance[i], w)


def _information(h: Hierarchy, measurements: Sequence[LevelMeasurement], k: int) -> tuple[list, list]:
    info = [np.zeros((len(keys), k, k)) for keys in h.keys]
    score = [np.zeros((len(keys), k)) for keys in h.keys]
    for m in measurements:
        i = h.index(m.level)
        n = len(h.keys[i])
        mat = np.eye(k) if m.map is None else np.asarray(m.map, dtype=float)
        if mat.ndim != 2 or mat.shape[1] != k:
            raise ValueError(f"tree_wls: the map of level {m.level!r} must have {k} columns")
        values = np.asarray(m.values, dtype=float)
        if values.shape != (n, mat.shape[0]):
            raise ValueError(f"tree_wls: values of level {m.level!r} must have shape {(n, mat.shape[0])}")
        var = np.broadcast_to(np.asarray(m.variances, dtype=float), values.shape)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"tree_wls: values of level {m.level!r} must be finite")
        if not (np.all(var > 0) and np.all(np.isfinite(var))):
            raise ValueError(f"tree_wls: variances of level {m.level!r} must be positive and finite")
        weights = 1.0 / var
        info[i] += np.einsum("ra,nr,rb->nab", mat, weights, mat)
        score[i] += np.einsum("ra,nr->na", mat, weights * values)
    return info, score


def _inv_pd(mats: np.ndarray, what: str) -> np.ndarray:
    try:
        chol = np.linalg.cholesky(mats)
    except np.linalg.LinAlgError:
        raise ValueError(f"tree_wls: {what} is not identified by the measurements given") from None
    eye = np.broadcast_to(np.eye(mats.shape[-1]), mats.shape)
    lower_inv = np.linalg.solve(chol, eye)
    return np.swapaxes(lower_inv, -1, -2) @ lower_inv


def tree_wls(hierarchy: Hierarchy, measurements: Sequence[LevelMeasurement], k: int = 1) -> TreeEstimate:
    """BLUE of every node's k values from noisy measurements at any levels of a tree, with covariances.

    Every leaf's k values must be identified by the measurements at the leaf level (for
    example measured directly); higher levels are optional and may be measured through any
    map (e.g. pooled over the k cohorts). Returns estimates that add up exactly: each node's
    estimate is the sum of its children's. Cost O(nodes * k^3).
    Raises ValueError for a measurement of the wrong shape, a non-positive variance, or
    leaves that the leaf-level measurements do not identify.

    >>> h = Hierarchy.from_frame(pd.DataFrame({"top": ["T", "T"], "leaf": ["a", "b"]}), ["top", "leaf"])
    >>> est = tree_wls(h, [LevelMeasurement("leaf", np.array([[10.0], [20.0]]), 1.0),
    ...                    LevelMeasurement("top", np.array([[33.0]]), 1.0)])
    >>> est.values("leaf").ravel().round(9).tolist(), est.values("top").ravel().round(9).tolist()
    ([11.0, 21.0], [32.0])
    >>> est.variances("top").ravel().round(4).tolist()
    [0.6667]
    """
    h = hierarchy
    info, score = _information(h, measurements, k)
    depth = len(h.levels)
    z: list[np.ndarray] = [np.empty(0)] * depth  # upward estimate from the node's subtree
    u: list[np.ndarray] = [np.empty(0)] * depth  # its covariance
    child_sum: list[np.ndarray] = [np.empty(0)] * depth
    child_cov_inv: list[np.ndarray] = [np.empty(0)] * depth
    last = depth - 1
    u[last] = _inv_pd(info[last], f"level {h.levels[last]!r}")
    z[last] = np.einsum("nab,nb->na", u[last], score[last])
    for i in range(last - 1, -1, -1):
        n = len(h.keys[i])
        s = np.zeros((n, k))
        cov = np.zeros((n, k, k))
        np.add.at(s, h.parent[i + 1], z[i + 1])
        np.add.at(cov, h.parent[i + 1], u[i + 1])
        cov_inv = _inv_pd(cov, f"level {h.levels[i]!r} (a node without children)")
        u[i] = _inv_pd(info[i] + cov_inv, f"level {h.levels[i]!r}")
        z[i] = np.einsum("nab,nb->na", u[i], score[i] + np.einsum("nab,nb->na", cov_inv, s))
        child_sum[i], child_cov_inv[i] = s, cov_inv
    est: list[np.ndarray] = [np.empty(0)] * depth
    post: list[np.ndarray] = [np.empty(0)] * depth
    est[0], post[0] = z[0], u[0]
    for i in range(1, depth):
        p = h.parent[i]
        gain = u[i] @ child_cov_inv[i - 1][p]  # (n_i, k, k)
        est[i] = z[i] + np.einsum("nab,nb->na", gain, est[i - 1][p] - child_sum[i - 1][p])
        cov_i = u[i] - gain @ u[i] + gain @ post[i - 1][p] @ np.swapaxes(gain, 1, 2)
        post[i] = 0.5 * (cov_i + np.swapaxes(cov_i, 1, 2))
    return TreeEstimate(h, tuple(est), tuple(post))


def gls(
    design: sp.spmatrix | np.ndarray,
    values: np.ndarray,
    variances: np.ndarray | float,
    aggregates: sp.spmatrix | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised least squares for any linear design, by a sparse factorisation of the normal equations.

    ``design`` A (m measurements x n cells, sparse or dense), ``values`` y (m,), ``variances``
    (m,) or scalar, ``aggregates`` B (q x n). Returns (B x_hat, B (A'V^-1A)^-1 B'), shapes
    (q,) and (q, q). The covariance costs one sparse solve per aggregate: use it for moderate
    q, and :func:`tree_wls` for large trees. Raises ValueError when the shapes disagree, a
    variance is not positive, or the cells are not identified (A'V^-1A singular).

    >>> est, cov = gls(np.array([[1.0, 0], [0, 1], [1, 1]]), np.array([10.0, 20, 33]), 1.0, np.eye(2))
    >>> est.round(6).tolist(), cov.round(4).tolist()
    ([11.0, 21.0], [[0.6667, -0.3333], [-0.3333, 0.6667]])
    """
    a = sp.csr_matrix(design, dtype=float)
    b = sp.csr_matrix(aggregates, dtype=float)
    y = np.asarray(values, dtype=float)
    m, n = a.shape
    if y.shape != (m,):
        raise ValueError(f"gls: values must have shape ({m},) to match the design")
    if b.shape[1] != n:
        raise ValueError(f"gls: aggregates must have {n} columns to match the design")
    var = np.broadcast_to(np.asarray(variances, dtype=float), (m,))
    if not (np.all(var > 0) and np.all(np.isfinite(var))):
        raise ValueError("gls: variances must be positive and finite")
    w = sp.diags(1.0 / var)
    normal = (a.T @ w @ a).tocsc()
    try:
        factor = spla.splu(normal)
    except RuntimeError:
        raise ValueError("gls: the cells are not identified by the measurements given") from None
    x_hat = factor.solve(np.asarray(a.T @ (y / var)).ravel())
    rhs = b.T.toarray()
    solved = factor.solve(rhs) if rhs.size else rhs
    cov = np.asarray(b @ solved)
    if not np.all(np.isfinite(x_hat)):
        raise ValueError("gls: the cells are not identified by the measurements given")
    return np.asarray(b @ x_hat).ravel(), 0.5 * (cov + cov.T)
