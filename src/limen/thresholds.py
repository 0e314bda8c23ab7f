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
# Memory bombs (issue 14): an 8.6 MB video of 40 frames at 6000×6000 took a server from 193 MB to 4.6 GB.
# Decoding is bounded by pixels declared in headers, before decoding (`python bench/hostile_media.py`).
FRAME_MAX_PIXELS = 4096 * 4096         # one decoded image or video frame (16.8 MP: a 12 MP phone photo passes)
CAPTURE_MAX_PIXELS = 64_000_000        # all frames of one capture / one request's uploads (≈ 192 MB as RGB)

# ---------------------------------------------------------------- face detection
DETECT_MAX_SIDE = 640                  # first pass runs on an image no wider/taller than this
DETECT_UPSAMPLE_RETRY = 1              # upsamplings tried when the first pass finds no face
# A verification burst (bio.face.burst): detect once on a small copy, then follow the face by its landmarks.
DETECT_BURST_MAX_SIDE = 320            # the burst's detection pass: 7 ms vs 24 ms at 640 (640×480 NUAA, one core)
# The box drawn from the 5 landmarks mimics the detector's own box at DETECT_MAX_SIDE, which PAD's texture
# model was trained on: median over 300 nuaa-dev frames (150 live, 150 print) of the detector box expressed
# in eye distances from the eyes' midpoint (spread: side σ 0.19, centre σ 0.09; the detector's own jitter).
TRACK_BOX_SIDE = 2.33                  # box side, in eye distances
TRACK_BOX_DROP = 0.50                  # box centre below the eyes' midpoint, in eye distances
TRACK_MAX_DRIFT = 0.08                 # landmarks refitted from the drawn box move more (eye distances): lost
TRACK_SEARCH_MARGIN = 0.35             # the next image is searched this many box sides around the last box …
                                       # (30 nuaa-dev bursts: 38 ms CPU a burst, 5 re-detections; 0.5: 43 ms, 4)
TRACK_SEARCH_FACE_PX = 100             # … scaled so that box is this wide (the detector's window is 80 px)
TRACK_CONFIRM_MARGIN = 0.15            # a face followed by its landmarks is confirmed by the detector this many
                                       # box sides around its new box (fewer pyramid levels).  nuaa-dev (dev data),
                                       # bursts of 5 vs detecting near every box: live 33 → 27 ms CPU a burst;
                                       # same PAD decision on 138 live + 131 print bursts; 9-subject 1:1 at
                                       # FACE_MATCH_DEFAULT: genuine 165/191 both, impostor 1/1457 → 0/1457

# ---------------------------------------------------------------- face quality gates
QUALITY_MIN_FACE_PX = 60               # inter-ocular-based face box side, in source pixels
QUALITY_MIN_SHARPNESS = 15.0           # variance of the Laplacian on the 150×150 chip; refuses 1–2 % of
                                       # lfw-subset + pairs-web (median 65); a σ = 3 px blur gives ≈ 3.5
QUALITY_MIN_BRIGHTNESS = 40.0          # mean luma of the chip, 0–255
QUALITY_MAX_BRIGHTNESS = 220.0
QUALITY_MAX_YAW = 0.35                 # |nose offset| / eye distance, from 5-point landmarks
QUALITY_SECOND_FACE_RATIO = 0.6        # a 2nd face at least this big relative to the 1st refuses

# ---------------------------------------------------------------- face matching
# Euclidean distance between dlib ResNet descriptors (lower = more alike).
# Calibrated with `limen lab verify` on three sets; the operating points are set
# by the WORST set, because dlib's network separates some populations far less
# well than others: on ../shared/data/nuaa-dev/live (9 subjects filmed in China,
# webcam; 332,565 impostor comparisons) impostors come as close as 0.36, while on
# lfw-subset (4,500) and pairs-web (262) none comes closer than 0.56.  At
# face_recognition's 0.60, FAR is 0.33 % on lfw-subset but 15 % at 0.49 on NUAA.
#   threshold  FAR nuaa (single / 3-ref)   FRR lfw 3-ref   FRR nuaa 3-ref   FRR pairs-web
#   0.37       9e-5 / 0 of 6,776           33 %            14.5 %           42 %
#   0.39       9.3e-4 / 7.4e-4             21 %            10.9 %           34 %
# A 5-sample reference brings FRR at 0.37 to 14 % (lfw-subset) and 16 % (NUAA).
FACE_MATCH_FR_DEFAULT = 0.60           # face_recognition's tolerance, for comparison only
FACE_MATCH_FMR_1E3 = 0.39              # FMR ≤ 1e-3 on every set measured (worst: nuaa-dev live)
FACE_MATCH_FMR_1E4 = 0.37              # FMR ≤ 1e-4 on every set measured (worst: nuaa-dev live)
FACE_MATCH_DEFAULT = FACE_MATCH_FMR_1E4  # a door: the strictest point measured; FRR is won back by
                                         # multi-sample enrolment, bursts and the PIN fallback
FACE_ENROL_MIN_SAMPLES = 1             # accepted samples needed to enrol
FACE_ENROL_RECOMMENDED_SAMPLES = 5     # fewer: enrolment warns (the reference is noisier)
FACE_IDENTIFY_MARGIN = 0.04            # 1:N: the best candidate must beat the runner-up by this
FACE_ENROL_MAX_FRAMES = 10             # frames used from one enrolment video / folder
FACE_PROBE_MAX_FRAMES = 5              # frames embedded from one verification burst
# Enrolment bursts must be one continuous capture (bio.face.burst.scene_change): the median, over consecutive
# frames, of the mean |difference| of standardised 48 px grey thumbnails outside their centre (the background).
# Development data only: 5 lfw-subset photos of one person (8 people): 0.55-1.52 per pair, medians ≥ 0.9;
# 10 consecutive nuaa-dev live frames (16 subject-sessions): 0.01-0.70 per pair, medians ≤ 0.33.
ENROL_BURST_THUMB_PX = 48              # side of the grey thumbnail compared
ENROL_BURST_CENTRE_MARGIN = 10         # thumbnail pixels of border kept as "background" (the centre is the face)
ENROL_BURST_MAX_SCENE_CHANGE = 0.5     # median change above this: separate photos, not one burst

# ---------------------------------------------------------------- face embedding (bio.face.fast_embed)
# The fast (ONNX Runtime) backend must reproduce dlib's descriptors.  Measured
# with `python bench/embed.py`: max |fast − dlib| ≈ 1e-6 over every chip of
# lfw-subset and pairs-web (docs/embed.md); the match thresholds above are
# distances ≥ 0.4, so 1e-4 per component changes no decision.
EMBED_MAX_ABS_DIFF = 1e-4              # self-check: fast vs dlib on the check chips, per component
EMBED_SELF_CHECK_CHIPS = 3             # deterministic synthetic chips embedded by both at first use
EMBED_BATCH = 16                       # chips per runtime call (dlib's own batch size)
EMBED_THREADS = 1                      # ONNX Runtime intra-op threads per session: a lock serves one face at
                                       # a time and a second thread made one chip slower on 2 cores (7.5 vs 3.8 ms)

# ---------------------------------------------------------------- access (lockout, PINs, codes)
# Matter Door Lock attribute names in comments.  Brute-force figures: `python bench/bruteforce.py`.
WRONG_CODE_ENTRY_LIMIT = 5             # WrongCodeEntryLimit: wrong PIN/code/RFID entries before lockout
USER_CODE_TEMPORARY_DISABLE_TIME_S = 60  # UserCodeTemporaryDisableTime: first keypad lockout
LOCKOUT_ESCALATION_FACTOR = 2          # each consecutive lockout lasts this many times longer …
LOCKOUT_MAX_DISABLE_S = 86_400         # … up to one day; reset by a successful keypad credential
KEYPAD_WRONG_WINDOW_S = 3600           # wrong keypad entries also counted per window, successes or not …
KEYPAD_WRONG_WINDOW_ENTRIES = 10       # … at this many in one window the keypad is locked to the window's end
BIO_FAILURE_LIMIT = 5                  # consecutive biometric failures before the PIN is required
STRONG_AUTH_MAX_AGE_H = 72             # a user's PIN must have been used within this to open by face
SECOND_FACTOR_WINDOW_S = 30.0          # a recognised RGB face waits this long at its kiosk for the PIN/code
AUTO_RELOCK_TIME_S = 30                # AutoRelockTime: relock this long after an unlock
PIN_MIN_LENGTH = 6                     # MinPINCodeLength (6 digits: 10^6 space; see docs/access.md)
PIN_MAX_LENGTH = 12                    # MaxPINCodeLength
PIN_ENTRY_MAX_DIGITS = 12              # anti-peep: longest keypad entry (decoys + PIN) examined
PIN_HISTORY_DEPTH = 5                  # a new PIN may not repeat any of the user's last N PINs
PIN_ARGON2_TIME_COST = 2               # Argon2id, OWASP 2023 minimum (m=19 MiB, t=2, p=1)
PIN_ARGON2_MEMORY_KIB = 19_456
PIN_ARGON2_PARALLELISM = 1
PIN_ARGON2_MEMORY_BUDGET_KIB = 4 * PIN_ARGON2_MEMORY_KIB  # Argon2id memory in use at once, whatever the load
                                       # (concurrent PINs queue): 76 MiB, so `limen serve` fits a 1 GB board
