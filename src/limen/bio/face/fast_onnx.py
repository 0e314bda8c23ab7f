"""Build an ONNX graph from the parsed dlib ResNet (`fast_dlibnet.DlibResnet`).

The graph takes what `align.face_chip` gives, (n, 150, 150, 3) uint8 RGB, and
does dlib's input step itself: x = (pixel - mean) / 256 per channel in
float32 with dlib's stored means (122.782, 117.001, 104.298), then NCHW.
Each `con` is folded with the `affine` after it (w·γ, b·γ + β, computed in
float64); dlib's `add_prev` zero-pads the smaller operand at the end of every
axis (channels, rows, columns), which the graph reproduces with `Pad`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from limen.bio.face.fast_dlibnet import (
    INPUT_SIZE,
    AddPrev,
    Affine,
    Conv,
    DlibModelError,
    DlibResnet,
    FullyConnected,
    InputRGB,
    Pool,
    Relu,
    Skip,
    Tag,
)

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
OPSET = 17
PRODUCER = "limen.fast_onnx"

Shape = tuple[int, int, int]  # channels, rows, columns


@dataclass
class _Builder:
    onnx: Any
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    counter: int = 0

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - kernel) // stride


def _fold(conv: Conv, affine: Affine | None) -> tuple[np.ndarray, np.ndarray]:
    w = conv.weight.astype(np.float64)
    b = conv.bias.astype(np.float64)
    if affine is not None:
        g = affine.gamma.astype(np.float64)
        w = w * g[:, None, None, None]
        b = b * g + affine.beta.astype(np.float64)
    return w.astype(np.float32), b.astype(np.float32)


def _pad_to(b: _Builder, x: str, shape: Shape, target: Shape) -> str:
    if shape == target:
        return x
    pads = np.array([0, 0, 0, 0, 0, *(t - s for s, t in zip(shape, target, strict=True))], dtype=np.int64)
    return b.node("Pad", [x, b.const("pads", pads)], "pad", mode="constant")


def build(net: DlibResnet) -> Any:
    """The ONNX `ModelProto` computing dlib's descriptors; raises `DlibModelError` if the ops do not fit."""
    import onnx

    b = _Builder(onnx)
    ops = list(net.ops)
    first = ops.pop(0)
    if not isinstance(first, InputRGB):
        raise DlibModelError("network does not start with its input layer")
    x = b.node("Cast", [INPUT_NAME], "pixels", to=onnx.TensorProto.FLOAT)
    x = b.node("Sub", [x, b.const("mean", np.array(first.mean_rgb, dtype=np.float32))], "centred")
    x = b.node("Mul", [x, b.const("scale", np.array(1.0 / 256.0, dtype=np.float32))], "scaled")
    x = b.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape: Shape = (3, INPUT_SIZE, INPUT_SIZE)
    tags: dict[int, tuple[str, Shape]] = {}
    i = 0
    while i < len(ops):
        op = ops[i]
        i += 1
        if isinstance(op, Conv):
            affine = ops[i] if i < len(ops) and isinstance(ops[i], Affine) else None
            i += affine is not None
            x, shape = _conv(b, x, shape, op, affine)  # type: ignore[arg-type]
        elif isinstance(op, Affine):
            raise DlibModelError("affine layer without a convolution before it")
        elif isinstance(op, Relu):
            x = b.node("Relu", [x], "relu")
        elif isinstance(op, Pool):
            x, shape = _pool(b, x, shape, op)
        elif isinstance(op, Tag):
            tags[op.tag] = (x, shape)
        elif isinstance(op, Skip):
            x, shape = _tagged(tags, op.tag)
        elif isinstance(op, AddPrev):
            other, other_shape = _tagged(tags, op.tag)
            target: Shape = tuple(max(s, t) for s, t in zip(shape, other_shape, strict=True))  # type: ignore[assignment]
            x = b.node("Add", [_pad_to(b, x, shape, target), _pad_to(b, other, other_shape, target)], "sum")
            shape = target
        elif isinstance(op, FullyConnected):
            if op.weight.shape[0] != shape[0] * shape[1] * shape[2]:
                raise DlibModelError(f"fc expects {op.weight.shape[0]} inputs, gets {shape}")
            x = b.node("Flatten", [x], "flat", axis=1)
            x = b.node("MatMul", [x, b.const("fc", op.weight.astype(np.float32))], "fc_out")
            if i != len(ops):
                raise DlibModelError("layers after the final fully connected layer")
        else:  # pragma: no cover - the parser yields only the ops above
            raise DlibModelError(f"unsupported operation {type(op).__name__}")
    if not isinstance(ops[-1], FullyConnected):
        raise DlibModelError("network does not end with its fully connected layer")
    out_dim = ops[-1].weight.shape[1]
    b.nodes.append(onnx.helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = onnx.helper.make_graph(
        b.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.UINT8, ["n", INPUT_SIZE, INPUT_SIZE, 3])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["n", out_dim])],
        b.inits,
    )
    model = onnx.helper.make_model(
        graph, producer_name=PRODUCER, opset_imports=[onnx.helper.make_opsetid("", OPSET)]
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    onnx.checker.check_model(model)
    return model


def _tagged(tags: dict[int, tuple[str, Shape]], tag: int) -> tuple[str, Shape]:
    if tag not in tags:
        raise DlibModelError(f"reference to tag{tag} before it is set")
    return tags[tag]


def _conv(b: _Builder, x: str, shape: Shape, conv: Conv, affine: Affine | None) -> tuple[str, Shape]:
    out_c, in_c, kh, kw = conv.weight.shape
    if in_c != shape[0] or kh != kw:
        raise DlibModelError(f"convolution {conv.weight.shape} does not fit input {shape}")
    if affine is not None and affine.gamma.shape != (out_c,):
        raise DlibModelError(f"affine of {affine.gamma.shape} after a {out_c}-filter convolution")
    w, bias = _fold(conv, affine)
    p = conv.padding
    y = b.node(
        "Conv", [x, b.const("w", w), b.const("b", bias)], "conv",
        kernel_shape=[kh, kw], strides=[conv.stride] * 2, pads=[p, p, p, p],
    )
    rows, cols = (_conv_out(s, kh, conv.stride, p) for s in shape[1:])
    if rows < 1 or cols < 1:
        raise DlibModelError("convolution output is empty")
    return y, (out_c, rows, cols)


def _pool(b: _Builder, x: str, shape: Shape, pool: Pool) -> tuple[str, Shape]:
    if pool.size == 0:
        if pool.kind != "avg":
            raise DlibModelError("global max pooling is not expected")
        return b.node("GlobalAveragePool", [x], "gap"), (shape[0], 1, 1)
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    p = pool.padding
    if p != 0:
        raise DlibModelError("padded pooling is not expected")  # dlib's padded averages differ from ONNX's
    y = b.node(op, [x], pool.kind + "pool", kernel_shape=[pool.size] * 2, strides=[pool.stride] * 2)
    rows, cols = (_conv_out(s, pool.size, pool.stride, 0) for s in shape[1:])
    return y, (shape[0], rows, cols)
