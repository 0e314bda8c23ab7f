"""The composition root: opens the lock's state once and hands the same parts to CLI and service.

`open_runtime(settings)` opens the SQLite store (migrations applied), the
template vault (finishing any interrupted crypto-erase first), the audit
chain and PAD, and builds the recognizer on top.  There is no second path:
`limen serve` and every `limen` command use this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from limen.access.store import AccessStore
from limen.audit.event import AuditSink
from limen.bio.face import FaceEngine
from limen.bio.face.detect import Box
from limen.bio.templates import TemplateStore
from limen.capture import Capture
from limen.config import Settings
from limen.db import open_db
from limen.errors import BadRequest
from limen.privacy.retention import enforce_retention
from limen.recognition import FaceRecognizer, PadVerdictLike


@dataclass
class Runtime:
    settings: Settings
    conn: sqlite3.Connection
    store: TemplateStore
    audit: AuditSink
    engine: FaceEngine = field(default_factory=FaceEngine)

    def recognizer(self) -> FaceRecognizer:
        return FaceRecognizer(self.conn, self.store, self.audit, engine=self.engine, pad=pad_check)

    def access(self, source: str = "cli") -> AccessStore:
        return AccessStore(self.conn, self.audit, source=source)

    def has_owner(self) -> bool:
        row = self.conn.execute("SELECT 1 FROM access_users WHERE permission = 'owner' LIMIT 1").fetchone()
        return row is not None

    def authorise(self, actor: str, pin: str | None, at: datetime) -> str:
        """The id of the owner/administrator `actor`, proven by PIN, once the lock has an owner.

        Before an owner is provisioned (a fresh lock, a lab), changes are made by
        whoever holds the device's shell and are recorded as `actor` verbatim.
        """
        access = self.access()
        if not self.has_owner():
            return actor
        if pin is None:
            raise BadRequest("as", "this lock has an owner: give --as USER and that user's PIN "
                             "(prompted on a terminal, or LIMEN_ACTOR_PIN)")
        return access.authenticate(actor, pin, at).user_id

    def close(self) -> None:
        for part in (self.store, self.audit):
            close = getattr(part, "close", None)
            if callable(close):
                close()
        self.conn.close()


def open_runtime(settings: Settings) -> Runtime:
    from limen.audit import attach_witness, open_audit
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)  # first: an interrupted erase completes before anything else
    conn = open_db(settings.db_path)
    audit = open_audit(settings)
    from limen.tamper import recover as recover_tamper

    recover_tamper(settings, store, audit)  # an interrupted tamper response completes before any other work
    attach_witness(audit, SealedHeadWitness(store.vault))  # a log shorter than the vault's copy of its head alarms
    enforce_retention(conn, store, audit, datetime.now(UTC))  # no reference outlives its consent
    return Runtime(settings, conn, store, audit, FaceEngine(settings.embed_backend))


def pad_check(capture: Capture, purpose: str, boxes: Sequence[Box | None] | None = None) -> PadVerdictLike:
    """Run presentation attack detection for `purpose` ("enrol" is stricter than "verify").

    `boxes` (one per frame, None where unknown) reuse the face pipeline's detections.
    """
    from limen.pad import Purpose, assess

    verdict: Any = assess(capture, purpose=Purpose.ENROL if purpose == "enrol" else Purpose.VERIFY, boxes=boxes)
    return verdict
