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

`run_form(model, channel_multiple)` is how the graph is *run* (the imported
file and its digest stay as built).  Two rewrites keep the whole network in
ONNX Runtime's fast blocked (NCHWc) kernels: PRelu computed as
Relu(y) + (−s)·Relu(−y) (`prelu_as_relus`: the logits bit for bit PRelu's),
and the pruned channel counts padded with zero channels to a multiple of
`channel_multiple` (`pad_channels`: the logits up to float summation order).
Before them, PRelu broadcast its slope element by element (58 % of the CPU
time), then Max(y, y·s) — exact, but ONNX Runtime leaves the blocked layout for
every Max (two reorders out, one back) and for every odd channel count.
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


def run_form(model_bytes: bytes, channel_multiple: int) -> bytes:
    """The graph the lock runs for the imported graph `model_bytes`: the same network, cheaper on ONNX Runtime.

    PRelu as Relus (`prelu_as_relus`, the same logits bit for bit), then every
    pruned channel count padded with zero channels (`pad_channels`, the same
    logits up to float summation order).
    """
    return pad_channels(prelu_as_relus(model_bytes), channel_multiple)


def prelu_as_relus(model_bytes: bytes) -> bytes:
    """`model_bytes` with every PRelu(y, s) computed as Relu(y) + (−s)·Relu(y·(−1)), per channel.

    Exact for every slope: y ≥ 0 gives y + (−s)·0 = y, y < 0 gives 0 + (−s)·(−y)
    = s·y (negation is exact, so the one rounded product is PRelu's own).  Unlike
    PRelu or Max, ONNX Runtime keeps all four in its blocked NCHWc layout (the
    Muls become depth-wise 1×1 convolutions, the Add fuses into the last of them),
    where Max cost two reorders out of the layout and one back per activation.
    """
    import numpy as np
    import onnx

    model = onnx.load_from_string(model_bytes)
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, added, replaced = [], [], set()
    for node in model.graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 else None
        if slope is None:
            nodes.append(node)
            continue
        y, out = node.input[0], node.output[0]
        replaced.add(node.input[1])
        minus_one, minus_slope = f"{out}_minus_one", f"{out}_minus_slope"
        added += [onnx.numpy_helper.from_array(np.full(slope.shape, -1, np.float32), minus_one),
                  onnx.numpy_helper.from_array(np.negative(slope).astype(np.float32), minus_slope)]
        steps = [("Relu", [y], "positive"), ("Mul", [y, minus_one], "negated"),
                 ("Relu", [f"{out}_negated"], "negative"), ("Mul", [f"{out}_negative", minus_slope], "scaled")]
        nodes += [onnx.helper.make_node(op, inputs, [f"{out}_{stem}"], name=f"{out}_{stem}")
                  for op, inputs, stem in steps]
        nodes.append(onnx.helper.make_node("Add", [f"{out}_positive", f"{out}_scaled"], [out], name=out))
    still_used = {i for n in nodes for i in n.input}
    kept = [t for t in model.graph.initializer if t.name not in replaced or t.name in still_used]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + added)
    return bytes(model.SerializeToString())


_PER_CHANNEL = frozenset({"Mul", "Add", "Max"})  # element-wise: with a (c, 1, 1) constant or a tensor alike
_PER_ELEMENT = frozenset({"Relu", "Neg"})