OFFLINE_CODE_MAC_DIGITS = 8            # decimal digits of HMAC-SHA256 in every offline code
OFFLINE_SINGLE_USE_HOURS = 6           # a single-use offline code is valid this long after its hour
OFFLINE_CODE_MAX_DIGITS = 20           # longest keypad entry parsed as an offline code
MECHANICAL_KEY_OFFLINE_LIMIT = 3       # key uses while offline before alarm + owner re-authorisation
BACKUP_PIN_OFFLINE_USES = 3            # default offline uses of a backup PIN
DOOR_JAM_TIMEOUT_S = 3.0               # an actuator that has not reached its target by then is jammed

# ---------------------------------------------------------------- pad
# Face presentation attack detection (limen.pad).  Scores are log-odds of bona
# fide (higher = more likely a live face).  The door decides on the FUSED score
# (texture_v2 + MiniFASNet, models/fusion_v1.npz); single cues only veto.  Fused and
# texture points were set with `python -m limen.lab.pad_train_v2` on leave-one-dataset-out
# scores (each frame scored by models that never saw its dataset) of lfw-subset,
# pairs-web and nuaa-dev live frames (183), their SIMULATED recaptures (866, 5 species)
# and NUAA's real prints (114); the model card (src/limen/pad/models/texture_v2.md)
# holds every figure.  Per frame, all datasets pooled.
PAD_TEXTURE_CROP_PX = 64               # face crop side for the colour-texture LBP histograms
PAD_DISTORTION_CROP_PX = 96            # face crop side for the image-distortion features
PAD_FREQUENCY_CROP_PX = 128            # face crop side for the spectrum / moiré features
PAD_FREQUENCY_BANDS = 12               # radial bands of the power spectrum
PAD_SPECULAR_MIN_VALUE = 0.85          # HSV value (0–1) at or above which an unsaturated pixel is specular …
PAD_SPECULAR_MAX_SATURATION = 0.20     # … when its saturation is at most this
# Texture (texture_v2, one frame): alone it is near chance on a dataset it never saw (EER 39 %), so it is
# only a veto; its evidence enters the fused score.
PAD_TEXTURE_VETO_BPCER_0 = -6.115      # 0.5 below the lowest live score (BPCER 0 of 183)
PAD_TEXTURE_VERIFY = PAD_TEXTURE_VETO_BPCER_0
PAD_TEXTURE_ENROL = PAD_TEXTURE_VETO_BPCER_0
# MiniFASNet (limen.pad.minifasnet; upstream weights imported with `limen models import`): score = log-odds
# of live from the summed softmax of V2 (2.7× crop) and V1SE (4.0× crop), mean over a sample's frames.
# Per-frame scores of every nuaa-dev image (874 live, 872 print; PAD's own face location), DEVELOPMENT
# DATA, `python bench/pad_minifasnet.py`: fully separated (highest print −3.17, lowest live −0.73; session 02
# is the harder one), so APCER is 0 % anywhere in the gap and the points below are set by BPCER, as high as it
# allows (the most margin against attacks the set does not hold: upstream's weights are reported to collapse
# on high-quality prints elsewhere — see docs/pad.md).
PAD_MINIFASNET_BPCER_1PCT = 0.035      # BPCER 1.0 %, APCER 0 % (session 02 alone: BPCER 2.1 %)
PAD_MINIFASNET_BPCER_5PCT = 0.521      # BPCER 5.0 %, APCER 0 % (session 02 alone: BPCER 10.3 %)
PAD_MINIFASNET_VETO = -3.0             # below every nuaa-dev print's −3.17 gap edge; costs 0 BPCER on the pooled
                                       # leave-one-dataset-out set (183 live frames, web photos included)
PAD_MINIFASNET_VERIFY = PAD_MINIFASNET_VETO  # verification: a veto, the fused score decides
PAD_MINIFASNET_ENROL = PAD_MINIFASNET_BPCER_5PCT   # enrolment: stricter, a spoof must not become a template
PAD_MINIFASNET_CHANNEL_MULTIPLE = 16   # the graph run pads MiniFASNet's pruned channel counts (13, 103, 231, …)
                                       # to this with zero channels (onnx_minifasnet.pad_channels): ONNX Runtime's
                                       # blocked kernels take 16 channels with AVX-512, 8 with AVX2 (16 serves
                                       # both); one crop, both models, one core: see docs/pad.md "Deep cue"
PAD_MAX_FRAMES = 8                     # frames of a capture analysed (evenly spaced); bounds the cost
PAD_ENROL_MIN_FRAMES = 3               # usable face frames enrolment needs
PAD_VERIFY_MIN_FRAMES = 1              # usable face frames verification needs
PAD_MIN_FACE_PX = 60                   # face box side below which a frame is unusable for PAD
PAD_MAX_BORDER_CUT = 0.10              # share of the face box outside the image beyond which a frame is unusable
PAD_MIN_LUMA = 35.0                    # face-crop mean luma (0–255) below which a frame is unusable …
PAD_MAX_LUMA = 225.0                   # … and above which it is unusable
PAD_MIN_USABLE_SHARE = 0.5             # share of analysed frames that must be usable (else insufficient)
PAD_MOTION_MAX_POINTS = 80             # corners tracked inside the face box
PAD_MOTION_MIN_POINTS = 12             # fewer tracked points: the pair is untrackable
PAD_MOTION_FB_PX = 1.0                 # forward–backward tracking error (px) above which a point is dropped
# Motion: pairs of consecutive NUAA frames (99 live, 261 print pairs that move ≥ PAD_MOTION_MIN_MOTION;
# lowest live ratio 0.46) and 5-frame bursts: 48 real live NUAA bursts (lowest burst median 0.43) against
# SIMULATED hand-held attack bursts (`python -m limen.lab.recapture OUT --bursts 3`, 48 per species): at 0.35,
# 0 of 44 judged live bursts, print_matte 34/35 and print_glossy 26/30 judged bursts planar, screens only
# 32/139 (docs/pad.md).
PAD_MOTION_MIN_MOTION = 0.01           # non-translational motion (eye distances) below which a pair cannot tell
PAD_MOTION_MIN_PAIRS = 1               # moving frame pairs needed for the cue to judge
PAD_MOTION_PLANAR_RATIO = 0.35         # homography residual / motion below which the face moved as a plane
# Challenge (pad/challenge.py), `python -m limen.lab.challenge_calibration`: REAL still live faces (all 874
# nuaa-dev live frames, 16 runs) must not read as a move, or the neutral frames break a real person's sequence:
# |signed yaw| q99.9 0.161, max 0.240; nose drop − run median q99.9 0.137, max 0.140.  A SIMULATED flat print
# turned 45° (pinhole homography) reads yaw 0.161 (cannot fake a turn); tilted 45° it reads 0.20 of "up" (can),
# with parallax ratio ≤ 0.156 in every pose (< PAD_MOTION_PLANAR_RATIO: the parallax check refuses it).
# Geometry: a head yawed θ reads ≈ 0.5·tan θ (0.25 ≈ 27°); tilted up θ, ≈ 0.5·sin θ + 0.7·(1 − cos θ) (0.16 ≈ 17°).
PAD_CHALLENGE_YAW_ABOVE_STILL_MAX = 0.25    # above every still live frame (max 0.240) and every turned print
PAD_CHALLENGE_PITCH_ABOVE_STILL_MAX = 0.16  # above every still live frame (max 0.140)
PAD_CHALLENGE_MIN_YAW = PAD_CHALLENGE_YAW_ABOVE_STILL_MAX      # |signed yaw| (eye distances) that counts as turned
PAD_CHALLENGE_MIN_PITCH = PAD_CHALLENGE_PITCH_ABOVE_STILL_MAX  # drop of the nose toward the eye line (eye
                                       # distances, from the neutral frames) that counts as "looked up"
