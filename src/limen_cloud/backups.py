"""Backups the cloud keeps but cannot read, restores it relays, and its part of every erasure.

A lock publishes each encrypted backup (`limen.link.backup`) on
`limen/<id>/backup`; `store_backup` keeps the blob with what its header says
(counter, created-at) once the header names the sending lock; one blob per
(lock, counter), the newest `CLOUD_BACKUPS_KEPT` per lock.  The owner lists,
downloads (for the owner's device to unwrap) and deletes them (with the password, and the authenticator code once
enrolled, again; logged and alarmed `backup_deleted`: a smashed lock is restored only from one), and asks for a
restore by handing the cloud a signed `restore` command: the cloud attaches the
named blob and relays it; the lock checks the signature, the blob's SHA-256 and
everything else.

Erasure: when a lock's outcome carries its signed erasure receipt (verified
under the audit keys the cloud pinned for that lock), `erase_in_cloud` erases
the cloud's copies — for a person ("delete me") their forwarded records are
redacted (hash, index, kind and time kept so the chain check goes on), in the chains archived when the lock
was replaced too, and every
backup up to the receipt's `backups_through` is deleted (each holds everyone; the lock made a fresh one
without the person); for a decommission the
lock's records, archived chains, alarms, commands and backups go — and signs its own part with
the cloud's receipt key (Ed25519).  The owner gets `{"lock": …, "cloud": …}`
from `GET /api/erasures`; `verify_erasure` checks both signatures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from limen import thresholds as T
from limen.audit.chain import canonical
from limen.audit.keys import key_id, verify_signature
from limen.errors import BadRequest, CommandRefused, LinkError
from limen.link.backup import digest, read_header
from limen.link.commands import Action, SignedCommand, parse_command
from limen.link.execute import verify_receipt
from limen_cloud import sources
from limen_cloud.api import Db, Me, Relay, StepUp, client_key, my_lock, utcnow
from limen_cloud.models import (
    Alarm,
    ArchivedChain,
    ArchivedRecord,
    Backup,
    CommandLog,
    Erasure,
    Lock,
    Owner,
    Record,
)
from limen_cloud.pages import STEP_UP_FAILED, stepped_up

BACKUP_DELETED = "backup_deleted"  # the owner's alarm: a backup was deleted through the API
_CLOUD_RECEIPT_DOMAIN = b"limen-cloud-erasure-v1\0"
_ED25519_SIGNATURE_BYTES = 64
_log = logging.getLogger(__name__)


class Refused(Exception):
    """A backup or receipt the cloud will not take (the reason is logged, nothing stored)."""


# ---------------------------------------------------------------------------------------------- ingest


def store_backup(session: Session, lock: Lock, blob: bytes, now: datetime) -> Backup:
    """Keep an uploaded blob (idempotent by counter); `Refused` for a bad, foreign or conflicting one."""
    if len(blob) > T.LINK_MAX_BACKUP_BYTES:
        raise Refused(f"backup over {T.LINK_MAX_BACKUP_BYTES} bytes")
    try:
        header = read_header(blob)
    except BadRequest as exc:
        raise Refused(exc.reason) from exc
    if header.lock != lock.lock_id:
        raise Refused(f"a backup of lock {header.lock!r} sent by {lock.lock_id!r}")
    sha = digest(blob)
    held = session.scalar(select(Backup).where(Backup.lock_id == lock.lock_id, Backup.counter == header.counter))
    if held is not None:
        if held.sha256 != sha:
            raise Refused(f"a different backup with counter {header.counter} is already held")
        return held
    row = Backup(lock_id=lock.lock_id, counter=header.counter, sha256=sha, size=len(blob),
                 created_at=header.created_at[:40], received_at=now, blob=blob)
    session.add(row)
    session.flush()
    old = session.scalars(select(Backup.id).where(Backup.lock_id == lock.lock_id).order_by(Backup.counter.desc())
                          .offset(T.CLOUD_BACKUPS_KEPT)).all()
    if old:
        session.execute(delete(Backup).where(Backup.id.in_(old)))
    return row


# ---------------------------------------------------------------------------------------------- erasure


def lock_receipt(lock: Lock, text: str) -> dict[str, Any]:
    """The lock's receipt statement if it verifies under a key the cloud pinned for this lock; `Refused` else."""
    try:
        key_id = str(json.loads(text)["key_id"])
        pinned = json.loads(lock.audit_keys or "{}")[key_id]
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(pinned))
        statement = verify_receipt(text, public)
    except (ValueError, KeyError, TypeError, BadRequest) as exc:
        raise Refused("an erasure receipt that does not verify under the lock's pinned audit keys") from exc
    if statement.get("lock") != lock.lock_id:
        raise Refused("an erasure receipt of another lock")
    return statement


