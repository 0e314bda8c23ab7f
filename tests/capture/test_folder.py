"""OAK-D / UVC recordings as PNG folders: written, read back stream by stream, inspected; bad folders refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from limen.capture import Capture, Frame
from limen.capture.folder import load_folder, save_folder
from limen.errors import BadImage


def _capture(n: int = 4) -> Capture:
    rng = np.random.default_rng(5)
    frames = tuple(Frame(rgb=rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), t=0.5 + i / 15,
                         depth=np.round(rng.uniform(300, 900, (24, 32))).astype(np.float32),
                         ir=rng.integers(0, 255, (24, 32), dtype=np.uint8), device="oak:1844", emitter_on=True)
                   for i in range(n))
    return Capture(frames, source="oak", meta={"stopped": "after 4 frames"})


def test_a_folder_reads_back_every_stream_losslessly(tmp_path: Path) -> None:
    want = _capture()
    assert save_folder(want, tmp_path) == 4
    got = load_folder(tmp_path)
    assert len(got.frames) == 4 and got.meta == {"stopped": "after 4 frames"}
    for a, b in zip(want.frames, got.frames, strict=True):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.ir, b.ir)
        assert b.depth is not None and b.depth.dtype == np.uint16 and np.array_equal(a.depth, b.depth)
        assert b.t == pytest.approx(a.t) and b.device == "oak:1844" and b.emitter_on is True
    assert len(load_folder(tmp_path, limit=2).frames) == 2


def test_a_depth_image_that_is_not_16_bit_millimetres_is_refused(tmp_path: Path) -> None:
    save_folder(_capture(2), tmp_path)
    cv2.imwrite(str(tmp_path / "0001_depth.png"), np.zeros((24, 32), np.uint8))
    with pytest.raises(BadImage, match="16-bit"):
        load_folder(tmp_path)


def test_a_stream_of_another_size_than_colour_is_refused(tmp_path: Path) -> None:
    save_folder(_capture(2), tmp_path)
    cv2.imwrite(str(tmp_path / "0000_ir.png"), np.zeros((12, 16), np.uint8))
    with pytest.raises(BadImage, match="differs from the colour"):
        load_folder(tmp_path)


def test_a_frame_without_colour_and_an_index_that_disagrees_are_refused(tmp_path: Path) -> None:
    save_folder(_capture(3), tmp_path)
    (tmp_path / "0002_colour.png").unlink()
    with pytest.raises(BadImage, match="needs its colour"):
        load_folder(tmp_path)
    doc = json.loads((tmp_path / "frames.json").read_text())
    doc["frames"] = doc["frames"][:1]
    (tmp_path / "frames.json").write_text(json.dumps(doc))
    (tmp_path / "0002_depth.png").unlink()
    (tmp_path / "0002_ir.png").unlink()
    with pytest.raises(BadImage, match="lists 1 frame"):
        load_folder(tmp_path)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="no NNNN_colour"):
        load_folder(tmp_path)


def test_capture_inspect_reads_a_recorded_folder(tmp_path: Path) -> None:
    from limen.cli import app  # the whole CLI, imported only by the test that drives it

    save_folder(_capture(), tmp_path / "rec")
    args = ["--json", "capture", "inspect", str(tmp_path / "rec"), "--out", str(tmp_path / "p")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"colour.png", "depth.png", "ir.png"}
    assert '"depth_hole_share": 0.0' in result.output and "oak:1844" in result.output
