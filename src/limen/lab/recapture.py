"""Recapture simulation: a live RGB image turned into a **simulated** print or screen attack.

`simulate(rgb, species, seed)` shows the live image on a medium (paper or a
display), places the medium in front of the camera, and photographs it again;
`simulate_burst(rgb, species, seed, frames)` does the same for a hand-held
medium over a ~2 s burst (a moving plane with hand tremor).  Every run is
deterministic for a seed.  Because the attack is made from the *same* live
frame, the capture conditions (camera, light, subject) are identical on both
sides of a training pair: only the recapture artefacts separate them.

Stages (each parameter cites where its range comes from):

- print (`print_matte`, `print_glossy`): reduced dynamic range and gamut of ink
  on paper, dot gain, an amplitude-modulated CMY halftone at the classic screen
  angles, paper fibre texture, a glare patch (strong on glossy stock), paper
  edge and fingers at the border, a slight bend and perspective;
- screen (`screen_phone`, `screen_tablet`, `screen_laptop`): the image
  resampled to the display's pixel grid with RGB stripe sub-pixels, displayed
  with the panel's gamma, gamut and black level, backlight bloom, a bezel,
  reflections of the room and refresh banding, then resampled by the camera at
  a random scale and angle (which is what makes moiré);
- camera: defocus, exposure, sensor noise, JPEG.

Limits: these are models of the artefacts, not of every printer and panel; a
detector that separates them may still miss a real high-quality attack.  All
figures obtained with them are labelled **simulated**.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np


class Species(StrEnum):
    PRINT_MATTE = "print_matte"
    PRINT_GLOSSY = "print_glossy"
    SCREEN_PHONE = "screen_phone"
    SCREEN_TABLET = "screen_tablet"
    SCREEN_LAPTOP = "screen_laptop"

    @property
    def is_print(self) -> bool:
        return self in (Species.PRINT_MATTE, Species.PRINT_GLOSSY)


SPECIES: tuple[Species, ...] = tuple(Species)


@dataclass(frozen=True)
class Display:
    """Ranges for one display class (drawn per presentation)."""

    pixels_per_camera_px: tuple[float, float]  # display pixels per camera pixel across the medium
    gamma: tuple[float, float]
    saturation: tuple[float, float]
    black_level: tuple[float, float]
    bezel: tuple[float, float]  # share of the medium's width


# Pixel density: phones 400–460 ppi, tablets ~264 ppi, laptops 110–220 ppi (manufacturers' specifications).
# Held 20–40 cm from a 640-px webcam with ~60° field of view, one camera pixel covers ~0.3–0.6 mm, i.e. roughly
# 1.5–2.5 phone pixels, 1–1.8 tablet pixels, 0.6–1.3 laptop pixels.
# Gamma: sRGB/BT.1886 panels 2.2–2.4 against the 2.2 the image was encoded for (IEC 61966-2-1) → relative 0.9–1.15.
# Gamut: phones with DCI-P3 panels show sRGB content ~10 % more saturated when unmanaged; budget laptops cover
# ~60–70 % of sRGB (notebookcheck panel reviews) → less saturated.
# Black level: LCD contrast ~1000:1, but ambient light reflected by the glass lifts black to 2–6 % of white.
DISPLAYS: dict[Species, Display] = {
    Species.SCREEN_PHONE: Display((1.4, 2.4), (0.9, 1.15), (1.0, 1.15), (0.01, 0.04), (0.03, 0.08)),
    Species.SCREEN_TABLET: Display((1.0, 1.8), (0.9, 1.1), (0.95, 1.1), (0.02, 0.05), (0.04, 0.09)),
    Species.SCREEN_LAPTOP: Display((0.7, 1.3), (0.9, 1.1), (0.75, 0.95), (0.03, 0.06), (0.02, 0.05)),
}
MAX_RENDER_SIDE = 1800  # bounds the sub-pixel canvas (memory, time)


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


# ------------------------------------------------------------------ the medium


def _print_medium(img: np.ndarray, species: Species, rng: np.random.Generator) -> np.ndarray:
    """Ink on paper (float 0–1, linear-ish reflectance), at 2× the source resolution for the halftone."""
    h, w = img.shape[:2]
    x = cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    # Gamut: CMYK offset/ink-jet gamut is ~70–80 % of sRGB (ISO 12647-2 / FOGRA39 vs sRGB) → desaturate.
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.7, 0.9)
    # Dot gain: ISO 12647-2 tone value increase of 12–18 % at 50 % → midtones darker (gamma 1.1–1.35).
    x = np.clip(x, 0, 1) ** rng.uniform(1.1, 1.35)
    # AM halftone per C, M, Y at the classic screen angles (15°, 75°, 0°); 2–4 render px per cell, so the cell
    # is 1–2 camera px: printed at 100–200 lpi and seen from 20–40 cm it sits at the sensor's Nyquist limit.
    period = rng.uniform(2.0, 4.0)
    yy, xx = np.mgrid[0 : 2 * h, 0 : 2 * w].astype(np.float32)
    ink = 1.0 - x
    out = np.empty_like(x)
    for c, angle in enumerate((15.0, 75.0, 0.0)):
        a = math.radians(angle + rng.uniform(-3, 3))
        u = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period)
        v = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period)
        screen = 0.5 + 0.25 * (np.cos(u) + np.cos(v))
        # Complementary ink: cyan absorbs red, magenta green, yellow blue (channel c).
        out[:, :, c] = 1.0 - (ink[:, :, c] > screen).astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 0.9))  # ink spreads into the paper (dot gain)
    # Dynamic range: uncoated paper reaches density ~1.3 (black ≈ 5 % reflectance), glossy photo paper ~2.2
    # (≈ 1 %); paper white reflects 85–92 % (ISO 2470 brightness).
    black = rng.uniform(0.04, 0.08) if species is Species.PRINT_MATTE else rng.uniform(0.01, 0.03)
    white = rng.uniform(0.85, 0.92)
    out = black + (white - black) * out
    # Paper fibre texture: 1–3 % multiplicative, correlation ~1 render px (visible under a loupe).
    fibre = cv2.GaussianBlur(rng.normal(0, 1, (2 * h, 2 * w)).astype(np.float32), (0, 0), 1.0)
    out *= 1.0 + rng.uniform(0.01, 0.03) * fibre[:, :, None] / (fibre.std() + 1e-6)
    return np.clip(out, 0, 1)


def _screen_medium(img: np.ndarray, species: Species, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The image on a display's RGB-stripe pixel grid; returns (canvas, render px per camera px)."""
    d = DISPLAYS[species]
    h, w = img.shape[:2]
    k = _u(rng, d.pixels_per_camera_px)
    k = min(k, MAX_RENDER_SIDE / (3 * max(h, w)))
    sw, sh = max(8, int(round(w * k))), max(8, int(round(h * k)))
    x = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    x = np.clip(x, 0, 1) ** _u(rng, d.gamma)
    grey = x.mean(axis=2, keepdims=True)
    x = np.clip(grey + (x - grey) * _u(rng, d.saturation), 0, 1)
    black = _u(rng, d.black_level)
    x = black + (1 - black) * x
    # Backlight bloom: light scattered in the diffuser, a wide glow (~6 display px) around bright areas (~3–8 %).
    x = x + rng.uniform(0.03, 0.08) * cv2.GaussianBlur(x, (0, 0), 6.0)
    # Each display pixel is three vertical stripes R, G, B, with a dark gap (the black matrix, ~10–20 % of area).
    big = np.repeat(np.repeat(x, 3, axis=0), 3, axis=1)
    stripes = np.zeros((1, 3 * sw, 3), dtype=np.float32)
    for c in range(3):
        stripes[0, c::3, c] = 1.0
    stripes *= 3.0 * rng.uniform(0.8, 0.9)  # keep mean luminance, lose the black-matrix share
    matrix = np.ones((3 * sh, 1, 1), dtype=np.float32)
    matrix[2::3] = rng.uniform(0.6, 0.85)  # the horizontal black-matrix line between pixel rows
    canvas = np.clip(big * stripes * matrix, 0, 1.5)
    # The sensor integrates each camera pixel's area (a box filter): bring the canvas to 2 samples per camera
    # pixel by area averaging; the grid's finer periods alias here and again when the camera samples.
    side = (2 * w, 2 * h)
    return cv2.resize(canvas, side, interpolation=cv2.INTER_AREA), 2.0


