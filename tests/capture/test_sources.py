"""Hostile and odd images: each a clear `BadImage` naming the file, or a correct RGB array."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from limen.capture import load_capture, load_image
from limen.capture.sources import decode_image_bytes
from limen.errors import BadImage


def _save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)
    return path


def _png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of side×side pixels that compresses to a few tens of KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + side // 8)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_rgb_jpeg_round_trip(tmp_path: Path) -> None:
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[..., 0] = 200
    out = load_image(_save(Image.fromarray(arr), tmp_path / "a.png"))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 200


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16"])
def test_odd_modes_become_8bit_rgb(tmp_path: Path, mode: str) -> None:
    if mode == "I;16":
        img = Image.fromarray(np.full((20, 20), 40000, np.uint16))
        path = _save(img, tmp_path / "a.png")
    else:
        img = Image.new("RGB", (20, 20), (10, 120, 250)).convert(mode)
        path = _save(img, tmp_path / ("a.tiff" if mode == "CMYK" else "a.png"))
    out = load_image(path)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert out.max() > 0


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 40), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "r.jpg"
    img.save(path, exif=exif.tobytes())
    assert load_image(path).shape == (60, 40, 3)  # upright: height 60, width 40


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"GIF89a not really"), "not an image"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
    ],
)
def test_bad_files_name_file_and_reason(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(BadImage) as err:
        load_image(path)
    assert err.value.path == str(path) and reason in err.value.reason


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(buf, "JPEG")
    path = tmp_path / "t.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(BadImage, match="t.jpg"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _png_bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 2_000_000
    with pytest.raises(BadImage, match="too large"):
        load_image(path)
    with pytest.raises(BadImage, match="too large"):
        decode_image_bytes(path.read_bytes(), "bomb.png")


def test_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="directory"):
        load_image(tmp_path)
    with pytest.raises(BadImage, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_folder_of_frames_and_empty_folder(tmp_path: Path) -> None:
    for i in (0, 2, 10):
        _save(Image.new("RGB", (16, 12), (i * 20, 0, 0)), tmp_path / f"f_{i}.png")
    cap = load_capture(tmp_path)
    assert len(cap.frames) == 3
    assert [int(f.rgb[0, 0, 0]) for f in cap.frames] == [0, 40, 200]  # natural order: 2 before 10
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadImage, match="no image frames"):
        load_capture(empty)


def test_video_file_frames(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), i * 40, np.uint8))
    writer.release()
    cap = load_capture(path)
    assert len(cap.frames) == 5 and cap.frames[0].rgb.shape == (24, 32, 3)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(BadImage):
        load_capture(broken)


# ---------------------------------------------------------------------- memory bombs (issue 14, item 6)

_RSS_PROBE = """
import sys
from pathlib import Path
def peak_kb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])
import cv2, numpy  # noqa: F401  (counted in the baseline)
from limen.capture import load_capture
from limen.errors import BadImage
before = peak_kb()
try:
    load_capture(Path(sys.argv[1]), name="upload.avi")
    print("decoded")
except BadImage as exc:
    print("refused:", exc)
print(peak_kb() - before)
"""


@pytest.fixture(scope="module")
def huge_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MJPEG video that really declares 6000×6000 frames (4 of them, ~3.5 MB on disk), made in a subprocess."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("bomb") / "huge.avi"
    make = ("import cv2, numpy as np, sys\n"
            "w = cv2.VideoWriter(sys.argv[1], cv2.VideoWriter_fourcc(*'MJPG'), 10, (6000, 6000))\n"
            "f = np.zeros((6000, 6000, 3), np.uint8); f[::50] = 255\n"
            "[w.write(f) for _ in range(4)]\nw.release()\n")
    subprocess.run([sys.executable, "-c", make, str(path)], check=True, timeout=120)
    return path


def test_a_video_declaring_huge_frames_is_refused_before_decoding(huge_video: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(huge_video)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[0].startswith("refused: upload.avi: image too large (6000×6000")  # the upload's name, no temp path
    grown_mb = int(out[1]) / 1024
    assert grown_mb < 64, f"peak memory grew {grown_mb:.0f} MB while refusing"  # one frame alone is 103 MB


def test_frames_share_one_pixel_budget(tmp_path: Path) -> None:
    from limen.capture.sources import PixelBudget

    png = io.BytesIO()
    Image.new("RGB", (100, 100)).save(png, "PNG")
    budget = PixelBudget(total=25_000)
    decode_image_bytes(png.getvalue(), "a.png", budget)
    decode_image_bytes(png.getvalue(), "b.png", budget)
    with pytest.raises(BadImage, match="too many pixels"):
        decode_image_bytes(png.getvalue(), "c.png", budget)


def test_a_video_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    import cv2

    from limen.capture.sources import PixelBudget

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), i * 20, np.uint8))
    writer.release()
    cap = load_capture(path, budget=PixelBudget(total=32 * 24 * 4))
    assert len(cap.frames) == 4
    with pytest.raises(BadImage, match="too many pixels"):
        load_capture(path, budget=PixelBudget(total=100))


def test_errors_name_the_upload_not_the_server_path(tmp_path: Path) -> None:
    broken = tmp_path / "secret-dir" / "upload.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(BadImage) as err:
        load_capture(broken, name="holiday.mp4")
    assert str(err.value).startswith("holiday.mp4:") and "secret-dir" not in str(err.value)


def _pil_reference(data: bytes) -> np.ndarray:
    """What PIL decodes (upright, RGB): the pixels the JPEG path must give."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray((ImageOps.exif_transpose(img) or img).convert("RGB"))


def _jpeg(arr: np.ndarray, mode: str = "RGB", orientation: int = 1, **kw: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, "JPEG", exif=exif, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("mode", "kw"), [("RGB", {}), ("RGB", {"subsampling": 0}), ("RGB", {"progressive": True}),
                                          ("L", {})])
def test_jpeg_decoded_once_gives_pils_pixels_upright(orientation: int, mode: str, kw: dict[str, object],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.random.default_rng(orientation).integers(0, 255, (48, 64, 3), np.uint8)
    data = _jpeg(arr, mode, orientation, **kw)
    expected = _pil_reference(data)

    def no_pil_decode(self: Image.Image) -> None:
        raise AssertionError("PIL decoded the pixels: the JPEG was decoded twice")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_pil_decode)
    out = decode_image_bytes(data, "a.jpg")
    assert out.shape == expected.shape == ((64, 48, 3) if orientation >= 5 else (48, 64, 3))
    assert np.array_equal(out, expected)
    assert out.flags.c_contiguous and out.dtype == np.uint8


def test_jpeg_frames_of_the_face_data_decode_to_pils_pixels() -> None:
    from tests.conftest import shared

    files = sorted(shared("nuaa-dev", "live").rglob("*.jpg"))[:20]
    assert files
    for path in files:
        assert np.array_equal(load_image(path), _pil_reference(path.read_bytes())), path


def test_cmyk_jpeg_stays_with_pil(tmp_path: Path) -> None:
    data = _jpeg(np.full((20, 30, 3), 120, np.uint8), "CMYK")
    assert np.array_equal(decode_image_bytes(data), _pil_reference(data))


def test_damaged_jpeg_body_is_refused() -> None:
    data = bytearray(_jpeg(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)))
    start = data.index(b"\xff\xda")  # start of scan: cut the entropy-coded data short
    with pytest.raises(BadImage, match="up.jpg"):
        decode_image_bytes(bytes(data[: start + 40]), "up.jpg")
