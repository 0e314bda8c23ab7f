"""Read dlib's serialised face ResNet (`dlib_face_recognition_resnet_model_v1.dat`) into plain arrays.

The file is dlib's `serialize(net)` of the `anet_type` declared in dlib's
`tools/python/src/face_recognition.cpp`.  dlib's format is not
self-describing: which wrapper comes next is fixed by the C++ type, so this
reader walks the *expected* type (`EXPECTED_CHAIN`, outermost layer first)
and checks every tag, version, shape, stride and padding against it.
Anything unexpected raises `DlibModelError`, never a best guess.

Primitives (dlib/serialize.h, float_details.h, cuda/tensor.h):
integers are one control byte (low nibble = byte count, 0x80 = negative)
then little-endian bytes; strings are an unsigned length then bytes; bools are
the characters '0'/'1'; doubles are a (mantissa, exponent) integer pair;
tensors are version 2, four dimensions, then little-endian float32 data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_SIZE = 150


class DlibModelError(Exception):
    """The file is not the network this reader expects (internal; the embedder falls back to dlib)."""


# ------------------------------------------------------------------ the network, as forward operations


@dataclass(frozen=True)
class InputRGB:
    """`input_rgb_image_sized<150>`: x = (pixel - mean) / 256 per channel, channels R, G, B."""

    mean_rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Conv:
    weight: np.ndarray  # (out, in, kh, kw) float32, cross-correlation like cuDNN / dlib's im2col
    bias: np.ndarray  # (out,) float32
    stride: int
    padding: int


@dataclass(frozen=True)
class Affine:
    """Batch norm folded by dlib: y = gamma[c] * x + beta[c]."""

    gamma: np.ndarray  # (channels,) float32
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    size: int  # 0 = the whole image (avg_pool_everything)
    stride: int
    padding: int


@dataclass(frozen=True)
class Tag:
    """Remember the current output under `tag` (dlib's tagN)."""

    tag: int


@dataclass(frozen=True)
class Skip:
    """Continue from the output remembered under `tag` (dlib's skipN)."""

    tag: int


@dataclass(frozen=True)
class AddPrev:
    """Current + remembered[tag], each zero-padded at the end to the larger shape (dlib's add_prevN)."""

    tag: int


@dataclass(frozen=True)
class FullyConnected:
    weight: np.ndarray  # (inputs, outputs) float32; y = x @ weight, no bias


Op = InputRGB | Conv | Affine | Relu | Pool | Tag | Skip | AddPrev | FullyConnected


@dataclass(frozen=True)
class DlibResnet:
    """The network in forward order (input first, 128-d output last)."""

    ops: tuple[Op, ...]

    @property
    def num_parameters(self) -> int:
        arrays = [a for op in self.ops for a in _arrays(op)]
        return sum(a.size for a in arrays)


def _arrays(op: Op) -> list[np.ndarray]:
    if isinstance(op, Conv):
        return [op.weight, op.bias]
    if isinstance(op, Affine):
        return [op.gamma, op.beta]
    if isinstance(op, FullyConnected):
        return [op.weight]
    return []


# ------------------------------------------------------------------ the expected C++ type, outermost first
# Each entry: (kind, args).  Mirrors face_recognition.cpp:
#   block<N,stride>  = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUB>>>>>
#   ares<N>          = relu<add_prev1<block<N,1,tag1<SUB>>>>
#   ares_down<N>     = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<SUB>>>>>>>

Spec = tuple[str, tuple[int, ...]]


def _block(n: int, stride: int) -> list[Spec]:
    return [("affine", ()), ("con", (n, 3, 3, 1, 1)), ("relu", ()), ("affine", ()), ("con", (n, 3, 3, stride, stride))]


def _ares(n: int) -> list[Spec]:
    return [("relu", ()), ("add_prev", (1,)), *_block(n, 1), ("tag", (1,))]


def _ares_down(n: int) -> list[Spec]:
    return [
        ("relu", ()), ("add_prev", (2,)), ("avg_pool", (2, 2, 2, 2)), ("skip", (1,)), ("tag", (2,)),
        *_block(n, 2), ("tag", (1,)),
    ]


EXPECTED_CHAIN: tuple[Spec, ...] = (
    ("loss_metric", ()),
    ("fc_no_bias", (128,)),
    ("avg_pool", (0, 0, 1, 1)),
    *_ares_down(256),                                   # alevel0
    *_ares(256), *_ares(256), *_ares_down(256),         # alevel1
    *_ares(128), *_ares(128), *_ares_down(128),         # alevel2
    *_ares(64), *_ares(64), *_ares(64), *_ares_down(64),  # alevel3
    *_ares(32), *_ares(32), *_ares(32),                 # alevel4
    ("max_pool", (3, 3, 2, 2)),
    ("relu", ()),
    ("affine", ()),
    ("con", (32, 7, 7, 2, 2)),
    ("input_rgb_image_sized", (INPUT_SIZE,)),
)


def _default_padding(size: int, stride: int) -> int:
    """dlib's template default: `_stride != 1 ? 0 : _size/2`."""
    return 0 if stride != 1 else size // 2


# ------------------------------------------------------------------ primitives


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self._data):
            raise DlibModelError(f"file truncated at byte {self.pos} (wanted {n} more)")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        ctrl = self.take(1)[0]
        if ctrl & 0x70:
            raise DlibModelError(f"bad integer control byte {ctrl:#x} at byte {self.pos - 1}")
        size = ctrl & 0x0F
        if not 1 <= size <= 8:
            raise DlibModelError(f"bad integer size {size} at byte {self.pos - 1}")
        value = int.from_bytes(self.take(size), "little")
        return -value if ctrl & 0x80 else value

    def count(self) -> int:
        value = self.integer()
        if value < 0:
            raise DlibModelError(f"negative size at byte {self.pos}")
        return value

    def real(self) -> float:
        if self.pos < len(self._data) and self._data[self.pos] & 0x70:
            raise DlibModelError("old ASCII float encoding is not supported")
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # dlib's is_inf / is_ninf / is_nan markers
            raise DlibModelError("non-finite hyper-parameter in model file")
        return math.ldexp(mantissa, exponent)

    def string(self) -> str:
        n = self.count()
        if n > 256:
            raise DlibModelError(f"implausible string length {n} at byte {self.pos}")
        return bytes(self.take(n)).decode("ascii", errors="replace")

    def boolean(self) -> bool:
        ch = self.take(1)[0]
        if ch not in (ord("0"), ord("1")):
            raise DlibModelError(f"bad bool byte {ch:#x} at byte {self.pos - 1}")
        return ch == ord("1")

    def version(self, allowed: tuple[int, ...], what: str) -> int:
        v = self.integer()
        if v not in allowed:
            raise DlibModelError(f"{what}: unexpected version {v}")
        return v

    def tag(self, allowed: tuple[str, ...]) -> str:
        at = self.pos
        s = self.string()
        if s not in allowed:
            raise DlibModelError(f"unexpected layer tag {s!r} at byte {at} (expected one of {allowed})")
        return s

    def tensor(self) -> np.ndarray:
        self.version((2,), "tensor")
        dims = tuple(self.count() for _ in range(4))
        n = math.prod(dims)
        raw = self.take(4 * n)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_shape(self) -> tuple[int, int, int, int]:
        self.version((1,), "alias_tensor")
        n, k, nr, nc = (self.count() for _ in range(4))
        return n, k, nr, nc

    def at_end(self) -> bool:
        return self.pos == len(self._data)


