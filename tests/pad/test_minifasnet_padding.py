"""The graph MiniFASNet runs (`onnx_minifasnet.run_form`) judges real NUAA faces as the imported graph does.

`prelu_as_relus` must give the imported graph's logits bit for bit;
`pad_channels` adds zero channels, so its logits may differ from the unpadded
graph's only by float summation order: probabilities and per-frame log-odds
within `TOLERANCE`, the same class for every crop.  Measured on every 10th
nuaa-dev image (175 faces): logits |Δ| ≤ 5.7e-6 (they span −12…+18),
probabilities ≤ 4.5e-7, log-odds ≤ 3.8e-6.  The structural tests run on a small
synthetic graph and need no weights; the rest skip when nuaa-dev or the weights
are absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.core.onnx import cpu_session
from limen.pad import faces
from limen.pad import minifasnet as mf
from limen.pad.faces import FaceView
from limen.pad.minifasnet_models import load_model
from limen.pad.onnx_minifasnet import INPUT_NAME, OUTPUT_NAME, Variant, pad_channels, prelu_as_relus, run_form
from tests.conftest import shared

TOLERANCE = 1e-5  # |Δ| of a probability or a frame's live log-odds, padded vs unpadded graph
MULTIPLE = thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE


@pytest.fixture(scope="module")
def nuaa_faces() -> list[FaceView]:
    """PAD's own face in every 10th nuaa-dev image, live and print (skips without nuaa-dev)."""
    files = sorted(shared("nuaa-dev").glob("*/*/*.jpg"))[::10]
    located = [faces.locate(Capture((Frame(rgb=load_image(f)),))) for f in files]
    views = [s.faces[0] for s in located if s.faces]
    assert len(views) >= 150, "too few usable nuaa-dev faces"
    return views


def _logits(model: bytes, crops: np.ndarray) -> np.ndarray:
    session = cpu_session(model)
    return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: c[None]})[0] for c in crops])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def test_run_form_gives_the_imported_graphs_probabilities_on_nuaa(minifasnet_models_dir: Path,
                                                                  nuaa_faces: list[FaceView]) -> None:
    imported, padded = {}, {}
    for v in Variant:
        model = load_model(minifasnet_models_dir, v)
        crops = np.stack([mf.crop(f.frame.rgb, f.box, v.spec.scale) for f in nuaa_faces])
        imported[v] = _logits(model, crops)
        relus = prelu_as_relus(model)
        assert np.array_equal(_logits(relus, crops), imported[v])  # the Relu form alone: bit for bit
        padded[v] = _logits(run_form(model, MULTIPLE), crops)
        p_old, p_new = _softmax(imported[v]), _softmax(padded[v])
        assert np.abs(p_new - p_old).max() <= TOLERANCE
        assert np.array_equal(p_new.argmax(axis=1), p_old.argmax(axis=1))
        assert np.ptp(imported[v]) > 10  # confident live and confident print crops both in the comparison
    old, new = mf.live_log_odds(imported), mf.live_log_odds(padded)
    assert np.abs(new - old).max() <= TOLERANCE
    assert np.array_equal(new > 0, old > 0) and 0 < np.mean(old > 0) < 1


# ------------------------------------------------------------------ structure, on a synthetic graph


def _block_graph(hidden: int, seed: int = 0) -> Any:
    """Input (n, 8, 6, 6) → 1×1 conv to `hidden` → PRelu → 3×3 depth-wise → PRelu → 1×1 conv to 8 (+ shortcut)."""
    import onnx

    rng = np.random.default_rng(seed)
    h = onnx.helper

    def const(name: str, shape: tuple[int, ...]) -> Any:
        return onnx.numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)

    inits = [const("w1", (hidden, 8, 1, 1)), const("b1", (hidden,)), const("s1", (hidden, 1, 1)),
             const("w2", (hidden, 1, 3, 3)), const("b2", (hidden,)), const("s2", (hidden, 1, 1)),
             const("w3", (8, hidden, 1, 1)), const("b3", (8,))]
    nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["y1"], name="c1"),
             h.make_node("PRelu", ["y1", "s1"], ["a1"], name="p1"),
             h.make_node("Conv", ["a1", "w2", "b2"], ["y2"], name="c2", group=hidden, pads=[1, 1, 1, 1]),
             h.make_node("PRelu", ["y2", "s2"], ["a2"], name="p2"),
             h.make_node("Conv", ["a2", "w3", "b3"], ["y3"], name="c3"),
             h.make_node("Add", ["x", "y3"], ["out"], name="shortcut")]
    graph = h.make_graph(nodes, "block", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 8, 6, 6])],
                         [h.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["n", 8, 6, 6])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    return np.asarray(cpu_session(model).run(["out"], {"x": x})[0])