PAD_CHALLENGE_MAX_MOVES = 5            # longest random move sequence a kiosk may ask for
# Frame cue (limen.pad.edges): straight edges around the face, measured at a fixed face size.
PAD_EDGE_REACH = 1.0                   # search this many face sides around the face box for framing edges
PAD_EDGE_FACE_PX = 96                  # the face box is rescaled to this side before edge detection
PAD_EDGE_VETO = -4.0                   # lab cue, not in DEFAULT_CUES: leave-one-dataset-out EER 46 % (too weak)
# Fused score (models/fusion_v2.npz: MiniFASNet + 0.5 × texture_v2, calibrated; chosen by
# `python -m limen.lab.pad_audit` on the shifted leave-one-dataset-out folds).  Per frame, pooled
# leave-one-dataset-out frames (183 live, 866 SIMULATED attacks, 114 NUAA real prints):
PAD_FUSED_BPCER_2PCT = 0.176           # BPCER 1.6 % (lfw 3 %, nuaa 0 %, web 0 %); worst APCER 4.2 % (simulated
                                       # matte print), NUAA real prints 0 %, screens ≤ 1.7 % (simulated)
PAD_FUSED_APCER_1PCT = 2.75            # worst APCER 0.6 % (simulated prints), real prints 0 %; BPCER 15.3 %
# A burst is judged by its robust minimum fused frame (fusion.robust_minimum): this share of its usable frames
# (rounded down) may fail alone — one of the door's five.  On 48 real live NUAA bursts scored by a texture model
# that never saw NUAA, against 48 SIMULATED hand-held bursts per species: BPCER 2.1 %, worst species 4.2 %
# (laptop screen); the plain mean let 6.2 % of laptop bursts through, the strict minimum refused 6.2 % of live.
PAD_FUSED_FRAMES_FORGIVEN_SHARE = 0.25
PAD_FUSED_VERIFY = PAD_FUSED_BPCER_2PCT       # verification
PAD_FUSED_ENROL = PAD_FUSED_APCER_1PCT        # enrolment: a spoof must not become a template
# Flicker cue (limen.pad.photometric), lab cue, not in DEFAULT_CUES: mains-lit rooms band too, and on 15 real
# live NUAA bursts (highest 0.0195) vs SIMULATED screen bursts it separates few (docs/pad.md).
PAD_FLICKER_BANDING = 0.025            # banding (RMS log-luminance × spectral peak share) at score 0

# ---------------------------------------------------------------- PAD sensors (depth, infrared, pulse, masks)
# Pulse (rPPG, pad/pulse.py).  Real-skin figures: `limen lab pulse ../shared/data/rppg-skin` (docs/pad-sensors.md).
PULSE_BAND_HZ = (0.7, 3.0)             # skin band searched for the heart rate: 42–180 BPM
PULSE_WINDOW_SECONDS = 1.6             # POS/CHROM projection window (Wang et al. 2017: ≈ one cardiac cycle)
PULSE_WELCH_SECONDS = 10.0             # Welch segment (0.1 Hz = 6 BPM resolution before zero padding)
PULSE_PEAK_HALF_WIDTH_HZ = 0.1         # SNR: power within this of the peak (and 2× around the harmonic) = signal
PULSE_MIN_SECONDS = 3.0                # shorter captures cannot be judged by pulse (unavailable)
PULSE_MIN_FPS = 8.0                    # slower or irregular frame clocks cannot be judged
PULSE_MAX_STEP = 0.08                  # largest frame-to-frame change of the skin mean (share) before "unstable"
PULSE_SKIN_LUMA_PERCENTILES = (10.0, 90.0)  # skin pixels of a patch: luminance between these percentiles
PULSE_SHUFFLES = 19                    # permutation test: a pulse must beat the SNR of its own shuffled frames
PULSE_COHERENT_P = 0.05                # ... in all but this share of shuffles (19 shuffles: beat every one)
# The attack side of the pulse cue (no coherent pulse) can only be simulated, so its thresholds are set on
# REAL skin to protect bona fide users: SNR of POS over 4-s windows (step 2 s) of the 24 rppg-skin videos
# (2,006 windows): percentiles 0.5 / 1 / 2 / 5 / 50 % = −8.07 / −7.82 / −7.47 / −7.04 / −4.42 dB.  On the
# simulator, masks and prints reach −7.7 to −0.8 dB: at 4 s the pulse is too weak to veto them (docs/pad-sensors.md).
PULSE_SNR_VERIFY = -8.1                # dB; real-skin 4-s windows: BPCER ≈ 0.5 % (rppg-skin, 2,006 windows)
PULSE_SNR_ENROL = -7.5                 # dB; stricter for enrolment: BPCER ≈ 2 % on the same windows
# Depth, infrared and eye-region cues (pad/depth.py, pad/infrared.py, pad/eyes.py): calibrated on the
# SIMULATOR only (limen.lab.simulate, `limen lab campaign`); no real depth/IR/mask data exists here.
DEPTH_MIN_VALID_SHARE = 0.6            # inner-face depth pixels that must be measured, else the frame is skipped
DEPTH_MAX_FACE_RANGE_MM = 90.0         # p5–p95 depth span of the inner face above which streams are not registered
# Depth and eye-region cues: simulated calibration set = 30 presentations per species, seed 7, stereo model,
# 4 s at 10 fps (/tmp calibration run; the campaign evaluates on other seeds):
#   relief (cheek − nose tip, mm)  bona fide min 20.0 | flat print max 3.5, bent print 9.5, paper mask 7.0
#   plane RMS (mm)                 bona fide min 8.3  | bent print max 3.6, paper mask 3.1
#   cylinder RMS (mm)              bona fide min 5.4  | bent print max 2.1, paper mask 2.6
#   eye-rim share (rays stepping by ≥ 6 mm in ≥ half the frames), 30 per species, stereo / structured light:
#                                  bona fide max 0.104 / 0.104 | silicone min 0.208 / 0.208, resin median 0.88 / 0.81
# Screens leave too few depth pixels (valid share ≈ 0.4): the depth cue is unavailable, the IR cue judges them.
DEPTH_RELIEF_MIN_MM = 14.0             # simulated: between bona fide min (20) and any print/paper mask (≤ 9.5)
DEPTH_PLANE_RMS_MIN_MM = 5.5           # simulated: between bona fide min (8.3) and flat/bent paper (≤ 3.6)
DEPTH_CYL_RMS_MIN_MM = 3.5             # simulated: between bona fide min (5.4) and bent paper (≤ 2.6)
EYES_STEP_MM = 6.0                     # second difference (mm) along a ray that counts as a rim step
# Eye rim re-measured on 150 bona fide / 80 silicone (seed 7, stereo, 4 s at 10 fps): bona fide 95th / 99th pct /
# max 0.116 / 0.229 / 0.271 (5 of 150 above 0.15: the old 0.15 refused 3.3 % of live people); silicone 1st pct /
# median 0.142 / 0.354.  The door takes the high point (BPCER), enrolment the old low one (masks).
EYES_MAX_STEP_SHARE = 0.28             # simulated, verification: above every bona fide (max 0.271 of 150)
EYES_MAX_STEP_SHARE_ENROL = 0.15       # simulated, enrolment: 5 of 150 bona fide refused; 4 of 80 silicone pass it
IR_SIM_GAIN = 2.4e7                    # simulated camera: DN·mm² per unit reflectance (a real device: calibrate)
IR_MEAN_COS = 0.9                      # mean cos(incidence) on forehead and cheeks
IR_AMBIENT_DN = 6.0                    # ambient NIR level subtracted before estimating reflectance
IR_MIN_SCENE_DN = 20.0                 # IR level (at the percentile below) under which the image is "dark"
IR_SCENE_PERCENTILE = 99.9             # a screen's specular spot (≈ 0.2 % of the image) shows the emitter is on
# Estimated NIR reflectance, simulated set (20 per species, seed 7): bona fide 0.36–0.59, silicone mask
# 0.52–0.61 (inside the skin band: the IR cue cannot tell silicone, as the simulator assumes), resin
# 0.61–0.77, paper ≥ 0.68, screens ≤ 0.01.  The band only separates what the simulator's assumed
# reflectances separate; a real device needs measured values (docs/pad-sensors.md).
IR_SKIN_MIN = 0.30                     # simulated: below the darkest bona fide estimate (0.36)
IR_SKIN_MAX = 0.62                     # simulated: above the lightest bona fide estimate (0.59)
# Sub-surface cue (pad/infrared.py SubsurfaceCue): dot contrast of the projector's pattern on forehead and
# cheeks, scaled to SUBSURFACE_REF_MM by (ref/z)^exponent.  SIMULATED calibration (seed 7): see the figures below.
IR_SIM_NOISE_DN = 1.5                  # simulated IR sensor noise (1 σ, DN); a real device: measure on a flat target
SUBSURFACE_HIGHPASS_PX = 1.5           # Gaussian σ (px) removed before measuring the dots
SUBSURFACE_REF_MM = 400.0              # distance the contrast is scaled to
IR_SATURATED_DN = 250.0                # an 8-bit IR pixel at or above this is clipped (and its 3×3 neighbours ignored)
SUBSURFACE_MAX_SATURATED_SHARE = 0.05  # more clipped pixels in a patch: overexposed, not judged (a glint is fewer)
SUBSURFACE_DISTANCE_EXPONENT = 0.5     # contrast grows ≈ ∝ √z (more mm per pixel: less blur per pixel; fitted, seed 7)
# Dot contrast at 400 mm, simulated (seed 7, stereo, 4 s at 10 fps): bona fide (150) 1st / 50th / 99th pct / max
# 0.046 / 0.069 / 0.089 / 0.094 (lighter skin max 0.094, darker 0.089); silicone masks (80, μs' 2.5–6 mm⁻¹ by
# ASSUMPTION) min / 1st pct / median 0.117 / 0.118 / 0.151.  The gap exists only because the assumed silicone
# scatters more than skin (docs/pad-sensors.md: the campaign against skin-like silicone).
SUBSURFACE_MAX_CONTRAST_VERIFY = 0.105 # simulated: between bona fide max (0.094) and silicone min (0.117)
SUBSURFACE_MAX_CONTRAST_ENROL = 0.098  # simulated, stricter for enrolment: just above bona fide max (0.094)

