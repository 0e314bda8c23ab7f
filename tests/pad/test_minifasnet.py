"""MiniFASNet: the safe checkpoint reader, the import, the ONNX graph against PyTorch, the cue."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limen.bio.face import detect
from limen.bio.face.detect import Box
from limen.capture import load_image
from limen.errors import BadModelFile, BadRequest, ConfigError
from limen.pad import minifasnet as mf
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.minifasnet_models import import_models, load_model, status
from limen.pad.onnx_minifasnet import Variant
from limen.pad.torchzip import read_state_dict
from tests.conftest import SHARED_MODELS
from tests.pad.helpers import fake_view, nuaa_files
from tests.pad.test_contract import PadCueContract

# ------------------------------------------------------------------ hand-built checkpoints (no torch needed)


def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _i(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_ORDERED_DICT = _global("collections", "OrderedDict") + b")R"


def _state_pickle(tensors: dict[str, tuple[str, int, tuple[int, ...], tuple[int, ...], int]],
                  inject: bytes = b"") -> bytes:
    """Protocol-2 pickle of an OrderedDict name -> _rebuild_tensor_v2(storage, offset, size, stride, False, {})."""
    body = b""
    for name, (key, offset, size, stride, numel) in tensors.items():
        pid = _tuple([_u("storage"), _global("torch", "FloatStorage"), _u(key), _u("cpu"), _i(numel)]) + b"Q"
        args = _tuple([pid, _i(offset), _tuple([_i(s) for s in size]), _tuple([_i(s) for s in stride]), b"\x89",
                       _ORDERED_DICT])
        body += _u(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    return b"\x80\x02" + inject + _ORDERED_DICT + b"(" + body + b"u."


def _zip_checkpoint(state_pickle: bytes, blobs: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", state_pickle)
        for key, blob in blobs.items():
            z.writestr(f"archive/data/{key}", blob)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _legacy_checkpoint(state_pickle: bytes, blobs: dict[str, bytes]) -> bytes:
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    tail = pickle.dumps(list(blobs), protocol=2)
    for blob in blobs.values():
        tail += struct.pack("<q", len(blob) // 4) + blob
    return head + state_pickle + tail


_STORE = np.arange(24, dtype="<f4")
_TENSORS = {
    "module.conv.weight": ("0", 0, (2, 3, 2, 2), (12, 4, 2, 1), 24),  # contiguous, DataParallel prefix
    "bn.bias": ("0", 5, (3,), (1,), 24),  # a view with an offset into a shared storage
    "linear.weight": ("1", 0, (3, 2), (1, 3), 6),  # transposed (non-contiguous) strides
}
_BLOBS = {"0": _STORE.tobytes(), "1": np.arange(6, dtype="<f4").tobytes()}


@pytest.mark.parametrize("container", [_zip_checkpoint, _legacy_checkpoint])
def test_reader_rebuilds_tensors_from_both_formats(container) -> None:
    state = read_state_dict(container(_state_pickle(_TENSORS), _BLOBS), "synthetic")
    assert set(state) == {"conv.weight", "bn.bias", "linear.weight"}
    np.testing.assert_array_equal(state["conv.weight"], _STORE.reshape(2, 3, 2, 2))
    np.testing.assert_array_equal(state["bn.bias"], [5, 6, 7])
    np.testing.assert_array_equal(state["linear.weight"], np.arange(6).reshape(2, 3).T)
    assert state["conv.weight"].dtype == np.float32


@pytest.mark.parametrize("container", [_zip_checkpoint, _legacy_checkpoint])
@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"), ("subprocess", "call"),
                                         ("torch", "load"), ("collections", "defaultdict")])
def test_reader_refuses_any_other_global(container, module: str, name: str, tmp_path: Path) -> None:
    witness = tmp_path / "pwned"
    hostile = _global(module, name) + _u(f"touch {witness}") + b"\x85R0"  # call(arg), result popped
    with pytest.raises(BadModelFile, match=f"refused global {module}.{name}"):
        read_state_dict(container(_state_pickle(_TENSORS, inject=hostile), _BLOBS), "hostile.pth")
    assert not witness.exists()


def test_a_hostile_pickle_cannot_alter_the_reader_for_later_loads() -> None:
    poison = b"}" + _u("dtype") + _u("<i8") + b"sb0"  # BUILD {"dtype": "<i8"} on the allowed object, popped
    for target in (_global("torch", "FloatStorage"), _global("collections", "OrderedDict")):
        with pytest.raises(BadModelFile):
            read_state_dict(_zip_checkpoint(_state_pickle(_TENSORS, inject=target + poison), _BLOBS), "x.pth")
    state = read_state_dict(_zip_checkpoint(_state_pickle(_TENSORS), _BLOBS), "x.pth")
    assert state["conv.weight"].dtype == np.float32
    np.testing.assert_array_equal(state["conv.weight"].ravel(), _STORE)


@pytest.mark.parametrize("data,reason", [
    (b"", "not a readable torch checkpoint"),
    (b"definitely not a checkpoint", "not a readable torch checkpoint"),
    (b"PK\x03\x04garbage", "not a readable torch checkpoint"),
])
def test_reader_refuses_garbage(data: bytes, reason: str) -> None:
    with pytest.raises(BadModelFile, match=reason):
        read_state_dict(data, "x.pth")


def test_reader_refuses_truncation_and_out_of_bounds_views() -> None:
    good = _legacy_checkpoint(_state_pickle(_TENSORS), _BLOBS)
    for cut in (len(good) - 1, len(good) - 30, len(good) // 2, 40):
        with pytest.raises(BadModelFile, match="x.pth"):
            read_state_dict(good[:cut], "x.pth")
    past_end = dict(_TENSORS, **{"bn.bias": ("0", 22, (3,), (1,), 24)})
    with pytest.raises(BadModelFile, match="past its storage"):
        read_state_dict(_zip_checkpoint(_state_pickle(past_end), _BLOBS), "x.pth")
    with pytest.raises(BadModelFile, match="missing"):
        read_state_dict(_zip_checkpoint(_state_pickle(_TENSORS), {"0": _BLOBS["0"]}), "x.pth")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_reader_never_fails_otherwise_than_with_bad_model_file(data) -> None:
    container = data.draw(st.sampled_from([_zip_checkpoint, _legacy_checkpoint]))
    blob = bytearray(container(_state_pickle(_TENSORS), _BLOBS))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(blob)))
    try:
        state = read_state_dict(bytes(blob[:cut]), "fuzz.pth")
    except BadModelFile:
        return
    assert all(isinstance(v, np.ndarray) for v in state.values())


# ------------------------------------------------------------------ import


def _source(variant: Variant) -> Path:
    path = SHARED_MODELS / "minifasnet" / variant.spec.source_file
    if not path.is_file():
        pytest.skip(f"shared models not available: {path}")
    return path


def test_pinned_digests_are_those_of_the_shared_weights() -> None:
    for variant in Variant:
        assert hashlib.sha256(_source(variant).read_bytes()).hexdigest() == variant.spec.source_sha256


def test_import_refuses_altered_truncated_or_hostile_files_and_writes_nothing(tmp_path: Path) -> None:
    good = _source(Variant.V2).read_bytes()
    models = tmp_path / "models"
    altered = bytearray(good)
    altered[len(good) // 2] ^= 1
    hostile = _zip_checkpoint(_state_pickle(_TENSORS, inject=_global("os", "system") + _u("true") + b"\x85R0"),
                              _BLOBS)
    for content, reason in ((bytes(altered), "not the pinned"), (good[:-100], "not the pinned"),
                            (hostile, "not the pinned")):
        folder = tmp_path / "in"
        folder.mkdir(exist_ok=True)
        (folder / Variant.V2.spec.source_file).write_bytes(content)
        with pytest.raises(BadModelFile, match=reason):
            import_models(folder, models)
        assert not models.exists()
    # all or nothing: a good V1SE beside a bad V2 is not imported either
    shutil.copy(_source(Variant.V1SE), tmp_path / "in" / Variant.V1SE.spec.source_file)
    with pytest.raises(BadModelFile):
        import_models(tmp_path / "in", models)
    assert not models.exists()
    with pytest.raises(BadModelFile, match="holds none of"):
        import_models(tmp_path, models)
    with pytest.raises(BadModelFile, match="not a regular file"):
        import_models(Path("/dev/null"), models)
    with pytest.raises(BadModelFile, match="no such file"):
        import_models(tmp_path / "nowhere", models)
    assert not models.exists()


def test_import_writes_models_with_manifests_and_list_verifies_them(tmp_path: Path) -> None:
    renamed = tmp_path / "weights.bin"  # recognised by digest, whatever its name
    shutil.copy(_source(Variant.V1SE), renamed)
    written = import_models(renamed, tmp_path / "models")
    assert [m.model for m in written] == ["MiniFASNetV1SE"]
    rows = {r.variant: r for r in status(tmp_path / "models")}
    assert rows[Variant.V1SE].verified and not rows[Variant.V2].imported
    onnx_bytes = load_model(tmp_path / "models", Variant.V1SE)
    assert hashlib.sha256(onnx_bytes).hexdigest() == written[0].onnx_sha256


def _tampered(models_dir: Path, tmp_path: Path, what: str) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(models_dir, copy)
    target = copy / "minifasnet" / ("MiniFASNetV2.onnx" if what == "onnx" else "MiniFASNetV2.json")
    data = bytearray(target.read_bytes())
    if what == "onnx":
        data[-10] ^= 0x40
    else:
        data = bytearray(data.replace(b'"format": 1', b'"format": 9'))
    target.write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize("what", ["onnx", "manifest"])
def test_tampered_import_stops_the_cue_with_a_config_error(minifasnet_models_dir: Path, tmp_path: Path,
                                                           what: str) -> None:
    tampered = _tampered(minifasnet_models_dir, tmp_path, what)
    cue = mf.MiniFasNetCue(tampered)
    with pytest.raises(ConfigError, match="MiniFASNetV2"):
        cue.check()
    with pytest.raises(ConfigError):
        cue.score(PadSample((fake_view(),), analysed=1), Purpose.VERIFY)
    assert not {r.variant: r for r in status(tampered)}[Variant.V2].verified


# ------------------------------------------------------------------ the cue


def test_cue_is_unavailable_without_imported_models(tmp_path: Path) -> None:
    sample = PadSample((fake_view(),), analysed=1)
    for cue in (mf.MiniFasNetCue(tmp_path / "empty"), mf.MiniFasNetCue(None)):
        assert cue.check() is False
        assert cue.score(sample, Purpose.VERIFY) == CueUnavailable("minifasnet", "model_not_imported")
    assert mf.MiniFasNetCue(tmp_path).score(PadSample((), analysed=2), Purpose.VERIFY) == CueUnavailable(
        "minifasnet", "no_usable_face")


class TestMiniFasNetCueNotImported(PadCueContract):
    def make(self) -> mf.MiniFasNetCue:
        return mf.MiniFasNetCue(Path("/nonexistent/limen-models"))


class TestMiniFasNetCueImported(PadCueContract):
    @pytest.fixture(autouse=True)
    def _models(self, minifasnet_models_dir: Path) -> None:
        self.models_dir = minifasnet_models_dir

    def make(self) -> mf.MiniFasNetCue:
        return mf.MiniFasNetCue(self.models_dir)


def test_sessions_load_once_and_score_concurrently(minifasnet_models_dir: Path) -> None:
    import threading

    views = [fake_view(i, seed=i) for i in range(4)]
    frames, boxes = [v.frame.rgb for v in views], [v.box for v in views]
    mf._forget_sessions()
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(mf.minifasnet_scores(frames, boxes,
                                                                                   minifasnet_models_dir)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, results[0]) for r in results)
    assert len(mf._LOADED) == 1


def test_crop_follows_upstream_box_arithmetic() -> None:
    # 40×40 face in the top-right corner of 640×480: the 2.7× box (108 px) is shifted back inside the image
    assert mf.crop_box(640, 480, Box(600, 10, 640, 50), 2.7) == (531, 0, 639, 108)
    # a centred face: scaled about its centre
    assert mf.crop_box(640, 480, Box(300, 200, 340, 240), 2.7) == (266, 166, 374, 274)
    # the scale is capped so the box fits the image: 4.0 × 200 > 479
    assert mf.crop_box(640, 480, Box(200, 100, 400, 300), 4.0) == (60, 0, 539, 479)
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB must be the last channel in the BGR patch
    patch = mf.crop(rgb, Box(300, 200, 340, 240), 2.7)
    assert patch.shape == (80, 80, 3) and patch.dtype == np.uint8
    assert (patch[..., 2] == 200).all() and (patch[..., :2] == 0).all()


def test_cue_refuses_bad_frames(minifasnet_models_dir: Path) -> None:
    cue = mf.MiniFasNetCue(minifasnet_models_dir)
    rgb = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(BadRequest, match="frames"):
        cue.minifasnet_scores([rgb.astype(np.float32)], [Box(10, 10, 50, 50)])
    with pytest.raises(BadRequest, match="boxes"):
        cue.minifasnet_scores([rgb], [Box(10, 10, 10, 50)])
    with pytest.raises(BadRequest, match="boxes"):
        cue.minifasnet_scores([rgb, rgb], [Box(10, 10, 50, 50)])
    assert cue.minifasnet_scores([], []).shape == (0,)


def _nuaa_faces(kind: str, subjects: tuple[str, ...], per_subject: int) -> tuple[list[np.ndarray], list[Box]]:
    frames, boxes = [], []
    for subject in subjects:
        for f in nuaa_files(kind, subject, per_subject, stride=11):
            rgb = load_image(f)
            found = detect.detect_faces(rgb)
            if found:
                frames.append(rgb)
                boxes.append(found[0].box)
    return frames, boxes


def test_cue_separates_nuaa_live_from_print(minifasnet_models_dir: Path) -> None:
    """Gate on nuaa-dev (development data), single frames: AUC > 0.9; batching changes nothing."""
    cue = mf.MiniFasNetCue(minifasnet_models_dir)
    live_f, live_b = _nuaa_faces("live", ("0001", "0005", "0009"), 5)
    print_f, print_b = _nuaa_faces("print", ("0001", "0005", "0009"), 5)
    assert len(live_f) >= 10 and len(print_f) >= 10
    live, attack = cue.minifasnet_scores(live_f, live_b), cue.minifasnet_scores(print_f, print_b)
    auc = float(np.mean(live[:, None] > attack[None, :]))
    assert auc > 0.9, auc
    one_by_one = np.array([cue.minifasnet_scores([f], [b])[0] for f, b in zip(live_f[:3], live_b[:3], strict=True)])
    np.testing.assert_allclose(one_by_one, live[:3], atol=1e-4)


def test_cue_scores_a_sample_with_its_thresholds(minifasnet_models_dir: Path) -> None:
    from limen import thresholds

    frames, boxes = _nuaa_faces("live", ("0002",), 2)
    if not frames:
        pytest.skip("no face found")
    view = fake_view()
    views = tuple(type(view)(index=i, frame=type(view.frame)(rgb=f), box=b, points=view.points, crop=view.crop)
                  for i, (f, b) in enumerate(zip(frames, boxes, strict=True)))
    cue = mf.MiniFasNetCue(minifasnet_models_dir)
    verify = cue.score(PadSample(views, analysed=len(views)), Purpose.VERIFY)
    enrol = cue.score(PadSample(views, analysed=len(views)), Purpose.ENROL)
    assert isinstance(verify, CueScore) and isinstance(enrol, CueScore)
    assert verify.threshold == thresholds.PAD_MINIFASNET_VERIFY and enrol.threshold == thresholds.PAD_MINIFASNET_ENROL
    assert verify.score == pytest.approx(float(np.mean(cue.minifasnet_scores(frames, boxes))))
    assert verify.evidence["frames"] == len(frames)


# ------------------------------------------------------------------ equality with the reference (PyTorch)


def _reference_network(torch, se: bool, keep: list[int]):
    """Upstream's MiniFASNet (src/model_lib/MiniFASNet.py) in its module layout, for the 80×80 input."""
    nn = torch.nn

    class ConvBlock(nn.Module):  # Conv_block (prelu=True) and Linear_block (prelu=False)
        def __init__(self, cin, cout, k=1, s=1, p=0, groups=1, prelu=True):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(cout)
            self.prelu = nn.PReLU(cout) if prelu else None

        def forward(self, x):
            x = self.bn(self.conv(x))
            return self.prelu(x) if self.prelu is not None else x

    class SEModule(nn.Module):
        def __init__(self, channels, reduction=4):
            super().__init__()
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels // reduction)
            self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            y = torch.relu(self.bn1(self.fc1(self.avg_pool(x))))
            return x * torch.sigmoid(self.bn2(self.fc2(y)))

    class DepthWise(nn.Module):  # Depth_Wise and Depth_Wise_SE
        def __init__(self, c1, c2, c3, residual, stride, se_block=False):
            super().__init__()
            self.conv = ConvBlock(c1[0], c1[1])
            self.conv_dw = ConvBlock(c2[0], c2[1], 3, stride, 1, groups=c2[0])
            self.project = ConvBlock(c3[0], c3[1], prelu=False)
            self.residual = residual
            if se_block:
                self.se_module = SEModule(c3[1])
            self.se_block = se_block

        def forward(self, x):
            y = self.project(self.conv_dw(self.conv(x)))
            if not self.residual:
                return y
            return x + (self.se_module(y) if self.se_block else y)

    class Residual(nn.Module):  # Residual and ResidualSE (SE on the last block)
        def __init__(self, starts):
            super().__init__()
            k = keep
            self.model = nn.Sequential(*[
                DepthWise((k[i], k[i + 1]), (k[i + 1], k[i + 2]), (k[i + 2], k[i + 3]), True, 1,
                          se and n == len(starts) - 1) for n, i in enumerate(starts)])

        def forward(self, x):
            return self.model(x)

    class MiniFASNet(nn.Module):
        def __init__(self):
            super().__init__()
            k = keep
            self.conv1 = ConvBlock(3, k[0], 3, 2, 1)
            self.conv2_dw = ConvBlock(k[0], k[1], 3, 1, 1, groups=k[1])
            self.conv_23 = DepthWise((k[1], k[2]), (k[2], k[3]), (k[3], k[4]), False, 2)
            self.conv_3 = Residual([4, 7, 10, 13])
            self.conv_34 = DepthWise((k[16], k[17]), (k[17], k[18]), (k[18], k[19]), False, 2)
            self.conv_4 = Residual([19, 22, 25, 28, 31, 34])
            self.conv_45 = DepthWise((k[37], k[38]), (k[38], k[39]), (k[39], k[40]), False, 2)
            self.conv_5 = Residual([40, 43])
            self.conv_6_sep = ConvBlock(k[46], k[47])
            self.conv_6_dw = ConvBlock(k[47], k[48], 5, 1, 0, groups=k[48], prelu=False)  # get_kernel(80, 80)
            self.linear = nn.Linear(512, 128, bias=False)
            self.bn = nn.BatchNorm1d(128)
            self.drop = nn.Dropout(0.2)
            self.prob = nn.Linear(128, 3, bias=False)

        def forward(self, x):
            for stage in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4,
                          self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw):
                x = stage(x)
            return self.prob(self.drop(self.bn(self.linear(x.flatten(1)))))

    return MiniFASNet()


