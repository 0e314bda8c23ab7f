"""Delivery channels for alarms, configured by URL in `settings.alert_urls`.

    gpio://17                 the door's siren/buzzer on BCM pin 17 (gpiozero)
    signed+https://pms/hook   community-security webhook: JSON body signed with Ed25519
    anything else             an apprise URL (ntfy://, mailto://, tgram://, matrix://, json://, …)

A channel's id never contains the URL (apprise URLs hold tokens): it is the
kind plus a short hash.  `send` raises `DeliveryFailed` on any failure and
gives up after `AUDIT_DELIVERY_TIMEOUT_S`; the dispatcher retries.

Webhook signature (for the property-management system):
    X-Limen-Timestamp: <unix seconds>      X-Limen-Key-Id: <key id>
    X-Limen-Signature: base64(Ed25519(b"limen-webhook-v1\\n" + timestamp + b"\\n" + body))
Verify with `verify_webhook_signature(body, headers, public_key)` against the
device's `alert_ed25519.pub`, refuse timestamps older than
`AUDIT_WEBHOOK_MAX_AGE_S`, and de-duplicate on the payload's `alarm_id`
(delivery is at-least-once).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from limen import thresholds
from limen.audit.keys import WEBHOOK_KEY_NAME, SigningKey, load_or_create_key, load_public_b64, verify_signature
from limen.errors import AuditError

_WEBHOOK_DOMAIN = b"limen-webhook-v1\n"


class DeliveryFailed(AuditError):
    """One delivery attempt failed (the dispatcher retries; the alarm is kept)."""


class Channel(Protocol):
    id: str

    def accepts(self, payload: Mapping[str, Any]) -> bool:
        """Whether this channel should receive the alarm at all (routing)."""
        ...

    def send(self, payload: Mapping[str, Any]) -> None:
        """Deliver once or raise `DeliveryFailed`."""
        ...


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def channel_id(url: str) -> str:
    """The stable, non-secret id of the channel configured by `url`."""
    if url.startswith("gpio://"):
        return f"siren:gpio{url[len('gpio://'):].strip('/')}"
    if url.startswith("signed+"):
        return f"webhook:{_short(url)}"
    return f"apprise:{url.split('://', 1)[0]}:{_short(url)}"


def message(payload: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body of the human notification."""
    title = f"[{str(payload.get('severity', '')).upper()}] {payload.get('device_id')}: {payload.get('rule')}"
    body = str(payload.get("reason", ""))
    if payload.get("repeats"):
        body += f" (+{payload['repeats']} similar since the last notification)"
    return title, body + f"\nalarm {payload.get('alarm_id')} at {payload.get('at')}"


class AppriseChannel:
    """The owner's notification services through apprise: every alarm except silent (duress) ones."""

    def __init__(self, url: str, timeout: float = thresholds.AUDIT_DELIVERY_TIMEOUT_S) -> None:
        self.id, self._url, self._timeout = channel_id(url), url, timeout

    def accepts(self, payload: Mapping[str, Any]) -> bool:
        return not payload.get("silent")

    def send(self, payload: Mapping[str, Any]) -> None:
        title, body = message(payload)
        send_apprise(apprise_object(self._url, self._timeout), title, body, str(payload.get("severity")),
                     self._timeout)


def apprise_object(url: str, timeout: float = thresholds.AUDIT_DELIVERY_TIMEOUT_S) -> Any:
    """A built `apprise.Apprise` for one channel URL, with connect/read timeouts of `timeout` unless the URL sets
    them; `DeliveryFailed` when apprise cannot use the URL.  Building costs milliseconds (plugin parsing): the
    cloud keeps them per owner's channel set (`limen_cloud.notify`); the lock builds one per alarm."""
    import apprise

    notifier = apprise.Apprise()
    if "cto=" not in url and "rto=" not in url:
        url += ("&" if "?" in url else "?") + f"cto={timeout}&rto={timeout}"
    if not notifier.add(url):
        raise DeliveryFailed("not a usable apprise URL")
    if len(notifier) != 1:  # "a://…, b://…" (or with spaces) is several channels: only the first was checked
        raise DeliveryFailed("one channel per URL: this one holds several")
    return notifier


def send_apprise(notifier: Any, title: str, body: str, severity: str,
                 timeout: float = thresholds.AUDIT_DELIVERY_TIMEOUT_S) -> None:
    """Send one message through a built `apprise.Apprise`, or raise `DeliveryFailed`."""
    import apprise

    kind = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        severity, apprise.NotifyType.INFO)
    try:
        ok = notifier.notify(body=body, title=title, notify_type=kind, timeout=timeout * 2)
    except Exception as exc:  # apprise plugins may raise anything; the dispatcher retries
        raise DeliveryFailed(f"{type(exc).__name__}") from exc
    if not ok:
        raise DeliveryFailed("service refused or unreachable")