# ---------------------------------------------------------------- vault
# Protected face templates: secret orthogonal projection of the 128-d dlib
# descriptor to VAULT_FACE_BITS sign bits; distance = normalised Hamming
# (≈ angle between descriptors / π).  Bits chosen with `limen lab protection`
# on ../shared/data/lfw-subset (16 device keys, docs/vault.md): EER loss vs raw
# mean/worst 1.11/1.95 points at 1,024 bits, 0.12/0.55 at 8,192, 0.05/0.22 at 32,768.
VAULT_FACE_BITS = 32768                # protected template size (4 KiB)
VAULT_SEARCH_PREFIX_BITS = 512         # 1:N first stage ranks everyone on this many bits …
VAULT_SEARCH_SHORTLIST = 200           # … and re-ranks this many candidates on the bits it keeps in memory …
VAULT_INDEX_KEEP_BITS = 8192           # … (1 KiB a person: ≤ 150 MB at 100,000, python bench/unlock.py) …
VAULT_SEARCH_EXACT = 3                 # … then scores this many best (≥ top_k) on all bits, unsealed one by one
# 100,000 people (python bench/unlock.py --only search, CPU time a probe, rank-1 of a re-sampled person):
# prefix 1024 + 4 exact 3.5 ms; 512 + 4: 3.17 ms; 512 + 3: 2.48 ms; 512 + 2: 2.85 ms; rank-1 1.00 in each
# Thresholds: the raw operating points carried into the protected domain and checked
# on the worst population (nuaa-dev live, every 2nd frame, 3 random device keys):
#   0.085: FAR 2.4e-5 – 8.4e-5, FRR 18–19 %  (raw 0.37: FAR 9.6e-5, FRR 21 %)
#   0.088: FAR 1.3e-4 – 3.6e-4, FRR 14–15 %  (raw 0.39: FAR 8.8e-4, FRR 16 %)
# lfw-subset: no impostor accepted at either; FRR as raw.  (`limen lab protection`,
# and the check in docs/vault.md.)  Starting point: h = 2·asin(d / 2.84) / π.
VAULT_FACE_MATCH_FMR_1E3 = 0.088       # raw FACE_MATCH_FMR_1E3 = 0.39
VAULT_FACE_MATCH_FMR_1E4 = 0.085       # raw FACE_MATCH_FMR_1E4 = 0.37
VAULT_FACE_MATCH_DEFAULT = VAULT_FACE_MATCH_FMR_1E4
VAULT_ZEROIZE_P99_MS = 5.0             # software-store crypto-erase budget, checked by bench/vault.py

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
AUDIT_KEY_DOOR_WINDOW_S = 60.0         # a door opened this soon after the mechanical key is not "forced"
AUDIT_ALARM_GROUP_WINDOW_S = 300.0     # repeats of one alarm (rule + subject) inside this are grouped
AUDIT_ALARM_GROUP_WINDOW_CRITICAL_S = 60.0  # shorter grouping for critical alarms
AUDIT_RETRY_BASE_S = 2.0               # first retry of a failed delivery; doubles each time …
AUDIT_RETRY_MAX_S = 900.0              # … up to this; deliveries are retried forever, never dropped
AUDIT_DELIVERY_TIMEOUT_S = 5.0         # one delivery attempt (HTTP connect + read) gives up after this
AUDIT_SIREN_SECONDS = 60.0             # how long the local siren sounds for one alarm
AUDIT_WEBHOOK_MAX_AGE_S = 300.0        # a signed webhook older than this is refused by the verifier

# ---------------------------------------------------------------- service
# `limen serve`: upload limits, sessions and rate limits of the local web service.
# Not calibrated on a dataset: sized for a 640×480 JPEG camera burst on a 2-core
# lock controller (`python bench/service.py` measures what the service holds).
SERVICE_MAX_REQUEST_BYTES = 32 * 1024 * 1024  # any request body above this is refused (413) unread
SERVICE_RETENTION_CHECK_S = 3600.0      # a running service erases expired references at least hourly
SERVICE_MAX_FRAME_BYTES = 2 * 1024 * 1024     # one camera frame or uploaded photo
SERVICE_MAX_UNLOCK_FRAMES = 10                # frames in one kiosk unlock burst
SERVICE_FACE_WAITING = 3                      # face requests waiting for the one at work (more: 503 busy)
SERVICE_FACE_RETRY_AFTER_S = 1                # the busy answer's Retry-After (≈ one 5-frame unlock on the board)
SERVICE_CHALLENGE_TTL_S = 20.0                # a kiosk's head-move challenge (Settings.kiosk_challenge) is
                                              # good for one unlock burst within this time; UX, not calibrated
