"""Build a unit's 2-AFC tasks from its ranked exemplars, exactly as the human study did.

Per unit, the N*(K+1) most and least activating images are taken. On each side the N*K most extreme are the
references, cut into K bins of N consecutive ranks (bin 0 = the N most extreme); each bin is shuffled and task b
takes element b of every bin, so every task gets one image from each bin. The next N images per side are the
queries, shuffled the same way. In the hard variants the queries come instead from the N images nearest the
85th/15th (hard85) or 95th/5th (hard95) percentile of the unit's activations over the image source.
Within a task, references are ordered like the release's file map: index K-1 is the most extreme bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.api.errors import DataValidationError
from benchmark.api.types import Protocol

# query_variant -> percentile of the activation distribution, measured from the top, for the max-side queries
HARD_QUERY_PERCENTILES: dict[str, float] = {"hard85": 0.15, "hard95": 0.05}


@dataclass(frozen=True)
class UnitTasks:
    """A unit's N tasks as image ids: references (N, K) per side (column K-1 = most extreme) and queries (N,)."""

    max_references: np.ndarray
    min_references: np.ndarray
    max_queries: np.ndarray
    min_queries: np.ndarray

    @property
    def n_tasks(self) -> int:
        """N."""
        return len(self.max_queries)

    def image_ids(self) -> np.ndarray:
        """Every distinct image id the tasks use."""
        parts = (self.max_references, self.min_references, self.max_queries, self.min_queries)
        return np.unique(np.concatenate([np.ravel(p) for p in parts]))


def required_per_side(protocol: Protocol) -> int:
    """How many ranked exemplars each side needs: N*(K+1) (N*K for hard variants, whose queries come separately)."""
    n, k = protocol.n_tasks, protocol.n_references
    return n * (k + 1) if protocol.query_variant == "extreme" else n * k


def build_tasks(
    top_ids: np.ndarray,
    bottom_ids: np.ndarray,
    protocol: Protocol,
    *,
    rng: np.random.Generator,
    hard_queries: tuple[np.ndarray, np.ndarray] | None = None,
) -> UnitTasks:
    """Tasks of one unit from its ids ranked most- to least-extreme on each side (top: descending activation).

    `hard_queries` = (max-side, min-side) query ids, N each, required for the hard variants.
    """
    n, k = protocol.n_tasks, protocol.n_references
    need = required_per_side(protocol)
    top, bottom = np.asarray(top_ids), np.asarray(bottom_ids)
    for side, ids in (("most", top), ("least", bottom)):
        if len(ids) < need:
            raise DataValidationError(
                f"The protocol needs the {need} {side} activating images per unit (N={n} tasks x (K={k} references"
                f"{' + 1 query' if protocol.query_variant == 'extreme' else ''})), but only {len(ids)} were ranked. "
                f"Use an image source with at least {2 * need} images or lower n_tasks/n_references."
            )
    overlap = np.intersect1d(top[:need], bottom[:need])
    if overlap.size:
        raise DataValidationError(
            f"{overlap.size} image(s) are among both the most and the least activating exemplars of a unit "
            f"(e.g. id {overlap[0]}): the image source is too small for the protocol; use at least {2 * need} images."
        )
    max_refs, max_queries = _side(top, n, k, rng)
    min_refs, min_queries = _side(bottom, n, k, rng)
    if protocol.query_variant != "extreme":
        max_queries, min_queries = _hard_queries(hard_queries, n, protocol.query_variant, rng)
    return UnitTasks(max_refs, min_refs, max_queries, min_queries)


def _side(ranked: np.ndarray, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    bins = ranked[: n * k].reshape(k, n)  # bin j = ranks j*N .. (j+1)*N - 1
    shuffled = np.stack([rng.permutation(b) for b in bins])  # (K, N)
    references = shuffled[::-1].T  # (N, K); column K-1 = bin 0, the most extreme
    queries = rng.permutation(ranked[n * k : n * (k + 1)]) if len(ranked) >= n * (k + 1) else np.empty(0, int)
    return references, queries


def _hard_queries(
    hard_queries: tuple[np.ndarray, np.ndarray] | None, n: int, variant: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if hard_queries is None:
        raise DataValidationError(
            f"Query variant {variant!r} needs the N={n} images nearest the "
            f"{HARD_QUERY_PERCENTILES[variant]:.0%}/{1 - HARD_QUERY_PERCENTILES[variant]:.0%} activation "
            "percentiles per side; they come from a second pass over the image source."
        )
    max_q, min_q = (np.asarray(q) for q in hard_queries)
    if len(max_q) != n or len(min_q) != n:
        raise DataValidationError(f"Hard queries must be {n} per side, got {len(max_q)} and {len(min_q)}.")
    return rng.permutation(max_q), rng.permutation(min_q)


def unit_rng(seed: int, layer: str, channel: int) -> np.random.Generator:
    """A generator seeded by the run seed and the unit, so a unit's tasks do not depend on which others are scored."""
    digest = np.frombuffer(f"{layer}/{channel}".encode(), dtype=np.uint8)
    return np.random.default_rng([seed, int(channel), *digest.tolist()])
