"""The cloud link as a background thread of a running lock service (`limen serve` with `link_broker` set).

`LinkLoop` connects to the fleet broker with the lock's certificate and, every
`LINK_LOOP_PERIOD_S`, keeps the connection fresh (`maintain`: a reconnect after
`LINK_MAX_CONNECTION_S` or a rotation), asks for a new certificate when the
current one is due, forwards the audit trail and uploads pending encrypted
backups; a scheduled backup is made every `backup_hours`.  Signed commands run
on paho's thread under the service's own lock (`guard`), on the service's
controller and door, so the link and the kiosk never act on the door at once;
the door is polled by the service, not here.  While the broker is away the
loop retries quietly (records stay local, the cursor does not move).  With
`homeassistant = true` the loop also keeps Home Assistant's discovery up on the
same broker (`limen.link.homeassistant`; its LOCK runs under the same lock);
`stop()` closes both.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from limen import thresholds as T
from limen.audit.event import Event, EventKind
from limen.errors import BadRequest, LimenError, LinkError
from limen.link import pki
from limen.link.backup import Backups
from limen.link.execute import for_runtime
from limen.link.forward import EventForwarder
from limen.link.homeassistant import HomeAssistant
from limen.link.mqtt import LockLink
from limen.runtime import Runtime
from limen.tamper.lockdown import is_locked_down

log = logging.getLogger(__name__)


def link_files(rt: Runtime) -> pki.LinkFiles:
    d = rt.settings.keys_dir
    return pki.LinkFiles(d / "link-ca.pem", d / "link-client.pem", d / "link-client.key", pki.token_for(rt.settings))


def broker_address(value: str | None) -> tuple[str, int]:
    """`host:port` from the `link_broker` setting; `BadRequest` when absent or malformed."""
    if not value:
        raise BadRequest("link_broker", "set link_broker = \"host:port\" in the settings")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest("link_broker", "expected host:port")
    return host, int(port)


class LinkLoop:
    """The link's loop on its own thread, sharing the runtime (and its door) with the service that owns it."""

    def __init__(self, rt: Runtime, guard: threading.Lock, *, backup_hours: float = 24.0,
                 period_s: float = T.LINK_LOOP_PERIOD_S) -> None:
        """`guard` is the lock the service holds around every door and storage change (`serialised()`)."""
        host, port = broker_address(rt.settings.link_broker)
        files = link_files(rt)
        pki.finish_rotation(files)  # a rotation interrupted between the new certificate and its key
        context = pki.client_context(files.ca, files.cert, files.key, files.token)
        self.rt, self.guard, self.period_s, self.backup_hours = rt, guard, period_s, backup_hours
        device = rt.settings.device_id
        self.link = LockLink(device, context, host, port, for_runtime(rt), guard=guard,
                             rotation=pki.Rotation(device, files, context))
        self.forwarder = EventForwarder(rt.audit, rt.connection(), device)  # its own connection
        self.backups = Backups(rt.connection(), device, rt.settings.keys_dir, rt.settings.data_dir / "backups",
                               audit=rt.audit)  # the keys a backup's prune removes are audited
        self.backup_topic = f"limen/{device}/backup"
        self.homeassistant: HomeAssistant | None = None
        if rt.settings.homeassistant:  # the same broker and certificate; it connects on the loop's first pass
            flags = rt.connection()  # read on the link thread: the sensor follows whoever changed the flag
            self.homeassistant = HomeAssistant(device, context, host, port, rt.controller, rt.audit, guard=guard,
                                               may_lock=rt.settings.link_cloud_may_lock,
                                               lockdown_flag=lambda: is_locked_down(flags))
            rt.audit.add_observer(self.homeassistant.observe)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backup_retry_at = 0.0
        self.passes = 0  # completed connected passes (for status and tests)

    def start(self) -> LinkLoop:
        self._thread = threading.Thread(target=self._run, name="limen-link", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.homeassistant is not None:
            self.homeassistant.close()
        self.link.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(datetime.now(UTC))
            except LinkError as exc:  # offline: the cursor waits, the records stay local
                log.info("link offline (%s); retrying", exc)
            except Exception:  # never let the link thread die with the service running
                log.exception("link pass failed")
            if self.homeassistant is not None:
                try:
                    self.homeassistant.maintain()
                except LinkError as exc:
                    log.info("Home Assistant's broker offline (%s); retrying", exc)
                except Exception:
                    log.exception("Home Assistant pass failed")
            self._stop.wait(self.period_s)

    def step(self, now: datetime) -> None:
        """One pass: connection, rotation, forwarding, backups (`LinkError` while the broker is away)."""
        self.link.mqtt.maintain()
        self.link.rotate_if_due(now)
        self.link.forward(self.forwarder)
        self.backups.upload_pending(lambda blob: self.link.mqtt.publish(self.backup_topic, blob), now)
        if self.backup_hours > 0 and time.monotonic() >= self._backup_retry_at \
                and self.backups.due(now, self.backup_hours):
            self._scheduled_backup(now)
        self.passes += 1

    def _scheduled_backup(self, now: datetime) -> None:
        with self.guard:  # not while a command (a restore) changes the state
            try:
                path, blob = self.backups.make(now)
            except LimenError as exc:
                self._backup_retry_at = time.monotonic() + self.backup_hours * 3600  # audited once per period
                self.rt.audit.append(Event(EventKind.PRIVACY, now, actor="system", subject="lock", outcome="failed",
                                           reason="scheduled backup failed", source="link",
                                           data={"detail": str(exc)[:200]}))
                return
        self.rt.audit.append(Event(EventKind.PRIVACY, now, actor="system", subject="lock", reason="backup made",
                                   source="link", data={"file": path.name, "bytes": len(blob)}))
