"""MQTT 5 over TLS 1.3 with mutual X.509: the link's transport (paho-mqtt, wrapped in `LinkError`).

Topics for lock L (the broker's ACL lets a lock's certificate, CN = L, read
only `limen/L/cmd` and write only `limen/L/result` and `limen/L/events`):

    limen/L/cmd     cloud → lock   a `SignedCommand` wire payload
    limen/L/result  lock → cloud   the `Outcome` of each command (JSON)
    limen/L/events  lock → cloud   audit records and the chain head (`link.forward`)
    limen/L/csr     lock → cloud   a CSR for a new key when the certificate is due for rotation (`pki.Rotation`)
    limen/L/cert    cloud → lock   the certificate the fleet CA issued for it (checked, installed, reconnect)
    limen/L/head    cloud → lock   the audit head the cloud holds, when records the broker took did not reach
                                   it: the lock resends from there (`EventForwarder.rewind`)

Everything is QoS 1 (at least once; the receivers are idempotent).
`MqttLink.connect` returns only after the broker's CONNACK: a refused TLS
handshake (TLS 1.2, an unknown CA, a revoked, expired or missing client
certificate) is one `LinkError` with the reason ("certificate revoked",
"certificate expired", "unknown CA", …).  paho tells the broker's TLS alert only
to its log callback, so a connection attempt keeps the alert's name from it (and
nothing else: its lines name client ids and topics); when the broker closed the
connection before the alert could be read (it arrives with the MQTT CONNECT still
unread, often as a reset), one bare handshake that sends nothing reads it
(`LINK_TLS_PROBE_S`).  `maintain()` reconnects a
connection older than `LINK_MAX_CONNECTION_S`, so that no TLS session key
covers more than that (Python's ssl offers no KeyUpdate call).

A link with `max_packet_bytes` names it in its CONNECT (MQTT 5 Maximum Packet
Size: an honest broker drops larger messages for it) and, against a broker that
sends one anyway, drops the connection as soon as the packet's header declares
more, before its body is read (paho-mqtt itself buffers any packet whole: one
200 MB PUBLISH took a lock process from 85 to 687 MB).  The lock's link takes
`LINK_LOCK_MAX_PACKET_BYTES` (a restore command with its backup), any other
`LINK_MAX_BROKER_PACKET_BYTES` unless it names its own.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from limen import thresholds as T
from limen.audit.event import Event, EventKind
from limen.clock import SystemClock
from limen.errors import LimenError, LinkError
from limen.link.commands import Refusal
from limen.link.execute import Outcome, RefusalBudget

if TYPE_CHECKING:
    from limen.link.execute import LinkCommands
    from limen.link.forward import EventForwarder
    from limen.link.pki import Rotation

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]

_ALERT = re.compile(r"ALERT_([A-Z0-9_]+)")  # in OpenSSL's error text: SSLV3_ALERT_CERTIFICATE_REVOKED, …
_ALERTS = {"CERTIFICATE_REVOKED": "certificate revoked", "CERTIFICATE_EXPIRED": "certificate expired",
           "UNKNOWN_CA": "unknown CA", "CERTIFICATE_REQUIRED": "no client certificate",
           "BAD_CERTIFICATE": "bad certificate", "UNSUPPORTED_CERTIFICATE": "unsupported certificate",
           "PROTOCOL_VERSION": "TLS version refused"}


def alert_reason(text: str) -> str | None:
    """The reason of a TLS alert named in OpenSSL's error `text` ("certificate revoked", …); None if none is."""
    found = _ALERT.search(text)
    if found is None:
        return None
    return _ALERTS.get(found.group(1), "TLS alert " + found.group(1).lower().replace("_", " "))


