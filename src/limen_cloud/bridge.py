"""The cloud's MQTT client: evidence and command outcomes in from every lock, signed commands out.

It subscribes to `limen/+/events` and `limen/+/result` (the broker's ACL lets a
lock write only under its own id, so the topic names the sender).  Its session
is persistent and messages are acknowledged only after they were committed, so
what locks send while the cloud is down or restarting waits at the broker.  A message
from an unclaimed lock, on an unknown topic, too large or malformed is refused
whole, counted in `refused` and logged with its reason; nothing is stored.
"""

from __future__ import annotations

import json
import logging
import ssl
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from limen.link.mqtt import MqttLink, Topics
from limen_cloud.db import sessions
from limen_cloud.evidence import BadMessage, ingest, parse
from limen_cloud.models import CommandLog, Lock

log = logging.getLogger(__name__)
MAX_EVENTS_BYTES = 1 << 20  # one forwarded batch (LINK_FORWARD_BATCH records) is far below this
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps what locks send while the cloud is down, up to a week


class CloudBridge:
    def __init__(self, engine: Engine, context: ssl.SSLContext, host: str, port: int,
                 client_id: str = "limen-cloud") -> None:
        self.sessions = sessions(engine)
        self.refused: list[str] = []
        self.mqtt = MqttLink(client_id, context, host, port, subscriptions=("limen/+/events", "limen/+/result"),
                             on_message=self.received, session_expiry_s=SESSION_EXPIRY_S)

    def connect(self, timeout: float = 10.0) -> CloudBridge:
        self.mqtt.connect(timeout)
        return self

    def close(self) -> None:
        self.mqtt.close()

    def relay(self, lock_id: str, payload: bytes) -> None:
        """Publish a signed command to the lock (QoS 1, acknowledged by the broker)."""
        self.mqtt.publish(Topics(lock_id).cmd, payload)

    def received(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "limen" or parts[2] not in ("events", "result"):
            return self._refuse(topic, "unknown topic")
        if len(payload) > MAX_EVENTS_BYTES:
            return self._refuse(topic, f"oversized ({len(payload)} bytes)")
        lock_id = parts[1]
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.sessions() as session, session.begin():
            lock = session.get(Lock, lock_id)
            if lock is None:
                return self._refuse(topic, "no owner has claimed this lock")
            if parts[2] == "result":
                return self._result(session, lock_id, payload, topic)
            try:
                result = ingest(session, lock, parse(payload, lock_id), now)
            except BadMessage as exc:
                return self._refuse(topic, str(exc))
        if result.alarms:
            log.warning("lock %s: alarms %s", lock_id, ", ".join(result.alarms))
        return None

    def _result(self, session: Session, lock_id: str, payload: bytes, topic: str) -> None:
        try:
            outcome = json.loads(payload.decode("utf-8"))
            if not isinstance(outcome, dict):
                raise ValueError("expected an object")
        except (UnicodeDecodeError, ValueError) as exc:
            return self._refuse(topic, f"malformed result ({exc})")
        pending = session.scalar(select(CommandLog).where(CommandLog.lock_id == lock_id, CommandLog.result.is_(None))
                                 .order_by(CommandLog.id).limit(1))
        if pending is not None:
            pending.result = json.dumps(outcome, sort_keys=True)
        return None

    def _refuse(self, topic: str, reason: str) -> None:
        self.refused.append(reason)
        log.warning("refused a message on %s: %s", topic, reason)
