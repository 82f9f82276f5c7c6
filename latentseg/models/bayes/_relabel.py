"""Label switching: relabel MCMC draws of a mixture to a reference, and find chains in other modes.

A mixture's likelihood does not change when the segments are permuted, so the posterior has k!
symmetric copies and a chain may visit several (or two chains may sit in different copies).
Summaries of per-segment quantities are meaningless until every draw uses the same labels.

The method (documented in ``docs/priors.md``):

1. The reference is the EM maximum-likelihood solution the chains started from.
2. For every draw, the cost of giving draw component ``i`` the reference label ``l`` is a
   squared distance between their parameters (for Gaussian mixtures the means in column-sd units
   plus the log sds; for latent class models the item-response probabilities); the permutation
   of least total cost is found with the Hungarian algorithm
   (:func:`scipy.optimize.linear_sum_assignment`), independently for each draw.
3. A second pass repeats step 2 against the posterior mean of the relabelled draws (a pivot
   refinement: it matters only when the EM solution and the posterior disagree noticeably).

Stephens' (2000) algorithm would minimise a Kullback-Leibler loss on the membership
probabilities instead; with segments that are well identified by their parameters (what we fit)
the two agree, and the parameter-based match is cheaper (no n x k matrix per draw).

Chains in different modes: after relabelling, two chains whose per-chain means of the weights or
of the segment locations differ by more than 4 pooled within-chain posterior sds (and by more
than a floor of 0.01 in a weight, 0.05 in a standardised location) are in different modes.
Chains are grouped; the caller summarises one group and reports the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["hungarian_permutations", "apply_permutations", "relabel_draws", "chain_modes"]


def hungarian_permutations(cost: np.ndarray) -> np.ndarray:
    """Least-cost label assignment for each draw.

    Parameters
    ----------
    cost : ndarray, shape (S, k, k)
        ``cost[s, i, l]``: cost of giving draw ``s``'s component ``i`` the reference label ``l``.

    Returns
    -------
    ndarray of int, shape (S, k)
        ``perm[s, l]`` is the component of draw ``s`` that takes label ``l``; apply it with
        ``values[s, perm[s]]``.

    Examples
    --------
    >>> c = np.array([[[5.0, 0.0], [0.0, 5.0]]])  # component 0 looks like reference label 1
    >>> hungarian_permutations(c).tolist()
    [[1, 0]]
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=float)
    S, k, _ = cost.shape
    if 1 < k <= BRUTE_FORCE_K:
        return _brute_force_permutations(cost)
    perms = np.empty((S, k), dtype=np.intp)
    ident = np.arange(k)
    for s in range(S):
        c = cost[s]
        # fast path: the identity is optimal when every component is closest to its own label
        if np.array_equal(c.argmin(axis=1), ident) and np.array_equal(c.argmin(axis=0), ident):
            perms[s] = ident
            continue
        rows, cols = linear_sum_assignment(c)
        perms[s, cols] = rows
    return perms


#: up to this many segments the least-cost permutation is found by trying all k! of them at once
#: (vectorised; 120 for k = 5), which is faster than a Hungarian call per draw in Python
BRUTE_FORCE_K = 5