SERVICE_MAX_ENROL_FILES = 20                  # photos/frames in one enrolment
SERVICE_SESSION_TTL_S = 8 * 3600              # an owner session expires this long after login …
SERVICE_SESSION_IDLE_S = 30 * 60              # … or after this long without a request
SERVICE_LOGIN_RATE_PER_MIN = 5.0              # login attempts per client (token bucket refill) …
SERVICE_LOGIN_BURST = 5                       # … and bucket size
SERVICE_LOGIN_GLOBAL_PER_MIN = 30.0           # login attempts from all clients together
SERVICE_UNLOCK_RATE_PER_MIN = 30.0            # kiosk unlock/keypad requests per client …
SERVICE_UNLOCK_BURST = 10                     # … and bucket size
SERVICE_UNLOCK_GLOBAL_PER_MIN = 120.0         # kiosk requests from all clients together
SERVICE_PASSWORD_MIN_LENGTH = 10              # owner password (Argon2id-hashed)
SERVICE_TOKEN_MAX_DAYS = 365                  # an API token lives at most this long (default: Settings.api_token_days)
SERVICE_STEP_UP_S = 5 * 60                    # password (+ TOTP) re-confirmation opens minting/PIN changes this long
SERVICE_STEP_UP_MAX_FAILURES = 5              # wrong password confirmations in a row (per account) end the session
SERVICE_PAIRING_TTL_S = 15 * 60               # a door-screen pairing link works once, within this time
SERVICE_MAX_LOCAL_SCREENS = 8                 # browsers on the lock itself kept paired (older ones are unpaired)
SERVICE_REMOTE_UNLOCK_BURST = 5               # remote unlocks per owner account (token or session), whatever the
SERVICE_REMOTE_UNLOCK_PER_MIN = 6.0           # client address: a leaked token cannot spread PIN guesses over IPs
# The owner's history and alarms (presentation only, not calibrated on data: they decide how lines are grouped,
# never what is refused): refusals of one method by one person (or by strangers) this close together read as one
# line ("3 wrong codes at the door"); alarms sharing an attempt, or of the same rule this close, are one incident.
SERVICE_FEED_GROUP_S = 10 * 60
SERVICE_ALARM_INCIDENT_S = 15 * 60
SERVICE_LIVE_POLL_S = 1.0                     # live state (SSE) checked this often per connected screen
SERVICE_LIVE_STREAM_S = 300.0                 # one SSE response lasts this long; the browser reconnects by itself
GUEST_CODE_DIGITS = 8                         # a guest's door code (a PIN valid in a window): 10^8 codes;
                                              # with the keypad lockout ≤ 2.8e-6 chance to hit it in a day,
                                              # ≤ 1.1e-5 in 31 days (docs/service.md;
                                              # tests/service/test_console_guests.py)
GUEST_MAX_HOURS = 24 * 31                     # longest a guest code may last
# Alarm channels set up in the console (service.alerting; presentation and input bounds, not calibrated):
ALERT_URL_MAX_LEN = 1000                      # an apprise URL longer than this is refused
ALERT_LABEL_MAX_LEN = 40                      # the owner's name for a channel ("Alice's phone")
ALERT_CONSOLE_MAX_CHANNELS = 20               # channels the console may add (limen.toml's are not counted)
ALERT_URL_MASK_MIN_LEN = 10                   # shorter URLs show only their scheme; longer: 2 chars each end

# ---------------------------------------------------------------- tamper
# Debouncing and sensitivities of the tamper sources (limen.tamper).  Not
# calibrated on a dataset: mechanical micro-switches bounce for 1–10 ms, so a
# level must hold longer than that; the figures of the response itself come from
# `python bench/tamper.py` (docs/tamper.md).  HIGH trips sooner (more false
# alarms), LOW later (fewer).  A tamper erases every template: prefer NORMAL.
TAMPER_SWITCH_HOLD_S_HIGH = 0.005      # case / escutcheon switch: level held this long trips …
TAMPER_SWITCH_HOLD_S_NORMAL = 0.020    # … (20 ms: twice the worst bounce of a micro-switch)
TAMPER_SWITCH_HOLD_S_LOW = 0.100
TAMPER_FLAP_EDGES = 8                  # this many level changes inside the window is a flapping
TAMPER_FLAP_WINDOW_S = 1.0             # sensor, which trips too (a probed or shorted line flaps)
TAMPER_SHOCK_PULSES_HIGH = 2           # shock / vibration sensor: pulses inside the window that trip
TAMPER_SHOCK_PULSES_NORMAL = 4
TAMPER_SHOCK_PULSES_LOW = 8
TAMPER_SHOCK_WINDOW_S = 0.5
TAMPER_SUPPLY_MIN_V = 10.8             # 12 V supply −10 %: below this (held) is a brown-out / short
TAMPER_SUPPLY_MAX_V = 14.4             # 12 V supply +20 %: above this (held) is an injection
TAMPER_SUPPLY_HOLD_S = 0.050           # a supply excursion must last this long (motor inrush is shorter)
TAMPER_WATCHDOG_TIMEOUT_S = 10.0       # a lock process silent this long trips the watchdog
TAMPER_POLL_INTERVAL_S = 0.005         # the monitor thread re-checks every source this often
TAMPER_UNLOCK_HOLDOFF_S = 5.0          # after a tamper signal no unlock reaches the motor for this long

# ---------------------------------------------------------------- fingerprint (limen.bio.finger)
# Extraction and matching of 500 dpi fingerprint images.  Tuned on the FVC2002
# B sets (../shared/data/fvc2002/DB1_B–DB4_B, 4 × 80 images, FVC protocol) with
# `limen lab finger`: DEVELOPMENT DATA — the same images were used to choose
# these numbers, so the figures in docs/finger.md are optimistic.
FINGER_MIN_SIDE = 150                  # smaller images are refused (a 500 dpi print is ≥ 0.3 inch)
FINGER_MAX_SIDE = 1200                 # larger images are refused (≈ 2.4 inch at 500 dpi)
FINGER_MIN_CONTRAST = 8.0              # grey-level std of the whole image below this = blank
FINGER_SATURATED_FRACTION = 0.95       # this share of pixels at 0 or 255 = saturated capture
FINGER_BLOCK = 16                      # segmentation / orientation block side, px
FINGER_SEG_FRAME = 4                   # image border (px) never counted as fingerprint (scanner edge lines)
FINGER_SEG_STD_FRACTION = 0.25         # a block is foreground if its std ≥ this × 95th pct block std
FINGER_MIN_AREA_FRACTION = 0.08        # foreground below this share of the image = partial print, refused
FINGER_BLANK_AREA_FRACTION = 0.01      # a low-contrast image with less ridge area than this is blank, else "too
                                       # little fingerprint area (N %)" (16 px std ≥ FINGER_MIN_CONTRAST)
FINGER_DPI_RANGE = (450, 650)          # a resolution recorded in the file outside this is refused (FVC2002 DB2: 569)
FINGER_NOMINAL_PERIOD = 8.0            # median ridge period of a 500 dpi print, px (for the dpi in the message)
FINGER_RESOLUTION_PERIOD = (5.5, 12.2)  # median ridge period (block field) outside this: not ≈ 500 dpi, refused.
                                       # FVC2002 B, all 320: 6.2–11.6 px (DB2, 569 dpi: 7.8–11.6); resampled to
                                       # 250 dpi ≤ 4.8, to 1000 dpi ≥ 12.8 (40 prints each): thin margin above
FINGER_ORIENT_GRAD_SIGMA = 1.0         # Gaussian σ of the gradient, px
FINGER_ORIENT_SMOOTH_SIGMA = 7.0       # Gaussian σ of the structure-tensor smoothing, px
FINGER_PERIOD_MIN = 5.0                # plausible ridge periods at 500 dpi, px
FINGER_PERIOD_MAX = 15.0
FINGER_GABOR_ANGLES = 16               # orientations of the contextual Gabor bank
FINGER_GABOR_PERIOD_SCALES = (0.85, 1.18)  # bank periods = these × the image ridge period (best local energy
                                           # wins); FVC2002 mean EER: (1.0,) 7.4 %, (0.85, 1.18) 6.2 %,
                                           # (0.85, 1.0, 1.18) 6.2 % at 1.3× the extraction time
FINGER_GABOR_SIGMA_RATIO = 0.45        # Gabor σ across the ridges = this × ridge period …
FINGER_GABOR_ALONG_RATIO = 0.45        # … and along them (0.8 measured worse: DB1 8.9 %, DB2 6.1 % EER)
FINGER_MIN_BLOB_PX = 30                # ridge/valley blobs smaller than this are flipped before thinning
FINGER_BORDER_MARGIN = 10              # minutiae closer than this to the mask border are dropped, px (14: small
                                       # overlaps lost their few shared minutiae; leave-one-DB-out EER 4.4 → 4.0 %)
FINGER_FRAME_MARGIN = 6               # … but the image frame is no print border: minutiae ≥ this far from it are kept
                                       # (a print cut by the frame goes on; FVC2002 B all pairs, weights held out:
                                       # 3.38 → 3.23 %, DB1 1.79 → 1.43 %; 3 px: 3.36 %, 10 px: 3.48 %)
FINGER_TRACE_STEPS = 10                # ridge pixels followed to take a minutia's direction
FINGER_SPUR_PERIODS = 0.8              # a minutia whose ridge meets another within this × the ridge period is a
                                       # spur/short ridge/bridge, both dropped (was 12 px ≈ 1.4 periods: FVC2002 B
                                       # all-pairs mean EER 3.84 → 3.04 %, held-out weights 4.02 → 3.38 %; 1.0: 3.13 %)
