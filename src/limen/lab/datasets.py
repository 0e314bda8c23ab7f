"""Evaluation sets: identity-per-folder sets and labelled pair files, and their embeddings.

Embeddings are cached on disk (lab only; under the user's cache dir, keyed by
the image file's SHA-256 and the pipeline version) so reruns are fast.  The
cache is evaluation data about public datasets, never a lock's enrolled users.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from limen.capture.sources import IMAGE_SUFFIXES, load_image
from limen.errors import BadImage, BadRequest

if TYPE_CHECKING:
    from limen.bio.face import FaceEngine

PIPELINE_VERSION = "face-v1"


@dataclass(frozen=True)
class Sample:
    id: str
    identity: str
    path: Path


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    genuine: bool


def identity_folder_samples(root: Path) -> list[Sample]:
    """Every image under `root/<identity>/`, identity = folder name."""
    if not root.is_dir():
        raise BadRequest("identity-folders", f"{root} is not a directory")
    samples = [
        Sample(id=f"{d.name}/{f.name}", identity=d.name, path=f)
        for d in sorted(p for p in root.iterdir() if p.is_dir())
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not samples:
        raise BadRequest("identity-folders", f"{root} holds no identity folders with images")
    return samples


def all_pairs(samples: list[Sample]) -> list[Pair]:
    """All unordered pairs: genuine when both samples share an identity."""
    return [Pair(a.id, b.id, a.identity == b.identity) for a, b in itertools.combinations(samples, 2)]


def pairs_csv(path: Path) -> tuple[list[Sample], list[Pair]]:
    """A CSV `file_x,file_y,Decision` (Yes = same person); files relative to the CSV's folder."""
    if not path.is_file():
        raise BadRequest("pairs", f"{path} is not a file")
    pairs: list[Pair] = []
    names: dict[str, Sample] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                a, b, label = row["file_x"].strip(), row["file_y"].strip(), row["Decision"].strip().lower()
            except (KeyError, AttributeError) as exc:
                raise BadRequest("pairs", f"{path}:{line}: expected columns file_x,file_y,Decision") from exc
            if label not in ("yes", "no"):
                raise BadRequest("pairs", f"{path}:{line}: Decision must be Yes or No, got {label!r}")
            for name in (a, b):
                names.setdefault(name, Sample(id=name, identity="", path=path.parent / name))
            pairs.append(Pair(a, b, label == "yes"))
    return sorted(names.values(), key=lambda s: s.id), pairs


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("limen", appauthor=False)) / "lab-embeddings"


def embed_samples(
    samples: list[Sample],
    cache_dir: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    gates: bool = False,
) -> dict[str, np.ndarray | None]:
    """Embedding of each sample, or None for a failure to acquire (no face, bad file).

    With `gates=False` the lab measures the matcher on every face found; with
    `gates=True` samples refused by a quality gate also count as failures to
    acquire, as they would at the door.
    """
    from limen.bio.face import FaceEngine

    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    engine = FaceEngine(check_quality=gates)
    result: dict[str, np.ndarray | None] = {}
    for sample in samples:
        result[sample.id] = _cached(cache, sample, partial(_embed_one, engine, sample), gates)
        if on_progress:
            on_progress(1)
    return result


def _embed_one(engine: FaceEngine, sample: Sample) -> np.ndarray | None:
    from limen.bio.face import FaceSample

    try:
        rgb = load_image(sample.path)
    except BadImage:
        return None
    out = engine.extract(rgb)
    return out.embedding if isinstance(out, FaceSample) else None


def _cached(cache: Path, sample: Sample, compute: Callable[[], np.ndarray | None], gates: bool) -> np.ndarray | None:
    try:
        digest = hashlib.sha256(sample.path.read_bytes()).hexdigest()
    except OSError:
        return None
    from limen import thresholds
    from limen.bio.face.embed import get_embedder

    gate_tag = f"g{thresholds.QUALITY_MIN_SHARPNESS:g}-{thresholds.QUALITY_MIN_FACE_PX}" if gates else "g0"
    key = cache / f"{PIPELINE_VERSION}-{get_embedder().name}-{gate_tag}-{digest[:32]}.npy"
    if key.is_file():
        arr = np.load(key, allow_pickle=False)
        return None if arr.size == 0 else arr
    value = compute()
    tmp = key.with_suffix(".tmp.npy")
    np.save(tmp, np.zeros(0) if value is None else value, allow_pickle=False)
    tmp.replace(key)
    return value