# ------------------------------------------------------------------ layer details


def _read_input(r: _Reader, size: int) -> InputRGB:
    r.tag(("input_rgb_image_sized",))
    mean = (r.real(), r.real(), r.real())
    nr, nc = r.count(), r.count()
    if (nr, nc) != (size, size):
        raise DlibModelError(f"input is {nr}x{nc}, expected {size}x{size}")
    return InputRGB(mean_rgb=mean)


def _read_con(r: _Reader, args: tuple[int, ...]) -> Conv:
    n, kh, kw, sy, sx = args
    version = r.tag(("con_4", "con_5", "con_6"))
    params = r.tensor()
    num_filters = r.count()
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(6))
    filters = r.alias_shape()
    biases = r.alias_shape()
    for _ in range(4):
        r.real()  # learning-rate and weight-decay multipliers (training only)
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6" and r.boolean():
        raise DlibModelError("con_ with fused relu is not expected in this network")
    expected = (n, kh, kw, sy, sx, _default_padding(kh, sy), _default_padding(kw, sx))
    if (num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x) != expected:
        raise DlibModelError(f"con_ geometry {(num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x)} != {expected}")
    if filters[0] != n or filters[2:] != (kh, kw) or not use_bias or biases != (1, n, 1, 1):
        raise DlibModelError(f"con_ tensors {filters}, {biases} do not fit {n} filters of {kh}x{kw}")
    flat = params.reshape(-1)
    size_w = math.prod(filters)
    if flat.size != size_w + n:
        raise DlibModelError(f"con_ has {flat.size} parameters, expected {size_w + n}")
    return Conv(flat[:size_w].reshape(filters).copy(), flat[size_w:].copy(), stride=sy, padding=pad_y)


def _read_affine(r: _Reader) -> Affine:
    version = r.tag(("affine_", "affine_2"))
    params = r.tensor().reshape(-1)
    gamma, beta = r.alias_shape(), r.alias_shape()
    mode = r.integer()
    if version == "affine_2" and r.boolean():
        raise DlibModelError("disabled affine_ layer is not expected in this network")
    if mode != 0 or gamma != beta or gamma[0] != 1 or gamma[2:] != (1, 1):
        raise DlibModelError(f"affine_ mode {mode} with shapes {gamma}, {beta} is not a per-channel affine")
    k = gamma[1]
    if params.size != 2 * k:
        raise DlibModelError(f"affine_ has {params.size} parameters, expected {2 * k}")
    return Affine(params[:k].copy(), params[k:].copy())