def _brute_force_permutations(cost: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """:func:`hungarian_permutations` by enumerating every permutation (small k): the same
    least-cost assignment (ties, of probability zero for continuous costs, aside)."""
    import itertools

    S, k, _ = cost.shape
    all_perms = np.array(list(itertools.permutations(range(k))), dtype=np.intp)  # (P, k): perm[l] = component
    labels = np.arange(k)
    out = np.empty((S, k), dtype=np.intp)
    for a in range(0, S, chunk):
        c = cost[a : a + chunk]
        total = c[:, all_perms, labels].sum(axis=2)  # (s, P): sum_l cost[s, perm[l], l]
        out[a : a + chunk] = all_perms[total.argmin(axis=1)]
    return out


def apply_permutations(
    params: Mapping[str, np.ndarray], perms: np.ndarray, segment_keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Reorder the segment axis (axis 1) of draws (S, k, ...) by ``perms`` (S, k).

    Parameters not in ``segment_keys`` are returned unchanged.

    Examples
    --------
    >>> w = np.array([[0.2, 0.8]])
    >>> apply_permutations({"weights": w}, np.array([[1, 0]]), ["weights"])["weights"].tolist()
    [[0.8, 0.2]]
    """
    rows = np.arange(perms.shape[0])[:, None]
    return {key: (val[rows, perms] if key in segment_keys else val) for key, val in params.items()}


def relabel_draws(
    params: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    cost_fn: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], np.ndarray],
    segment_keys: Sequence[str],
    refine: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Relabel draws (chain, draw, k, ...) to a reference solution (k, ...).

    Parameters
    ----------
    params : mapping of str to ndarray, each shaped (C, S, ...)
        Draws; the segment axis of the ``segment_keys`` arrays is axis 2.
    reference : mapping of str to ndarray, shaped (k, ...)
    cost_fn : callable
        ``cost_fn(draws, reference) -> (S, k, k)`` on flattened draws (S, k, ...).
    segment_keys : sequence of str
    refine : bool, default True
        A second pass against the posterior mean of the relabelled draws.

    Returns
    -------
    relabelled : dict
        Same shapes as ``params``.
    perms : ndarray of int, shape (C, S, k)
        The permutation applied to each draw (composed over both passes).
    """
    first = next(iter(params.values()))
    C, S = first.shape[:2]
    flat = {key: val.reshape((C * S,) + val.shape[2:]) for key, val in params.items()}
    perms = hungarian_permutations(cost_fn(flat, reference))
    flat = apply_permutations(flat, perms, segment_keys)
    if refine:
        centre = {key: val.mean(axis=0) for key, val in flat.items() if key in segment_keys}
        second = hungarian_permutations(cost_fn(flat, centre))
        if not np.array_equal(second, np.broadcast_to(np.arange(second.shape[1]), second.shape)):
            flat = apply_permutations(flat, second, segment_keys)
            perms = np.take_along_axis(perms, second, axis=1)
    out = {key: val.reshape((C, S) + val.shape[1:]) for key, val in flat.items()}
    return out, perms.reshape(C, S, -1)


def chain_modes(
    weights: np.ndarray,
    locations: np.ndarray,
    *,
    n_sd: float = 4.0,
    weight_floor: float = 0.01,
    location_floor: float = 0.05,
) -> list[list[int]]:
    """Group chains that agree on the mode (after relabelling).

    Parameters
    ----------
    weights : ndarray, shape (C, S, k)
    locations : ndarray, shape (C, S, k, m)
        Per-segment location features on a common scale (standardised means, probabilities).
    n_sd : float, default 4.0
        Two chains disagree when a per-chain mean differs by more than ``n_sd`` pooled
        within-chain sds (and by more than the floor).
    weight_floor, location_floor : float

    Returns
    -------
    list of list of int
        Groups of chain indices (0-based), in order of their first chain.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> w = np.stack([np.tile([0.5, 0.5], (100, 1)), np.tile([0.9, 0.1], (100, 1))])
    >>> w = w + 0.01 * rng.standard_normal(w.shape)
    >>> chain_modes(w, np.zeros((2, 100, 2, 1)))
    [[0], [1]]
    """
    C = weights.shape[0]
    feats = []
    for arr, floor in ((weights, weight_floor), (locations.reshape(locations.shape[:3] + (-1,)), location_floor)):
        m = arr.reshape(C, arr.shape[1], -1)
        feats.append((m.mean(axis=1), np.sqrt(m.var(axis=1).mean(axis=0)), floor))

    def agree(a: int, b: int) -> bool:
        for means, sd, floor in feats:
            tol = np.maximum(n_sd * sd, floor)
            if np.any(np.abs(means[a] - means[b]) > tol):
                return False
        return True

    groups: list[list[int]] = []
    for c in range(C):
        for g in groups:
            if agree(g[0], c):
                g.append(c)
                break
        else:
            groups.append([c])
    return groups
