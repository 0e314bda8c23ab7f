"""`LockService`: what the web pages and the REST API do, over the one `Runtime`.

No second path to the door: a kiosk burst is decoded into a `Capture` and
handed to `AccessController.face` (recognition, PAD, policy, one audit record,
door); a keypad entry goes to `AccessController.keypad`, a remote unlock to
`AccessController.remote` (owner + PIN, the policy's own rules).  The kiosk's
session (its pairing cookie, or its address on loopback) binds a first-factor
face to the PIN typed after it, server-side.  Users, codes
and schedules change through `AccessStore`, which checks that the acting user
may change them and audits every change.

Thread-safety: every operation that touches the runtime's SQLite connection,
the recognizer or the door runs under one lock, so concurrent requests are
served one at a time in arrival order (the controller is not thread-safe by
design: two attempts must never interleave).
"""

from __future__ import annotations

import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limen import people
from limen import thresholds as T
from limen.access import CodeKind, CredentialType, Day, PermissionLevel, ensure_user, pins
from limen.access.context import TokenIssuer
from limen.access.model import DAY_NAMES, UserStatus
from limen.audit.event import Event, EventKind
from limen.capture import Capture, Frame
from limen.capture.sources import VIDEO_SUFFIXES, PixelBudget, decode_image_bytes, load_capture
from limen.decision import Decision, Reason
from limen.errors import BadImage, BadRequest, Conflict, ConsentRequired, NotFound
from limen.fingerprint import FingerProbe
from limen.pad.challenge import CAPTURE_META_KEY, ChallengeSequence
from limen.people import Consent
from limen.privacy.retention import enforce_retention
from limen.runtime import Runtime
from limen.service import feed, guests, i18n
from limen.service.facework import FACE_WORK
from limen.service.feed import Activity, Incident
from limen.service.messages import ENTER_PIN, NO_PIN_YET, WRONG_CODE, face_message, keypad_message
from limen.service.scratch import scratch_dir

_SECOND_FACTORS = (CredentialType.PIN, CredentialType.OFFLINE_CODE, CredentialType.RFID)
PLACE_FINGER = "place your finger flat on the sensor again"
FACE_ALONE_WARNING = ("Faces open alone on this RGB camera (allow_face_alone_rgb): a photo or a phone screen "
                      "may pass. Turn it off to ask for the PIN after the face.")


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its name (for messages), content type and bytes."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class KioskResult:
    """What the door screen shows: opened or not, and a message a user may see (never a PAD cue)."""

    opened: bool
    message: str
    decision: Decision  # for the owner pages and the audit; never sent to the kiosk
    awaiting_pin: bool = False  # a recognised face waits (server-side) for this kiosk's PIN/code
    name: str = ""  # who was let in ("Welcome, Bob")
    relock_in_s: int | None = None  # the door locks again this long after opening
    tries_left: int | None = None  # wrong keypad entries left before the keypad locks out
    locked_until: str = ""  # the keypad lockout's end, ISO 8601 in the lock's time zone
    base: str = ""  # the short message the sentence was made from (for translation)