def pad_channels(model_bytes: bytes, multiple: int) -> bytes:
    """`model_bytes` with the channel count between each full convolution and the next rounded up to `multiple`.

    MiniFASNet's channel counts are pruned (13, 103, 231, …); ONNX Runtime's
    blocked kernels (NCHWc: blocks of 8 channels with AVX2, 16 with AVX-512)
    take odd counts only through slow paths.  Each added channel has zero
    weights and zero bias in the convolution that makes it, zero weights and
    bias in every depth-wise convolution and zero constants in every
    element-wise step it goes through, so it is exactly 0 all the way (0 stays 0
    under Relu, negation, products and sums), and the next full convolution
    reads it with zero weights.  The logits are those of the unpadded graph up
    to the order of float summation (tests/pad/test_minifasnet_padding.py).  A
    region that leads anywhere else (a graph output, a shortcut, a pooling) is
    left as it is.
    """
    import numpy as np
    import onnx

    model = onnx.load_from_string(model_bytes)
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    uses: dict[str, int] = {}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}
    padded = set()
    for node in list(model.graph.node):
        region = _padded_region(node, constants, consumers, outputs, uses, multiple)
        if region is None:
            continue
        edits, depth_wise, extra = region
        for name, axis in edits.items():
            value = constants[name]
            width = [(0, 0)] * value.ndim
            width[axis] = (0, extra)
            constants[name] = np.pad(value, width)
            padded.add(name)
        for dw in depth_wise:
            _set_group(dw, value=_group(dw) + extra)
    for t in model.graph.initializer:
        if t.name in padded:
            t.CopyFrom(onnx.numpy_helper.from_array(constants[t.name].astype(np.float32), t.name))
    del model.graph.value_info[:]  # optional shape hints, which would now name the old channel counts
    return bytes(model.SerializeToString())


def _group(node: Any) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "group"), 1)


def _set_group(node: Any, value: int) -> None:
    for a in node.attribute:
        if a.name == "group":
            a.i = value
            return
    raise ValueError(f"{node.name}: no group attribute")


def _padded_region(conv: Any, constants: dict[str, np.ndarray], consumers: dict[str, list[Any]], outputs: set[str],
                   uses: dict[str, int], multiple: int) -> tuple[dict[str, int], list[Any], int] | None:
    """What padding `conv`'s output channels changes: {constant: axis padded}, depth-wise convs, channels added.

    None when `conv` is not a full convolution with a bias and a count to pad,
    or when its output reaches anything but per-channel steps, depth-wise
    convolutions and full convolutions (where the region ends).
    """
    if conv.op_type != "Conv" or _group(conv) != 1 or len(conv.input) != 3:
        return None
    weight = constants.get(conv.input[1])
    if weight is None or conv.input[2] not in constants:
        return None
    c = weight.shape[0]
    extra = -c % multiple
    if extra == 0:
        return None
    edits = {conv.input[1]: 0, conv.input[2]: 0}
    depth_wise, region, todo = [], set(), [conv.output[0]]
    while todo:
        tensor = todo.pop()
        if tensor in region:
            continue
        if tensor in outputs:
            return None
        region.add(tensor)
        for node in consumers.get(tensor, []):
            w = constants.get(node.input[1]) if node.op_type == "Conv" else None
            if node.op_type in _PER_ELEMENT:
                pass
            elif node.op_type in _PER_CHANNEL:
                for name in node.input:
                    if name in constants:
                        if constants[name].shape != (c, 1, 1):
                            return None
                        edits[name] = 0
            elif w is not None and _group(node) == c and w.shape[:2] == (c, 1) and node.input[0] == tensor:
                edits[node.input[1]] = 0
                if len(node.input) == 3:
                    if node.input[2] not in constants:
                        return None
                    edits[node.input[2]] = 0
                depth_wise.append(node)
            elif w is not None and _group(node) == 1 and w.shape[1] == c and node.input[0] == tensor:
                edits[node.input[1]] = 1
                continue  # the region ends: this convolution's output keeps its channels
            else:
                return None
            todo.append(node.output[0])
    for tensor in region:  # every step inside takes only region tensors and constants
        for node in consumers.get(tensor, []):
            if node.op_type in _PER_CHANNEL and not all(i in region or i in constants for i in node.input):
                return None
    if any(uses.get(name, 0) != 1 for name in edits):  # a constant shared with a node outside
        return None
    return edits, depth_wise, extra


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
