"""A physically based **simulator** of live faces and presentation attacks in colour, depth and near-IR.

Everything measured on its output is **simulated** and must be labelled so.
It exists because no real mask, depth or IR data is available here: it lets
the sensor cues, the fusion rules and the campaign run end to end, and it
makes every assumption explicit (each parameter cites where its value comes
from, or says that it is an assumption).

Scene (2.5-D): the camera looks along +z; a presented surface is a height
field h(X, Y) (mm towards the camera) at distance Z, in front of a wall.
Faces are a parametric shape (ellipsoid + nose, brows, eye sockets, cheeks,
lips, chin; identity = the parameters of `FaceShape`), lit from the front.
Attack species (ISO/IEC 30107-3 "PAI species"): flat and bent print, phone
and tablet screen, paper mask, rigid resin mask, silicone mask with eye holes
worn by a person of another face shape.  Streams:

- colour: Lambertian shading × albedo, 8-bit, sensor noise; a pulse (rPPG)
  modulates only live skin (and the skin around real eyes seen through holes);
- depth (mm, registered to colour): stereo (RealSense D400-like) or
  structured light, with z²-growing noise and quantisation, occlusion holes
  beside depth edges, flying pixels at edges, dropouts at grazing angles and
  on dark or specular materials;
- near-IR (850 nm, active illuminator at the camera): reflectance × cos / z²,
  the projector's dot pattern, corneal glints on real eyes, ambient only
  when the emitter is off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from limen.bio.face.detect import Box
from limen.capture import Capture, Frame, Intrinsics, StreamGeometry
from limen.capture.depth import write_realsense_recording
from limen.pad.faces import FaceView, PadSample, chosen_frames


class Species(StrEnum):
    """Presentation species: bona fide and the attack instruments simulated."""

    BONA_FIDE = "bona_fide"
    FLAT_PRINT = "flat_print"
    BENT_PRINT = "bent_print"
    PHONE = "phone_screen"
    TABLET = "tablet_screen"
    PAPER_MASK = "paper_mask"
    RESIN_MASK = "rigid_resin_mask"
    SILICONE_MASK = "silicone_mask"


ATTACKS = tuple(s for s in Species if s is not Species.BONA_FIDE)
MASKS = (Species.PAPER_MASK, Species.RESIN_MASK, Species.SILICONE_MASK)

# ---------------------------------------------------------------- material reflectance
# Near-IR reflectance at 850 nm (active illumination), and whether the surface is skin (pulse).
# Skin: 0.45–0.60 from light to dark skin — melanin absorption falls steeply with wavelength, so skin
#   tones converge in the NIR (Angelopoulou, "The reflectance spectrum of human skin", UPenn MS-CIS-99-29,
#   1999; Jacques, "Optical properties of biological tissues: a review", Phys. Med. Biol. 58, 2013).
SKIN_NIR_LIGHT, SKIN_NIR_DARK = 0.60, 0.45
# Paper: office paper ≈ 0.8–0.9 in the NIR; cyan/magenta/yellow dye and pigment inks are largely
#   transparent beyond ≈ 750 nm, carbon black absorbs (the basis of IR document examination) — so a
#   print looks like blank paper with only its darkest features in NIR.
PAPER_NIR, INK_K_NIR = 0.85, 0.15
# Screens: LCD/OLED emission is visible-only (white LEDs: blue die + phosphor, negligible power beyond
#   ≈ 750 nm) and the stack absorbs the illuminator; ≈ 4 % comes back from the cover glass (Fresnel
#   reflectance of glass, n ≈ 1.5), mostly as one specular spot.
SCREEN_NIR = 0.04
# Rigid resin / powder 3D-printed masks (e.g. the masks of 3DMAD): a white base with colour pigments that,
#   like inks, are largely transparent in NIR. ASSUMPTION (no measured value found): as paper, slightly lower.
RESIN_NIR = 0.75
# Skin-pigmented platinum silicone: ASSUMPTION.  Steiner et al. ("Reliable face anti-spoofing using
#   multispectral SWIR imaging", ICB 2016) separate skin from masks mainly in the SWIR water bands; at
#   850 nm the contrast is weak.  Modelled as skin-like but without haemoglobin/melanin structure: 0.62.
SILICONE_NIR = 0.62
WALL_NIR = 0.50

# ---------------------------------------------------------------- sub-surface scattering of the projected dots
# A structured-light projector's dot pattern is blurred by light that enters the surface, scatters and comes
# out elsewhere.  How much of a pattern of spatial frequency f survives is the modulation transfer of the
# material, from diffusion theory (Cuccia et al., "Quantitation and mapping of tissue optical properties
# using modulated imaging", J. Biomed. Opt. 14(2) 024012, 2009, doi:10.1117/1.3088140, eq. for R_d(f_x)):
#   R_d(k) = 3A·a' / ((μeff'/μtr + 1)(μeff'/μtr + 3A)),  μtr = μa + μs', a' = μs'/μtr,
#   μeff' = sqrt(3·μa·μtr + k²), k = 2πf, A = (1 − R_eff)/(2(1 + R_eff)) for refractive index n.
# The seen modulation of a surface of NIR reflectance R0 = R_SURFACE + diffuse part is
#   (R_SURFACE + (R0 − R_SURFACE)·R_d(k)/R_d(0)) / R0  (the surface reflection keeps the dots sharp).
# Skin, 850 nm, in vivo: reduced scattering μs' median 1.20 mm⁻¹, upper-dermis absorption μa 0.0048 mm⁻¹
#   (3,809 subjects, spatially resolved diffuse reflectance: "Absorption and reduced scattering coefficients
#   in epidermis and dermis from a Swedish cohort study", J. Biomed. Opt. 28(11) 115001, 2023); the spread
#   between people is large (Setchfield et al., Biomed. Opt. Express 14(7) 3555, 2023, a review of in-vivo
#   values; Tseng, Grant & Durkin, J. Biomed. Opt. 13(1) 014016, 2008, 15 subjects of three ancestries):
#   per person μs' ~ log-normal around 1.20 with σ(log) = 0.25, clipped to 0.7–2.2 mm⁻¹.  Melanin absorbs
#   in the thin epidermis: it dims the diffuse part (R0 falls with melanin, above) but does not shorten the
#   dermis's lateral spread, so darker skin keeps a larger share of sharp surface reflection.
SKIN_MUS_MEDIAN, SKIN_MUS_LOG_SD, SKIN_MUS_RANGE = 1.20, 0.25, (0.7, 2.2)
DERMIS_MUA = 0.0048
# Surface (Fresnel) reflection: skin's regular reflectance is 4–7 % (Anderson & Parrish, "The optics of human
#   skin", J. Invest. Dermatol. 77(1) 13, 1981); silicone (PDMS, n ≈ 1.41) and skin (n ≈ 1.4) both ≈ 0.03–0.04
#   at normal incidence.  The same 0.04 for every material but glass-fronted screens (all of theirs is surface).
R_SURFACE = 0.04
TISSUE_N = 1.4
# Pigmented silicone: silicone itself (PDMS) is clear; its scattering comes from the fillers and pigments
#   (TiO2, Al2O3): PDMS phantoms span μs' 0.5–2.0 mm⁻¹ and more with the filler load (Saager et al.,
#   J. Biomed. Opt. 21(6) 067001, 2016; Goldfain et al., J. Biomed. Opt. 27(7) 074706, 2022).  No measured
#   value for a mask's silicone was found.  ASSUMPTION: an opaque skin-tone mask is loaded far beyond a
#   skin-mimicking phantom, μs' uniform in 2.5–6 mm⁻¹ per mask (pigment load varies between masks).  Were a
#   mask made of skin-mimicking silicone (μs' ≈ 1–2), the dot-contrast cue could not see it: docs/pad-sensors.md
#   shows the campaign against this number.
SILICONE_MUS_RANGE = (2.5, 6.0)
# Paper, powder-resin and painted walls: strongly scattering and thin or opaque: ASSUMPTION μs' 20 / 8 / 20 mm⁻¹
#   (the dots stay sharp on them).  Eye region: the person's skin value (eyelids; sclera also scatters strongly).
OTHER_MUS = {"paper": 20.0, "resin": 8.0, "wall": 20.0}
# The IR camera's own blur (lens + pixel), Gaussian σ in pixels: ASSUMPTION (a fixed-focus M12-class lens;
#   at 380–560 mm a 2 mm focal length is in focus everywhere, so this is one constant per device).
IR_CAMERA_BLUR_PX = 0.45

# Fine texture in NIR (relative std of the reflectance at ≈ 1 mm): skin is smoothed by sub-surface
# scattering (Jensen et al., "A practical model for subsurface light transport", SIGGRAPH 2001);
# paper fibres, printer halftone and resin powder are not.  ASSUMPTION for the magnitudes.
NIR_TEXTURE = {"skin": 0.015, "paper": 0.06, "screen": 0.02, "resin": 0.05, "silicone": 0.025, "wall": 0.03}
MATERIALS = ("wall", "skin", "eye", "paper", "screen", "resin", "silicone")
WALL, SKIN, EYE, PAPER, SCREEN, RESIN, SILICONE = range(len(MATERIALS))

# Pulsatile amplitude of skin colour (rPPG): ≈ 0.1–0.5 % of the mean in green, weaker in red and blue
# (Verkruysse et al., "Remote plethysmographic imaging using ambient light", Opt. Express 2008; relative
# channel strengths as in de Haan & Jeanne 2013).
PULSE_GREEN = 0.003
PULSE_CHANNELS = np.array([0.33, 1.0, 0.53])


# ---------------------------------------------------------------- sensors


@dataclass(frozen=True)
class SensorModel:
    """A depth camera's noise model (all in the simulated camera's pixels)."""

    name: str
    kind: str                 # "stereo" or "structured_light"
    baseline_mm: float
    subpixel: float           # disparity noise (px, 1 σ)
    quant_px: float           # disparity quantisation step (px); 0 = none
    dark_dropout: float       # probability of a hole on a dark/specular (screen) pixel
    grazing_dropout: float    # probability of a hole where the surface is seen at a grazing angle


# Stereo, RealSense D400-like: depth RMS error = z² · subpixel / (f · B) (Grunnet-Jepsen et al., Intel,
# "Tuning depth cameras for best performance", 2019: subpixel ≈ 0.08 px; D415 baseline 55 mm).
STEREO = SensorModel("stereo (D400-like)", "stereo", 55.0, 0.08, 0.0, 0.6, 0.5)
# Structured light, Kinect-v1 / phone-dot-projector-like: disparity quantised to 1/8 px (Khoshelham &
# Elberink, "Accuracy and resolution of Kinect depth data", Sensors 12, 2012: z² growth of random error
# and of the depth step); baseline 75 mm.  Dot patterns are lost on glass and dark screens.
STRUCTURED_LIGHT = SensorModel("structured light", "structured_light", 75.0, 0.05, 0.125, 0.8, 0.6)

WIDTH = HEIGHT = 160
FOCAL_PX = 216.0
WALL_MM = 1200.0
COLOUR_NOISE_DN = 1.2      # read + shot noise of an 8-bit webcam-class sensor at indoor light (1 σ)
IR_GAIN = 2.4e7            # DN·mm² per unit reflectance: skin (0.55) at 450 mm ≈ 65 DN of 255
IR_AMBIENT_DN = 6.0        # indoor ambient at 850 nm through the camera's band-pass filter
DOT_CONTRAST = 0.35        # the projector's dot pattern modulates the IR image by ± this share (before blurring)
IR_NOISE_DN = 1.5          # IR read + shot noise at ≈ 65 DN (1 σ), as the colour sensor's order of magnitude


@dataclass(frozen=True)
class FaceShape:
    """A parametric face (mm): identity is these numbers."""

    half_width: float = 72.0
    half_height: float = 98.0
    depth: float = 80.0
    nose: float = 20.0
    nose_width: float = 11.0
    socket: float = 9.0
    cheek: float = 6.0
    chin: float = 6.0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> FaceShape:
        """A random adult face (spreads ≈ anthropometric variation of head breadth/length, nose protrusion)."""
        return cls(half_width=rng.normal(72, 4), half_height=rng.normal(98, 5), depth=rng.normal(80, 6),
                   nose=rng.normal(20, 3), nose_width=rng.normal(11, 1.5), socket=rng.normal(9, 1.5),
                   cheek=rng.normal(6, 1.5), chin=rng.normal(6, 1.5))


@dataclass(frozen=True)
class Person:
    """Somebody in front of the camera (or the victim an artefact shows)."""

    shape: FaceShape
    melanin: float            # 0 = very light, 1 = very dark skin
    bpm: float
    pulse: float              # relative pulsatile amplitude in green
    seed: int

    @property
    def albedo(self) -> np.ndarray:
        light, dark = np.array([0.78, 0.58, 0.48]), np.array([0.32, 0.19, 0.13])
        return light + self.melanin * (dark - light)

    @property
    def skin_nir(self) -> float:
        return SKIN_NIR_LIGHT + self.melanin * (SKIN_NIR_DARK - SKIN_NIR_LIGHT)

    @property
    def skin_mus(self) -> float:
        """Reduced scattering coefficient of this person's skin at 850 nm (mm⁻¹), drawn from their own seed."""
        draw = np.random.default_rng([self.seed, 850]).normal(0.0, SKIN_MUS_LOG_SD)
        return float(np.clip(SKIN_MUS_MEDIAN * math.exp(draw), *SKIN_MUS_RANGE))

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Person:
        return cls(FaceShape.sample(rng), float(rng.uniform(0, 1)), float(rng.uniform(55, 100)),
                   float(PULSE_GREEN * rng.uniform(0.6, 1.4)), int(rng.integers(0, 2**31)))