KEEP = {  # upstream keep_dict: '1.8M' (V1, V1SE) and '1.8M_' (V2)
    Variant.V1SE: [32, 32, 103, 103, 64, 13, 13, 64, 26, 26, 64, 13, 13, 64, 52, 52, 64, 231, 231, 128, 154, 154,
                   128, 52, 52, 128, 26, 26, 128, 52, 52, 128, 26, 26, 128, 26, 26, 128, 308, 308, 128, 26, 26, 128,
                   26, 26, 128, 512, 512],
    Variant.V2: [32, 32, 103, 103, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 231, 231, 128, 231, 231, 128,
                 52, 52, 128, 26, 26, 128, 77, 77, 128, 26, 26, 128, 26, 26, 128, 308, 308, 128, 26, 26, 128, 26, 26,
                 128, 512, 512],
}


@pytest.mark.parametrize("variant", list(Variant))
def test_onnx_graph_equals_the_pytorch_reference_on_nuaa_crops(variant: Variant, minifasnet_models_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    net = _reference_network(torch, variant.spec.squeeze_excitation, KEEP[variant])
    state = torch.load(_source(variant), map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    net.eval()
    frames, boxes = [], []
    for kind in ("live", "print"):
        f, b = _nuaa_faces(kind, ("0003", "0007"), 3)
        frames += f
        boxes += b
    assert len(frames) >= 8
    crops = np.stack([mf.crop(rgb, box, variant.spec.scale) for rgb, box in zip(frames, boxes, strict=True)])
    with torch.no_grad():  # upstream: BGR crop, to_tensor without /255, NCHW float
        expected = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float()).numpy()
    session = mf._sessions(minifasnet_models_dir).by_variant[variant]
    got = session.run(["logits"], {"crops": crops})[0]
    assert np.abs(got - expected).max() <= 1e-4
    assert np.ptp(expected[:, 1]) > 1.0  # the crops are not all alike: the comparison means something