# ------------------------------------------------------------------ the scene


def _pose(rng: np.random.Generator, w: int, h: int, scale: float) -> np.ndarray:
    """Homography medium (w×h at camera scale) → camera frame: scale around the centre, tilt, small rotation."""
    s = scale * rng.uniform(0.8, 1.2)  # held so the face stays roughly as large; below 1 the edges show
    angle = math.radians(rng.uniform(-6, 6))
    tx, ty = rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.05, 0.05) * h
    c, si = math.cos(angle) * s, math.sin(angle) * s
    base = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1]], dtype=np.float64)
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, w / 2 + tx], [0, 1, h / 2 + ty], [0, 0, 1]], dtype=np.float64)
    # Perspective: the medium tilted by up to ~15° out of plane (p ≈ tan(tilt)/distance in pixels).
    tilt = np.array([[1, 0, 0], [0, 1, 0], [rng.uniform(-2.5e-4, 2.5e-4), rng.uniform(-2.5e-4, 2.5e-4), 1]])
    return back @ tilt @ base @ centre


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """What is behind the medium: a smooth, shaded room colour with noise."""
    base = rng.uniform(0.15, 0.75, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = 1.0 + rng.uniform(-0.3, 0.3) * (xx / w - 0.5) + rng.uniform(-0.3, 0.3) * (yy / h - 0.5)
    noise = cv2.GaussianBlur(rng.normal(0, 0.03, (h, w, 3)).astype(np.float32), (0, 0), 3.0)
    return np.clip(base * ramp[:, :, None] + noise, 0, 1)


def _bend(medium: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sheet held by its edges bows: a cylindrical warp of up to ~3 % of the width."""
    h, w = medium.shape[:2]
    amp = rng.uniform(0.0, 0.03) * w
    xs = np.linspace(-1, 1, w, dtype=np.float32)
    map_x = np.tile(np.arange(w, dtype=np.float32) + amp * 0.15 * np.sin(xs * np.pi / 2), (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w)) + (amp * (1 - xs**2))[None, :] * 0.2
    return cv2.remap(medium, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class _Finger:
    side: int  # 0: left edge of the medium, 1: right edge
    along: float  # position along that edge (0 = top)
    axes: tuple[float, float]  # ellipse half-axes as shares of the frame width / height
    angle: float
    skin: tuple[float, float, float]


def _draw_fingers(frame: np.ndarray, quad: np.ndarray, fingers: tuple[_Finger, ...]) -> None:
    """Thumbs holding the medium at its left/right edge (skin-toned ellipses, in place); they move with it."""
    h, w = frame.shape[:2]
    for f in fingers:
        a, b = (quad[0], quad[3]) if f.side == 0 else (quad[1], quad[2])
        cx, cy = a + f.along * (b - a)
        drawn = np.zeros((h, w), dtype=np.float32)
        axes = (max(2, int(w * f.axes[0])), max(2, int(h * f.axes[1])))
        cv2.ellipse(drawn, (int(cx), int(cy)), axes, f.angle, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(drawn, (0, 0), 1.5)[:, :, None]
        frame[:] = frame * (1 - mask) + np.asarray(f.skin, dtype=np.float32) * mask


def _fingers(rng: np.random.Generator) -> tuple[_Finger, ...]:
    """Half of the presentations are held by one or two visible thumbs (three skin tones)."""
    if rng.random() < 0.5:
        return ()
    tones = ((0.87, 0.67, 0.55), (0.72, 0.51, 0.38), (0.45, 0.30, 0.22))
    sides = rng.choice([0, 1], size=int(rng.integers(1, 3)), replace=False)
    return tuple(_Finger(int(s), float(rng.uniform(0.4, 0.8)), (float(rng.uniform(0.04, 0.06)),
                         float(rng.uniform(0.07, 0.1))), float(rng.uniform(-20, 20)),
                         tones[int(rng.integers(0, 3))]) for s in sides)


def _glare(frame: np.ndarray, inside: np.ndarray, spot: tuple[float, float, float, float, float]) -> None:
    """A lamp's specular reflection on the medium: a bright, desaturated Gaussian patch (in place).

    The lamp and camera stay put, so a patch fixed in the camera frame is a fair model for small motions.
    """
    h, w = frame.shape[:2]
    cy, cx, sy, sx, strength = spot
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((yy - cy * h) / (sy * h)) ** 2 + ((xx - cx * w) / (sx * w)) ** 2) / 2) * strength
    frame += (blob * inside)[:, :, None]


def _banding(frame: np.ndarray, inside: np.ndarray, period: float, amp: float, phase: float) -> None:
    """Refresh banding: PWM backlight (200–2000 Hz, notebookcheck) beating with a rolling shutter (in place)."""
    h = frame.shape[0]
    rows = 1.0 + amp * np.sin(2 * np.pi * np.arange(h, dtype=np.float32) / period + phase)
    frame *= (1 + (rows[:, None] - 1) * inside)[:, :, None]


@dataclass(frozen=True)
class _Camera:
    defocus: float
    gain: float
    jpeg: int


def _camera_params(rng: np.random.Generator) -> _Camera:
    """Webcam: defocus σ 0.4–1.3 px (it focuses past a close medium), exposure ±15 %, JPEG quality 60–95."""
    return _Camera(float(rng.uniform(0.4, 1.3)), float(rng.uniform(0.85, 1.15)), int(rng.integers(60, 96)))


def _camera(frame: np.ndarray, cam: _Camera, rng: np.random.Generator) -> np.ndarray:
    """Defocus, exposure, shot + read noise (σ ≈ 0.5–2 % of white, a small-sensor webcam), JPEG."""
    x = cv2.GaussianBlur(frame, (0, 0), cam.defocus) * cam.gain
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(np.clip(x, 0, None) * 0.0004 + 0.00002)
    out = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        return out
    decoded = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return np.ascontiguousarray(decoded[:, :, ::-1])


# ------------------------------------------------------------------ presentations


@dataclass(frozen=True)
class _Presentation:
    """Everything fixed for one presentation (the medium, how it is held, the light, the camera)."""

    medium: np.ndarray  # float image of the medium at render resolution
    render_per_px: float  # render pixels per source (camera) pixel
    pose: np.ndarray  # source-pixel homography medium → camera
    species: Species
    glare: tuple[float, float, float, float, float]  # centre y, x, spread y, x (shares of the frame), strength
    reflection: np.ndarray
    banding: tuple[float, float]  # period (camera rows), amplitude; 0 amplitude for prints
    fingers: tuple[_Finger, ...]
    camera: _Camera
    background: np.ndarray


def _present(rgb: np.ndarray, species: Species, rng: np.random.Generator) -> _Presentation:
    img = rgb.astype(np.float32) / 255.0
    h, w = img.shape[:2]
    if species.is_print:
        medium, per_px = _bend(_print_medium(img, species, rng), rng), 2.0
        # Glare: glossy photo paper reflects a lamp as a bright patch (specular gloss > 70 GU at 60°), matte
        # paper (< 10 GU) only as a faint sheen.
        strength = rng.uniform(0.25, 0.6) if species is Species.PRINT_GLOSSY else rng.uniform(0.02, 0.1)
        bezel, banding = 0.0, (1.0, 0.0)
    else:
        medium, per_px = _screen_medium(img, species, rng)
        strength = rng.uniform(0.05, 0.25)  # cover glass reflects ~4 % (Fresnel, n≈1.5) of a bright lamp
        bezel = _u(rng, DISPLAYS[species].bezel)
        banding = (float(rng.uniform(25, 120)), float(rng.uniform(0.01, 0.05)))
    glare = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.05, 0.2)),
             float(rng.uniform(0.05, 0.2)), float(strength))
    # Reflections of the room in glass or gloss: a faint low-frequency image (4–10 % for glass, Fresnel).
    room = cv2.resize(rng.uniform(0, 1, (4, 4, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    reflection = room * float(rng.uniform(0.04, 0.1) if not species.is_print else rng.uniform(0.0, 0.03))
    pose = _pose(rng, w, h, 1.0)
    pad = int(round(bezel * medium.shape[1]))
    if pad:  # the bezel: a dark frame around the panel
        tone = float(rng.uniform(0.03, 0.12))
        medium = cv2.copyMakeBorder(medium, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(tone, tone, tone))
        pose = pose @ np.array([[1, 0, -pad / per_px], [0, 1, -pad / per_px], [0, 0, 1]], dtype=np.float64)
    return _Presentation(medium, per_px, pose, species, glare, reflection, banding, _fingers(rng),
                         _camera_params(rng), _background(h, w, rng))


def _photograph(p: _Presentation, motion: np.ndarray, phase: float, rng: np.random.Generator) -> np.ndarray:
    """One camera frame of the presentation moved by `motion` (camera-pixel homography)."""
    h, w = p.background.shape[:2]
    scale = np.diag([1.0 / p.render_per_px, 1.0 / p.render_per_px, 1.0])
    hom = motion @ p.pose @ scale  # render px → source px → camera px
    mh, mw = p.medium.shape[:2]
    # Lens: a webcam's optics blur by σ ≈ 0.5 px (MTF50 near 0.3 cycles/px) before the sensor samples the
    # sub-pixel grid; what survives aliases into moiré.
    medium = cv2.GaussianBlur(p.medium, (0, 0), 0.5 * p.render_per_px)
    warped = cv2.warpPerspective(medium, hom, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    inside = cv2.warpPerspective(np.ones((mh, mw), np.float32), hom, (w, h), flags=cv2.INTER_LINEAR)
    frame = p.background * (1 - inside[:, :, None]) + warped * inside[:, :, None]
    frame += p.reflection * inside[:, :, None]
    _glare(frame, inside, p.glare)
    if p.banding[1] > 0:
        _banding(frame, inside, p.banding[0], p.banding[1], phase)
    corners = cv2.perspectiveTransform(np.array([[[0, 0], [mw, 0], [mw, mh], [0, mh]]], np.float32), hom)[0]
    _draw_fingers(frame, corners, p.fingers)
    return _camera(frame, p.camera, rng)


def simulate(rgb: np.ndarray, species: Species | str, seed: int) -> np.ndarray:
    """A **simulated** recapture of `rgb` (H×W×3 uint8) as `species`; same size, deterministic for `seed`."""
    sp = Species(species)
    rng = np.random.default_rng([seed, SPECIES.index(sp)])
    p = _present(rgb, sp, rng)
    return _photograph(p, np.eye(3), float(rng.uniform(0, 2 * np.pi)), rng)


def camera_only(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The live scene through the same camera model (defocus, exposure, noise, JPEG), no medium.

    Training uses it on live images so the camera model is on both sides of a pair and cannot itself
    become the attack signal.
    """
    rng = np.random.default_rng([seed, 99])
    return _camera(rgb.astype(np.float32) / 255.0, _camera_params(rng), rng)


def tremor(frames: int, size: tuple[int, int], rng: np.random.Generator, amplitude: float = 1.0) -> list[np.ndarray]:
    """Homographies of a hand-held plane over ~2 s: slow drift + physiological tremor.

    Hand tremor (8–12 Hz, ~0.5–2 mm) and arm sway move a held object by
    millimetres to a few centimetres over two seconds (Elble & Koller,
    "Tremor", 1990); at 20–40 cm from a webcam that is ~1–4 % of the frame of
    translation, up to ~3° of rotation and a few degrees of tilt.
    `amplitude` scales all of it.
    """
    h, w = size
    out = []
    drift = rng.normal(0, 1, 6) * amplitude
    for i in range(frames):
        t = i / max(1, frames - 1)
        wobble = rng.normal(0, 0.25, 6) * amplitude
        tx, ty = (drift[0] * 0.02 * t + wobble[0] * 0.004) * w, (drift[1] * 0.02 * t + wobble[1] * 0.004) * h
        angle = math.radians(drift[2] * 1.5 * t + wobble[2] * 0.3)
        s = 1.0 + drift[3] * 0.03 * t + wobble[3] * 0.005
        px, py = (drift[4] * t + wobble[4] * 0.2) * 1.5e-4, (drift[5] * t + wobble[5] * 0.2) * 1.5e-4
        c, si = math.cos(angle) * s, math.sin(angle) * s
        centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], dtype=np.float64)
        move = np.array([[c, -si, w / 2 + tx], [si, c, h / 2 + ty], [px, py, 1]], dtype=np.float64)
        out.append(move @ centre)
    return out