FINGER_PAIR_MIN_DIST = 8.0             # two minutiae closer than this are both dropped (breaks, bridges)
FINGER_CLUSTER_RADIUS = 14.0           # a minutia with ≥ FINGER_CLUSTER_MAX neighbours within this
FINGER_CLUSTER_MAX = 3                 # radius sits in noise and is dropped
FINGER_MIN_COHERENCE = 0.15            # minutiae where orientation coherence is below this are dropped (0.3
                                       # dropped half of a pored DB4 print; 0.05 let DB2/DB3 noise in)
FINGER_MAX_MINUTIAE = 80               # best-quality minutiae kept per template
FINGER_MIN_MINUTIAE = 5                # fewer in a probe: the capture is refused (nothing to match on); 8 refused
                                       # 2 FVC2002 DB3 prints and cost 2.9 points of DB3 EER
FINGER_ENROL_MIN_MINUTIAE = 12         # fewer in an enrolment impression: refused (a reference must carry evidence)
FINGER_MATCH_NEIGHBOURS = 10           # edges per minutia in the local structure (k nearest)
FINGER_MATCH_EDGE_DIST_PX = 4.0        # two edges agree if their lengths differ by ≤ max(this, …
FINGER_MATCH_EDGE_DIST_REL = 0.12      # … this × length) and both relative angles by ≤ …
FINGER_MATCH_EDGE_ANGLE = 0.2          # … this (rad, 11.5°)
FINGER_MATCH_ROOTS = 25                # best local pairs tried as roots of the pairing graph
FINGER_MATCH_ROOT_MIN_EDGES = 2        # a root needs at least this many agreeing edges
FINGER_MATCH_SUPPORT_WEIGHT = 0.5      # score bonus per extra edge that confirms an existing pair
FINGER_MATCH_OVERLAP_MARGIN_PX = 10.0  # a minutia this far outside the other print's minutia hull still overlaps
FINGER_MATCH_MIN_OVERLAP_COUNT = 5     # the overlap fraction never divides by fewer minutiae than this
FINGER_MATCH_ALIGN_PX = 10.0           # aligned pairs: positions within this + …
FINGER_MATCH_ALIGN_REL = 0.05          # … this × distance from the pairs' centre (elastic), directions within …
FINGER_MATCH_ALIGN_ANGLE = 0.4         # … this (rad, 23°)
FINGER_MATCH_TIGHT_PX = 6.0            # tightly aligned pairs, once re-aligned on the aligned pairs: within this + …
FINGER_MATCH_TIGHT_REL = 0.03          # … this × distance from their centre (same direction tolerance)
FINGER_MATCH_ALIGN_ROOTS = 50          # best local pairs (≥ 1 agreeing edge) whose own rigid motion is tried
FINGER_MATCH_MAX_ROTATION = 1.5708     # rad (90°): a root pair turning the print further is no alignment (FVC2002
                                       # genuine pairs turn ≤ 66°; a finger is not laid on a sensor upside down)
FINGER_MATCH_FLOW_FLOOR = 0.5          # the pairing kept: the heaviest × (this + (1 − this) × its ridge-flow agreement)
FINGER_FIELD_BLOCK = 16                # block field kept in the template (orientation, coherence, frequency), px
FINGER_FIELD_FREQ_WINDOW = 32          # local ridge frequency: skeleton px per foreground px over this window, px
FINGER_FIELD_FREQ_TOL = 0.15           # two overlapping blocks agree in frequency within this relative difference
FINGER_FIELD_MIN_OVERLAP = 4           # fewer overlapping foreground blocks once aligned: no field evidence (0, 0)
# Score = softplus(FINGER_MATCH_WEIGHTS · matcher.FEATURES + FINGER_MATCH_BIAS): a logistic model fitted on
# FVC2002 DB1–DB4_B (all genuine and impostor pairs, DEVELOPMENT DATA); leave-one-database-out in docs/finger.md.
# Refitted after the bifurcation trace fix (minutiae.py, 1 Dec 2026): held out 1.27 % FVC protocol, 1.34 % all pairs.
FINGER_MATCH_WEIGHTS = (0.3325, -0.1142, 0.0872, 0.523, 5.6772, 2.4603, -0.0896, -6.0705, 0.56, 3.2283, 0.1972,
                        5.227, 4.296, 0.179, 9.2037, 1.6832, 7.4119)
FINGER_MATCH_BIAS = -10.5758
# A template without a block field (an ISO record sealed before 1 Dec 2026, or another system's) is scored by the
# minutiae-only model (the first 15 features), its score carried onto the scale above through the shared
# operating points (FMR 1e-2, 1e-3, 1e-4; linear between them, slope 1 beyond): the same FMR at every decision
# threshold.  Refitted after the bifurcation trace fix (`python -m limen.lab.finger_minutiae`, 1 Dec 2026): held
# out 1.36 % FVC protocol, 1.39 % all pairs (before: 2.88 / 2.69 %); FNMR 1.4 / 3.5 / 5.9 % at the points, in-sample
# (the previous points let 220 / 15 / 7 of the fixed extractor's 11,520 impostor pairs through, not 115 / 11 / 1).
FINGER_MATCH_MINUTIAE_WEIGHTS = (0.1473, -0.0191, 0.0541, 0.4483, 4.3727, 1.5648, -0.1814, -3.6961, 0.6196, 2.5534,
                                 0.0751, 7.4033, 7.0082, 0.2246, 13.8179)   # fitted on the same pairs, fields removed
FINGER_MATCH_MINUTIAE_BIAS = -8.6984
FINGER_MATCH_MINUTIAE_FMR_POINTS = (0.484, 1.913, 3.633)  # its scores at FMR 1e-2, 1e-3, 1e-4 (115 / 11 / 1 of
                                                          # 11,520 impostor pairs at or above)
FINGER_FIXED_RADIUS = 120.0            # fixed-length vector: edges to neighbours within this, px
FINGER_ENROL_MAX_IMPRESSIONS = 8       # impressions kept per enrolled finger (each is compared, best wins)
FINGER_ENROL_MIN_IMPRESSIONS = 2       # fewer impressions: enrolment refused (one capture is too fragile)
# Decision thresholds on the matcher's similarity (higher = more alike), set from
# every pair of FVC2002 DB1–DB4_B impressions of different fingers (11,520
# impostor pairs, 1,120 genuine, single impressions) — DEVELOPMENT DATA (docs/finger.md):
#   FMR 1e-2 at 0.397: FNMR 1.3 %   FMR 1e-3 at 1.735: FNMR 3.0 %   FMR 1e-4 at 4.384: FNMR 6.4 % (1 of 11,520)
#   (after the bifurcation trace fix; before it 2.8 / 5.5 / 9.7 %)
FINGER_MATCH_FMR_1E3 = 1.735           # 11 of 11,520 impostor pairs at or above
FINGER_MATCH_FMR_1E4 = 4.384           # 1 of 11,520: the set barely shows 1e-4
FINGER_MATCH_DEFAULT = FINGER_MATCH_FMR_1E4
# Enrolment: the impressions must be one finger — the comparisons scoring ≥ this link them into one group
# (else the impression left out is named).  The FMR 1e-3 point: a second finger slips in with ≈ 2 × 1e-3 (it
# must match one of two impressions); FVC2002 (development data): 95 of 2,240 three-impression enrolments of
# one finger refused (4.2 %: capture again); at FMR 1e-2 45 (2.0 %) but ≈ 2 % of mixed fingers would pass.
FINGER_ENROL_CONSISTENT = FINGER_MATCH_FMR_1E3
FINGER_ENROL_SAME_PX = 2.0             # the same impression twice: ≥ FINGER_ENROL_SAME_FRACTION of the minutiae …
FINGER_ENROL_SAME_FRACTION = 0.5       # … within this many px (and 23°) of each other *unaligned*; two placements
                                       # of a finger: ≤ 0.13 (1,120 FVC2002 genuine pairs, 99th pct 0.04)
FINGER_SEARCH_SHORTLIST = 40           # 1:N: references compared with the full matcher after the edge-key vote
                                       # (the right finger is on it for 93 % of FVC2002 probes among 1,000; 88 % at 20)