@dataclass(frozen=True)
class Presentation:
    """One presentation: who is there, what they present, how far, how they move."""

    species: Species
    person: Person            # the live person (the wearer, or the one holding the artefact)
    target: Person            # whom the artefact shows (the victim); == person for bona fide
    distance_mm: float = 450.0
    seed: int = 0
    emitter_on: bool = True
    misregister_px: int = 0   # shift of depth/IR against colour (a mis-calibrated device)
    depth_stops_after: int | None = None  # the depth camera stops after this many frames
    mask_mus: float | None = None  # silicone mask: its μs' (mm⁻¹) instead of the drawn one (sensitivity runs)

    @property
    def silicone_mus(self) -> float:
        """Reduced scattering coefficient of this presentation's mask silicone at 850 nm (mm⁻¹; ASSUMPTION)."""
        if self.mask_mus is not None:
            return self.mask_mus
        return float(np.random.default_rng([self.seed, 851]).uniform(*SILICONE_MUS_RANGE))

    @classmethod
    def sample(cls, species: Species, rng: np.random.Generator) -> Presentation:
        person = Person.sample(rng)
        target = person if species is Species.BONA_FIDE else Person.sample(rng)
        return cls(species, person, target, float(rng.uniform(380, 560)), int(rng.integers(0, 2**31)))


