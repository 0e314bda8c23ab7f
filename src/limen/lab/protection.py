"""Template-protection evaluation (ISO/IEC 30136): accuracy, irreversibility, unlinkability.

* **Accuracy** – the verification protocol of `limen lab verify` scored twice:
  raw Euclidean distances (threshold `FACE_MATCH_DEFAULT`) and protected
  normalised Hamming distances (`VAULT_FACE_MATCH_DEFAULT`), over several
  random device keys; reports both and the worst-case loss.
* **Irreversibility** – full disclosure: the attacker holds a protected
  template *and* the device transform key.  `invert` finds an embedding whose
  sign bits agree with the template (perceptron-style projection onto the
  consistent cone, starting from the back-projection), scaled to the mean
  descriptor norm of public faces.  The reconstruction is then presented to
  the *raw* matcher against the other images of the same person: the share
  accepted is the false-accept-by-reconstruction rate.
* **Unlinkability** – the same faces enrolled on two devices; global
  linkability D↔sys of Gomez-Barrero et al. (2018) from mated (same person)
  and non-mated score histograms, prior ω = 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from limen import thresholds
from limen.lab.metrics import verification_metrics
from limen.vault.lab import DeviceTransform, hamming_matrix


@dataclass
class SetResult:
    name: str
    genuine: int
    impostor: int
    raw: dict[str, float]
    protected: dict[str, float]  # mean over device keys
    protected_worst: dict[str, float]  # worst value of each figure over the device keys
    accuracy_loss_points: float  # worst case, percentage points
    eer_loss_points: float


@dataclass
class ProtectionReport:
    bits: int
    devices: int
    sets: list[SetResult] = field(default_factory=list)
    irreversibility: dict[str, float] = field(default_factory=dict)
    unlinkability: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _summary(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, float]:
    m = verification_metrics(genuine, impostor, threshold)
    return {"threshold": threshold, "accuracy": m.accuracy, "far": m.far, "frr": m.frr, "eer": m.eer,
            "eer_threshold": m.eer_threshold}


Scored = tuple[dict[str, np.ndarray], list[tuple[str, str, bool]]]  # embeddings by sample id, pairs


def accuracy(name: str, scored: Scored, devices: list[DeviceTransform]) -> SetResult:
    """Raw versus protected verification on one set: every device key scores the same pairs."""
    embeddings, pairs = scored
    ids = sorted(embeddings)
    row = {k: n for n, k in enumerate(ids)}
    matrix = np.stack([embeddings[k] for k in ids])
    ia = np.array([row[a] for a, _, _ in pairs])
    ib = np.array([row[b] for _, b, _ in pairs])
    label = np.array([g for _, _, g in pairs])
    raw = np.linalg.norm(matrix[ia] - matrix[ib], axis=1)
    raw_s = _summary(raw[label], raw[~label], thresholds.FACE_MATCH_DEFAULT)
    runs = []
    for device in devices:
        bits = device.project(matrix)
        prot = np.bitwise_count(np.bitwise_xor(bits[ia], bits[ib])).sum(axis=1) / device.bits
        runs.append(_summary(prot[label], prot[~label], thresholds.VAULT_FACE_MATCH_DEFAULT))
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    worst = {"accuracy": min(r["accuracy"] for r in runs), "eer": max(r["eer"] for r in runs),
             "far": max(r["far"] for r in runs), "frr": max(r["frr"] for r in runs)}
    return SetResult(
        name, int(label.sum()), int((~label).sum()), raw_s, mean, worst,
        accuracy_loss_points=100 * (raw_s["accuracy"] - min(r["accuracy"] for r in runs)),
        eer_loss_points=100 * (max(r["eer"] for r in runs) - raw_s["eer"]),
    )


def invert(bits: np.ndarray, projection: np.ndarray, norm: float, iterations: int = 300) -> np.ndarray:
    """Embeddings consistent with packed sign `bits` under the known `projection`, scaled to `norm`."""
    nbits = projection.shape[0]
    signs = np.unpackbits(np.atleast_2d(bits), axis=1)[:, :nbits].astype(np.float64) * 2 - 1  # (n, bits)
    x = signs @ projection  # back-projection: the direction estimate E[s·w] ∝ x
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    step = 1.0 / nbits
    for _ in range(iterations):
        margin = signs * (x @ projection.T)  # > 0 where a bit agrees
        wrong = margin < 0
        if not wrong.any():
            break
        x += step * ((wrong * signs) @ projection)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * norm


def irreversibility(
    embeddings: np.ndarray, identities: list[str], public_norm: float, device: DeviceTransform,
    iterations: int = 20,
) -> dict[str, float]:
    """False-accept-by-reconstruction rates of the raw matcher (full-disclosure attacker)."""
    recon = invert(device.project(embeddings), device.attacker_view(), public_norm, iterations)
    ids = np.array(identities)
    dist = np.linalg.norm(recon[:, None, :] - embeddings[None, :, :], axis=2)
    same = ids[:, None] == ids[None, :]
    other_image = same & ~np.eye(len(ids), dtype=bool)
    accept = dist <= thresholds.FACE_MATCH_DEFAULT
    bits_agree = 1 - hamming_matrix(device.project(recon), device.project(embeddings)).diagonal()
    return {
        "targets": float(len(ids)),
        "far_by_reconstruction_other_images": float(accept[other_image].mean()),
        "far_by_reconstruction_same_image": float(accept.diagonal().mean()),
        "impostor_accept_of_reconstruction": float(accept[~same].mean()),
        "genuine_accept_real_images": float(
            (np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2) <= thresholds.FACE_MATCH_DEFAULT)[
                other_image
            ].mean()
        ),
        "mean_distance_reconstruction_to_source": float(dist.diagonal().mean()),
        "bits_consistent": float(bits_agree.mean()),
    }


def linkability(mated: np.ndarray, non_mated: np.ndarray, bins: int = 20, omega: float = 1.0) -> float:
    """Global linkability D↔sys (Gomez-Barrero et al., IEEE TIFS 2018) from two score samples.

    Scores are binned into `bins` common histogram bins; the estimate is biased
    upwards by sampling noise (see `unlinkability`'s shuffled-label floor).
    """
    lo, hi = float(min(mated.min(), non_mated.min())), float(max(mated.max(), non_mated.max()))
    edges = np.linspace(lo, hi + 1e-12, bins + 1)
    pm = np.histogram(mated, edges)[0] / mated.size
    pn = np.histogram(non_mated, edges)[0] / non_mated.size
    d = np.zeros(bins)
    only_mated = (pn == 0) & (pm > 0)
    both = pn > 0
    lr = omega * pm[both] / pn[both]
    d[both] = np.where(lr > 1, 2 * lr / (1 + lr) - 1, 0.0)
    d[only_mated] = 1.0
    return float(np.sum(pm * d))


def unlinkability(embeddings: np.ndarray, identities: list[str], a: DeviceTransform, b: DeviceTransform
                  ) -> dict[str, float]:
    """D↔sys across two devices (stored masked templates and unmasked bits), with a same-device control."""
    ids = np.array(identities)
    same = ids[:, None] == ids[None, :]
    upper = np.triu(np.ones_like(same), 1)

    def split(scores: np.ndarray, pairs_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return scores[same & pairs_mask], scores[~same & pairs_mask]

    everything = np.ones_like(same)
    cross_bits = hamming_matrix(a.project(embeddings), b.project(embeddings))
    cross_stored = hamming_matrix(a.protect(embeddings), b.protect(embeddings))
    control = hamming_matrix(a.project(embeddings), a.project(embeddings))
    mated, non_mated = split(cross_bits, everything)
    pooled = np.random.default_rng(0).permutation(np.concatenate([mated, non_mated]))
    return {
        "d_sys_two_devices_unmasked_bits": linkability(mated, non_mated),
        "d_sys_estimator_floor_shuffled_labels": linkability(pooled[: mated.size], pooled[mated.size :]),
        "d_sys_two_devices_stored_templates": linkability(*split(cross_stored, everything)),
        "d_sys_control_same_device": linkability(*split(control, upper)),
        "mated_comparisons": float(same.sum()),
        "non_mated_comparisons": float((~same).sum()),
    }


def evaluate(
    sets: dict[str, Scored],
    identity_set: tuple[np.ndarray, list[str]] | None,
    public_norm: float,
    devices: int = 5,
    bits: int = thresholds.VAULT_FACE_BITS,
    seed: bytes | None = None,
    attack_iterations: int = 20,
) -> ProtectionReport:
    """The whole evaluation; `identity_set` (embeddings, identity labels) feeds irreversibility/unlinkability."""
    keys = [None] * devices if seed is None else [bytes([i]) + seed for i in range(devices)]
    transforms = [DeviceTransform(k, bits) for k in keys]
    report = ProtectionReport(bits=bits, devices=devices)
    for name, pairs in sets.items():
        report.sets.append(accuracy(name, pairs, transforms))
    if identity_set is not None:
        emb, ids = identity_set
        report.irreversibility = irreversibility(emb, ids, public_norm, transforms[0], attack_iterations)
        report.irreversibility["attack_iterations"] = float(attack_iterations)
        report.unlinkability = unlinkability(emb, ids, transforms[0], transforms[1 % devices])
    return report


def scored(pairs: list, embeddings: dict[str, np.ndarray | None]) -> Scored:
    """Keep the pairs whose two samples were both acquired (failures to acquire are left out)."""
    kept = [(p.a, p.b, bool(p.genuine)) for p in pairs
            if embeddings.get(p.a) is not None and embeddings.get(p.b) is not None]
    used = {x for a, b, _ in kept for x in (a, b)}
    return {k: np.asarray(embeddings[k]) for k in used}, kept


__all__ = ["ProtectionReport", "evaluate", "invert", "linkability", "scored"]
