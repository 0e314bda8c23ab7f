"""Comparing descriptors: Euclidean distance (lower = more alike) and multi-sample references."""

from __future__ import annotations

import numpy as np


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def fuse_reference(embeddings: np.ndarray) -> np.ndarray:
    """One reference from several samples of a person: the mean descriptor.

    Averaging cancels pose/lighting noise of single images; measured in the
    README (single vs multi-sample references on lfw-subset).
    """
    arr = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if arr.shape[0] == 0:
        raise ValueError("no embeddings to fuse")
    return arr.mean(axis=0)