def simulate_burst(rgb: np.ndarray, species: Species | str, seed: int, frames: int = 5,
                   amplitude: float = 1.0) -> list[np.ndarray]:
    """A **simulated** hand-held attack burst: one medium, moved by `tremor`, photographed `frames` times."""
    sp = Species(species)
    rng = np.random.default_rng([seed, SPECIES.index(sp), frames])
    p = _present(rgb, sp, rng)
    motions = tremor(frames, rgb.shape[:2], rng, amplitude)
    # The banding phase drifts between frames (PWM and frame rate are not locked); sensor noise is new each frame.
    return [_photograph(p, m, float(rng.uniform(0, 2 * np.pi)), rng) for m in motions]


# ------------------------------------------------------------------ datasets on disk


@dataclass(frozen=True)
class LiveSource:
    """Live images to recapture: `group` names the dataset/subject (a fold key), files are read as RGB."""

    group: str
    files: tuple[Path, ...]


def live_sources(shared_data: Path, nuaa_stride: int = 8) -> list[LiveSource]:
    """Live images of lfw-subset, pairs-web and nuaa-dev (every `nuaa_stride`-th frame per subject)."""
    out: list[LiveSource] = []
    lfw = shared_data / "lfw-subset"
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()) if lfw.is_dir() else []:
        out.append(LiveSource(f"lfw-{person.name}", tuple(sorted(person.glob("*.jpg")))))
    web = shared_data / "pairs-web"
    if web.is_dir():
        out.append(LiveSource("web", tuple(sorted(web.glob("*.jpg")))))
    nuaa = shared_data / "nuaa-dev" / "live"
    for subject in sorted(p for p in nuaa.iterdir() if p.is_dir()) if nuaa.is_dir() else []:
        out.append(LiveSource(f"nuaa-{subject.name}", tuple(sorted(subject.glob("*.jpg"))[::nuaa_stride])))
    return out


