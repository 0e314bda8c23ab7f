"""1:N search: an inverted index of quantised minutia edges, then the full matcher on a shortlist.

Every edge of a reference's edge table (length, edge angle, neighbour
direction — rotation and translation invariant) is quantised to one key; a
probe's edges vote, through the posting lists, for the references that hold the
same keys.  Votes are normalised by the reference's edge count, the best
FINGER_SEARCH_SHORTLIST references are compared with the full matcher, and the
best of those wins.  Held in memory only (references are sealed at rest); the door keeps one built from
the sealed references between attempts (`references.ReferenceIndex`), and `wipe` zeroes what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limen import thresholds
from limen.bio.finger import matcher

_D_BIN = 8.0            # px
_A_BINS = 16            # of 2π


def edge_keys(p: matcher.PreparedTemplate) -> np.ndarray:
    """The quantised edge keys of `p` (what `EdgeIndex.add` posts; computed once per reference)."""
    valid = np.isfinite(p.dist)
    d = np.floor(p.dist[valid] / _D_BIN).astype(np.int64)
    a = np.floor((p.alpha[valid] % (2 * np.pi)) / (2 * np.pi) * _A_BINS).astype(np.int64) % _A_BINS
    b = np.floor((p.beta[valid] % (2 * np.pi)) / (2 * np.pi) * _A_BINS).astype(np.int64) % _A_BINS
    return np.unique((d * _A_BINS + a) * _A_BINS + b)


@dataclass(frozen=True)
class Hit:
    key: str
    score: float


class EdgeIndex:
    """References by key (e.g. user id); `search` returns the best full-matcher scores."""

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._templates: list[matcher.PreparedTemplate] = []
        self._postings: dict[int, list[int]] = {}
        self._sizes: list[int] = []
        self._arrays: dict[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, template: matcher.PreparedTemplate, keys: np.ndarray | None = None) -> None:
        """Index `template` under `key`; `keys`: its `edge_keys`, when already computed."""
        row = len(self._keys)
        self._keys.append(key)
        self._templates.append(template)
        keys = edge_keys(template) if keys is None else keys
        self._sizes.append(max(len(keys), 1))
        for k in keys.tolist():
            self._postings.setdefault(k, []).append(row)
        self._arrays = None

    def _posting_arrays(self) -> dict[int, np.ndarray]:
        if self._arrays is None:
            self._arrays = {k: np.array(v, np.int32) for k, v in self._postings.items()}
        return self._arrays

    def shortlist(self, probe: matcher.PreparedTemplate, size: int) -> np.ndarray:
        """Rows of the `size` references sharing the most edge keys with `probe`."""
        postings = self._posting_arrays()
        hits = [postings[k] for k in edge_keys(probe).tolist() if k in postings]
        if not hits:
            return np.zeros(0, np.int32)
        votes = np.bincount(np.concatenate(hits), minlength=len(self._keys)).astype(np.float64)
        votes /= np.sqrt(np.array(self._sizes, np.float64))
        size = min(size, len(votes))
        top = np.argpartition(-votes, size - 1)[:size]
        return top[np.argsort(-votes[top])]

    def search(self, probe: matcher.PreparedTemplate, top_k: int = 1) -> list[Hit]:
        """The `top_k` best references by full-matcher score among the shortlist, best first."""
        rows = self.shortlist(probe, thresholds.FINGER_SEARCH_SHORTLIST)
        hits = [Hit(self._keys[r], matcher.similarity(probe, self._templates[r])) for r in rows.tolist()]
        return sorted(hits, key=lambda h: -h.score)[:top_k]

    def wipe(self) -> None:
        """Forget every reference (the templates themselves are zeroed by their holder)."""
        self._keys.clear()
        self._templates.clear()
        self._postings.clear()
        self._sizes.clear()
        self._arrays = None

    clear = wipe
