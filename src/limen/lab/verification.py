"""`limen lab verify`: the verification protocol, score files and reports.

Protocol: every pair is scored by Euclidean distance between descriptors (or,
with multi-sample references, each probe against each identity's fused
reference built from K other images).  Pairs touching a sample whose face
could not be acquired are counted as failures to acquire (FTA) and reported
separately; they are never dropped silently.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from limen.bio.face.compare import fuse_reference
from limen.lab.datasets import Pair, Sample
from limen.lab.metrics import VerificationMetrics, plot_det, verification_metrics


@dataclass(frozen=True)
class Score:
    a: str
    b: str
    genuine: bool
    distance: float


@dataclass(frozen=True)
class VerificationReport:
    name: str
    metrics: VerificationMetrics
    scores: list[Score]
    samples: int
    fta_samples: list[str]
    fta_pairs: int

    @property
    def genuine(self) -> np.ndarray:
        return np.array([s.distance for s in self.scores if s.genuine])

    @property
    def impostor(self) -> np.ndarray:
        return np.array([s.distance for s in self.scores if not s.genuine])

    def as_dict(self) -> dict[str, object]:
        return {
            "protocol": self.name,
            "samples": self.samples,
            "failures_to_acquire": {"samples": len(self.fta_samples), "pairs": self.fta_pairs,
                                    "ids": self.fta_samples},
            **self.metrics.as_dict(),
        }


def score_pairs(name: str, pairs: list[Pair], embeddings: dict[str, np.ndarray | None],
                threshold: float) -> VerificationReport:
    """Score every pair (1:1, single image each side)."""
    scores: list[Score] = []
    fta_pairs = 0
    for p in pairs:
        ea, eb = embeddings.get(p.a), embeddings.get(p.b)
        if ea is None or eb is None:
            fta_pairs += 1
            continue
        scores.append(Score(p.a, p.b, p.genuine, float(np.linalg.norm(ea - eb))))
    return _report(name, scores, embeddings, fta_pairs, threshold)


def score_multi_reference(name: str, samples: list[Sample], embeddings: dict[str, np.ndarray | None],
                          k: int, threshold: float) -> VerificationReport:
    """Each identity enrols its first `k` usable images as one fused reference; every other
    image of every identity is a probe against every reference."""
    by_identity: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_identity[s.identity].append(s)
    references: dict[str, np.ndarray] = {}
    probes: list[Sample] = []
    for identity, members in sorted(by_identity.items()):
        usable = [m for m in members if embeddings.get(m.id) is not None]
        if len(usable) <= k:
            continue
        references[identity] = fuse_reference(np.array([embeddings[m.id] for m in usable[:k]]))
        probes.extend(m for m in members if m not in usable[:k])
    scores: list[Score] = []
    fta_pairs = 0
    for probe in probes:
        e = embeddings.get(probe.id)
        for identity, ref in references.items():
            if e is None:
                fta_pairs += 1
                continue
            scores.append(Score(f"ref:{identity}", probe.id, probe.identity == identity,
                                float(np.linalg.norm(ref - e))))
    return _report(name, scores, embeddings, fta_pairs, threshold)


def _report(name: str, scores: list[Score], embeddings: dict[str, np.ndarray | None], fta_pairs: int,
            threshold: float) -> VerificationReport:
    g = np.array([s.distance for s in scores if s.genuine])
    i = np.array([s.distance for s in scores if not s.genuine])
    fta = sorted(k for k, v in embeddings.items() if v is None)
    return VerificationReport(name, verification_metrics(g, i, threshold), scores, len(embeddings), fta, fta_pairs)


def write_outputs(reports: list[VerificationReport], out_dir: Path, title: str) -> dict[str, str]:
    """Score files (one line per comparison), a JSON summary and a DET curve PNG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for r in reports:
        path = out_dir / f"scores-{r.name}.txt"
        with path.open("w", encoding="utf-8") as fh:
            fh.write("# sample_a sample_b label distance\n")
            for s in r.scores:
                fh.write(f"{s.a}\t{s.b}\t{'genuine' if s.genuine else 'impostor'}\t{s.distance:.6f}\n")
        files[f"scores-{r.name}"] = str(path)
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps([r.as_dict() for r in reports], indent=2), encoding="utf-8")
    files["summary"] = str(summary)
    det = out_dir / "det.png"
    plot_det({r.name: (r.genuine, r.impostor) for r in reports}, str(det), title)
    files["det"] = str(det)
    return files