class LockService:
    """The lock as the web service sees it.  One per process."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.clock = runtime.clock
        self.access = runtime.access("api")
        self.controller = runtime.controller
        self._recognizer = runtime.recognizer()
        self._lock = threading.Lock()
        self._retention_checked = self.clock.monotonic()  # open_runtime has just enforced it
        self._challenges: dict[str, tuple[str, ChallengeSequence, float]] = {}  # id → (session, moves, issued)

    # ------------------------------------------------------------------ kiosk
    def issue_challenge(self, session: str) -> tuple[str, ChallengeSequence]:
        """A random head-move sequence for kiosk `session`, kept here: single use, `SERVICE_CHALLENGE_TTL_S`."""
        import secrets

        now = self.clock.monotonic()
        with self._lock:
            self._challenges = {k: v for k, v in self._challenges.items()
                                if now - v[2] <= T.SERVICE_CHALLENGE_TTL_S}
            challenge_id, moves = secrets.token_urlsafe(16), ChallengeSequence.random()
            self._challenges[challenge_id] = (session, moves, now)
            return challenge_id, moves

    def _take_challenge(self, challenge_id: str, session: str | None) -> ChallengeSequence | None:
        """The stored sequence for `challenge_id` if issued to `session` and not expired; removed either way."""
        held = self._challenges.pop(challenge_id, None)
        if held is None or held[0] != session or self.clock.monotonic() - held[2] > T.SERVICE_CHALLENGE_TTL_S:
            return None
        return held[1]

    def unlock_face(self, frames: Sequence[Upload], interval_s: float = 0.1, session: str | None = None,
                    challenge_id: str = "") -> KioskResult:
        """A burst of camera frames at the door (from kiosk `session`): the controller's face path.

        With `kiosk_challenge` on (or a `challenge_id` named), the burst must answer a live challenge
        issued to this session; PAD then requires the STORED moves.  Otherwise the controller refuses it
        before any recognition: one audit record, no alarm, no lockout count.
        """
        if not frames:
            raise BadRequest("frames", "no camera frames received; check the camera or use the keypad")
        if len(frames) > T.SERVICE_MAX_UNLOCK_FRAMES:
            raise BadRequest("frames", f"at most {T.SERVICE_MAX_UNLOCK_FRAMES} frames per attempt")
        # one face request decodes and computes at a time in the process, on its face thread
        return FACE_WORK.run(self._unlock_face, frames, interval_s, session, challenge_id)

    def _unlock_face(self, frames: Sequence[Upload], interval_s: float, session: str | None,
                     challenge_id: str) -> KioskResult:
        budget = PixelBudget()  # one request's frames together
        capture = Capture(tuple(Frame(_decode(f, budget), t=i * interval_s, source="kiosk")
                                for i, f in enumerate(frames)),
                          source="kiosk")
        challenged = self.rt.settings.kiosk_challenge or bool(challenge_id)
        with self._lock:
            moves = self._take_challenge(challenge_id, session) if challenged else None
            if moves is not None:
                capture.meta[CAPTURE_META_KEY] = str(moves)
            final = self.controller.face(capture, session=session, challenged=challenged)  # none live: refused
            awaiting = session is not None and self.controller.holding_face(session)
            return self._door_view(final, face_message(final, challenged), awaiting)

    def keypad(self, typed: str, session: str | None = None) -> KioskResult:
        """A keypad entry: a PIN (decoy digits allowed around it) or `*` + an offline code.

        Right after a face recognised as a first factor at the same kiosk `session`, it completes that face.
        """
        entry = (typed or "").strip()
        if not 1 <= len(entry) <= 32 or not all(c.isdigit() or c in "*#" for c in entry):
            raise BadRequest("entry", "digits, optionally starting with * for a code (at most 32)")
        with self._lock:
            final = self.controller.keypad(entry, session=session)
            return self._door_view(final, keypad_message(final), False)

    def unlock_finger(self, image: FingerProbe, session: str | None = None) -> KioskResult:
        """A finger on the door's sensor (from kiosk `session`): the controller's fingerprint path, for the
        sensor's image or the module's own search (`limen.fingerprint.read`).

        A face held for this session is completed by it; a finger recognised as a first factor (no sensor
        liveness) is held for this session's PIN, code or face.  The routes are in `service.finger`.
        """
        with self._lock:
            final = self.controller.finger(image, session=session)
            awaiting = session is not None and self.controller.holding(session) is not None
            message = PLACE_FINGER if final.reason is Reason.LOW_QUALITY else face_message(final)
            return self._door_view(final, message, awaiting)

    def serialised(self) -> threading.Lock:
        """The lock every door and storage change of this service holds (for routes in other modules)."""
        return self._lock

    def _door_view(self, final: Decision, message: str, awaiting: bool) -> KioskResult:
        """What the door screen says after an attempt: a welcome, tries left, the lockout's end (under the lock)."""
        state = self.access.load_state()
        tz = _zone(state.config.timezone)
        now = self.clock.now()
        until = state.lockout.locked_until
        if final.accepted:
            name = final.user_name or ""
            relock = self.controller.door.auto_relock_s
            return KioskResult(True, f"Welcome, {name}" if name else message, final, name=name,
                               relock_in_s=int(relock) if relock is not None else None)
        if until is not None and now < until:  # locked out (now, or by this very attempt)
            local = until.astimezone(tz)
            return KioskResult(False, f"locked out until {local:%H:%M}; use your key or wait", final,
                               locked_until=local.isoformat(timespec="minutes"), base=message)
        if message == ENTER_PIN and not awaiting and final.user_id is not None and not any(
                c.type in _SECOND_FACTORS and not c.revoked for c in self.access.credentials(final.user_id)):
            return KioskResult(False, NO_PIN_YET, final, base=NO_PIN_YET)  # nothing to complete the face with
        if message == WRONG_CODE:
            left = max(0, state.config.wrong_code_entry_limit - state.lockout.wrong_code_count)
            return KioskResult(False, f"{message}, {left} {'try' if left == 1 else 'tries'} left", final,
                               tries_left=left, base=message)
        return KioskResult(False, message, final, awaiting, base=message)

    # ------------------------------------------------------------------ lock state
    def backups(self) -> dict[str, Any]:
        """What `limen status` shows of backups: whether a key is registered, how many, how many made."""
        from limen.link.backup_summary import summary

        with self._lock:
            return summary(self.rt.conn)

    def status(self) -> dict[str, Any]:
        """Lock, door, lockout (its end in the lock's zone), lockdown (and its cause) and the relock countdown."""
        with self._lock:
            state = self.controller.tick()
            access = self.access.load_state()
            door = self.controller.door
            relock = door.relock_in_s()
            door_open = door.is_open
        warnings = [FACE_ALONE_WARNING] if self.rt.settings.allow_face_alone_rgb else []
        now, until = self.clock.now(), access.lockout.locked_until
        locked_out = until is not None and now < until
        tz = _zone(access.config.timezone)
        cause = access.lockdown_cause.value if access.lockdown_cause is not None else ""
        return {"state": state.value, "mode": access.mode.value, "lockdown": access.lockdown,
                "lockdown_cause": cause if access.lockdown else "", "warnings": warnings,
                "door": "open" if door_open else "closed",
                "locked_out_until": until.astimezone(tz).strftime("%H:%M") if locked_out and until else "",
                "lockout_left_s": int((until - now).total_seconds()) if locked_out and until else 0,
                "tries_left": max(0, access.config.wrong_code_entry_limit - access.lockout.wrong_code_count),
                "relock_in_s": relock}

    def is_active_owner(self, user_id: str) -> bool:
        """Whether the access-engine user behind a web account is still an enabled owner."""
        with self._lock:
            return self.access.is_enabled_owner(user_id)

    def tick(self) -> None:
        """Poll the door (auto-relock, jams) and, hourly, retention; the service calls this every second."""
        with self._lock:
            self.controller.tick()
            self.rt.store.forget_if_erased()  # another process erased the vault: drop our decrypted copies
            if self.clock.monotonic() - self._retention_checked >= T.SERVICE_RETENTION_CHECK_S:
                self._retention_checked = self.clock.monotonic()
                enforce_retention(self.rt.conn, self.rt.store, self.rt.audit, self.clock.now(),
                                  fingers=self.rt.erase_fingers,
                                  sensor=lambda uid, at: self.rt.erase_sensor_pages(uid, "system", at,
                                                                                    "retention").counts())

    def remote_unlock(self, actor: str, pin: str) -> Decision:
        """An owner's unlock from the web: the access engine's remote rule (owner + PIN)."""
        with self._lock:
            return self.controller.remote(actor, True, pin or None, device="web")

    def lock(self, actor: str) -> dict[str, Any]:
        with self._lock:
            self.controller.lock(actor, source="api")
        return self.status()

    # ------------------------------------------------------------------ owners
    def has_users(self) -> bool:
        with self._lock:
            return self.access.has_users()

    def has_owner(self) -> bool:
        with self._lock:
            return self.access.has_owner()

    def first_owner(self, name: str, pin: str) -> str:
        """Create the lock's first owner (access engine bootstrap: owner + PIN); return the user id.

        A person already on the lock under that name (enrolled by face before any owner) becomes the owner.
        """
        with self._lock:
            if any(u.name == name.strip() for u in self.access.users()):
                return self.access.claim_first_owner(name.strip(), pin, self.clock.now()).user_id
            user = self.access.add_user(name, "bootstrap", self.clock.now(), pin=pin,
                                        permission=PermissionLevel.OWNER)
        return user.user_id

    def existing_owner(self, name: str, pin: str) -> str:
        """An owner already on the lock (e.g. made with the CLI), proven by their PIN."""
        with self._lock:
            user = self.access.authenticate(name, pin, self.clock.now())
        if user.permission is not PermissionLevel.OWNER:
            raise BadRequest("name", "not an owner of this lock, or wrong PIN")
        return user.user_id

    # ------------------------------------------------------------------ users
    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            users = self.access.users()
            creds = self.access.credentials()
            faces = people.enrolled_ids(self.rt.conn)
            weeks = {u.user_id: self.access.week_days(u.user_id) for u in users}
        out = []
        for u in users:
            out.append({
                "user_id": u.user_id, "index": u.index, "name": u.name, "status": u.status.value,
                "user_type": u.user_type.value, "permission": u.permission.value,
                "credential_rule": u.credential_rule.value, "face": u.user_id in faces,
                "credentials": [{"id": c.id, "type": c.type.value, "revoked": c.revoked}
                                for c in creds if c.user_id == u.user_id],
                "week_days": [{"index": s.index, "days": _day_names(s.days), "start": s.start.isoformat("minutes"),
                               "end": s.end.isoformat("minutes")} for s in weeks[u.user_id]],
            })
        return out

    def enrol(self, actor: str, name: str, files: Sequence[Upload], purpose: str, retention_days: int,
              consent: bool, from_camera: bool, user_id: str | None = None) -> dict[str, Any]:
        """Enrol a face from a camera burst, a burst of uploaded photos (one capture) and/or videos (one each).

        With `user_id`, the face is added to that existing person (the owner included), replacing theirs.
        """
        if not consent:
            raise ConsentRequired("the person must give explicit consent (tick the consent box)")
        if user_id is not None:
            with self._lock:
                self.person_name(user_id)  # an unknown person is refused before any decoding
        if not files:
            raise BadRequest("files", "no photos or camera frames received")
        if len(files) > T.SERVICE_MAX_ENROL_FILES:
            raise BadRequest("files", f"at most {T.SERVICE_MAX_ENROL_FILES} files per enrolment")
        consent_given = Consent(purpose, retention_days).validated()
        # one face request decodes and computes at a time in the process, on its face thread
        return FACE_WORK.run(self._enrol, actor, name, files, consent_given, from_camera, user_id)

    def _enrol(self, actor: str, name: str, files: Sequence[Upload], consent_given: Consent, from_camera: bool,
               user_id: str | None) -> dict[str, Any]:
        videos = [f for f in files if _is_video(f)]
        photos = [f for f in files if not _is_video(f)]
        if from_camera and videos:
            raise BadRequest("files", "camera frames must be images")
        budget = PixelBudget()  # one request's files together
        captures = [_video_capture(f, budget) for f in videos]
        if photos:  # a burst of photos is one presentation: PAD judges the sequence, as for the camera
            source = "camera" if from_camera else "photos"
            captures.append(Capture(tuple(Frame(_decode(f, budget), t=i * 0.1, source=source)
                                          for i, f in enumerate(photos)),
                                    source=source))
        with self._lock:
            result = self._recognizer.enrol(name, captures, consent_given, actor, person_id=user_id)
            ensure_user(self.rt.conn, result.user_id, actor, self.clock.now())
        return {"user_id": result.user_id, "name": result.name, "samples": result.samples,
                "rejected": result.rejected, "warnings": result.warnings,
                "purpose": consent_given.purpose, "retention_days": consent_given.retention_days}

    def person_name(self, user_id: str) -> str:
        person = people.by_id(self.rt.conn, user_id)
        if person is None:
            raise NotFound(f"no user with id {user_id}")
        return person.name

    def person(self, user_id: str) -> dict[str, Any]:
        """One person as the console shows them: credentials, biometrics, consent, schedule and plain states."""
        now = self.clock.now()
        with self._lock:
            user = self.access.user(user_id)
            if user.user_id != user_id:
                raise NotFound(f"no user with id {user_id}")
            creds = [c for c in self.access.credentials(user_id)]
            state = self.access.load_state()
            bios = [asdict(e) for e in people.enrolments_of(self.rt.conn, user_id)]
            consents = [asdict(c) for c in people.consents_of(self.rt.conn, user_id)]
            weeks = self.access.week_days(user_id)
        tz = _zone(state.config.timezone)
        latest: dict[str, dict[str, Any]] = {}
        for b in bios:
            latest[b["modality"]] = b
        consent_of = {c["modality"]: c for c in consents}
        biometrics = [{"modality": m, "samples": b["samples"], "enrolled": _local(b["enrolled_at"], tz),
                       "purpose": consent_of.get(m, {}).get("purpose"),
                       "retention_days": consent_of.get(m, {}).get("retention_days")} for m, b in latest.items()]
        credentials = []
        for c in creds:
            credentials.append({"id": c.id, "type": c.type.value, "revoked": c.revoked,
                                "valid_until": _local(c.valid_until, tz) if c.valid_until else "",
                                "state": _credential_state(c, now)})
        states = []
        if user.status is not UserStatus.ENABLED:
            states.append(user.status.value)
        live = [c for c in creds if not c.revoked]
        ends = [c.valid_until for c in live if c.valid_until is not None]
        if live and len(ends) == len(live) and not latest:
            end = max(ends)
            states.append(f"expired {_local(end, tz)}" if end <= now else f"expires in {_span(end - now)}")
        if state.lockout.locked_until is not None and now < state.lockout.locked_until:
            states.append(f"keypad locked out until {state.lockout.locked_until.astimezone(tz):%H:%M}")
        if not live and not latest:
            states.append("no way in yet: add a face or a PIN")
        return {"user_id": user.user_id, "index": user.index, "name": user.name, "permission": user.permission.value,
                "status": user.status.value, "user_type": user.user_type.value, "biometrics": biometrics,
                "face": "face" in latest, "credentials": credentials, "states": states,
                "has_pin": any(c.type is CredentialType.PIN for c in live),
                "week_days": [{"index": s.index, "days": _day_names(s.days), "start": s.start.isoformat("minutes"),
                               "end": s.end.isoformat("minutes")} for s in weeks],
                "timezone": state.config.timezone}

    def add_user(self, actor: str, name: str, pin: str, permission: str = "member",
                 valid_hours: int | None = None, token: TokenIssuer | None = None) -> str:
        """A user who opens with a PIN, optionally only for the next `valid_hours` (a temporary PIN).

        The access engine checks that the actor may add this user; a face can be enrolled separately.
        `token`: the API token asking (the PIN ends by its expiry and is revoked with it; the audit names it).
        """
        try:
            level = PermissionLevel(permission)
        except ValueError:
            raise BadRequest("permission", "one of owner, administrator, member, guest") from None
        if valid_hours is not None and not 1 <= valid_hours <= 24 * 366:
            raise BadRequest("valid_hours", "must be 1..8784")
        at = self.clock.now()
        with self._lock, self.access.issuing(token):
            if valid_hours is None:
                return self.access.add_user(name, actor, at, pin=pin or None, permission=level).user_id
            pins.validate_pin(pin)
            user = self.access.add_user(name, actor, at, permission=level)
            try:
                self.access.add_credential(user.user_id, CredentialType.PIN, actor, at, secret=pin,
                                           valid_until=at + timedelta(hours=valid_hours))
            except BaseException:
                self.access.remove_user(user.user_id, actor, at)  # all or nothing
                raise
            return user.user_id

    def remove_user(self, actor: str, user_id: str) -> None:
        """Remove the user and erase their biometric references (nothing left to erase after a zeroize) and, with
        match on sensor, their pages on the fingerprint module (a refused delete is audited as failed)."""
        with self._lock:
            at = self.clock.now()
            self.access.remove_user(user_id, actor, at)
            self.rt.erase_templates(user_id, actor, at, source="api")
            self.rt.erase_sensor_pages(user_id, actor, at, source="api")

    def set_pin(self, actor: str, user_id: str, pin: str) -> str:
        with self._lock:
            return self.access.change_pin(user_id, pin, actor, self.clock.now()).id

    def revoke_credential(self, actor: str, credential_id: str) -> None:
        with self._lock:
            self.access.revoke_credential(credential_id, actor, self.clock.now())

    def set_week_day(self, actor: str, user_id: str, index: int, days: Sequence[str], start: str,
                     end: str) -> None:
        mask = Day(0)
        for d in days:
            key = d.strip().lower()[:3]
            if key not in DAY_NAMES:
                raise BadRequest("days", "day names like mon, tue, … sun")
            mask |= DAY_NAMES[key]
        if not mask:
            raise BadRequest("days", "choose at least one day")
        with self._lock:
            self.access.add_week_day(user_id, index, mask, _hhmm("start", start), _hhmm("end", end), actor,
                                     self.clock.now())

    # ------------------------------------------------------------------ guests
    def add_guest(self, actor: str, name: str, day: str, start: str, end: str, uses: int | None = None
                  ) -> dict[str, Any]:
        """A guest with a short random code valid on `day` from `start` to `end` (local time); shown once."""
        if uses is not None and not 1 <= uses <= 100:
            raise BadRequest("uses", "must be 1..100 (or empty for no limit)")
        tz = self.zone()
        now = self.clock.now()
        span = guests.window(day, start, end, tz, now)
        with self._lock:
            user = self.access.add_user(name, actor, now, permission=PermissionLevel.GUEST)
            try:
                for attempt in range(3):
                    code = guests.new_code()
                    try:
                        self.access.add_credential(user.user_id, CredentialType.PIN, actor, now, secret=code,
                                                   valid_from=span.start, valid_until=span.end, max_uses=uses)
                        break
                    except Conflict:  # another PIN has these digits: draw again
                        if attempt == 2:
                            raise
            except BaseException:
                self.access.remove_user(user.user_id, actor, now)  # all or nothing
                raise
        return {"user_id": user.user_id, "name": user.name, "code": code,
                "from": _local(span.start, tz), "until": _local(span.end, tz), "uses": uses,
                "share": guests.share_text(user.name, code, span, tz)}

    def guests(self) -> list[dict[str, Any]]:
        """Guests with their window (local), uses left and state, soonest ending first."""
        now = self.clock.now()
        tz = self.zone()
        out = []
        with self._lock:
            for u in self.access.users():
                if u.permission is not PermissionLevel.GUEST:
                    continue
                for c in self.access.credentials(u.user_id):
                    if c.type is not CredentialType.PIN:
                        continue
                    left = None if c.max_uses is None else max(0, c.max_uses - c.uses)
                    state = _credential_state(c, now)
                    if c.valid_from is not None and c.valid_from > now and not c.revoked:
                        state = f"starts in {_span(c.valid_from - now)}"
                    if left == 0 and not c.revoked:
                        state = "used up"
                    out.append({"user_id": u.user_id, "name": u.name, "credential_id": c.id,
                                "from": _local(c.valid_from, tz) if c.valid_from else "",
                                "until": _local(c.valid_until, tz) if c.valid_until else "",
                                "uses": c.uses, "uses_left": left, "state": state,
                                "ends": c.valid_until.isoformat() if c.valid_until else ""})
        return sorted(out, key=lambda g: g["ends"] or "9999")

    # ------------------------------------------------------------------ codes
    def issue_code(self, actor: str, kind: str, hours: int = 24, days: int = 7,
                   uses_per_day: int = 1, token: TokenIssuer | None = None) -> dict[str, Any]:
        """Issue an offline/temporary code; the digits are in this answer only (show once).

        `token`: the API token asking (a code that would outlive it is refused; it is revoked with the token)."""
        try:
            code_kind = CodeKind(kind)
        except ValueError:
            raise BadRequest("kind", f"one of {', '.join(k.value for k in CodeKind)}") from None
        for field_name, value, high in (("hours", hours, 24 * 31), ("days", days, 366),
                                        ("uses_per_day", uses_per_day, 100)):
            if not 1 <= value <= high:
                raise BadRequest(field_name, f"must be 1..{high}")
        with self._lock, self.access.issuing(token):
            code, grant = self.access.issue_code(code_kind, actor, self.clock.now(), hours=hours, days=days,
                                                 uses_per_day=uses_per_day)
        return {"code_id": grant.code_id, "code": code, "kind": code_kind.value, "start": grant.start.isoformat(),
                "end": grant.end.isoformat(), "enter_as": f"*{code}"}

    def revoke_issued_by(self, actor: str, token_id: str) -> list[str]:
        """The API token `token_id` was revoked: so are the PINs and codes it issued (audited); their ids."""
        with self._lock:
            return self.access.revoke_issued_by(token_id, actor, self.clock.now())

    def codes(self) -> list[dict[str, Any]]:
        with self._lock:
            codes = self.access.list_codes()
        return [{k: v for k, v in c.items() if k != "code"} for c in codes]  # digits are shown once only

    def revoke_code(self, actor: str, code_id: str) -> str:
        with self._lock:
            if code_id not in {c["code_id"] for c in self.access.list_codes()}:
                raise NotFound(f"no issued code {code_id!r}")
            return self.access.revoke_code(code_id, actor, self.clock.now())

    # ------------------------------------------------------------------ audit
    def audit(self, kind: str = "", outcome: str = "", actor: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The most recent audit records matching the filters, newest first."""
        if kind and kind not in {k.value for k in EventKind}:
            raise BadRequest("kind", f"one of {', '.join(k.value for k in EventKind)}")
        limit = max(1, min(limit, 1000))
        log: Any = self.rt.audit
        start = max(0, log.count() - 20_000)
        kept: deque[dict[str, Any]] = deque(maxlen=limit)
        for rec in log.records(start, (kind,) if kind else ()):
            if outcome and rec.get("outcome") != outcome:
                continue
            if actor and rec.get("actor") != actor:
                continue
            kept.append(_public_record(rec))
        return list(reversed(kept))

    def alarms(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.audit(kind=EventKind.ALARM.value, limit=limit)

    # ------------------------------------------------------------------ what the owner reads
    def names(self) -> dict[str, str]:
        with self._lock:
            return people.names(self.rt.conn)

    def zone(self) -> ZoneInfo:
        with self._lock:
            return _zone(self.access.load_state().config.timezone)

    def activity(self, person: str = "", method: str = "", outcome: str = "", limit: int = 100) -> list[Activity]:
        """The feed: unlock attempts as sentences in the lock's time zone, newest first."""
        if method and method not in feed.METHODS:
            raise BadRequest("method", f"one of {', '.join(feed.METHODS)}")
        if outcome not in ("", "opened", "refused"):
            raise BadRequest("outcome", "opened or refused")
        records = list(reversed(self.audit(EventKind.UNLOCK_ATTEMPT.value, limit=1000)))
        with self._lock:
            guests = frozenset(u.user_id for u in self.access.users() if u.permission is PermissionLevel.GUEST)
        return feed.activity(records, self.names(), self.zone(), person=person, method=method, outcome=outcome,
                             limit=max(1, min(limit, 1000)), guests=guests)

    def incidents(self, limit: int = 50) -> list[Incident]:
        """Alarms folded into incidents (one per burst), newest first, with their acknowledgement."""
        alarms = list(reversed(self.audit(EventKind.ALARM.value, limit=1000)))
        acked: set[int] = set()
        for rec in self.audit(EventKind.SYSTEM.value, limit=1000):
            if rec.get("reason") == feed.ACK_REASON:
                acked |= {int(i) for i in (rec.get("data") or {}).get("alarms") or ()}
        return feed.incidents(alarms, acked, self.names(), self.zone())[:limit]

    def acknowledge(self, actor: str, alarms: Sequence[int]) -> None:
        """Record that the owner has seen these alarms (an audit record; the alarms themselves stay)."""
        known = {i for inc in self.incidents(1000) for i in inc.alarms}
        chosen = sorted({int(i) for i in alarms} & known)
        if not chosen:
            raise NotFound("no such alarm")
        with self._lock:
            self.rt.audit.append(Event(EventKind.SYSTEM, self.clock.now(), actor=actor, subject="alarms",
                                       reason=feed.ACK_REASON, source="api", data={"alarms": chosen[:200]}))

    def test_alarm(self, actor: str) -> int:
        """Raise a test alarm: it goes to every configured channel (and shows in the console)."""
        from limen.audit import raise_alarm

        with self._lock:
            return raise_alarm(self.rt.audit, "test", "info", f"test alarm sent from the console by {actor}",
                               subject="test")

    def clear_lockout(self, actor: str) -> None:
        with self._lock:
            self.access.clear_lockout(actor, self.clock.now())

    def set_lockdown(self, actor: str, on: bool) -> str:
        """An owner starts (the door is secured) or lifts an owner's lockdown; nothing is erased.  A tamper
        lockdown is not lifted here (`LockdownActive`).  Returns the cause in force afterwards ("": none)."""
        with self._lock:
            cause = self.access.set_lockdown(on, actor, self.clock.now())
            if on:
                self.controller.secure()
        return cause.value if cause is not None else ""

    def close(self) -> None:
        """Nothing of its own to release: the runtime owns the door (`Runtime.close`)."""


def _decode(upload: Upload, budget: PixelBudget) -> Any:
    if len(upload.data) > T.SERVICE_MAX_FRAME_BYTES:
        raise BadImage(upload.name, f"file too large ({len(upload.data)} bytes > {T.SERVICE_MAX_FRAME_BYTES})")
    return decode_image_bytes(upload.data, upload.name, budget)


def _is_video(upload: Upload) -> bool:
    return Path(upload.name).suffix.lower() in VIDEO_SUFFIXES or upload.content_type.startswith("video/")


def _video_capture(upload: Upload, budget: PixelBudget) -> Capture:
    suffix = Path(upload.name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="limen-upload-", dir=scratch_dir()) as tmp:  # in RAM: face video
        path = Path(tmp) / ("upload" + (suffix if suffix in VIDEO_SUFFIXES else ".mp4"))
        path.write_bytes(upload.data)
        capture = load_capture(path, name=upload.name, budget=budget)  # errors name the upload, not the temp path
    return Capture(capture.frames, source=upload.name)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(at: datetime | str | None, tz: ZoneInfo) -> str:
    """A stored instant as the owner reads it: local date and time with the zone's abbreviation."""
    if at is None:
        return ""
    value = datetime.fromisoformat(at) if isinstance(at, str) else at
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return i18n.format_when(value, tz, year=True)  # Babel, in the request's language


def _span(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{(minutes + 30) // 60} h"
    return f"{(minutes + 12 * 60) // (24 * 60)} days"


def _credential_state(c: Any, now: datetime) -> str:
    if c.revoked:
        return "revoked"
    if c.valid_until is not None:
        return "expired" if c.valid_until <= now else f"expires in {_span(c.valid_until - now)}"
    if c.valid_from is not None and c.valid_from > now:
        return f"valid from {c.valid_from:%Y-%m-%d %H:%M}"
    return "active"


def _hhmm(field_name: str, text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(field_name, "a time like 07:30") from None


def _day_names(days: Day) -> list[str]:
    return [name for name, d in DAY_NAMES.items() if d in days]


def _public_record(rec: dict[str, Any]) -> dict[str, Any]:
    keys = ("index", "at", "kind", "actor", "subject", "outcome", "reason", "source", "data")
    return {k: rec.get(k) for k in keys}