# Fingerprint in the lock (access.policy, controller).  Face + finger captured together are fused at score
# level: each score is mapped to FMR decades (−log10 FMR) through its own calibrated operating points, and the
# pair counts as two factors when the decades add up to FUSION_MIN_DECADES with each modality at its floor.
# DESIGN VALUES: no data set holds a face and a finger of the same people, so the modalities are assumed
# independent (a chimeric argument: joint FMR ≈ product); recalibrate the finger points with FINGER_MATCH_*.
FINGER_MATCH_FMR_1E2 = 0.397           # 115 of 11,520 FVC2002 impostor pairs at or above (FNMR 1.3 %)
FUSION_FINGER_DECADES = ((FINGER_MATCH_FMR_1E2, 2.0), (FINGER_MATCH_FMR_1E3, 3.0), (FINGER_MATCH_FMR_1E4, 4.0))
FUSION_FINGER_MAX_DECADES = 4.0        # no finger score counts for more than the set can show (1 in 11,520)
FUSION_FACE_MATCHED_DECADES = 4.0      # a face matched at the default point (FMR 1e-4); an unmatched face: 0
FUSION_MIN_DECADES = 6.0               # face + finger together: joint FMR ≤ 1e-6 (as face + a 6-digit PIN)
FUSION_FLOOR_DECADES = 3.0             # each modality at FMR ≤ 1e-3 at least, whatever the other one scores
                                       # (2.0 let a spoofed RGB face + any finger in 1 try in 100: review)
FINGER_SENSOR_WAIT_S = 10.0            # the kiosk and the console wait this long for a finger on the sensor (design)
FINGER_CONSOLE_CAPTURES = 3            # impressions the console takes from the sensor for "add a finger"
# Protected fixed-length fingerprint code (bio.finger.fixed: spectral minutiae + keyed sign projection), chosen
# on the FVC2002 B sets (DEVELOPMENT DATA, docs/finger.md): mean EER unprotected 15.4 %, protected 21.1 %
# (3 random keys), 3–5× the minutiae matcher's.  Measured and reported; never used for door decisions.
FINGER_SPECTRAL_RADIAL = 64            # radial frequencies sampled …
FINGER_SPECTRAL_FREQ = (0.05, 0.8)     # … between these (rad/px); unprotected EER up to 0.58: 17.4 %
FINGER_SPECTRAL_ANGLES = 128           # directions over 2π (2.8° a column)
FINGER_SPECTRAL_SIGMA = 1.5            # Gaussian minutia spread, px
FINGER_SPECTRAL_SHIFT = 12             # rotations searched: ±12 columns = ±34° (±6: 21.3 %)
FINGER_SPECTRAL_ROWS = 128             # keyed projections per column (bits = 2 × this × angles = 4 KiB); 32: 24.7 %
# Protected Minutia Cylinder-Code (bio.finger.cylinders; Cappelli, Ferrara & Maltoni 2010, P-MCC 2012): the
# cylinder and Local Similarity Sort values are MCC's published defaults (500 dpi); the keyed code's length and
# the cell rate were chosen on the FVC2002 B sets (DEVELOPMENT DATA, docs/finger.md).  Never used for decisions.
FINGER_MCC_RADIUS = 70.0               # cylinder radius R, px
FINGER_MCC_CELLS = 16                  # Ns: Ns × Ns spatial cells across the cylinder
FINGER_MCC_SECTIONS = 6                # Nd: direction sections over …
FINGER_MCC_PERIOD = 6.2831853          # … 2π (MCC; π, read as orientations: protected 15.1 → 21.9 %)
FINGER_MCC_SIGMA_S = 28 / 3            # σ_S: spatial Gaussian of a neighbour, px
FINGER_MCC_SIGMA_D = 0.6981317         # σ_D = 2π/9: directional Gaussian, rad
FINGER_MCC_MU_PSI = 0.01               # μ_ψ: a cell is set when its contributions reach this (bit-based MCC) …
FINGER_MCC_TAU_PSI = 400.0             # … τ_ψ: slope of the logistic Ψ that squashes them (½ at μ_ψ)
FINGER_MCC_HULL_MARGIN = 50.0          # ω: cells farther than this from the minutiae's convex hull are invalid, px
FINGER_MCC_MIN_VALID_CELLS = 0.75      # min_VC: a cylinder needs this share of its disc's cells valid …
FINGER_MCC_MIN_NEIGHBOURS = 2          # min_M: … and this many minutiae within R + 3σ_S
FINGER_MCC_MIN_COMMON_CELLS = 0.6      # min_ME (unprotected MCC only): cells valid in both cylinders, share of a disc
FINGER_MCC_LSS_PAIRS = (4, 12)         # best n_P pairs averaged (code: one-to-one pairs), n_P from min_NP to max_NP …
FINGER_MCC_LSS_MU = 20.0               # … by a logistic in the smaller code's size: centre μ_P …
FINGER_MCC_LSS_TAU = 0.4               # … and slope τ_P
FINGER_MCC_BITS = 256                  # keyed sign projections per cylinder (stored: 32 bytes a minutia); protected
                                       # mean EER 64: 24.7 %, 128: 16.2, 256: 15.1, 512: 13.5, 1024: 13.2 (MCC 12.8)
FINGER_MCC_CELL_RATE = 0.05            # valid cells are centred on this set rate (measured 0.048–0.055) first
FINGER_MCC_STRINGS = 32                # every stored code holds this many strings (best cylinders, then decoys): ≈ the
                                       # median cylinder count on FVC2002 B (25–43); lock protocol: 24–40 within
                                       # noise (1 key)
FINGER_MCC_CHAFF_AREA = 1250.0         # decoys' synthetic print: px² a minutia where the print does not tell
                                       # (FVC2002 B: 1,120–1,520 in the hull; the real print's own is used) …
FINGER_MCC_CHAFF_SPACING = 20.0        # … minutiae at least this far apart, px (12: decoy cylinders 5–17 % denser) …
FINGER_MCC_CHAFF_EXTRA = 8             # … and this many more minutiae than decoys wanted (some cylinders are dropped)
# Cloud link (link/, limen_cloud/) — design values, not calibrated on data (docs/cloud.md):
LINK_COMMAND_MAX_VALIDITY_S = 300      # a signed command whose expiry lies further ahead is refused (bounds replay)
LINK_CLOCK_SKEW_S = 30                 # tolerated offset between the lock's and the signer's clocks at expiry
LINK_MAX_PAYLOAD_BYTES = 8192          # larger MQTT payloads are refused before parsing
LINK_REFUSALS_AUDITED_PER_MIN = 30     # refused command payloads audited a minute (beyond: counted, summarised) …
LINK_REFUSALS_AUDITED_BURST = 30       # … after a burst of this many (a broker's flood fills no disk)
LINK_MAX_BACKUP_BYTES = 4 << 20        # an encrypted backup (and a restore command carrying one) larger is refused
LINK_MAX_BROKER_PACKET_BYTES = 2 * LINK_MAX_BACKUP_BYTES  # the fleet broker drops larger packets (a restore
                                                        # command carries a backup in base64: 4/3 of it)
LINK_PACKET_HEADROOM_BYTES = 1024      # an MQTT packet's header, topic and properties around its payload (≤ ~100 B)
LINK_LOCK_MAX_PACKET_BYTES = (LINK_MAX_PAYLOAD_BYTES + LINK_MAX_BACKUP_BYTES * 4 // 3 + 4  # a restore command with
                              + LINK_PACKET_HEADROOM_BYTES)  # its backup (`max_wire_bytes(attachment=True)`): the
