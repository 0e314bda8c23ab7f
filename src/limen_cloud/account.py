"""The owner's own account: "delete me" and "give me my data" for the cloud's account itself.

`DELETE /api/owners/me` (the password, and the authenticator's code once enrolled, again; behind the log-in rate
limit) erases the account row — e-mail, password hash, TOTP seed, apprise channel URLs, community webhook and its
secret — with every session and API token, password-reset link, browser subscribed to web push, known command
address and erasure receipt of the account, and answers a receipt of what was erased, signed with the cloud's
receipt key (the key that signs its part of erasure receipts; `verify_account_receipt`).  The cloud keeps nothing
of the account afterwards, the receipt included: the owner keeps it (and exports the erasure receipts first).

It is refused (409, nothing erased) while the account still holds a claimed lock: the cloud's copy of a lock's
audit trail is evidence against a thief, and the password and authenticator code alone must not wipe it.  Each
lock is decommissioned first with a command the owner's device signs (`limen-cloud sign-command decommission`):
the lock erases itself and the cloud its copies, with receipts.

`GET /api/owners/me/export` gives the account's data without secrets: channel ids, never URLs; the webhook's host,
never its URL or secret; browsers by label and push service, never their endpoints or keys; no hash, seed or token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from limen.audit.chain import canonical
from limen.audit.channels import channel_id
from limen.audit.keys import key_id, verify_signature
from limen.errors import BadRequest
from limen_cloud.api import Db, Me, StepUp, utcnow
from limen_cloud.db import write_lock
from limen_cloud.models import (
    ArchivedChain,
    CommandSource,
    Erasure,
    Invite,
    Lock,
    Owner,
    PushSubscription,
)
from limen_cloud.models import (
    Session as OwnerSession,
)
from limen_cloud.pages import COOKIE, STEP_UP_FAILED, SameOrigin, Write, push_values, render, stepped_up
from limen_cloud.pages import Me as PageMe

_DOMAIN = b"limen-cloud-account-erasure-v1\0"
log = logging.getLogger(__name__)


class AccountHoldsLocks(Exception):
    """The account still holds claimed locks (named): decommission them first."""

    def __init__(self, locks: list[str]) -> None:
        super().__init__(", ".join(locks))
        self.locks = locks


def _count(session: Session, column: Any, owner_id: int) -> int:
    return int(session.scalar(select(func.count()).where(column == owner_id)) or 0)


def erase_account(session: Session, owner: Owner, key: Ed25519PrivateKey | None, now: datetime) -> str:
    """Erase `owner`'s account and everything of it the cloud holds; the receipt (JSON; signed when `key`).
    `AccountHoldsLocks` while it holds a claimed lock (nothing erased).  The caller commits."""
    locks = list(session.scalars(select(Lock.lock_id).where(Lock.owner_id == owner.id).order_by(Lock.lock_id)))
    if locks:
        raise AccountHoldsLocks(locks)
    erased = {
        "account": 1, "password_hash": 1, "totp_seed": int(owner.totp_secret is not None),
        "alarm_channels": len(json.loads(owner.alert_urls or "[]")), "webhook": int(owner.webhook_url is not None),
        "browsers": _count(session, PushSubscription.owner_id, owner.id),
        "sessions": _count(session, OwnerSession.owner_id, owner.id),
        "reset_links": _count(session, Invite.owner_id, owner.id),
        "command_addresses": _count(session, CommandSource.owner_id, owner.id),
        "erasure_receipts": _count(session, Erasure.owner_id, owner.id),
    }
    for model in (PushSubscription, OwnerSession, Invite, CommandSource, Erasure):
        session.execute(delete(model).where(model.owner_id == owner.id))
    session.execute(update(ArchivedChain).where(ArchivedChain.marked_by == owner.id).values(marked_by=None))
    body: dict[str, Any] = {"v": 1, "scope": "account", "owner": owner.id, "email": owner.email,
                            "erased": {"cloud": erased}, "at": now.isoformat() + "Z"}
    if key is not None:
        body["key_id"] = key_id(key.public_key())
    receipt = {**body, "sig": base64.b64encode(key.sign(_DOMAIN + canonical(body))).decode("ascii")
               if key is not None else None}
    session.delete(owner)
    log.warning("owner %d erased the account (password and authenticator code again): %s", owner.id,
                ", ".join(f"{k} {v}" for k, v in erased.items()))
    return json.dumps(receipt, sort_keys=True)


def verify_account_receipt(text: str, cloud_public: Ed25519PublicKey) -> dict[str, Any]:
    """The account erasure receipt's statement if the cloud's signature verifies; `BadRequest` otherwise."""
    try:
        receipt = json.loads(text)
        body = {k: v for k, v in receipt.items() if k != "sig"}
        valid = verify_signature(cloud_public, str(receipt["sig"]), _DOMAIN + canonical(body))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest("receipt", "not an account erasure receipt") from exc
    if not valid or receipt["sig"] is None:
        raise BadRequest("receipt", "the cloud's signature does not verify")
    return body


def export_account(session: Session, owner: Owner) -> dict[str, Any]:
    """What the cloud holds of the account, no secrets (see the module docstring)."""
    def when(at: datetime | None) -> str | None:
        return at.isoformat() + "Z" if at else None

    subs = session.scalars(select(PushSubscription).where(PushSubscription.owner_id == owner.id)
                           .order_by(PushSubscription.id))
    locks = session.scalars(select(Lock).where(Lock.owner_id == owner.id).order_by(Lock.lock_id))
    sessions = session.scalars(select(OwnerSession.expires_at).where(OwnerSession.owner_id == owner.id))
    sources = session.scalars(select(CommandSource).where(CommandSource.owner_id == owner.id)
                              .order_by(CommandSource.id))
    erasures = session.scalars(select(Erasure).where(Erasure.owner_id == owner.id).order_by(Erasure.id))
    return {
        "account": {"id": owner.id, "email": owner.email, "created_at": when(owner.created_at),
                    "authenticator_enrolled": owner.totp_secret is not None,
                    "alarm_channels": [channel_id(u) for u in json.loads(owner.alert_urls or "[]")],
                    "webhook_host": urlsplit(owner.webhook_url).hostname if owner.webhook_url else None},
        "browsers": [{"id": s.id, "label": s.label, "service": urlsplit(s.endpoint).hostname or "",
                      "created_at": when(s.created_at), "last_ok_at": when(s.last_ok_at)} for s in subs],
        "sessions": sorted(when(at) or "" for at in sessions),  # when each ends; never a token
        "locks": [{"lock_id": lk.lock_id, "name": lk.name, "records": lk.head_count,
                   "last_seen": when(lk.last_seen)} for lk in locks],
        "command_addresses": [{"address": s.address, "first_seen": when(s.first_seen),
                               "last_seen": when(s.last_seen)} for s in sources],
        "erasures": [{"id": e.id, "lock_id": e.lock_id, "user": e.user_ref, "scope": e.scope, "at": when(e.at),
                      "receipt": e.receipt} for e in erasures],
        "history": "each lock's records and alarms: GET /api/events?lock_id=…, GET /api/alarms?pending=false",
    }


def router(receipt_key: Ed25519PrivateKey | None) -> APIRouter:
    """`DELETE /api/owners/me` and `GET /api/owners/me/export` (the module docstring)."""
    api = APIRouter()

    @api.delete("/api/owners/me")
    def delete_account(request: Request, body: StepUp, session: Db, me: Me) -> dict[str, Any]:
        """Erase the account (password and `totp` again): the cloud-signed receipt of what was erased.  409 while
        it holds a claimed lock (decommission each first: `limen-cloud sign-command decommission`)."""
        account = session.get(Owner, me.id)
        assert account is not None
        if not stepped_up(request, session, account, body.password, body.totp):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{STEP_UP_FAILED}: nothing was erased")
        try:
            receipt = erase_account(session, account, receipt_key, utcnow())
        except AccountHoldsLocks as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, "the account still holds locks "
                                f"({', '.join(exc.locks)}): decommission each first (a command your device signs: "
                                "limen-cloud sign-command decommission); nothing was erased") from exc
        return {"erased": True, "receipt": receipt,
                "receipt_sha256": hashlib.sha256(receipt.encode()).hexdigest()}

    @api.get("/api/owners/me/export")
    def export(session: Db, me: Me) -> dict[str, Any]:
        """Everything the cloud holds of the account, without secrets (channel ids, not URLs; no hash or seed)."""
        return export_account(session, me)

    @api.get("/account/export", include_in_schema=False)
    def export_page(session: Db, me: PageMe) -> Response:
        """The same export for the logged-in browser, as a file to keep."""
        return Response(json.dumps(export_account(session, me.owner), indent=1), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="limen-cloud-account.json"',
                                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @api.post("/account/delete", include_in_schema=False, dependencies=[SameOrigin])
    def delete_page(request: Request, session: Write, me: PageMe, csrf: Annotated[str, Form(max_length=64)],
                    password: Annotated[str, Form(max_length=200)] = "",
                    totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        """/account's "Delete this account": as the API's, answered with the receipt to keep."""
        me.check(csrf)
        write_lock(session)
        owner = session.get(Owner, me.owner.id)
        assert owner is not None
        if not stepped_up(request, session, owner, password, totp):
            session.rollback()
            return render(request, "account.html", 403, page=me, error=STEP_UP_FAILED[0].upper()
                          + STEP_UP_FAILED[1:] + ": nothing was erased.", **push_values(request, session, me))
        try:
            receipt = erase_account(session, owner, receipt_key, utcnow())
        except AccountHoldsLocks as exc:
            session.rollback()
            return render(request, "account.html", 409, page=me, error=f"This account still holds locks "
                          f"({', '.join(exc.locks)}): decommission each first (a command your device signs: "
                          "limen-cloud sign-command decommission). Nothing was erased.",
                          **push_values(request, session, me))
        session.commit()
        response = render(request, "deleted.html", 200, receipt=json.dumps(json.loads(receipt), indent=1))
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    return api
