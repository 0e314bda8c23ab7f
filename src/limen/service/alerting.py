"""Alarm channels set up in the console: apprise URLs stored sealed, shown masked, tested one by one.

Channels come from two places: `alert_urls` in `limen.toml` / `LIMEN_ALERT_URLS` (read-only here) and
the console's own list.  The console's list is sealed with AES-256-GCM in `<data_dir>/alert_urls.sealed`
(mode 0600, written atomically) under a key derived from the key store's `alert-urls` side key, which a
zeroize does not destroy: alarms must keep going out after a tamper erase.  A URL often holds a token,
so it is never shown back in full, never logged and never put in the audit trail: the channel's id
(kind + hash, `audit.channels.channel_id`) and the owner's label stand for it.

`AlarmDelivery` (one per service, on the `ServiceContext`) owns the running `Dispatcher`: adding or
removing a channel re-routes the alarm monitor and restarts delivery at once, no service restart.
Pending notifications of a removed channel stay queued (`limen alerts list`), never dropped.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from limen import thresholds as T
from limen.audit.alarms import Monitor
from limen.audit.channels import Channel, DeliveryFailed, SirenChannel, channel_id, usable_channels
from limen.audit.delivery import Dispatcher
from limen.audit.event import AuditSink, Event, EventKind
from limen.audit.log import AuditLog
from limen.clock import Clock
from limen.config import Settings
from limen.errors import BadRequest, ConfigError, Conflict, NotFound
from limen.fsio import atomic_write

SEALED_FILE = "alert_urls.sealed"
SIDE_KEY = "alert-urls"
FORMAT = 1
_AAD = b"limen-alert-urls-v1\n"
_KDF_LABEL = b"limen alert-urls aead key v1"


@dataclass(frozen=True)
class StoredChannel:
    url: str
    label: str


@dataclass(frozen=True)
class ChannelView:
    """What the console shows of one channel: never the URL itself."""

    id: str
    kind: str
    label: str
    masked: str
    from_settings: bool  # limen.toml / environment: removed there, not in the console
    usable: bool
    tested_at: str = ""
    test_ok: bool | None = None
    test_error: str = ""


@dataclass(frozen=True)
class TestResult:
    channel: str
    delivered: bool
    error: str


def mask(url: str) -> str:
    """`ntfy://ntfy.sh/secret-topic` → `ntfy://nt…ic`: enough to tell channels apart, never the token."""
    scheme, _, rest = url.partition("://")
    if len(rest) < T.ALERT_URL_MASK_MIN_LEN:
        return f"{scheme}://…"
    return f"{scheme}://{rest[:2]}…{rest[-2:]}"


def _kind(url: str) -> str:
    if url.startswith("gpio://"):
        return "siren"
    if url.startswith("signed+"):
        return "webhook"
    return url.split("://", 1)[0]


def validate_url(url: str) -> str:
    """A URL the console may store: printable, no spaces, bounded, and understood by apprise (or a siren/webhook)."""
    url = url.strip()
    if not url or len(url) > T.ALERT_URL_MAX_LEN or not url.isprintable() or any(c.isspace() for c in url):
        raise BadRequest("url", f"an apprise URL of at most {T.ALERT_URL_MAX_LEN} characters, without spaces")
    if "://" not in url:
        raise BadRequest("url", "not a URL: expected something like ntfy://ntfy.sh/your-topic")
    if not url.startswith(("gpio://", "signed+")):
        import apprise  # parsing only, no network

        if not apprise.Apprise().add(url):
            raise BadRequest("url", "apprise does not understand this URL (see its list of services)")
    return url


def validate_label(label: str) -> str:
    label = " ".join(label.split())
    if len(label) > T.ALERT_LABEL_MAX_LEN or not label.isprintable():
        raise BadRequest("label", f"at most {T.ALERT_LABEL_MAX_LEN} printable characters")
    return label


class SealedChannels:
    """The console's channel list in `<data_dir>/alert_urls.sealed` (AES-256-GCM, 0600)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.data_dir / SEALED_FILE

    def _aead(self) -> AESGCM:
        from limen.vault.keystore.sidekeys import open_side_key

        return AESGCM(open_side_key(self.settings, SIDE_KEY).mac(_KDF_LABEL))

    def _aad(self) -> bytes:
        return _AAD + self.settings.device_id.encode("utf-8")

    def load(self) -> list[StoredChannel]:
        """The stored channels; a file that does not unseal is an error (never silently "no channels")."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read the alarm channels ({exc.strerror})") from exc
        try:
            box = json.loads(raw)
            if box.get("v") != FORMAT:
                raise ValueError("format")
            plain = self._aead().decrypt(base64.b64decode(box["nonce"]), base64.b64decode(box["ct"]), self._aad())
            items = json.loads(plain)
            return [StoredChannel(str(i["url"]), str(i.get("label", ""))) for i in items]
        except (ValueError, KeyError, TypeError, InvalidTag) as exc:
            raise ConfigError(f"{self.path}: the alarm channels do not unseal (altered or another lock's)") from exc

    def set_aside(self) -> str:
        """Move an unreadable file aside (kept as evidence) so a new list can start; return its new name."""
        target = self.path.with_name(f"{SEALED_FILE}.broken-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        try:
            os.replace(self.path, target)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot move the unreadable alarm channels aside ({exc.strerror})") from exc
        return target.name

    def save(self, channels: list[StoredChannel]) -> None:
        nonce = os.urandom(12)
        plain = json.dumps([{"url": c.url, "label": c.label} for c in channels]).encode("utf-8")
        box = {"v": FORMAT, "nonce": base64.b64encode(nonce).decode(),
               "ct": base64.b64encode(self._aead().encrypt(nonce, plain, self._aad())).decode()}
        try:
            atomic_write(self.path, json.dumps(box).encode("ascii"))  # 0600
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot store the alarm channels ({exc.strerror})") from exc


def effective_urls(settings: Settings) -> list[str]:
    """Every configured alarm URL: the settings' and the console's (for `limen alerts` too)."""
    stored = SealedChannels(settings).load()
    return [u for u in settings.alert_urls if u.strip()] + [c.url for c in stored]


class AlarmDelivery:
    """The service's alarm channels and their background delivery (see the module docstring).

    Thread-safe: routes may add, remove and test channels while workers deliver.
    """

    def __init__(self, settings: Settings, audit: AuditSink, clock: Clock, zone: Callable[[], ZoneInfo]) -> None:
        self.settings, self.audit, self.clock, self.zone = settings, audit, clock, zone
        self.store = SealedChannels(settings)
        self._lock = threading.RLock()
        self._dispatcher: Any = None
        self._channels: dict[str, Channel] = {}
        self._tests: dict[str, tuple[str, TestResult]] = {}  # channel id → (when, last test), in memory only
        self.problem = ""  # why the console's sealed list cannot be read (shown on the Alarms page), or ""

    def stored(self) -> list[StoredChannel]:
        """The console's channels; an unreadable file is said (`problem`), never fatal to the other channels."""
        try:
            channels = self.store.load()
        except ConfigError as exc:
            if self.problem != str(exc):
                self.problem = str(exc)
                self.audit.append(Event(EventKind.SYSTEM, self.clock.now(), actor="system", source="console",
                                        reason="alarm channels unreadable", data={"problem": str(exc)[:200]}))
            return []
        self.problem = ""
        return channels

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Route alarms to every configured channel and start delivering (once the service runs)."""
        with self._lock:
            self._apply(start=True)

    def stop(self) -> None:
        with self._lock:
            if self._dispatcher is not None:
                self._dispatcher.stop()
                self._dispatcher = None

    def _apply(self, start: bool = False) -> None:
        """Build the channels of the current list (reusing live ones: a siren keeps its pin), re-route, restart."""
        urls = [u for u in self.settings.alert_urls if u.strip()] + [c.url for c in self.stored()]
        monitor = self.audit.monitor if isinstance(self.audit, AuditLog) else None
        known = dict(monitor.channels) if isinstance(monitor, Monitor) and not self._channels else dict(self._channels)
        wanted: dict[str, str] = {channel_id(u): u for u in urls}
        fresh, _problems = usable_channels([u for cid, u in wanted.items() if cid not in known], self.settings.keys_dir)
        channels = {cid: known[cid] for cid in wanted if cid in known} | fresh
        for cid, gone in known.items():
            if cid not in channels and isinstance(gone, SirenChannel):
                gone.close()  # a removed siren releases its pin
        self._channels = channels
        if isinstance(monitor, Monitor):
            monitor.channels = dict(channels)  # new alarms are queued for exactly these
        running = self._dispatcher is not None
        if running:
            self._dispatcher.stop()
        if (running or start) and isinstance(self.audit, AuditLog):
            self._dispatcher = Dispatcher(self.audit, dict(channels), self.clock).start()

    # ------------------------------------------------------------------ what the console reads
    def views(self) -> list[ChannelView]:
        with self._lock:
            stored = self.stored()
            rows = [(u, "", True) for u in self.settings.alert_urls if u.strip()]
            rows += [(c.url, c.label, False) for c in stored]
            out = []
            for url, label, from_settings in rows:
                cid = channel_id(url)
                when, test = self._tests.get(cid, ("", None))
                out.append(ChannelView(cid, _kind(url), label, mask(url), from_settings, cid in self._channels,
                                       when, test.delivered if test else None, test.error if test else ""))
            return out

    def count(self) -> int:
        return len(self.views())

    # ------------------------------------------------------------------ changes (audited by channel id only)
    def add(self, actor: str, url: str, label: str = "") -> str:
        url, label = validate_url(url), validate_label(label)
        with self._lock:
            stored = self.stored()
            if self.problem:  # the unreadable list is kept aside as evidence; the owner starts a new one
                kept = self.store.set_aside()
                self._record(EventKind.CONFIG_CHANGE, actor, "alarm channels", "alarm channels set aside",
                             {"file": kept, "problem": self.problem[:200]})
                self.problem = ""
            cid = channel_id(url)
            if cid in {channel_id(u) for u in self.settings.alert_urls} | {channel_id(c.url) for c in stored}:
                raise Conflict("this alarm channel is already set up")
            if len(stored) >= T.ALERT_CONSOLE_MAX_CHANNELS:
                raise BadRequest("url", f"at most {T.ALERT_CONSOLE_MAX_CHANNELS} channels; remove one first")
            self.store.save([*stored, StoredChannel(url, label)])
            self._record(EventKind.CONFIG_CHANGE, actor, cid, "alarm channel added", {"label": label})
            self._apply()
            return cid

    def remove(self, actor: str, cid: str) -> None:
        with self._lock:
            stored = self.store.load()
            if cid in {channel_id(u) for u in self.settings.alert_urls}:
                raise Conflict("this channel is set in limen.toml (or LIMEN_ALERT_URLS): remove it there")
            kept = [c for c in stored if channel_id(c.url) != cid]
            if len(kept) == len(stored):
                raise NotFound("no such alarm channel")
            self.store.save(kept)
            self._tests.pop(cid, None)
            self._record(EventKind.CONFIG_CHANGE, actor, cid, "alarm channel removed", {})
            self._apply()

    def test(self, actor: str, cid: str) -> TestResult:
        """Send one test notification through this channel now and say what happened (also audited)."""
        with self._lock:
            channel = self._channels.get(cid)
            if channel is None:
                if cid in {v.id for v in self.views()}:
                    result = TestResult(cid, False, "this channel cannot be used (check its URL)")
                    self._settle_test(actor, result)
                    return result
                raise NotFound("no such alarm channel")
        now: datetime = self.clock.now()
        payload = {"v": 1, "device_id": self.settings.device_id, "rule": "test", "severity": "info",
                   "reason": "test notification from the Limen console: this channel works",
                   "subject": "test", "at": now.isoformat(), "events": [], "repeats": 0,
                   "alarm_id": f"{self.settings.device_id}:test:{int(now.timestamp())}", "alarm": None}
        try:
            channel.send(payload)
            result = TestResult(cid, True, "")
        except DeliveryFailed as exc:
            result = TestResult(cid, False, str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - a channel bug is a failed test, shown, never a crash
            result = TestResult(cid, False, f"unexpected {type(exc).__name__}")
        with self._lock:
            self._settle_test(actor, result)
        return result

    def _settle_test(self, actor: str, result: TestResult) -> None:
        from limen.service import feed

        now = self.clock.now()
        self._tests[result.channel] = (feed.local(now, self.zone()), result)
        self._record(EventKind.SYSTEM, actor, result.channel, "alarm channel tested",
                     {"delivered": result.delivered, "error": result.error}, "delivered" if result.delivered
                     else "failed")

    def _record(self, kind: EventKind, actor: str, cid: str, reason: str, data: dict[str, Any],
                outcome: str | None = None) -> None:
        self.audit.append(Event(kind, self.clock.now(), actor=actor, subject=cid, outcome=outcome, reason=reason,
                                source="console", data={"channel": cid, **data}))