def erase_in_cloud(session: Session, lock: Lock, receipt_text: str, key: Ed25519PrivateKey, now: datetime) -> Erasure:
    """Erase the cloud's copies that the lock's receipt covers, sign the cloud's part, keep both."""
    statement = lock_receipt(lock, receipt_text)
    scope, user = str(statement.get("scope", "templates")), str(statement.get("user", ""))
    owner_id = lock.owner_id
    if scope == "lock":
        erased = _erase_lock(session, lock)
    elif scope == "person":
        through = statement.get("backups_through")  # newer backups were made without the person
        erased = {"records_redacted": _redact(session, Record, lock.lock_id, user),
                  "archived_records_redacted": _redact(session, ArchivedRecord, lock.lock_id, user),
                  "backups": _drop_backups(session, lock, through if isinstance(through, int) else None)}
    else:  # biometric references only: the cloud never holds templates (backups leave them out)
        erased = {"templates": 0}
    body = {"v": 1, "lock": lock.lock_id, "user": user, "scope": scope, "erased": erased,
            "at": now.isoformat() + "Z", "lock_receipt_sha256": hashlib.sha256(receipt_text.encode()).hexdigest(),
            "key_id": key_id(key.public_key())}
    signature = base64.b64encode(key.sign(_CLOUD_RECEIPT_DOMAIN + canonical(body))).decode("ascii")
    combined = json.dumps({"lock": json.loads(receipt_text), "cloud": {**body, "sig": signature}}, sort_keys=True)
    row = Erasure(lock_id=lock.lock_id, owner_id=owner_id, user_ref=user[:64], scope=scope[:20], at=now,
                  receipt=combined)
    session.add(row)
    return row


def _redact(session: Session, model: type[Record | ArchivedRecord], lock_id: str, user: str) -> int:
    """Redact `user`'s records of the lock (live, or of its archived chains); return how many."""
    count = 0
    rows: list[Record | ArchivedRecord] = list(session.scalars(select(model).where(model.lock_id == lock_id)))
    for record in rows:
        body = json.loads(record.body)
        if _names(body, user):
            record.body = json.dumps({"index": record.idx, "hash": record.hash, "kind": record.kind, "at": record.at,
                                      "redacted": True}, sort_keys=True)
            count += 1
    return count


def _names(body: dict[str, Any], user: str) -> bool:
    """Whether a forwarded record is about `user` (actor, subject or the data's user)."""
    data = body.get("data")
    return user in (body.get("actor"), body.get("subject")) or (isinstance(data, dict) and data.get("user") == user)


def _drop_backups(session: Session, lock: Lock, through: int | None = None) -> int:
    """Delete the lock's backups (up to counter `through` when given); return how many."""
    if through is None:
        return _delete(session, Backup, lock.lock_id)
    doomed = session.scalars(select(Backup.id).where(Backup.lock_id == lock.lock_id,
                                                     Backup.counter <= through)).all()
    session.execute(delete(Backup).where(Backup.id.in_(doomed)))
    return len(doomed)


def _delete(session: Session, model: type[Backup | Record | ArchivedRecord | ArchivedChain | Alarm | CommandLog],
            lock_id: str) -> int:
    """Delete a lock's rows of `model`; return how many there were."""
    count = int(session.scalar(select(func.count()).select_from(model).where(model.lock_id == lock_id)) or 0)
    session.execute(delete(model).where(model.lock_id == lock_id))
    return count


def _erase_lock(session: Session, lock: Lock) -> dict[str, int]:
    erased = {"backups": _drop_backups(session, lock)}
    models: tuple[tuple[str, type[Record | ArchivedRecord | ArchivedChain | Alarm | CommandLog]], ...] = (
        ("records", Record), ("archived_records", ArchivedRecord), ("archived_chains", ArchivedChain),
        ("alarms", Alarm), ("commands", CommandLog))
    for name, model in models:
        erased[name] = _delete(session, model, lock.lock_id)
    session.delete(lock)
    erased["lock"] = 1
    return erased