MAX_SIDE = 640  # large web photos are brought to a webcam's resolution before recapture


def _webcam_sized(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    f = MAX_SIDE / max(h, w)
    if f >= 1:
        return rgb
    return cv2.resize(rgb, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_AREA)


def build_dataset(sources: list[LiveSource], out: Path, species: tuple[Species, ...] = SPECIES,
                  seed: int = 0, on_progress: Callable[[int], None] | None = None) -> int:
    """Write `out/live/<group>/<file>` and `out/<species>/<group>/<file>` (**simulated**); returns images written.

    Files already present are kept (the build resumes).  This is lab data: keep it outside the repository.
    """
    from limen.capture import load_image

    written = 0
    for src in sources:
        for f in src.files:
            live = _webcam_sized(load_image(f))
            for name in ("live", *(sp.value for sp in species)):
                dest = out / name / src.group / (f.stem + ".jpg")
                if dest.exists():
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                key = seed * 1_000_003 + _stable(f"{src.group}/{f.name}")
                img = live if name == "live" else simulate(live, name, seed=key)
                cv2.imwrite(str(dest), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
                written += 1
            if on_progress is not None:
                on_progress(1)
    return written


def build_bursts(nuaa: Path, out: Path, per_run: int = 1, frames: int = 5, seed: int = 0,
                 species: tuple[Species, ...] = SPECIES) -> int:
    """Bursts as the door captures them: `out/<species>/<presentation>/<frame>.jpg`; returns bursts written.

    Live bursts are *real*: `frames` consecutive nuaa-dev frames of one subject, glasses, position and
    session (people sitting still in front of a webcam), `per_run` non-overlapping windows per such run.
    Attack bursts are **simulated**: the first frame of each window shown on each species and moved by
    hand tremor (`simulate_burst`).
    """
    from limen.capture import load_image

    written = 0
    for subject in sorted(p for p in (nuaa / "live").iterdir() if p.is_dir()):
        runs: dict[str, list[Path]] = {}
        for f in subject.glob("*.jpg"):
            runs.setdefault("_".join(f.stem.split("_")[:4]), []).append(f)
        for key in sorted(k for k in runs if len(runs[k]) >= frames):
            run = sorted(runs[key], key=lambda f: int(f.stem.split("_")[4]))
            step = max(frames, len(run) // per_run)
            for start in range(0, min(len(run) - frames + 1, per_run * step), step):
                name = f"{key}_{start}"
                written += _write_burst(out, name, run[start : start + frames], seed, species, load_image)
    return written


def _write_burst(out: Path, name: str, run: list[Path], seed: int, species: tuple[Species, ...],
                 load: Callable[[Path], np.ndarray]) -> int:
    written = 0
    live_dir = out / "live" / name
    if not live_dir.exists():
        live_dir.mkdir(parents=True)
        for i, f in enumerate(run):
            (live_dir / f"{i}.jpg").write_bytes(f.read_bytes())
        written += 1
    first = load(run[0])
    for sp in species:
        dest = out / sp.value / name
        if dest.exists():
            continue
        burst = simulate_burst(first, sp, seed=seed * 1_000_003 + _stable(name), frames=len(run))
        dest.mkdir(parents=True)
        for i, img in enumerate(burst):
            cv2.imwrite(str(dest / f"{i}.jpg"), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        written += 1
    return written


def _stable(name: str) -> int:
    return zlib.crc32(name.encode()) % 1_000_003


def main(argv: list[str] | None = None) -> int:
    """`python -m limen.lab.recapture OUT [--shared DIR] [--stride N]`: write a **simulated** attack set."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Write live images and their simulated recaptures (lab data).")
    ap.add_argument("out", type=Path)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[4] / "shared" / "data")
    ap.add_argument("--stride", type=int, default=8, help="use every N-th nuaa-dev live frame")
    ap.add_argument("--bursts", type=int, default=0, metavar="N",
                    help="instead: N five-frame bursts per nuaa-dev run and species (<species>/<burst>/<frames>)")
    args = ap.parse_args(argv)
    if args.bursts:
        print(build_bursts(args.shared / "nuaa-dev", args.out, per_run=args.bursts), "bursts written")
        return 0
    sources = live_sources(args.shared, args.stride)
    total = sum(len(s.files) for s in sources)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 25 == 0:
            print(f"  {done[0]}/{total} live images", file=sys.stderr)

    print(build_dataset(sources, args.out, on_progress=tick), "images written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
