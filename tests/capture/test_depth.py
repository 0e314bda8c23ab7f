"""Depth/IR capture: registration, recordings through librealsense's software device, missing SDKs."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from limen.capture import Extrinsics, Frame, Intrinsics, StreamGeometry
from limen.capture import depth as sources
from limen.errors import BadRequest, SensorUnavailable


def _realsense_or_skip() -> None:
    try:
        sources.sdk("pyrealsense2", sources.REALSENSE)
    except SensorUnavailable as exc:
        pytest.skip(str(exc))


def test_registration_shifts_depth_by_the_baseline_parallax() -> None:
    cam = Intrinsics(80, 60, 100.0, 100.0, 40.0, 30.0)
    geometry = StreamGeometry(colour=cam, depth=cam, ir=cam, depth_to_colour=Extrinsics(translation=(50.0, 0.0, 0.0)))
    depth = np.full((60, 80), 1000.0, np.float32)  # a wall at 1 m: 50 mm baseline = 5 px at f = 100
    depth[:, :10] = 0
    ir = np.tile(np.arange(80, dtype=np.uint8), (60, 1))
    reg, reg_ir = sources.register_to_colour(depth, ir, geometry)
    assert reg_ir is not None
    assert reg[30, 40] == pytest.approx(1000.0)
    assert reg_ir[30, 40] == 35  # the IR pixel 5 columns to the left lands here
    assert (reg[:, :15] == 0).all()  # the depth camera's holes moved with it


def test_registration_refuses_mismatched_shapes() -> None:
    cam = Intrinsics(8, 6, 10.0, 10.0, 4.0, 3.0)
    with pytest.raises(BadRequest):
        sources.register_to_colour(np.ones((5, 5), np.float32), None, StreamGeometry(colour=cam, depth=cam))


def test_missing_sdk_names_the_package_and_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_depthai(name: str, *args: object, **kwargs: object) -> object:
        if name == "depthai":
            raise ModuleNotFoundError("No module named 'depthai'", name="depthai")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_depthai)
    with pytest.raises(SensorUnavailable) as err:
        sources.OakSource().capture(3)
    assert err.value.package == "depthai" and "OAK-D" in str(err.value)


def test_a_camera_that_gives_nothing_is_an_error_and_a_short_burst_says_it_stopped() -> None:
    with pytest.raises(SensorUnavailable):
        sources._capture([], "realsense:x", "no frames for 1000 ms after 0 frame(s)")
    frame = Frame(rgb=np.zeros((4, 4, 3), np.uint8))
    cap = sources._capture([frame], "realsense:x", "no frames for 1000 ms after 1 frame(s)")
    assert "stopped" in cap.meta


def _frames(n: int = 5) -> list[Frame]:
    rng = np.random.default_rng(3)
    cam = Intrinsics(64, 48, 60.0, 60.0, 32.0, 24.0)
    geometry = StreamGeometry(colour=cam, depth=cam, ir=cam)
    return [Frame(rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), t=i / 30,
                  depth=rng.uniform(300, 900, (48, 64)).astype(np.float32),
                  ir=rng.integers(0, 255, (48, 64), dtype=np.uint8), geometry=geometry) for i in range(n)]


def test_a_recording_plays_back_through_the_camera_source_losslessly(tmp_path: Path) -> None:
    _realsense_or_skip()
    frames = _frames()
    path = sources.write_realsense_recording(tmp_path / "sim.db3", frames, device_id="SIMTEST")
    cap = sources.RealSenseSource(recording=path).capture(10)
    assert len(cap.frames) == len(frames) and "stopped" not in cap.meta
    for want, got in zip(frames, cap.frames, strict=True):
        assert got.device == "realsense:SIMTEST"
        assert np.array_equal(want.rgb, got.rgb)
        assert got.depth is not None and want.depth is not None and got.ir is not None
        assert np.abs(np.round(want.depth) - got.depth).max() == 0
        assert np.array_equal(want.ir, got.ir)
        assert got.t == pytest.approx(want.t, abs=1e-6)


def test_capture_inspect_writes_depth_and_ir_previews(tmp_path: Path) -> None:
    _realsense_or_skip()
    from limen.cli import app  # the whole CLI, imported only by the test that drives it

    path = sources.write_realsense_recording(tmp_path / "sim.db3", _frames(3))
    result = CliRunner().invoke(app, ["--json", "capture", "inspect", str(path), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"colour.png", "depth.png", "ir.png"}
    assert '"depth_hole_share": 0.0' in result.output


def test_a_file_that_is_not_a_recording_is_refused(tmp_path: Path) -> None:
    _realsense_or_skip()
    bogus = tmp_path / "x.db3"
    bogus.write_bytes(b"not a bag")
    with pytest.raises((BadRequest, SensorUnavailable)):
        sources.RealSenseSource(recording=bogus).capture(2)