def _read_relu(r: _Reader) -> Relu:
    if r.tag(("relu_", "relu_2")) == "relu_2" and r.boolean():
        raise DlibModelError("disabled relu_ layer is not expected in this network")
    return Relu()


def _read_pool(r: _Reader, kind: str, args: tuple[int, ...]) -> Pool:
    nr_e, nc_e, sy_e, sx_e = args
    r.tag((f"{kind}_pool_2",))
    got = tuple(r.integer() for _ in range(6))
    expected = (nr_e, nc_e, sy_e, sx_e, _default_padding(nr_e, sy_e), _default_padding(nc_e, sx_e))
    if got != expected:
        raise DlibModelError(f"{kind}_pool geometry {got} != {expected}")
    return Pool(kind=kind, size=nr_e, stride=sy_e, padding=expected[4])


def _read_fc(r: _Reader, outputs: int) -> FullyConnected:
    version = r.tag(("fc_2", "fc_3"))
    num_outputs, num_inputs = r.count(), r.count()
    params = r.tensor()
    weights, _biases = r.alias_shape(), r.alias_shape()
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    if version == "fc_3":
        r.boolean()
    if bias_mode != 1 or num_outputs != outputs or weights[:2] != (num_inputs, outputs):
        raise DlibModelError(f"fc_ {num_inputs}->{num_outputs} (bias mode {bias_mode}) is not fc_no_bias<{outputs}>")
    if params.size != num_inputs * outputs:
        raise DlibModelError(f"fc_ has {params.size} parameters, expected {num_inputs * outputs}")
    return FullyConnected(params.reshape(num_inputs, outputs).copy())


def _read_details(r: _Reader, kind: str, args: tuple[int, ...]) -> Op:
    if kind == "con":
        return _read_con(r, args)
    if kind == "affine":
        return _read_affine(r)
    if kind == "relu":
        return _read_relu(r)
    if kind in ("max_pool", "avg_pool"):
        return _read_pool(r, kind.split("_")[0], args)
    if kind == "add_prev":
        r.tag(("add_prev_",))
        return AddPrev(args[0])
    if kind == "fc_no_bias":
        return _read_fc(r, args[0])
    raise DlibModelError(f"no reader for layer kind {kind!r}")  # pragma: no cover - EXPECTED_CHAIN is fixed


# ------------------------------------------------------------------ the nested wrappers (dnn/core.h)


def _read_layer_tail(r: _Reader, version: int, over_input: bool) -> None:
    """add_layer's bookkeeping after the details: flags and (normally empty) training tensors."""
    for _ in range(3):
        r.boolean()
    for _ in range(3):
        r.tensor()  # x_grad, cached_output, params_grad / grad_final
    if over_input and version >= 3:
        r.count()  # _sample_expansion_factor


def _read_chain(r: _Reader, chain: tuple[Spec, ...], i: int, ops: list[Op]) -> None:
    kind, args = chain[i]
    inner_kind = chain[i + 1][0] if i + 1 < len(chain) else ""
    if kind in ("tag", "skip"):
        if inner_kind == "input_rgb_image_sized":
            raise DlibModelError("tag directly over the input is not expected")
        r.version((1,), f"add_{kind}_layer")
        _read_chain(r, chain, i + 1, ops)
        ops.append(Tag(args[0]) if kind == "tag" else Skip(args[0]))
        return
    if inner_kind == "input_rgb_image_sized":
        version = r.version((2, 3), "add_layer over input")
        ops.append(_read_input(r, chain[i + 1][1][0]))
        ops.append(_read_details(r, kind, args))
        _read_layer_tail(r, version, over_input=True)
        return
    version = r.version((1, 2), "add_layer")
    _read_chain(r, chain, i + 1, ops)
    ops.append(_read_details(r, kind, args))
    for _ in range(3):
        r.boolean()
    for _ in range(3 if version == 2 else 2):
        r.tensor()


def parse(data: bytes) -> DlibResnet:
    """The network in `data` (the bytes of dlib's .dat file); raises `DlibModelError` on any surprise."""
    r = _Reader(data)
    r.version((1,), "add_loss_layer")
    loss = r.tag(("loss_metric_", "loss_metric_2"))
    if loss == "loss_metric_2":
        r.real()  # margin
        r.real()  # distance threshold
    ops: list[Op] = []
    _read_chain(r, EXPECTED_CHAIN, 1, ops)
    if not r.at_end():
        raise DlibModelError(f"{len(data) - r.pos} unexpected trailing bytes")
    return DlibResnet(tuple(ops))


def load(path: Path) -> DlibResnet:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DlibModelError(f"cannot read {path.name}: {exc.strerror}") from exc
    return parse(data)