@dataclass(frozen=True)
class Delivery:
    """A received message the receiver acknowledges itself (`MqttLink.ack`) once it is safely handled."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool = False  # the broker sent it before (a redelivery: it may have been handled already)
    connection: int = 0  # which connection of the link it came on (`ack` drops those of an earlier one)


@dataclass(frozen=True)
class Topics:
    lock: str

    @property
    def cmd(self) -> str:
        return f"limen/{self.lock}/cmd"

    @property
    def result(self) -> str:
        return f"limen/{self.lock}/result"

    @property
    def events(self) -> str:
        return f"limen/{self.lock}/events"

    @property
    def csr(self) -> str:
        return f"limen/{self.lock}/csr"

    @property
    def cert(self) -> str:
        return f"limen/{self.lock}/cert"

    @property
    def head(self) -> str:
        return f"limen/{self.lock}/head"


class _BoundedClient(paho.Client):
    """paho's client refusing an incoming packet larger than `max_packet_bytes` (0: any) before reading its body.

    paho 2.x's `_packet_read` reads the fixed header one byte at a time through `_sock_recv`, sets
    `_in_packet["have_remaining"]` once the remaining length is known, then reads the body through `_sock_recv`
    too: the first body read finds the declared length here and fails like a lost connection (paho closes the
    socket and calls `on_disconnect`; `reconnect` resets `_in_packet`).  Pinned by tests/link/test_mqtt_limits.py.
    """

    max_packet_bytes = 0
    oversized: int | None = None  # the declared size of the packet that dropped the last connection

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if self.max_packet_bytes > 0 and packet["have_remaining"]:
            size = 1 + len(packet["remaining_count"]) + packet["remaining_length"]  # as MQTT 5 counts it
            if size > self.max_packet_bytes:
                self.oversized = size
                raise ConnectionAbortedError(f"an incoming packet of {size} bytes, over {self.max_packet_bytes}")
        return super()._sock_recv(bufsize)


class MqttLink:
    """One MQTT 5 client over TLS; callbacks run on paho's network thread."""

    def __init__(self, client_id: str, context: ssl.SSLContext, host: str, port: int, *,
                 subscriptions: tuple[str, ...] = (), on_message: Handler | None = None,
                 session_expiry_s: int = 0, on_delivery: Callable[[Delivery], None] | None = None,
                 receive_maximum: int = 0, max_packet_bytes: int = T.LINK_MAX_BROKER_PACKET_BYTES,
                 on_oversized: Callable[[int], None] | None = None) -> None:
        """`session_expiry_s` > 0: a persistent session; the broker keeps QoS 1 messages for us while we are
        away, and a message is acknowledged only after `on_message` returned (redelivered if it raised), or,
        with `on_delivery`, when the receiver calls `ack`.  `receive_maximum` > 0: the QoS 1 messages the
        broker may hand us before we acknowledged them (MQTT 5 Receive Maximum); without it Mosquitto allows
        its `max_inflight_messages`, 20, so a receiver that acknowledges after committing takes a burst 20 at a
        time, one commit apart.  `max_packet_bytes`: the largest packet we take (module docstring; by default the
        fleet broker's own limit: no honest broker sends more; 0: any); a larger one drops the connection unread
        (reconnect with `maintain`), logged, and `on_oversized(size)` is called on paho's thread (it must not
        wait for a lock the caller may hold while stopping the link)."""
        self.receive_maximum = receive_maximum
        self.max_packet_bytes = max_packet_bytes
        self._on_oversized = on_oversized
        self.host, self.port = host, port
        self._on_delivery = on_delivery
        self.session_expiry_s = session_expiry_s
        self.subscriptions = subscriptions
        self._handler = on_message
        self._connected = threading.Event()
        self._settled = threading.Event()  # CONNACK or disconnection: the attempt is over
        self._failure: str | None = None
        self._since = 0.0
        self._renew = False
        self._connection = 0  # counts CONNACKs: a packet id means something only on its own connection
        self.client = _BoundedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                                     protocol=MQTTProtocolVersion.MQTTv5, reconnect_on_failure=False,
                                     manual_ack=session_expiry_s > 0)
        self.client.max_packet_bytes = max_packet_bytes
        self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_log = self._on_log
        self._context = context
        self._alert: str | None = None  # the broker's TLS alert during this connection attempt

    def connect(self, timeout: float = 10.0) -> MqttLink:
        """Connect and subscribe; `LinkError` if the TLS handshake or the broker refuses."""
        self._connected.clear()
        self._settled.clear()
        self._failure = None
        self._alert = None
        self.client.loop_stop()  # a network thread left over from an earlier connection
        try:
            props: Properties | None = None
            if self.session_expiry_s > 0 or self.receive_maximum > 0 or self.max_packet_bytes > 0:
                props = Properties(PacketTypes.CONNECT)
                if self.session_expiry_s > 0:
                    props.SessionExpiryInterval = self.session_expiry_s
                if self.receive_maximum > 0:
                    props.ReceiveMaximum = self.receive_maximum
                if self.max_packet_bytes > 0:
                    props.MaximumPacketSize = self.max_packet_bytes
            clean_start = False if self.session_expiry_s > 0 else paho.MQTT_CLEAN_START_FIRST_ONLY
            self.client.connect(self.host, self.port, keepalive=30, clean_start=clean_start, properties=props)
        except (ssl.SSLError, OSError) as exc:
            raise LinkError(f"{self.host}:{self.port}: TLS/TCP connection refused ({exc})") from exc
        self.client.loop_start()
        self._settled.wait(timeout)
        if not self._connected.is_set():
            why = self._failure or (f"no answer within {timeout} s" if not self._settled.is_set()
                                    else "the broker closed the TLS connection: certificate refused")
            self.client.loop_stop()
            self.client.disconnect()
            refused = self._settled.is_set() and not (self._failure or "").startswith("broker refused")
            alert = self._alert or (self._probe_alert() if refused else None)
            if alert is not None:
                why = (f"the server refused the TLS connection: {alert} (its TLS alert, which may come before the "
                       "server proved it is the fleet broker)")
            raise LinkError(f"{self.host}:{self.port}: no MQTT session ({why})")
        self._since = time.monotonic()
        return self

    def _probe_alert(self) -> str | None:
        """The broker's TLS alert to a bare handshake that sends nothing (so the broker's close is a clean one and
        its alert arrives); None if there is none within `LINK_TLS_PROBE_S` (the certificate was taken)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=T.LINK_TLS_PROBE_S) as raw, \
                    self._context.wrap_socket(raw, server_hostname=self.host) as tls:
                tls.recv(1)
        except ssl.SSLError as exc:
            return alert_reason(str(exc))
        except OSError:  # a timeout (accepted), a reset: no alert to tell
            return None
        return None

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement; `LinkError` otherwise."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise LinkError(f"publish to {topic} failed ({exc})") from exc
        if not info.is_published():
            raise LinkError(f"publish to {topic} not acknowledged within {timeout} s")

    def maintain(self) -> None:
        """Reconnect a dropped connection, or one older than `LINK_MAX_CONNECTION_S` (fresh handshake, fresh keys).

        Raises `LinkError` while the broker cannot be reached (call again later).
        """
        if self._connected.is_set() and time.monotonic() - self._since <= T.LINK_MAX_CONNECTION_S \
                and not self._renew:
            return
        self._renew = False
        self.client.disconnect()
        self.client.loop_stop()
        self.connect()

    def renew(self) -> None:
        """Reconnect at the next `maintain()` (a new certificate was loaded into the context)."""
        self._renew = True

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    # paho callbacks (network thread)
    def _on_log(self, client: paho.Client, userdata: object, level: int, line: str) -> None:
        """Keeps only the name of a TLS alert, while a connection attempt is open (paho's lines hold client ids)."""
        if not self._settled.is_set() and self._alert is None and level == paho.MQTT_LOG_ERR:
            self._alert = alert_reason(line)

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: ReasonCode,
                    properties: object) -> None:
        if reason.is_failure:
            self._failure = f"broker refused: {reason}"
            self._settled.set()
            return
        self._connection += 1
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self._connected.set()
        self._settled.set()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        size, self.client.oversized = self.client.oversized, None
        if size is not None:
            reason = f"the broker sent a packet of {size} bytes, over {self.max_packet_bytes}: dropped unread"
            log.warning("%s:%d: %s", self.host, self.port, reason)
        self._failure = self._failure or f"disconnected: {reason}"
        self._connected.clear()
        self._settled.set()
        if size is not None and self._on_oversized is not None:
            try:
                self._on_oversized(size)
            except Exception:  # never into paho's thread
                log.exception("could not report an oversized packet")

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge `delivery`; one that came on an earlier connection is not (the broker sends it again on
        this one, and its packet id may by now name another message)."""
        if self.session_expiry_s > 0 and delivery.connection == self._connection:
            self.client.ack(delivery.mid, delivery.qos)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        if self._on_delivery is not None:
            self._on_delivery(Delivery(message.topic, bytes(message.payload), message.mid, message.qos,
                                       bool(message.dup), self._connection))
            return
        if self._handler is not None:
            self._handler(message.topic, bytes(message.payload))
        if self.session_expiry_s > 0:
            client.ack(message.mid, message.qos)  # only once handled (committed): otherwise redelivered


class LockLink:
    """The lock's side: commands in (verified and run by `LinkCommands`), outcomes out.

    Commands are run one at a time (a lock serialises them with the rest of the
    lock's work through `guard`, e.g. the service's lock).  A message on any
    other topic, or larger than `LINK_MAX_PAYLOAD_BYTES`, is refused by the
    handler like a malformed command and audited.  A packet over
    `LINK_LOCK_MAX_PACKET_BYTES` is not read at all: the connection is dropped
    (`maintain` reconnects) and the drop audited (refused, "oversized", within a
    `RefusalBudget` of its own: a broker doing it at every reconnection fills no disk).
    """

    def __init__(self, lock_id: str, context: ssl.SSLContext, host: str, port: int, commands: LinkCommands,
                 guard: threading.Lock | None = None, rotation: Rotation | None = None) -> None:
        """`rotation` (on the same `context`): the certificate rotates by itself (`rotate_if_due`)."""
        self.topics = Topics(lock_id)
        self.commands = commands
        self.guard = guard or threading.Lock()
        self.rotation = rotation
        self._asked_at: float | None = None
        self._rewind: int | None = None  # the head the cloud last said it holds, not yet applied to the cursor
        self._rewind_guard = threading.Lock()
        self._dropped = RefusalBudget(SystemClock())
        topics = (self.topics.cmd, self.topics.head) + ((self.topics.cert,) if rotation is not None else ())
        # a persistent session as long as a command can live: one sent during a short drop-out still arrives
        self.mqtt = MqttLink(lock_id, context, host, port, subscriptions=topics,
                             on_message=self._received, session_expiry_s=T.LINK_COMMAND_MAX_VALIDITY_S,
                             max_packet_bytes=T.LINK_LOCK_MAX_PACKET_BYTES, on_oversized=self._oversized)

    def connect(self, timeout: float = 10.0) -> LockLink:
        self.mqtt.connect(timeout)
        return self

    def close(self) -> None:
        self.mqtt.close()

    def forward(self, forwarder: EventForwarder) -> int:
        """Send the audit records the broker has not acknowledged yet (and the head); return how many.

        If the cloud said it holds fewer records than the cursor (`limen/L/head`), resend from there first."""
        with self._rewind_guard:
            rewind, self._rewind = self._rewind, None
        if rewind is not None:
            forwarder.rewind(rewind)
        return forwarder.forward(lambda payload: self.mqtt.publish(self.topics.events, payload))

    def rotate_if_due(self, at: datetime) -> bool:
        """Send a CSR for a new key when the certificate is due (at most every `LINK_ROTATION_RETRY_S`)."""
        if self.rotation is None or not self.rotation.due(at):
            return False
        if self._asked_at is not None and time.monotonic() - self._asked_at < T.LINK_ROTATION_RETRY_S:
            return False
        self.mqtt.publish(self.topics.csr, self.rotation.request())
        self._asked_at = time.monotonic()
        serial = f"{self.rotation.current().serial_number:x}"
        self._audit(Event(EventKind.CONFIG_CHANGE, at, actor="system", subject="link",
                          reason="link certificate rotation requested", source="link", data={"serial": serial}))
        return True

    def _received(self, topic: str, payload: bytes) -> None:
        """Runs on paho's network thread: nothing may escape it (the link would die with the command)."""
        if topic == self.topics.cert and self.rotation is not None:
            self._certificate(payload)
            return
        if topic == self.topics.head:
            self._cloud_head(payload)
            return
        if topic != self.topics.cmd:
            payload = b"\xff"  # refused as malformed, audited (the broker's ACL should never let this through)
        at = datetime.now(UTC)
        with self.guard:
            try:
                outcome = self.commands.handle(payload, at)
            except Exception as exc:  # a fault inside the lock while running it: refused, audited, link kept
                outcome = self._failed(payload, exc, at)
        try:
            self.mqtt.client.publish(self.topics.result, json.dumps(outcome.to_dict()).encode("utf-8"), qos=1)
        except Exception:
            log.exception("could not queue the outcome of a command")

    def _certificate(self, payload: bytes) -> None:
        """A certificate from the fleet CA: installed (then reconnect) if it is for our pending key; else refused."""
        assert self.rotation is not None
        at = datetime.now(UTC)
        with self.guard:
            try:
                old = self.rotation.current().serial_number
                cert = self.rotation.install(payload, at)
            except (LimenError, OSError) as exc:
                self._audit(Event(EventKind.CONFIG_CHANGE, at, actor="cloud", subject="link", outcome="refused",
                                  reason="link certificate refused", source="link", data={"detail": str(exc)[:200]}))
                return
            self._asked_at = None
            self._audit(Event(EventKind.CONFIG_CHANGE, at, actor="cloud", subject="link",
                              reason="link certificate rotated", source="link",
                              data={"old_serial": f"{old:x}", "serial": f"{cert.serial_number:x}",
                                    "expires": cert.not_valid_after_utc.isoformat()}))
        self.mqtt.renew()  # the next maintain() reconnects with the new key (not from paho's own thread)

    def _cloud_head(self, payload: bytes) -> None:
        """The head the cloud holds: kept for the next `forward` (which runs on the link's own thread)."""
        try:
            head = json.loads(payload.decode("utf-8"))
            count = head.get("count") if isinstance(head, dict) and head.get("lock") == self.topics.lock else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 2**31:
            log.warning("ignored a malformed head message from the cloud (%d bytes)", len(payload))
            return
        with self._rewind_guard:
            self._rewind = count if self._rewind is None else min(self._rewind, count)

    def _oversized(self, size: int) -> None:
        """paho's thread, the connection just dropped: audited without `guard` (the link's owner may hold it while
        it stops paho's thread; the audit log has a lock of its own)."""
        if not self._dropped.take(str(Refusal.OVERSIZED)):
            return
        data: dict[str, object] = {"bytes": size, "limit": T.LINK_LOCK_MAX_PACKET_BYTES,
                                   "detail": "MQTT packet dropped unread; connection closed"}
        skipped = self._dropped.skipped()
        if skipped:
            data["not_recorded_before"] = skipped
        self._audit(Event(EventKind.REMOTE_COMMAND, datetime.now(UTC), actor="remote", subject=self.topics.lock,
                          outcome="refused", reason=str(Refusal.OVERSIZED), source="remote", data=data))

    def _audit(self, event: Event) -> None:
        try:
            self.commands.audit.append(event)
        except Exception:  # never into paho's thread
            log.exception("could not audit a link event")

    def _failed(self, payload: bytes, exc: Exception, at: datetime) -> Outcome:
        """Fail closed: the command counts as refused (`internal_error`) and the fault is recorded."""
        log.error("a command failed inside the lock (%s); refused", type(exc).__name__, exc_info=exc)
        try:
            self.commands.audit.append(Event(EventKind.REMOTE_COMMAND, at, actor="remote", subject=self.topics.lock,
                                             outcome="refused", reason="internal_error", source="remote",
                                             data={"bytes": len(payload), "error": type(exc).__name__}))
        except Exception:  # the audit itself is failing: the refusal still goes back to the cloud
            log.exception("could not audit the failed command")
        return Outcome(False, None, "internal_error")