class WebhookChannel:
    """Community security: critical alarms as a signed JSON POST (Ed25519, see the module docstring)."""

    def __init__(self, url: str, key: SigningKey, timeout: float = thresholds.AUDIT_DELIVERY_TIMEOUT_S) -> None:
        self.id, self._url, self._key, self._timeout = channel_id(url), url[len("signed+"):], key, timeout
        if not self._url.startswith(("https://", "http://")):
            raise AuditError("signed webhooks need an http(s) URL")

    def accepts(self, payload: Mapping[str, Any]) -> bool:
        return payload.get("severity") == "critical" or payload.get("rule") == "test"

    def send(self, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
        request = urllib.request.Request(self._url, data=body, method="POST",  # noqa: S310 (http(s) checked)
                                         headers={"Content-Type": "application/json",
                                                  **sign_webhook(body, self._key)})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")


class SirenChannel:
    """The door's local siren/buzzer on a GPIO pin: tamper and forced-door alarms only (never duress)."""

    RULES = frozenset({"tamper", "door_forced", "test"})

    def __init__(self, pin: str, seconds: float = thresholds.AUDIT_SIREN_SECONDS,
                 pin_factory: Any = None) -> None:
        self.id, self._pin, self._seconds, self._factory = f"siren:gpio{pin}", pin, seconds, pin_factory
        self._buzzer: Any = None
        self._lock = threading.Lock()

    def accepts(self, payload: Mapping[str, Any]) -> bool:
        return payload.get("rule") in self.RULES and not payload.get("silent")

    def send(self, payload: Mapping[str, Any]) -> None:
        test = payload.get("rule") == "test"
        seconds = 1.0 if test else self._seconds
        try:
            with self._lock:
                buzzer = self._device()  # a test beep blocks its 1 s; a real alarm sounds in the background
                buzzer.blink(on_time=0.5, off_time=0.5, n=max(1, int(seconds)), background=not test)
        except Exception as exc:  # gpiozero raises its own tree (no pin, busy pin, no factory)
            raise DeliveryFailed(f"{type(exc).__name__}") from exc

    @property
    def device(self) -> Any:
        return self._device()

    def close(self) -> None:
        """Silence and release the pin."""
        with self._lock:
            if self._buzzer is not None:
                self._buzzer.off()
                self._buzzer.close()
                self._buzzer = None

    def _device(self) -> Any:
        if self._buzzer is None:
            from gpiozero import Buzzer

            pin: int | str = int(self._pin) if self._pin.isdigit() else self._pin
            self._buzzer = Buzzer(pin, pin_factory=self._factory)
        return self._buzzer


def build_channels(urls: list[str], keys_dir: Path, pin_factory: Any = None) -> dict[str, Channel]:
    """Channels for `urls`, by id; raise `AuditError` naming the first bad entry (never echoing a URL)."""
    channels, problems = usable_channels(urls, keys_dir, pin_factory)
    if problems:
        raise AuditError(problems[0])
    return channels


def usable_channels(urls: list[str], keys_dir: Path, pin_factory: Any = None) -> tuple[dict[str, Channel], list[str]]:
    """The channels that can be built from `urls`, and one problem line per entry that cannot."""
    channels: dict[str, Channel] = {}
    problems: list[str] = []
    webhook_key: SigningKey | None = None
    for position, url in enumerate(urls):
        channel: Channel
        try:
            if "://" not in url:
                raise AuditError("not a URL")
            if url.startswith("gpio://"):
                channel = SirenChannel(url[len("gpio://"):].strip("/"), pin_factory=pin_factory)
            elif url.startswith("signed+"):
                webhook_key = webhook_key or load_or_create_key(keys_dir, WEBHOOK_KEY_NAME)
                channel = WebhookChannel(url, webhook_key)
            else:
                channel = AppriseChannel(url)
        except AuditError as exc:
            problems.append(f"alert_urls[{position}]: {str(exc).split(': ')[-1]}")
            continue
        channels[channel.id] = channel
    return channels, problems


# ------------------------------------------------------------------ webhook signatures
def sign_webhook(body: bytes, key: SigningKey, timestamp: int | None = None) -> dict[str, str]:
    """The headers that authenticate `body` for the receiver."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Limen-Timestamp": ts, "X-Limen-Key-Id": key.key_id,
            "X-Limen-Signature": key.sign(_WEBHOOK_DOMAIN + ts.encode("ascii") + b"\n" + body)}


def verify_webhook_signature(
    body: bytes,
    headers: Mapping[str, str],
    public_key: Ed25519PublicKey | str,
    now: float | None = None,
    max_age_s: float = thresholds.AUDIT_WEBHOOK_MAX_AGE_S,
) -> bool:
    """True when `body` was signed by `public_key` (base64 or key) and is fresh; False otherwise.

    `headers` may use any letter case.  Receivers must also de-duplicate on the
    payload's `alarm_id`: the lock retries until it sees a 2xx.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    ts, signature = lower.get("x-limen-timestamp", ""), lower.get("x-limen-signature", "")
    if not ts.isdigit() or not signature:
        return False
    current = time.time() if now is None else now
    if abs(current - int(ts)) > max_age_s:
        return False
    try:
        public = load_public_b64(public_key) if isinstance(public_key, str) else public_key
    except AuditError:
        return False
    return verify_signature(public, signature, _WEBHOOK_DOMAIN + ts.encode("ascii") + b"\n" + body)
