"""Speed work on PAD judges exactly as before: old vs new per-frame scores on real NUAA frames.

Every optimisation of the PAD path keeps the frames judged and the cues run;
each is compared here with the code it replaced (kept verbatim in
`tests/pad/reference_pad.py`, or, for MiniFASNet, the imported graph as built)
on nuaa-dev bursts, live and print, of every subject.  The bound is exact
equality where the arithmetic is the same, else max |Δscore| ≤ 1e-5 and
identical decisions.  Skips when nuaa-dev or the MiniFASNet weights are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.bio.face import detect
from limen.bio.face.detect import Box
from limen.capture import Capture
from limen.pad import minifasnet as mf
from limen.pad.minifasnet_models import load_model
from limen.pad.onnx_minifasnet import INPUT_NAME, OUTPUT_NAME, Variant, prelu_as_max
from tests.pad.helpers import nuaa_burst

SUBJECTS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
KINDS = ("live", "print")


@pytest.fixture(scope="module")
def bursts() -> list[Capture]:
    """A 5-frame burst of each subject, live and print (45 + 45 frames), skipping when nuaa-dev is absent."""
    return [nuaa_burst(kind, subject, n=5, skip=10) for kind in KINDS for subject in SUBJECTS]


@pytest.fixture(scope="module")
def framed(bursts: list[Capture]) -> list[tuple[list[np.ndarray], list[Box]]]:
    """Each burst's frames with a face, and the face box PAD would be given."""
    out = []
    for capture in bursts:
        frames, boxes = [], []
        for frame in capture.frames:
            found = detect.detect_faces(frame.rgb)
            if found:
                frames.append(frame.rgb)
                boxes.append(found[0].box)
        out.append((frames, boxes))
    assert sum(len(f) for f, _ in out) >= 60, "too few NUAA faces found to compare"
    return out


# ------------------------------------------------------------------ MiniFASNet: PRelu as Max


def test_prelu_as_max_gives_the_same_logits_on_nuaa(minifasnet_models_dir: Path,
                                                    framed: list[tuple[list[np.ndarray], list[Box]]]) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    built = {v: ort.InferenceSession(load_model(minifasnet_models_dir, v), options, providers=["CPUExecutionProvider"])
             for v in Variant}
    new_scores, old_scores = [], []
    for frames, boxes in framed:
        if not frames:
            continue
        old = {}
        for v, session in built.items():
            crops = np.stack([mf.crop(rgb, box, v.spec.scale) for rgb, box in zip(frames, boxes, strict=True)])
            old[v] = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: crops})[0])
        old_scores.append(mf.live_log_odds(old))
        new_scores.append(mf.minifasnet_scores(frames, boxes, minifasnet_models_dir))
    new, old_all = np.concatenate(new_scores), np.concatenate(old_scores)
    assert new.shape == old_all.shape and new.size >= 60
    assert np.array_equal(new, old_all)  # bit for bit: Max(y, y·s) is PRelu's arithmetic
    assert np.ptp(new) > 1.0  # the frames span live and print scores: the comparison is not of constants


def test_prelu_as_max_rewrites_every_prelu_and_keeps_a_slope_above_one(minifasnet_models_dir: Path) -> None:
    import onnx

    for v in Variant:
        data = load_model(minifasnet_models_dir, v)
        before = onnx.load_from_string(data)
        after = onnx.load_from_string(prelu_as_max(data))
        prelus = sum(n.op_type == "PRelu" for n in before.graph.node)
        assert prelus > 0
        assert sum(n.op_type == "PRelu" for n in after.graph.node) == 0
        assert sum(n.op_type == "Max" for n in after.graph.node) == prelus
        assert after.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "n"  # one run per burst
        onnx.checker.check_model(after, full_check=True)
    # a slope above 1 is not a Max: that PRelu stays
    first = next(n for n in before.graph.node if n.op_type == "PRelu")
    for t in before.graph.initializer:
        if t.name == first.input[1]:
            t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t) + 2.0, t.name))
    kept = onnx.load_from_string(prelu_as_max(before.SerializeToString()))
    assert sum(n.op_type == "PRelu" for n in kept.graph.node) == 1