def verify_erasure(text: str, lock_public: Ed25519PublicKey, cloud_public: Ed25519PublicKey) -> dict[str, Any]:
    """What was erased where — `{"lock": {...}, "cloud": {...}}` — once both signatures and the link check out."""
    try:
        combined = json.loads(text)
        lock_text = json.dumps(combined["lock"], sort_keys=True)
        statement = verify_receipt(lock_text, lock_public)
        cloud = dict(combined["cloud"])
        signature = str(cloud.pop("sig"))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("receipt", "not an erasure receipt") from exc
    if not verify_signature(cloud_public, signature, _CLOUD_RECEIPT_DOMAIN + canonical(cloud)):
        raise BadRequest("receipt", "the cloud's signature does not verify")
    if cloud.get("lock") != statement.get("lock") or cloud.get("user") != statement.get("user") \
            or cloud.get("lock_receipt_sha256") != hashlib.sha256(lock_text.encode()).hexdigest():
        raise BadRequest("receipt", "the cloud's part is not about this lock receipt")
    return {"lock": statement["erased"]["lock"], "cloud": cloud["erased"], "user": statement["user"],
            "scope": statement.get("scope")}


# ---------------------------------------------------------------------------------------------- API


class RestoreRequest(BaseModel):
    backup_id: int
    payload: str = Field(min_length=2, max_length=T.LINK_MAX_PAYLOAD_BYTES)  # the signed restore, no attachment


def _backup(b: Backup) -> dict[str, Any]:
    return {"id": b.id, "counter": b.counter, "sha256": b.sha256, "size": b.size, "created_at": b.created_at,
            "received_at": b.received_at.isoformat() + "Z"}


def router(relay: Relay | None, receipt_public: Ed25519PublicKey | None) -> APIRouter:
    """The owner's backup, restore, erasure and privacy routes (included by `create_app`)."""
    api = APIRouter()

    @api.get("/api/locks/{lock_id}/backups")
    def list_backups(lock_id: str, session: Db, me: Me) -> list[dict[str, Any]]:
        my_lock(session, me, lock_id)
        rows = session.scalars(select(Backup).where(Backup.lock_id == lock_id).order_by(Backup.counter.desc()))
        return [_backup(b) for b in rows]

    @api.get("/api/locks/{lock_id}/backups/{backup_id}", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
    def get_backup(lock_id: str, backup_id: int, session: Db, me: Me) -> Response:
        """The encrypted blob, for the owner's device to unwrap (the cloud cannot)."""
        row = _mine(session, me, lock_id, backup_id)
        return Response(row.blob, media_type="application/octet-stream",
                        headers={"X-Backup-Sha256": row.sha256})

    @api.delete("/api/locks/{lock_id}/backups/{backup_id}", status_code=204)
    def delete_backup(request: Request, lock_id: str, backup_id: int, session: Db, me: Me,
                      body: StepUp | None = None) -> Response:
        """Delete a backup: a smashed lock is restored only from one, so the body carries the password (and
        `totp`) again — a stolen session alone deletes nothing (403) — and the deletion is logged and alarmed
        (`backup_deleted`, to the owner's channels)."""
        row = _mine(session, me, lock_id, backup_id)
        if body is None or not stepped_up(request, session, me, body.password, body.totp):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{STEP_UP_FAILED}: deleting a backup needs the password "
                                "(and authenticator code) again")
        newest = session.scalar(select(func.max(Backup.counter)).where(Backup.lock_id == lock_id))
        left = int(session.scalar(select(func.count()).select_from(Backup).where(Backup.lock_id == lock_id)) or 0) - 1
        _log.warning("owner %d deleted backup %d (counter %d%s) of lock %s; %d left", me.id, row.id, row.counter,
                     ", the newest" if row.counter == newest else "", lock_id, left)
        session.add(Alarm(lock_id=lock_id, rule=BACKUP_DELETED, raised_at=utcnow(),
                          detail=f"backup {row.counter} (made {row.created_at}"
                          f"{', the newest' if row.counter == newest else ''}) was deleted with the owner's password; "
                          f"{left} backup(s) of this lock left: if it was not you, log out everywhere else"))
        session.delete(row)
        return Response(status_code=204)

    @api.post("/api/locks/{lock_id}/restore", status_code=202)
    def restore(lock_id: str, body: RestoreRequest, request: Request, session: Db, me: Me) -> dict[str, Any]:
        """Relay a signed restore with the backup it names attached (the lock verifies both)."""
        row = _mine(session, me, lock_id, body.backup_id)
        try:
            signed = _signed_restore(body.payload, lock_id, row.sha256)
        except HTTPException as exc:
            _log.warning("restore for lock %s refused before relaying: %s", lock_id, exc.detail)
            raise
        if relay is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no broker configured (--broker)")
        with request.app.state.sessions() as own, own.begin():
            entry = CommandLog(lock_id=lock_id, payload=body.payload, sent_at=utcnow())
            own.add(entry)
            sources.command_from(own, me.id, lock_id, client_key(request), utcnow())  # an unknown address alarms
        try:
            relay(lock_id, signed.attach(row.blob).to_bytes())
        except LinkError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"broker unavailable ({exc})") from exc
        return {"id": entry.id, "relayed": True, "backup": row.sha256}

    @api.get("/api/erasures")
    def erasures(session: Db, me: Me) -> list[dict[str, Any]]:
        """Every erasure of the owner's locks: the lock's signed receipt and the cloud's signed part."""
        rows = session.scalars(select(Erasure).where(Erasure.owner_id == me.id).order_by(Erasure.id.desc()))
        return [{"id": e.id, "lock_id": e.lock_id, "user": e.user_ref, "scope": e.scope,
                 "at": e.at.isoformat() + "Z", "receipt": e.receipt} for e in rows]

    @api.get("/api/receipt-key")
    def receipt_key() -> dict[str, str | None]:
        """The cloud's Ed25519 public key that signs its part of erasure receipts (base64, raw)."""
        if receipt_public is None:
            return {"public_key": None, "key_id": None}
        raw = receipt_public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"public_key": base64.b64encode(raw).decode("ascii"), "key_id": key_id(receipt_public)}

    @api.get("/api/locks/{lock_id}/people/{user_id}")
    def privacy_export(lock_id: str, user_id: str, session: Db, me: Me) -> dict[str, Any]:
        """What the cloud holds about one person of the lock (their records; backups hold them, encrypted)."""
        my_lock(session, me, lock_id)
        records = [json.loads(r.body) for r in session.scalars(
            select(Record).where(Record.lock_id == lock_id).order_by(Record.idx))]
        mine = [r for r in records if _names(r, user_id)]
        archived = [{"replaced_at": at.isoformat() + "Z", **body} for at, body in (
            (at, json.loads(text)) for at, text in session.execute(
                select(ArchivedChain.replaced_at, ArchivedRecord.body).join(ArchivedChain)
                .where(ArchivedRecord.lock_id == lock_id).order_by(ArchivedChain.id, ArchivedRecord.idx)))
            if _names(body, user_id)]
        backups = session.scalar(select(func.count()).select_from(Backup).where(Backup.lock_id == lock_id))
        receipts = session.scalars(select(Erasure).where(Erasure.lock_id == lock_id, Erasure.user_ref == user_id))
        return {"lock_id": lock_id, "user": user_id, "records": mine, "archived_records": archived,
                "backups": {"count": backups, "note": "encrypted on the lock to the owner's keys; they hold "
                            "everyone's credentials (never templates); the cloud cannot read them"},
                "erasures": [{"at": e.at.isoformat() + "Z", "scope": e.scope} for e in receipts]}

    return api