def _conv_shapes(model: bytes) -> dict[str, tuple[tuple[int, ...], int]]:
    import onnx

    m = onnx.load_from_string(model)
    dims = {t.name: tuple(t.dims) for t in m.graph.initializer}
    return {n.name: (dims[n.input[1]], next((a.i for a in n.attribute if a.name == "group"), 1))
            for n in m.graph.node if n.op_type == "Conv"}


def test_pad_channels_rounds_the_hidden_channels_up_with_zero_channels() -> None:
    import onnx

    x = np.random.default_rng(1).normal(size=(3, 8, 6, 6)).astype(np.float32)
    model = _block_graph(13).SerializeToString()
    padded = pad_channels(prelu_as_relus(model), 16)
    onnx.checker.check_model(onnx.load_from_string(padded), full_check=True)
    shapes = _conv_shapes(padded)
    assert shapes["c1"] == ((16, 8, 1, 1), 1) and shapes["c2"] == ((16, 1, 3, 3), 16)
    assert shapes["c3"] == ((8, 16, 1, 1), 1)  # the shortcut's 8 channels are left alone
    padded_weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load_from_string(padded).graph.initializer}
    assert not padded_weights["w1"][13:].any() and not padded_weights["w3"][:, 13:].any()
    before, after = _run(model, x), _run(padded, x)
    assert np.allclose(after, before, rtol=0, atol=1e-5) and np.ptp(before) > 1


def test_prelu_as_relus_is_prelu_bit_for_bit_for_any_slope() -> None:
    import onnx

    model = _block_graph(13, seed=3)
    for t in model.graph.initializer:  # slopes above 1, zero and negative too (Max(y, y·s) needs s ≤ 1)
        if t.name == "s1":
            t.CopyFrom(onnx.numpy_helper.from_array(np.linspace(-2, 3, 13, dtype=np.float32).reshape(13, 1, 1), "s1"))
    data = model.SerializeToString()
    x = np.random.default_rng(2).normal(size=(4, 8, 6, 6)).astype(np.float32) * 10
    relus = prelu_as_relus(data)
    ops = [n.op_type for n in onnx.load_from_string(relus).graph.node]
    assert "PRelu" not in ops and ops.count("Relu") == 4
    assert np.array_equal(_run(relus, x), _run(data, x))


def test_pad_channels_leaves_a_region_it_cannot_close() -> None:
    """A hidden tensor that is also a graph output (or reaches a shortcut) keeps its channel count."""
    import onnx

    model = _block_graph(13)
    model.graph.output.append(onnx.helper.make_tensor_value_info("a1", onnx.TensorProto.FLOAT, None))
    padded = pad_channels(prelu_as_relus(model.SerializeToString()), 16)
    assert _conv_shapes(padded)["c1"] == ((13, 8, 1, 1), 1)
    assert _conv_shapes(padded)["c2"] == ((13, 1, 3, 3), 13) and _conv_shapes(padded)["c3"] == ((8, 13, 1, 1), 1)
    nothing_to_do = _block_graph(16).SerializeToString()
    assert _conv_shapes(pad_channels(nothing_to_do, 16)) == _conv_shapes(nothing_to_do)


def test_run_form_pads_every_convolution_of_both_models(minifasnet_models_dir: Path) -> None:
    for v in Variant:
        shapes = _conv_shapes(run_form(load_model(minifasnet_models_dir, v), MULTIPLE))
        before = _conv_shapes(load_model(minifasnet_models_dir, v))
        assert shapes.keys() == before.keys() and len(shapes) > 40
        assert any(w[0] % MULTIPLE for w, _ in before.values())  # upstream's counts are pruned …
        assert all(w[0] % MULTIPLE == 0 for w, _ in shapes.values())  # … every output count is padded
        assert all(w[1] % MULTIPLE == 0 for w, g in shapes.values() if g == 1 and w[1] > 3)  # but the image's 3
