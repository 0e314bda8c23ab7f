"""Alarm fan-out to the owner's phone: every new alarm of a claimed lock goes to the owner's apprise channels.

`AlarmNotifier.deliver_pending()` sends each alarm not yet delivered (oldest first) to every channel the owner
configured (`PUT /api/owners/me/alerts`), through the lock's own `AppriseChannel`; an alarm is marked
delivered only when every channel took it, otherwise the error is kept and it is retried on the next call.
`start()` runs it on a thread, woken by the bridge after each committed batch (`wake()`) and every
`RETRY_S`.  URLs hold tokens: they are never logged or returned by the API (only channel ids).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from limen import thresholds as T
from limen.audit.channels import AppriseChannel, DeliveryFailed
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Owner

log = logging.getLogger(__name__)
RETRY_S = T.CLOUD_ALARM_RETRY_S
SEVERITY = {"audit_truncated": "critical", "audit_rewritten": "critical", "audit_chain_broken": "critical",
            "audit_gap": "warning", "audit_checkpoint_invalid": "critical", "audit_key_added": "warning"}


class AlarmNotifier:
    def __init__(self, engine: Engine) -> None:
        self.sessions = sessions(engine)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> AlarmNotifier:
        self._thread = threading.Thread(target=self._run, name="limen-cloud-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def deliver_pending(self) -> int:
        """Deliver what is pending; return how many alarms were fully delivered."""
        delivered = 0
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Alarm, Owner).join(Lock, Alarm.lock_id == Lock.lock_id).join(Owner, Lock.owner_id == Owner.id)
                .where(Alarm.notified_at.is_(None), Owner.alert_urls.is_not(None)).order_by(Alarm.id).limit(100)
            ).all()
            for alarm, owner in rows:
                error = _send(alarm, json.loads(owner.alert_urls or "[]"))
                if error is None:
                    alarm.notified_at, alarm.delivery_error = datetime.now(UTC).replace(tzinfo=None), None
                    delivered += 1
                else:
                    alarm.delivery_error = error[:200]
        return delivered

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_pending()
            except Exception:  # the database is away: retry later, never die
                log.exception("alarm delivery pass failed")
            self._wake.wait(RETRY_S)
            self._wake.clear()


def _send(alarm: Alarm, urls: list[str]) -> str | None:
    payload = {"severity": SEVERITY.get(alarm.rule, "warning"), "device_id": alarm.lock_id, "rule": alarm.rule,
               "reason": alarm.detail, "alarm_id": alarm.id, "at": alarm.raised_at.isoformat() + "Z"}
    errors = []
    for url in urls:
        channel = AppriseChannel(url)
        try:
            channel.send(payload)
        except DeliveryFailed as exc:
            errors.append(f"{channel.id}: {exc}")
    return "; ".join(errors) or None
