"""Build an ONNX graph of MiniFASNet (V2, V1SE) from its state dict.

Our own implementation of the network of `minivision-ai/Silent-Face-Anti-Spoofing`
(`src/model_lib/MiniFASNet.py`, Apache-2.0), for an 80×80 input:
conv1 (3×3/2) → conv2_dw → conv_23 (depth-wise, /2) → conv_3 (4 residual
blocks) → conv_34 (/2) → conv_4 (6 blocks) → conv_45 (/2) → conv_5 (2 blocks)
→ conv_6_sep (1×1) → conv_6_dw (5×5 depth-wise, valid) → linear 512→128 →
BatchNorm1d → prob 128→3.  In V1SE the last block of conv_3, conv_4 and conv_5
carries a squeeze-excitation module before its shortcut.  Every BatchNorm is
folded into the convolution or linear layer before it (in float64, ε = 1e-5,
torch's default); PReLU has one slope per channel.  Channel counts come from the
weight shapes; every tensor of the state dict must be used, none may be missing.

The graph takes what the crop step gives, (n, 80, 80, 3) uint8 **BGR** (upstream
reads images with OpenCV), casts to float32 without scaling (upstream's
`to_tensor` does not divide by 255), and returns the 3 logits (class 1 = live);
`n` is a dynamic batch axis (the lock runs one crop per call: the same logits, less memory at once).

`prelu_as_max(model)` is how the graph is *run* (the imported file and its
digest stay as built): ONNX Runtime's PRelu broadcasts its per-channel slope
element by element and took 58 % of the graph's CPU time; `Max(y, y·s)` is the
same function for every slope s ≤ 1 and is computed exactly alike (one
product, one comparison, no rounding of its own), so the logits are bit-for-bit
those of PRelu (tests/pad/test_speed_equivalence.py) at less than half the cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from limen.errors import BadModelFile

if TYPE_CHECKING:  # numpy loads when a graph is built or rewritten: `limen status` checks models without it
    import numpy as np

INPUT_NAME = "crops"
OUTPUT_NAME = "logits"
INPUT_SIZE = 80
CLASSES = 3
LIVE_CLASS = 1
OPSET = 17
BN_EPS = 1e-5
CONVERTER_VERSION = "limen.onnx_minifasnet/1"


@dataclass(frozen=True)
class VariantSpec:
    model: str
    source_file: str
    source_sha256: str
    scale: float  # crop: face box scaled this much around its centre
    squeeze_excitation: bool


class Variant(Enum):
    """The two upstream models, pinned by the SHA-256 of their `.pth` files (commit b6d5f04)."""

    V2 = VariantSpec("MiniFASNetV2", "2.7_80x80_MiniFASNetV2.pth",
                     "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7, False)
    V1SE = VariantSpec("MiniFASNetV1SE", "4_0_0_80x80_MiniFASNetV1SE.pth",
                       "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990", 4.0, True)

    @property
    def spec(self) -> VariantSpec:
        return self.value  # type: ignore[no-any-return]


@dataclass
class _Builder:
    onnx: Any
    state: dict[str, np.ndarray]
    source: str
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    counter: int = 0

    def take(self, key: str, ndim: int) -> np.ndarray:
        import numpy as np

        value = self.state.get(key)
        if value is None:
            raise BadModelFile(self.source, f"tensor {key} is missing")
        if value.ndim != ndim or not np.all(np.isfinite(value)):
            raise BadModelFile(self.source, f"tensor {key} has shape {value.shape} or non-finite values")
        self.used.add(key)
        return value.astype(np.float64)

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def const(self, stem: str, value: np.ndarray) -> str:
        import numpy as np

        name = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def batchnorm(self, prefix: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) of an eval-mode BatchNorm: y = x·scale + shift."""
        import numpy as np

        gamma, beta = self.take(f"{prefix}.weight", 1), self.take(f"{prefix}.bias", 1)
        mean, var = self.take(f"{prefix}.running_mean", 1), self.take(f"{prefix}.running_var", 1)
        if not gamma.shape == beta.shape == mean.shape == var.shape == (channels,) or np.any(var < 0):
            raise BadModelFile(self.source, f"{prefix}: batch-norm does not fit {channels} channels")
        self.used.add(f"{prefix}.num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        return scale, beta - mean * scale

    def conv_bn(self, x: str, prefix: str, conv: str, bn: str, stride: int, pad: int,
                channels_in: int) -> tuple[str, int]:
        """Convolution (no bias) with the BatchNorm after it folded in; returns output and its channels."""
        w = self.take(f"{prefix}.{conv}.weight", 4)
        out_c, per_group, kh, kw = w.shape
        if per_group == 0 or channels_in % per_group or out_c % (channels_in // per_group):
            raise BadModelFile(self.source, f"{prefix}: weight {w.shape} does not fit {channels_in} input channels")
        scale, shift = self.batchnorm(f"{prefix}.{bn}", out_c)
        y = self.node("Conv", [x, self.const("w", w * scale[:, None, None, None]), self.const("b", shift)], "conv",
                      kernel_shape=[kh, kw], strides=[stride, stride], pads=[pad] * 4,
                      group=channels_in // per_group)
        return y, out_c


def build(state: dict[str, np.ndarray], variant: Variant, source: str) -> Any:
    """The ONNX `ModelProto` computing `variant`'s logits; `BadModelFile` if the tensors do not fit."""
    import onnx

    b = _Builder(onnx, state, source)
    x = b.node("Cast", [INPUT_NAME], "pixels", to=onnx.TensorProto.FLOAT)
    x = b.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x, c = _conv_block(b, x, "conv1", 3, stride=2, pad=1)
    x, c = _conv_block(b, x, "conv2_dw", c, stride=1, pad=1)
    x, c = _depth_wise(b, x, "conv_23", c, stride=2, residual=False, se=False)
    for stage, blocks in (("conv_3", 4), ("conv_34", 0), ("conv_4", 6), ("conv_45", 0), ("conv_5", 2)):
        if blocks == 0:
            x, c = _depth_wise(b, x, stage, c, stride=2, residual=False, se=False)
            continue
        for i in range(blocks):
            se = variant.spec.squeeze_excitation and i == blocks - 1
            x, c = _depth_wise(b, x, f"{stage}.model.{i}", c, stride=1, residual=True, se=se)
    x, c = _conv_block(b, x, "conv_6_sep", c, stride=1, pad=0)
    x, c = b.conv_bn(x, "conv_6_dw", "conv", "bn", stride=1, pad=0, channels_in=c)
    x = b.node("Flatten", [x], "flat", axis=1)
    x = _head(b, x, c)
    b.nodes.append(onnx.helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    unused = set(state) - b.used
    if unused:
        raise BadModelFile(source, f"unexpected tensors for {variant.spec.model}: {', '.join(sorted(unused)[:3])}")
    graph = onnx.helper.make_graph(
        b.nodes, variant.spec.model,
        [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.UINT8, ["n", INPUT_SIZE, INPUT_SIZE, 3])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["n", CLASSES])],
        b.inits,
    )
    model = onnx.helper.make_model(graph, producer_name=CONVERTER_VERSION,
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    onnx.checker.check_model(model, full_check=True)
    return model


def prelu_as_max(model_bytes: bytes) -> bytes:
    """`model_bytes` with every PRelu whose slopes are all ≤ 1 computed as Max(y, Mul(y, slope)).

    For s ≤ 1: y ≥ 0 gives y·s ≤ y, y < 0 gives y·s ≥ y, so max(y, y·s) is y or
    y·s exactly where PRelu is; a slope > 1 (none upstream) keeps its PRelu.
    """
    import numpy as np
    import onnx

    model = onnx.load_from_string(model_bytes)
    slopes = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        slope = slopes.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 else None
        if slope is None or not np.all(slope <= 1.0):
            nodes.append(node)
            continue
        y, scaled = node.input[0], f"{node.output[0]}_scaled"
        nodes += [onnx.helper.make_node("Mul", [y, node.input[1]], [scaled], name=scaled),
                  onnx.helper.make_node("Max", [y, scaled], [node.output[0]], name=node.output[0])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return bytes(model.SerializeToString())


def _conv_block(b: _Builder, x: str, prefix: str, c: int, stride: int, pad: int) -> tuple[str, int]:
    """Conv_block: conv + BatchNorm (folded) + PReLU."""
    y, out_c = b.conv_bn(x, prefix, "conv", "bn", stride, pad, c)
    slope = b.take(f"{prefix}.prelu.weight", 1)
    if slope.shape != (out_c,):
        raise BadModelFile(b.source, f"{prefix}: PReLU has {slope.shape[0]} slopes for {out_c} channels")
    return b.node("PRelu", [y, b.const("slope", slope[:, None, None])], "prelu"), out_c


def _depth_wise(b: _Builder, x: str, prefix: str, c: int, stride: int, residual: bool, se: bool) -> tuple[str, int]:
    """Depth_Wise(_SE): 1×1 Conv_block → 3×3 depth-wise Conv_block → 1×1 projection (+ SE) (+ shortcut)."""
    y, c1 = _conv_block(b, x, f"{prefix}.conv", c, stride=1, pad=0)
    y, c2 = _conv_block(b, y, f"{prefix}.conv_dw", c1, stride=stride, pad=1)
    y, c3 = b.conv_bn(y, f"{prefix}.project", "conv", "bn", stride=1, pad=0, channels_in=c2)
    if se:
        y = _squeeze_excitation(b, y, f"{prefix}.se_module", c3)
    if residual:
        if c3 != c:
            raise BadModelFile(b.source, f"{prefix}: shortcut of {c} channels onto {c3}")
        y = b.node("Add", [x, y], "residual")
    return y, c3


def _squeeze_excitation(b: _Builder, x: str, prefix: str, c: int) -> str:
    pooled = b.node("GlobalAveragePool", [x], "squeeze")
    h, _ = b.conv_bn(pooled, prefix, "fc1", "bn1", stride=1, pad=0, channels_in=c)
    h = b.node("Relu", [h], "relu")
    h, out_c = b.conv_bn(h, prefix, "fc2", "bn2", stride=1, pad=0, channels_in=b.state[f"{prefix}.fc1.weight"].shape[0])
    if out_c != c:
        raise BadModelFile(b.source, f"{prefix}: excitation of {out_c} channels for {c}")
    return b.node("Mul", [x, b.node("Sigmoid", [h], "gate")], "excited")


def _head(b: _Builder, x: str, c: int) -> str:
    """linear (no bias) → BatchNorm1d (folded) → dropout (identity at inference) → prob (no bias)."""
    linear = b.take("linear.weight", 2)
    if linear.shape[1] != c:
        raise BadModelFile(b.source, f"linear expects {linear.shape[1]} inputs, gets {c}")
    scale, shift = b.batchnorm("bn", linear.shape[0])
    x = b.node("Gemm", [x, b.const("linear", (linear * scale[:, None]).T), b.const("shift", shift)], "embedding")
    prob = b.take("prob.weight", 2)
    if prob.shape != (CLASSES, linear.shape[0]):
        raise BadModelFile(b.source, f"prob has shape {prob.shape}")
    return b.node("MatMul", [x, b.const("prob", prob.T)], "scores")