@dataclass(frozen=True)
class SimCapture:
    """A simulated capture with its ground truth: face box and 5 landmarks per frame."""

    capture: Capture
    presentation: Presentation
    boxes: tuple[Box, ...]
    points: tuple[np.ndarray, ...]
    notes: dict[str, str] = field(default_factory=dict)

    def sample(self) -> PadSample:
        """The `PadSample` PAD would build with these (known) face boxes: chosen frames + every frame."""
        views = []
        for index, frame in chosen_frames(self.capture):
            box = self.boxes[index]
            crop = np.ascontiguousarray(frame.rgb[box.top : box.bottom, box.left : box.right])
            views.append(FaceView(index, frame, box, self.points[index], crop))
        return PadSample(tuple(views), analysed=len(views), capture=self.capture)


# ---------------------------------------------------------------- geometry of a face


def face_height(shape: FaceShape, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(height towards the camera in mm, inside-the-face mask) of `shape` at face coordinates (x, y) mm."""
    e = (x / shape.half_width) ** 2 + (y / shape.half_height) ** 2
    inside = e < 1.0
    base = shape.depth * np.sqrt(np.clip(1.0 - e, 0.0, 1.0))
    ax = np.abs(x)

    def g(cx: float, cy: float, sx: float, sy: float) -> np.ndarray:  # a symmetric pair of bumps
        return np.exp(-0.5 * ((ax - cx) / sx) ** 2 - 0.5 * ((y - cy) / sy) ** 2)

    nose = shape.nose * np.exp(-0.5 * (x / shape.nose_width) ** 2 - 0.5 * ((y - 4) / 15) ** 2)
    bridge = 0.45 * shape.nose * np.exp(-0.5 * (x / (0.55 * shape.nose_width)) ** 2 - 0.5 * ((y + 16) / 13) ** 2)
    socket = -shape.socket * g(31.0, -27.0, 12.0, 8.0)
    brow = 4.0 * g(30.0, -42.0, 16.0, 5.0)
    cheek = shape.cheek * g(38.0, 8.0, 15.0, 14.0)
    lips = 3.0 * np.exp(-0.5 * (x / 18) ** 2 - 0.5 * ((y - 42) / 5) ** 2)
    chin = shape.chin * np.exp(-0.5 * (x / 16) ** 2 - 0.5 * ((y - 72) / 10) ** 2)
    h = base + nose + bridge + socket + brow + cheek + lips + chin
    return np.where(inside, h, 0.0), inside


def landmarks_mm() -> np.ndarray:
    """dlib's 5 points in face coordinates (mm): eye corners (outer, inner) × 2, nose base."""
    return np.array([[-44.0, -27.0], [-18.0, -27.0], [44.0, -27.0], [18.0, -27.0], [0.0, 16.0]])


def eye_maps(x: np.ndarray, y: np.ndarray, openness: float, gaze: float) -> tuple[np.ndarray, np.ndarray]:
    """(eye opening mask, iris mask) at face coordinates; `openness` 0–1, `gaze` iris shift in mm."""
    ax = np.abs(x)
    opening = ((ax - 31.0) / 13.0) ** 2 + ((y + 27.0) / max(5.0 * openness, 1e-3)) ** 2 < 1.0
    iris = ((ax - 31.0 - gaze * np.sign(x)) ** 2 + (y + 27.0) ** 2) < 5.5**2
    return opening & (openness > 0.05), opening & iris & (openness > 0.05)


# ---------------------------------------------------------------- rendering


def render(p: Presentation, sensor: SensorModel = STEREO, *, seconds: float = 4.0, fps: float = 15.0) -> SimCapture:
    """Colour, depth (mm) and IR frames of presentation `p` as seen by `sensor` (**simulated**)."""
    rng = np.random.default_rng(p.seed)
    n = max(1, int(round(seconds * fps)))
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    cam = Intrinsics(WIDTH, HEIGHT, FOCAL_PX, FOCAL_PX, WIDTH / 2, HEIGHT / 2)
    geometry = StreamGeometry(colour=cam, depth=cam, ir=cam)
    fixed = _FixedNoise(rng, p)
    blinks = _blink_times(rng, seconds)
    motion = rng.uniform(0, 2 * math.pi, 4)
    background = _wall(fixed.fine)
    patterns = dot_patterns(p, fixed.dots)
    frames, boxes, points = [], [], []
    for i in range(n):
        t = i / fps
        pose = _pose(p, t, motion)
        scene = _scene(p, u, v, pose, t, blinks, fixed, background)
        rgb = _colour(scene, rng)
        depth = _depth(scene, sensor, rng, fixed)
        ir = _infrared(scene, p, rng, patterns)
        if p.misregister_px:
            depth, ir = np.roll(depth, p.misregister_px, axis=1), np.roll(ir, p.misregister_px, axis=1)
        stopped = p.depth_stops_after is not None and i >= p.depth_stops_after
        frames.append(Frame(rgb=rgb, t=t, depth=None if stopped else depth, ir=ir, source=f"sim#{i}", geometry=geometry,
                            device=f"sim:{sensor.kind}", emitter_on=p.emitter_on))
        pts = _project(landmarks_mm(), pose, p)
        boxes.append(_box(pts))
        points.append(pts)
    cap = Capture(tuple(frames), source=f"simulated:{p.species.value}", meta={"simulated": "true",
                                                                              "species": p.species.value})
    return SimCapture(cap, p, tuple(boxes), tuple(points))


def write_recording(sim: SimCapture, path: str | Path) -> Path:
    """The simulated capture as a librealsense recording (through its software device)."""
    return write_realsense_recording(path, sim.capture.frames, fps=30, device_id="LIMEN-SIM")


@dataclass(frozen=True)
class _Pose:
    tx: float
    ty: float
    yaw: float
    z: float
    bend: float               # prints: curvature 1/R (1/mm)


class _FixedNoise:
    """Per-presentation static textures (skin pores, paper fibres, projector dots)."""

    def __init__(self, rng: np.random.Generator, p: Presentation) -> None:
        self.fine = rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32)
        self.dots = (rng.random((HEIGHT, WIDTH)) < 0.5).astype(np.float32)  # mean-preserving ± modulation
        self.depth_field = rng.normal(0, 1, (HEIGHT // 8 + 1, WIDTH // 8 + 1))
        self.tilt = rng.normal(0, 0.08, 2)
        self.bend = float(rng.uniform(1 / 140, 1 / 90))

    def crop(self, rows: slice, cols: slice) -> _FixedNoise:
        """The same noise, restricted to a window of the image (the static fields are shared)."""
        out = object.__new__(_FixedNoise)
        out.fine, out.dots = self.fine[rows, cols], self.dots[rows, cols]
        out.depth_field, out.tilt, out.bend = self.depth_field, self.tilt, self.bend
        return out


def _blink_times(rng: np.random.Generator, seconds: float) -> list[float]:
    times, t = [], float(rng.uniform(0.2, 2.5))
    while t < seconds:
        times.append(t)
        t += float(rng.uniform(2.0, 5.0))  # 12–30 blinks a minute at rest
    return times


def _pose(p: Presentation, t: float, phase: np.ndarray) -> _Pose:
    hand = p.species in (Species.FLAT_PRINT, Species.BENT_PRINT, Species.PHONE, Species.TABLET)
    amp = 6.0 if hand else 3.0  # mm of sway: a held artefact shakes more than a head
    return _Pose(tx=amp * math.sin(2 * math.pi * 0.3 * t + phase[0]), ty=amp * 0.6 * math.sin(2 * math.pi * 0.23 * t
                 + phase[1]), yaw=0.05 * math.sin(2 * math.pi * 0.2 * t + phase[2]), z=p.distance_mm, bend=0.0)


def _project(pts_mm: np.ndarray, pose: _Pose, p: Presentation) -> np.ndarray:
    scale = FOCAL_PX / pose.z
    x = (pts_mm[:, 0] * math.cos(pose.yaw) + pose.tx) * scale + WIDTH / 2
    y = (pts_mm[:, 1] + pose.ty) * scale + HEIGHT / 2
    if p.species in (Species.PHONE,):
        x = (x - WIDTH / 2) * 0.75 + WIDTH / 2  # the phone shows the face smaller than life
        y = (y - HEIGHT / 2) * 0.75 + HEIGHT / 2
    return np.stack([x, y], axis=1)


def _box(pts: np.ndarray) -> Box:
    eye = float(np.linalg.norm(pts[0:2].mean(axis=0) - pts[2:4].mean(axis=0)))
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean() + 0.25 * eye
    half = 1.1 * eye  # square, as a face detector's box
    return Box(int(max(0, cx - half)), int(max(0, cy - half)), int(min(WIDTH, cx + half)), int(min(HEIGHT, cy + half)))


@dataclass
class _Scene:
    z: np.ndarray             # ideal depth, mm
    albedo: np.ndarray        # H×W×3 visible reflectance
    nir: np.ndarray           # H×W NIR reflectance
    material: np.ndarray      # H×W uint8 index into MATERIALS
    emissive: np.ndarray      # H×W bool: the screen shows its own light
    pulse: np.ndarray         # H×W weight of the pulse modulation (1 on live visible skin)
    cornea: np.ndarray        # H×W bool: a real eye's cornea (IR glint)
    normal_z: np.ndarray      # cos of the angle between surface normal and view
    pulse_value: float


def _wall(fine: np.ndarray) -> _Scene:
    shape = fine.shape
    grey = np.tile(np.array([0.55, 0.55, 0.5], np.float32), (*shape, 1))
    return _Scene(z=np.full(shape, WALL_MM, np.float32), albedo=grey * (1 + 0.05 * fine[..., None]),
                  nir=np.full(shape, WALL_NIR, np.float32),
                  material=np.full(shape, WALL, np.uint8), emissive=np.zeros(shape, bool),
                  pulse=np.zeros(shape, np.float32), cornea=np.zeros(shape, bool), normal_z=np.ones(shape, np.float32),
                  pulse_value=0.0)


HALF_EXTENT_MM = {Species.FLAT_PRINT: (110.0, 152.0), Species.BENT_PRINT: (110.0, 152.0),
                  Species.PHONE: (40.0, 79.0), Species.TABLET: (89.0, 119.0)}


def _scene(p: Presentation, u: np.ndarray, v: np.ndarray, pose: _Pose, t: float, blinks: list[float],
           fixed: _FixedNoise, background: _Scene) -> _Scene:
    """The full-frame scene: the static background with the presentation rendered in its bounding box."""
    z0 = pose.z
    hx, hy = HALF_EXTENT_MM.get(p.species, (95.0, 120.0))
    k = FOCAL_PX / z0
    cx, cy = WIDTH / 2 + pose.tx * k, HEIGHT / 2 + pose.ty * k
    rows = slice(max(0, int(cy - hy * k) - 2), min(HEIGHT, int(cy + hy * k) + 3))
    cols = slice(max(0, int(cx - hx * k) - 2), min(WIDTH, int(cx + hx * k) + 3))
    sub = _wall(fixed.fine[rows, cols])
    _fill(sub, p, u[rows, cols], v[rows, cols], pose, t, blinks, fixed.crop(rows, cols))
    b = background
    full = _Scene(b.z.copy(), b.albedo.copy(), b.nir.copy(), b.material.copy(), b.emissive.copy(), b.pulse.copy(),
                  b.cornea.copy(), b.normal_z.copy(), sub.pulse_value)
    for name in ("z", "albedo", "nir", "material", "emissive", "pulse", "cornea", "normal_z"):
        getattr(full, name)[rows, cols] = getattr(sub, name)
    return full


def _fill(wall: _Scene, p: Presentation, u: np.ndarray, v: np.ndarray, pose: _Pose, t: float, blinks: list[float],
          fixed: _FixedNoise) -> None:
    z0 = pose.z
    x = (u - WIDTH / 2) * z0 / FOCAL_PX - pose.tx
    y = (v - HEIGHT / 2) * z0 / FOCAL_PX - pose.ty
    openness = _openness(t, blinks)
    gaze = 1.5 * math.sin(2 * math.pi * 0.4 * t)
    beat = math.sin(2 * math.pi * p.person.bpm / 60.0 * t) + 0.3 * math.sin(4 * math.pi * p.person.bpm / 60.0 * t)
    s = p.species
    if s is Species.BONA_FIDE:
        _put_face(wall, p.person, x, y, z0, pose, openness, gaze, live=True, fixed=fixed)
    elif s in (Species.FLAT_PRINT, Species.BENT_PRINT, Species.PHONE, Species.TABLET):
        _put_flat(wall, p, x, y, z0, pose, fixed)
    else:
        _put_face(wall, p.person, x, y, z0, pose, openness, gaze, live=True, fixed=fixed)  # the wearer
        _put_mask(wall, p, x, y, z0, pose, fixed)
    wall.pulse_value = beat * p.person.pulse


def _openness(t: float, blinks: list[float]) -> float:
    for b in blinks:
        if 0.0 <= t - b < 0.25:  # a blink lasts 100–400 ms
            return abs((t - b) - 0.125) / 0.125
    return 1.0


def _shade(z: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(z)
    scale = FOCAL_PX / 450.0  # px per mm at the working distance: gradients per px → per mm
    nx, ny = gx * scale, gy * scale
    return 1.0 / np.sqrt(1.0 + nx**2 + ny**2)


def _put_face(sc: _Scene, person: Person, x: np.ndarray, y: np.ndarray, z0: float, pose: _Pose, openness: float,
              gaze: float, *, live: bool, fixed: _FixedNoise) -> None:
    xr = x / max(math.cos(pose.yaw), 0.5)
    if pose.yaw:  # yaw: shift by the height of the ellipsoid (the relief's own shift is neglected)
        e = (xr / person.shape.half_width) ** 2 + (y / person.shape.half_height) ** 2
        xr = xr - person.shape.depth * np.sqrt(np.clip(1.0 - e, 0.0, 1.0)) * math.sin(pose.yaw)
    h, inside = face_height(person.shape, xr, y)
    z = z0 - h
    front = inside & (z < sc.z)
    opening, iris = eye_maps(xr, y, openness, gaze)
    albedo = np.tile(person.albedo, (*x.shape, 1)) * (1 + 0.03 * fixed.fine[..., None])
    brows = (((np.abs(xr) - 30) / 14) ** 2 + ((y + 42) / 3.5) ** 2) < 1
    lips = ((xr / 20) ** 2 + ((y - 42) / 5) ** 2) < 1
    albedo[brows] = 0.08
    albedo[lips] *= np.array([1.05, 0.75, 0.75])
    albedo[opening] = [0.85, 0.85, 0.82]
    albedo[iris] = [0.22, 0.14, 0.10]
    nir = np.where(opening, 0.55, person.skin_nir * (1 + NIR_TEXTURE["skin"] * fixed.fine))
    skin = front & ~opening & ~brows
    sc.z = np.where(front, z, sc.z)
    sc.albedo = np.where(front[..., None], albedo, sc.albedo)
    sc.nir = np.where(front, nir, sc.nir)
    sc.material = np.where(front, np.where(opening, EYE, SKIN), sc.material).astype(np.uint8)
    sc.pulse = np.where(front, skin.astype(np.float64) if live else 0.0, sc.pulse)
    sc.cornea = np.where(front, iris & live, sc.cornea)
    sc.normal_z = np.where(front, _shade(np.where(inside, z, z0)), sc.normal_z)


def _put_flat(sc: _Scene, p: Presentation, x: np.ndarray, y: np.ndarray, z0: float, pose: _Pose,
              fixed: _FixedNoise) -> None:
    """Prints and screens: an image of the victim on a plane (or a cylinder for a bent print)."""
    s = p.species
    scale = 0.75 if s is Species.PHONE else 1.0
    half_w, half_h = {Species.PHONE: (36.0, 75.0), Species.TABLET: (85.0, 115.0)}.get(s, (105.0, 148.0))
    sheet = (np.abs(x) < half_w) & (np.abs(y) < half_h)
    bend = fixed.bend if s is Species.BENT_PRINT else 0.0
    h = -(bend * x**2) / 2.0 + fixed.tilt[0] * x + fixed.tilt[1] * y
    z = z0 - h
    # the image on the sheet: the victim's face rendered frontally (a photo), static
    img = _Scene(z=np.full(x.shape, WALL_MM), albedo=np.tile([0.5, 0.5, 0.48], (*x.shape, 1)),
                 nir=np.zeros(x.shape), material=np.full(x.shape, WALL, np.uint8), emissive=np.zeros(x.shape, bool),
                 pulse=np.zeros(x.shape), cornea=np.zeros(x.shape, bool), normal_z=np.ones(x.shape), pulse_value=0.0)
    _put_face(img, p.target, x / scale, y / scale, z0, _Pose(0, 0, 0, z0, 0), 1.0, 0.0, live=False, fixed=fixed)
    photo = np.clip(img.albedo * img.normal_z[..., None], 0, 1)
    screen = s in (Species.PHONE, Species.TABLET)
    if screen:
        nir = np.full(x.shape, SCREEN_NIR)
        bezel = sheet & ~((np.abs(x) < half_w - 5) & (np.abs(y) < half_h - 10))
        photo[bezel] = 0.03
        material = SCREEN
    else:
        photo = 0.08 + 0.82 * photo  # paper white and ink black limit the print's contrast
        dark = photo.mean(axis=2) < 0.2
        nir = np.where(dark, INK_K_NIR, PAPER_NIR) * (1 + NIR_TEXTURE["paper"] * fixed.fine)
        material = PAPER
    sc.z = np.where(sheet, z, sc.z)
    sc.albedo = np.where(sheet[..., None], photo, sc.albedo)
    sc.nir = np.where(sheet, nir, sc.nir)
    sc.material = np.where(sheet, material, sc.material).astype(np.uint8)
    sc.emissive = np.where(sheet, screen, sc.emissive)
    sc.pulse = np.where(sheet, 0.0, sc.pulse)
    sc.cornea = np.where(sheet, False, sc.cornea)
    sc.normal_z = np.where(sheet, _shade(np.where(sheet, z, z0)), sc.normal_z)


MASK_STANDOFF_MM = {Species.PAPER_MASK: 6.0, Species.RESIN_MASK: 10.0, Species.SILICONE_MASK: 0.0}
MASK_THICKNESS_MM = {Species.PAPER_MASK: 0.3, Species.RESIN_MASK: 3.0, Species.SILICONE_MASK: 4.0}
MASK_MATERIAL = {Species.PAPER_MASK: (PAPER, PAPER_NIR), Species.RESIN_MASK: (RESIN, RESIN_NIR),
                 Species.SILICONE_MASK: (SILICONE, SILICONE_NIR)}


def _put_mask(sc: _Scene, p: Presentation, x: np.ndarray, y: np.ndarray, z0: float, pose: _Pose,
              fixed: _FixedNoise) -> None:
    """A mask of the victim worn over the wearer's face, with eye holes (the wearer's eyes show through)."""
    s = p.species
    xr = x / max(math.cos(pose.yaw), 0.5)
    worn, wearer_inside = face_height(p.person.shape, xr, y)
    if s is Species.PAPER_MASK:  # a printed sheet cut to the face, bent around it
        e = (xr / 70.0) ** 2 + (y / 95.0) ** 2
        inside = e < 1.0
        h = worn.max() * 0.55 - (fixed.bend * 0.6 * xr**2) / 2.0
    else:
        h, inside = face_height(p.target.shape, xr * 0.98, y * 0.98)
        if s is Species.SILICONE_MASK:  # flexible: pushed out wherever the wearer's face is higher
            h = np.maximum(h, worn + MASK_THICKNESS_MM[s])
    h = h + MASK_STANDOFF_MM[s] * inside
    holes = (((np.abs(xr) - 31.0) / 15.0) ** 2 + ((y + 27.0) / 8.0) ** 2) < 1.0
    cover = inside & ~holes
    z = z0 - h
    img = _Scene(z=np.full(x.shape, WALL_MM), albedo=np.zeros((*x.shape, 3)), nir=np.zeros(x.shape),
                 material=np.full(x.shape, WALL, np.uint8), emissive=np.zeros(x.shape, bool),
                 pulse=np.zeros(x.shape), cornea=np.zeros(x.shape, bool), normal_z=np.ones(x.shape), pulse_value=0.0)
    _put_face(img, p.target, xr, y, z0, _Pose(0, 0, 0, z0, 0), 1.0, 0.0, live=False, fixed=fixed)
    code, nir = MASK_MATERIAL[s]
    albedo = img.albedo if s is not Species.PAPER_MASK else 0.08 + 0.82 * img.albedo * img.normal_z[..., None]
    sc.z = np.where(cover, z, sc.z)
    sc.albedo = np.where(cover[..., None], albedo, sc.albedo)
    sc.nir = np.where(cover, nir * (1 + NIR_TEXTURE[MATERIALS[code]] * fixed.fine), sc.nir)
    sc.material = np.where(cover, code, sc.material).astype(np.uint8)
    sc.pulse = np.where(cover, 0.0, sc.pulse)
    sc.cornea = np.where(cover, False, sc.cornea)
    sc.normal_z = np.where(cover, _shade(np.where(inside, z, z0)), sc.normal_z)
    _ = wearer_inside


def _colour(sc: _Scene, rng: np.random.Generator) -> np.ndarray:
    light = np.where(sc.emissive[..., None], 0.9, 0.25 + 0.75 * sc.normal_z[..., None])
    pulse = 1.0 + sc.pulse[..., None] * sc.pulse_value * PULSE_CHANNELS
    rgb = 235.0 * sc.albedo * light * pulse + COLOUR_NOISE_DN * rng.standard_normal(sc.albedo.shape, np.float32)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _depth(sc: _Scene, sensor: SensorModel, rng: np.random.Generator, fixed: _FixedNoise) -> np.ndarray:
    z = sc.z.copy()
    fb = FOCAL_PX * sensor.baseline_mm
    disparity = fb / z
    sigma = sensor.subpixel * (1.0 + 0.3 * np.kron(fixed.depth_field, np.ones((8, 8)))[: z.shape[0], : z.shape[1]])
    disparity = disparity + rng.standard_normal(z.shape, np.float32) * np.abs(sigma)
    if sensor.quant_px:
        disparity = np.round(disparity / sensor.quant_px) * sensor.quant_px
    out = fb / np.maximum(disparity, 1e-3)
    holes = _occlusion(sc.z, fb)
    holes |= (sc.normal_z < 0.35) & (rng.random(z.shape) < sensor.grazing_dropout)
    holes |= (sc.material == SCREEN) & (rng.random(z.shape) < sensor.dark_dropout)
    holes |= (sc.material == EYE) & (rng.random(z.shape) < 0.3)  # the cornea is specular
    jump = np.maximum(np.abs(np.diff(sc.z, axis=1, prepend=sc.z[:, :1])),
                      np.abs(np.diff(sc.z, axis=0, prepend=sc.z[:1])))
    flying = (jump > 30.0) & (rng.random(z.shape) < 0.5)
    mix = rng.random(z.shape)
    out = np.where(flying, mix * out + (1 - mix) * np.roll(out, 1, axis=1), out)
    out = np.round(out)  # z16 at 1 mm
    out[holes] = 0.0
    return out.astype(np.float32)


def _occlusion(z: np.ndarray, fb: float) -> np.ndarray:
    """Pixels the second view cannot see: beside a foreground edge, as wide as the disparity jump."""
    d = fb / z
    holes = np.zeros(z.shape, bool)
    for k in range(1, int(math.ceil(float(d.max() - d.min()))) + 1):
        left = np.roll(d, k, axis=1)
        left[:, :k] = 0
        holes |= (left - d) >= k
    return holes


def _reff(n: float) -> float:
    """Effective internal reflection of a boundary of refractive index n (Groenhuis et al. 1983, as in Cuccia 2009)."""
    return 0.0636 * n + 0.668 + 0.710 / n - 1.440 / n**2


def diffuse_reflectance(freq_per_mm: np.ndarray | float, mus: float, mua: float, n: float = TISSUE_N) -> np.ndarray:
    """Diffuse reflectance R_d of a semi-infinite turbid medium lit at spatial frequency f (Cuccia 2009)."""
    r = _reff(n)
    a = (1.0 - r) / (2.0 * (1.0 + r))
    mutr = mua + mus
    ratio = np.sqrt(3.0 * mua * mutr + (2.0 * math.pi * np.asarray(freq_per_mm, np.float64)) ** 2) / mutr
    return 3.0 * a * (mus / mutr) / ((ratio + 1.0) * (ratio + 3.0 * a))


def absorption_for(reflectance: float, mus: float) -> float:
    """μa (mm⁻¹) at which a homogeneous medium of scattering `mus` has diffuse reflectance `reflectance` (bisection)."""
    lo, hi = 1e-6, 10.0 * mus
    target = min(max(reflectance, 1e-3), float(diffuse_reflectance(0.0, mus, lo)) - 1e-6)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if float(diffuse_reflectance(0.0, mus, mid)) > target else (lo, mid)
    return math.sqrt(lo * hi)


def modulation_transfer(freq_per_mm: np.ndarray, mus: float, reflectance: float,
                        mua: float | None = None) -> np.ndarray:
    """Share of a projected pattern's modulation a surface returns at each spatial frequency (surface + diffuse)."""
    absorb = absorption_for(max(reflectance - R_SURFACE, 1e-3), mus) if mua is None else mua
    diffuse = diffuse_reflectance(freq_per_mm, mus, absorb) / diffuse_reflectance(0.0, mus, absorb)
    surface = min(R_SURFACE / max(reflectance, 1e-3), 1.0)
    return surface + (1.0 - surface) * diffuse


def dot_patterns(p: Presentation, dots: np.ndarray) -> dict[int, np.ndarray]:
    """The projector's ± dot modulation as the IR camera sees it on each material of presentation `p` (**simulated**).

    Keyed by material index (`MATERIALS`); skin and the eye region use the live person's skin, the silicone
    mask its own silicone.  The pattern is fixed to the projector (image coordinates); the material's
    modulation transfer is evaluated at the presentation's distance (mm per pixel = z / f).
    """
    h, w = dots.shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    f_px = np.hypot(fx, fy)
    f_mm = f_px / (p.distance_mm / FOCAL_PX)
    camera = np.exp(-2.0 * (math.pi * IR_CAMERA_BLUR_PX * f_px) ** 2)
    spectrum = np.fft.fft2(2.0 * dots - 1.0) * camera

    def seen(transfer: np.ndarray) -> np.ndarray:
        return np.fft.ifft2(spectrum * transfer).real.astype(np.float32)

    skin_mus = p.person.skin_mus
    skin = seen(modulation_transfer(f_mm, skin_mus, p.person.skin_nir, DERMIS_MUA))
    surface_only = seen(np.ones_like(f_mm))
    out = {WALL: seen(modulation_transfer(f_mm, OTHER_MUS["wall"], WALL_NIR)), SKIN: skin, EYE: skin,
           PAPER: seen(modulation_transfer(f_mm, OTHER_MUS["paper"], PAPER_NIR)), SCREEN: surface_only,
           RESIN: seen(modulation_transfer(f_mm, OTHER_MUS["resin"], RESIN_NIR))}
    if p.species is Species.SILICONE_MASK:
        out[SILICONE] = seen(modulation_transfer(f_mm, p.silicone_mus, SILICONE_NIR))
    return out


def _infrared(sc: _Scene, p: Presentation, rng: np.random.Generator, patterns: dict[int, np.ndarray]) -> np.ndarray:
    if p.emitter_on:
        lit = IR_GAIN * sc.nir * sc.normal_z / sc.z**2
        modulation = np.zeros(sc.z.shape, np.float32)
        for code, pattern in patterns.items():
            modulation = np.where(sc.material == code, pattern, modulation)
        lit *= 1.0 + DOT_CONTRAST * modulation
        glint = sc.cornea & (rng.random(sc.z.shape) < 0.35)
        lit = np.where(glint, 255.0, lit)
        screen = sc.material == SCREEN
        if screen.any():  # the emitter's mirror image in the cover glass: one small bright spot
            vv, uu = np.nonzero(screen)
            spot = (np.hypot(np.arange(sc.z.shape[1])[None, :] - uu.mean(), np.arange(sc.z.shape[0])[:, None]
                             - vv.mean()) < 4.0) & screen
            lit = np.where(spot, 255.0, lit)
    else:
        lit = np.zeros(sc.z.shape)
    ir = lit + IR_AMBIENT_DN * sc.nir / 0.5 + IR_NOISE_DN * rng.standard_normal(sc.z.shape, np.float32)
    return np.clip(np.round(ir), 0, 255).astype(np.uint8)


def population(species: Species, count: int, seed: int = 0, **changes: object) -> list[Presentation]:
    """`count` presentations of one species from a seeded population (same seed → same people)."""
    rng = np.random.default_rng([seed, list(Species).index(species)])
    return [replace(Presentation.sample(species, rng), **changes) for _ in range(count)]  # type: ignore[arg-type]