#   largest packet the lock takes (MQTT 5 Maximum Packet Size in its CONNECT; a broker sending a larger one anyway
#   loses the connection before the body is read: paho buffers any packet whole); 5.6 MB
LINK_CERT_DAYS = 90                    # lifetime of a lock's client certificate issued by the fleet CA
LINK_CERT_ROTATE_REMAINING = 1 / 3     # rotate when less than this fraction of the lifetime remains
LINK_MAX_CONNECTION_S = 3600           # reconnect (fresh TLS 1.3 handshake, new keys) at least this often
LINK_TLS_PROBE_S = 2.0                 # a refused connection whose alert was lost: a bare handshake waits this long
LINK_FORWARD_BATCH = 200               # audit records per events message (each well under the broker's size limit)
# limen-cloud (src/limen_cloud) — design values, not calibrated on data (docs/cloud.md):
CLOUD_SESSION_HOURS = 12               # lifetime of an owner's bearer token
CLOUD_LOGIN_PER_MIN = 5                # log-in and lock-claim attempts per client address per minute …
CLOUD_LOGIN_BURST = 10                 # … with this burst, and for all clients together:
CLOUD_LOGIN_GLOBAL_PER_MIN = 120
CLOUD_MAX_EVENTS_BYTES = 1 << 20       # one forwarded batch (LINK_FORWARD_BATCH records) is far below this
CLOUD_MAX_REQUEST_BYTES = 64 * 1024    # an HTTP request body to the cloud (the largest, a signed statement or
                                       # command of LINK_MAX_PAYLOAD_BYTES, form-encoded: ~25 kB); above: 413 unread
CLOUD_INGEST_BATCH = 60                # messages per pass at most (each pass: 3–4 round trips + a commit; 1,000-alarm
#   burst, load 10–17: 20 → 60 took recorded p95 0.9–1.6 → 0.75–0.83 s PostgreSQL, 0.74 → 0.56 s SQLite)
CLOUD_RECEIVE_MAXIMUM = 240           # events the broker may hand the cloud before it committed and acknowledged them
#   (MQTT 5 Receive Maximum) = one full pass for each of CLOUD_INGEST_WORKERS × CLOUD_INGEST_BATCH: Mosquitto allows a
#   client that names none 20, so a 1,000-alarm burst came in 50 rounds of pass → commit → acknowledgement
#   (docs/cloud.md, "The way in"); in memory at most this × the broker's packet limit, oversized events refused unparsed
CLOUD_INGEST_WORKERS = 4               # bridge workers (a lock's messages always on the same one, in order)
CLOUD_SWITCH_INTERVAL_S = 0.001        # limen-cloud serve's interpreter hand-over (Python: 0.005): the MQTT network
#   thread waits less for the interpreter lock behind the ingest and webhook threads (docs/cloud.md, burst stages)
CLOUD_DB_POOL_SIZE = 24                # database connections kept open (PostgreSQL): ingest workers, notifier, marker,
CLOUD_DB_POOL_OVERFLOW = 16            # apprise jobs, API; SQLAlchemy's 5 (+10 closed after use) reopened 4 per burst
CLOUD_BRIDGE_CONNECTIONS = 1           # the cloud's MQTT connections; more share the events ($share/limen-cloud/…): a
#   burst reaches the cloud faster, but Mosquitto 2.0.11 drops events sent between a broker restart and the cloud's
#   return (the locks resend them; docs/cloud.md), so one unless measured worth it
CLOUD_REORDER_WAIT_S = 2.0             # a lock's message that overtook an earlier one (two connections) waits for it
CLOUD_RECONNECT_S = 2.0                # the cloud bridge re-establishes a lost broker connection this often
CLOUD_HEAD_PUBLISH_TIMEOUT_S = 2.0     # an unacknowledged head answer is sent again at the lock's next message
CLOUD_INGEST_TRIES = 6                 # a failed ingest batch is retried in place this often (0.2 s doubling)
CLOUD_UNVERIFIED_ALARMS_PER_HOUR = 20  # alarms read from a lock whose chain is in conflict, per lock an hour (then one
#                                        audit_unverified_capped alarm; the lock's own grouping sends far fewer)
CLOUD_SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps what locks send while the cloud is down, up to a week
CLOUD_ALARM_RETRY_S = 30.0             # a failed alarm delivery is retried this often
CLOUD_APPRISE_DEADLINE_S = 30.0        # one owner's apprise message to all channels (SMTP+TLS+log-in fits), then cut
CLOUD_APPRISE_COALESCE_S = 0.15        # alarms within this of an owner's last apprise message go as one (docs/cloud.md)
CLOUD_APPRISE_PARALLEL = 16            # owners sent to at once (a hostile channel holds only its owner's slot)
CLOUD_APPRISE_CACHE_OWNERS = 4096      # owners' built Apprise objects kept (least recently used dropped)
CLOUD_APPRISE_PASS = 1000              # pending alarms read per apprise pass (owners already being served left out)
CLOUD_WEBHOOK_PASS = 200               # alarms per webhook pass (1,000-alarm burst: 50 → p95 2.0 s, 200 → 0.8 s) …
CLOUD_WEBHOOK_PARALLEL = 32            # … POSTed this many at a time (each may take CLOUD_WEBHOOK_TIMEOUT_S)
CLOUD_WEBHOOK_INFLIGHT = 400           # … alarms POSTed or being recorded at a time: the next pass is read while the
#   last one's POSTs are still out (passes no longer wait for their slowest POST before the next is read)
CLOUD_PUSH_PASS = 200                  # (subscription, alarm) pairs per web push pass
CLOUD_VAPID_TOKEN_S = 12 * 3600        # a VAPID token's life (RFC 8292: at most 24 h ahead)
CLOUD_BACKUPS_KEPT = 10                # encrypted backups kept per lock (older ones are deleted)
# limen-cloud owner pages and alarm fan-out (limen_cloud/pages.py, notify.py) — design values, not calibrated:
CLOUD_LOCK_ONLINE_S = 60               # a lock heard from within this is shown online (it forwards every 5 s)
CLOUD_HISTORY_PAGE = 100               # records on one history page
CLOUD_WEBHOOK_TIMEOUT_S = 5.0          # one community-webhook POST
CLOUD_WEBHOOK_KEEPALIVE_S = 30.0       # a kept webhook connection is used this long from its making (then the name
CLOUD_WEBHOOK_IDLE_S = 10.0            # is resolved and checked again); closed after this idle
CLOUD_WEBHOOK_POOL_PER_HOST = 32       # idle kept connections per webhook destination (= CLOUD_WEBHOOK_PARALLEL) …
CLOUD_WEBHOOK_POOL_MAX = 256           # … and in all
CLOUD_WEBHOOK_KEEP_BODY_BYTES = 4096   # a connection is kept only if the answer's body (read, dropped) is this short
CLOUD_WEBHOOK_MAX_ATTEMPTS = 8         # then the alarm is given up for the webhook (kept, error shown)
CLOUD_WEBHOOK_BACKOFF_S = 2.0          # first retry after a failure; doubles each time …
CLOUD_WEBHOOK_BACKOFF_MAX_S = 600.0    # … up to this
CLOUD_RESET_MINUTES = 30              # the operator's password-reset link stays valid this long by default …
CLOUD_RESET_MINUTES_MAX = 24 * 60     # … and at most this (`limen-cloud reset-password --valid-minutes`)
CLOUD_INVITE_HOURS = 72                # a sign-up invite or the first start's setup token is valid this long
CLOUD_SIGNUP_PER_MIN = 2               # account creations (POST /api/owners, /signup) per client address a minute …
CLOUD_SIGNUP_BURST = 5                 # … with this burst (each costs an Argon2id hash), and for all clients together:
CLOUD_SIGNUP_GLOBAL_PER_MIN = 60            # (its burst is ten seconds of it: one address cannot take all)
CLOUD_PUSH_TIMEOUT_S = 5.0             # one Web Push request to the browser's push service
CLOUD_PUSH_TTL_S = 24 * 3600           # how long the push service keeps an alarm for a browser that is offline
CLOUD_PUSH_MAX_SUBSCRIPTIONS = 20      # browsers (web push subscriptions) per owner
CLOUD_CRL_RENEW_BEFORE_S = 3 * 24 * 3600  # serve --crl-push re-issues the 7-day CRL when its nextUpdate is this close
CLOUD_CRL_CHECK_S = 3600.0             # … checked this often (and at start)
# Automatic rotation of a lock's link certificate (link/pki.Rotation, limen_cloud/bridge.py) — design values:
LINK_ROTATION_RETRY_S = 3600.0         # a rotation CSR left unanswered is sent again after this
CLOUD_CERT_MIN_INTERVAL_S = 3600.0     # the cloud's CA issues at most one certificate per lock this often
CLOUD_REFUSED_RECENT = 100             # the bridge keeps this many recent refusal reasons (beside counters by kind)
LINK_LOOP_PERIOD_S = 5.0               # `limen serve`'s link thread: forward, rotate, upload this often