def _signed_restore(payload: str, lock_id: str, sha256: str) -> SignedCommand:
    """The owner-signed restore of `lock_id` naming the backup `sha256`; 422 with the reason otherwise.

    Only the statement's form and the presence of a signature are checked here (an unsigned or malformed
    restore is refused before it is relayed); whether the signature verifies, for a device paired on the
    lock, and is fresh, the lock alone judges.
    """
    try:
        signed = SignedCommand.from_bytes(payload.encode("utf-8"))
        command = parse_command(signed.body)
    except CommandRefused as exc:
        raise HTTPException(422, f"not a signed command ({exc.refusal}: {exc.detail})") from exc
    if signed.signature is None:
        raise HTTPException(422, "a restore must be signed on an owner's device paired on the lock (no signature)")
    if len(signed.signature) != _ED25519_SIGNATURE_BYTES:
        raise HTTPException(422, f"the signature is not an Ed25519 signature ({len(signed.signature)} bytes, "
                                 f"expected {_ED25519_SIGNATURE_BYTES})")
    if signed.attachment is not None:
        raise HTTPException(422, "the payload carries an attachment: send the signed restore alone, the cloud "
                                 "attaches the backup it names")
    if command.action is not Action.RESTORE:
        raise HTTPException(422, f"a restore command is required, not {command.action.value}")
    if command.lock != lock_id:
        raise HTTPException(422, "the restore names another lock")
    if command.args.get("backup") != sha256:
        raise HTTPException(422, "a restore command naming this backup's SHA-256 is required")
    if not command.args.get("key"):
        raise HTTPException(422, "the restore carries no content key sealed to the lock (argument 'key')")
    return signed


def _mine(session: Session, me: Owner, lock_id: str, backup_id: int) -> Backup:
    my_lock(session, me, lock_id)
    row = session.get(Backup, backup_id)
    if row is None or row.lock_id != lock_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such backup")
    return row
