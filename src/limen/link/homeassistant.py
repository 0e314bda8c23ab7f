"""Home Assistant MQTT discovery: the lock shows up in Home Assistant with no YAML, on any broker.

`HomeAssistant.connect()` publishes retained discovery configurations for

    lock          state from the door: LOCKED, UNLOCKED, LOCKING, UNLOCKING, JAMMED, OPEN
                  (OPENING declared, never sent: see below)
    binary_sensor tamper (a TAMPER record since start) and lockdown (from the lock's state)
    event         activity: the kind, outcome and reason of every audit record (no actor, no data)

and the current state; as an audit observer (`AuditLog.add_observer(ha.observe)`) it
republishes them after each record.  The lockdown sensor follows the lock's one
lockdown flag (`tamper.lockdown`, read by `lockdown_flag`) whoever changed it:
another process (`limen access lockdown on|off`, `limen tamper clear`) writes no
record this process observes, so every `maintain()` reads the flag and publishes
it when it changed.  Home Assistant may LOCK (run through the
controller, audited) only where the owner allowed unsigned locking over the link
(`link_cloud_may_lock`, `may_lock`): whoever can publish on the command topic
may, and on a fleet broker that is also the cloud's identity (`limen/#`) and the
broker itself, so an unsigned lock from this topic is no different to the lock
from the cloud's.  UNLOCK and OPEN are always refused and audited, because Home
Assistant cannot sign: opening from a phone is an owner-signed command
(`limen.link.commands`), or the keypad.  `code_format` is therefore absent.
Refusals are audited within a `RefusalBudget` (beyond it counted, and the counts
go into the next refusal recorded), as the signed command path's are: a broker
flooding the topic fills no disk and holds the service's lock only briefly.

Home Assistant's `opening` is a latch being drawn after the bolt, on locks
with a second motion for it (an "unlatch").  Limen's door has one relay (a bolt
motor or a strike) and a door contact: the bolt retracting is UNLOCKING, the
contact opening is OPEN, and no motion between the two is made or sensed.  So
`state_opening` is declared (the entity needs no YAML) and OPENING is never
published: it would report a phase the hardware does not have.

`limen serve` runs it inside its link loop (`homeassistant = true`, on
`link_broker` with the lock's certificate: `limen.link.loop`), `limen link run
--homeassistant` beside its own.  Activity events while the broker is away are
dropped (bounded memory); discovery and state are published again on every
new connection (`maintain`).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from limen import thresholds as T
from limen.audit.event import AuditSink, Event, EventKind
from limen.clock import Clock, SystemClock
from limen.door.actuator import LockActuator
from limen.link.execute import RefusalBudget
from limen.link.mqtt import MqttLink

if TYPE_CHECKING:
    from limen.controller import AccessController

DISCOVERY_PREFIX = "homeassistant"
_STATES = {"locked": "LOCKED", "unlocked": "UNLOCKED", "locking": "LOCKING", "unlocking": "UNLOCKING",
           "jammed": "JAMMED", "open": "OPEN"}  # every `LockState`, by value
OPENING = "OPENING"  # declared in discovery, never published (module docstring)


class HomeAssistant:
    """Publishes a lock's entities for Home Assistant on `mqtt` and takes its lock command."""

    def __init__(self, lock_id: str, context: ssl.SSLContext, host: str, port: int, controller: AccessController,
                 audit: AuditSink, *, lockdown: bool = False, guard: threading.Lock | None = None,
                 may_lock: bool = False, clock: Clock | None = None,
                 lockdown_flag: Callable[[], bool] | None = None) -> None:
        """`may_lock`: LOCK from Home Assistant runs (the lock's `link_cloud_may_lock`); else it is refused.
        `clock` paces the refusal budget.  `lockdown_flag` reads the lock's lockdown flag (on the thread calling
        `maintain`; e.g. `tamper.is_locked_down` on a connection of its own): the sensor follows it."""
        self.lock_id = lock_id
        self.may_lock = may_lock
        self._refusals = RefusalBudget(clock or SystemClock())
        self.controller = controller
        self.audit = audit
        self.guard = guard or threading.Lock()  # shared with the lock's other command paths
        self.base = f"limen/{lock_id}/ha"
        self.tamper = False
        self._lockdown_flag = lockdown_flag
        self.lockdown = lockdown if lockdown_flag is None else lockdown_flag()
        self.closed = False
        self._announced_at: float | None = None
        self._published_lockdown: bool | None = None  # the value Home Assistant was last sent (None: not yet)
        self.mqtt = MqttLink(f"{lock_id}-homeassistant", context, host, port, subscriptions=(self.command_topic,),
                             on_message=self._received,
                             max_packet_bytes=T.LINK_MAX_PAYLOAD_BYTES + T.LINK_PACKET_HEADROOM_BYTES)

    def connect(self, timeout: float = 10.0) -> HomeAssistant:
        self.mqtt.connect(timeout)
        self.announce()
        return self

    def maintain(self) -> None:
        """Connect or reconnect (`MqttLink.maintain`); on a new connection publish discovery and state again.

        Raises `LinkError` while the broker cannot be reached (call again later)."""
        fresh = not self.mqtt.connected or self._announced_at is None \
            or time.monotonic() - self._announced_at > T.LINK_MAX_CONNECTION_S
        self.mqtt.maintain()
        if fresh:
            self.announce()
        else:
            self.follow_lockdown()

    def follow_lockdown(self) -> bool:
        """Publish the lockdown flag if it changed since last published (another process may have changed it);
        True when it did.  `LinkError` if the publish is not acknowledged (published again next time)."""
        if self._lockdown_flag is None or self.closed:  # closed: the runtime may have closed the flag's connection,
            return False                               # which reads as a lockdown (fail closed): never published
        flag = self._lockdown_flag()
        if flag == self._published_lockdown:
            return False
        self.lockdown = flag
        self._publish_lockdown(wait=True)
        return True

    def close(self) -> None:
        self.closed = True  # the audit log keeps its observers: a record after this publishes nothing
        self.mqtt.close()

    @property
    def command_topic(self) -> str:
        return f"{self.base}/set"

    def discovery(self) -> list[tuple[str, dict[str, object]]]:
        """(config topic, configuration) of every entity."""
        device = {"identifiers": [f"limen-{self.lock_id}"], "name": f"Limen {self.lock_id}", "manufacturer": "Limen"}
        uid = f"limen_{self.lock_id}"
        return [
            (f"{DISCOVERY_PREFIX}/lock/{uid}/lock/config",
             {"name": None, "unique_id": f"{uid}_lock", "device": device, "state_topic": f"{self.base}/state",
              "command_topic": self.command_topic, "payload_lock": "LOCK", "payload_unlock": "UNLOCK",
              "payload_open": "OPEN", **{f"state_{k}": v for k, v in _STATES.items()},
              "state_opening": OPENING}),
            (f"{DISCOVERY_PREFIX}/binary_sensor/{uid}/tamper/config",
             {"name": "Tamper", "unique_id": f"{uid}_tamper", "device": device, "device_class": "tamper",
              "state_topic": f"{self.base}/tamper"}),
            (f"{DISCOVERY_PREFIX}/binary_sensor/{uid}/lockdown/config",
             {"name": "Lockdown", "unique_id": f"{uid}_lockdown", "device": device, "device_class": "safety",
              "state_topic": f"{self.base}/lockdown"}),
            (f"{DISCOVERY_PREFIX}/event/{uid}/activity/config",
             {"name": "Activity", "unique_id": f"{uid}_activity", "device": device,
              "state_topic": f"{self.base}/activity", "event_types": [str(k) for k in EventKind]}),
        ]

    def announce(self) -> None:
        if self._lockdown_flag is not None:
            self.lockdown = self._lockdown_flag()
        for topic, config in self.discovery():
            self.mqtt.publish(topic, json.dumps(config, sort_keys=True).encode(), retain=True)
        self._publish_state()
        self._announced_at = time.monotonic()

    def observe(self, index: int, event: Event) -> None:
        """Audit observer: republish state after each record (non-blocking publishes; none while disconnected)."""
        if event.kind is EventKind.TAMPER:
            self.tamper = True
        if event.kind is EventKind.CONFIG_CHANGE and event.reason in ("lockdown on", "lockdown off"):
            self.lockdown = event.reason == "lockdown on"
        if self.closed or not self.mqtt.connected:
            return  # `maintain` publishes the state on the next connection
        activity = {"event_type": str(event.kind), "outcome": event.outcome, "reason": event.reason}
        self.mqtt.client.publish(f"{self.base}/activity", json.dumps(activity), qos=1)
        self._publish_state(wait=False)

    def command(self, payload: bytes, at: datetime) -> bool:
        """Home Assistant's command: LOCK runs if `may_lock`; anything else is refused, audited within the
        refusal budget (else counted).  True when run."""
        text = payload.decode("utf-8", "replace")[:16]
        if text == "LOCK" and self.may_lock:
            self.controller.lock()
            self.audit.append(Event(EventKind.REMOTE_COMMAND, at, actor="remote:homeassistant", subject=self.lock_id,
                                    outcome="executed", reason="done", source="remote",
                                    data={"action": "lock", "device": "homeassistant", "device_known": True,
                                          "signed": False}))
            return True
        if not self._refusals.take("unsigned"):
            return False
        data: dict[str, object] = {"action": text.lower(), "device": "homeassistant", "device_known": True,
                                   "signed": False}
        skipped = self._refusals.skipped()
        if skipped:
            data["not_recorded_before"] = skipped
        self.audit.append(Event(EventKind.REMOTE_COMMAND, at, actor="remote:homeassistant", subject=self.lock_id,
                                outcome="refused", reason="unsigned", source="remote", data=data))
        return False

    def _received(self, topic: str, payload: bytes) -> None:
        with self.guard:
            self.command(payload, datetime.now(UTC))

    def _publish_state(self, wait: bool = True) -> None:
        door: LockActuator = self.controller.door
        messages = [(f"{self.base}/state", _STATES[door.state.value]),
                    (f"{self.base}/tamper", "ON" if self.tamper else "OFF")]
        for topic, value in messages:
            if wait:
                self.mqtt.publish(topic, value.encode(), retain=True)
            else:
                self.mqtt.client.publish(topic, value, qos=1, retain=True)
        self._publish_lockdown(wait)

    def _publish_lockdown(self, wait: bool) -> None:
        value = self.lockdown
        payload = b"ON" if value else b"OFF"
        if wait:
            self._published_lockdown = None  # unknown until acknowledged
            self.mqtt.publish(f"{self.base}/lockdown", payload, retain=True)
        else:
            self.mqtt.client.publish(f"{self.base}/lockdown", payload, qos=1, retain=True)
        self._published_lockdown = value
