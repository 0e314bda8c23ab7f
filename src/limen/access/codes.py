"""Offline codes: issued with an owner's or administrator's secret, listed, revoked, revocations synchronised.

The lock verifies a typed code offline (`limen.access.offline`); what is
stored here is what was issued (for the console: its window and kind, and a
MAC of its digits under the PIN pepper, never the digits: `code_digest`), the
uses and the revocation list the policy reads.  Changes are audited as
CODE_CHANGE (never the secret).
"""

from __future__ import annotations

import hmac
import re
import sqlite3
from datetime import datetime
from typing import Any

from limen.access import offline, pins, rows
from limen.access.authority import check_actor
from limen.access.context import AccessContext
from limen.access.credentials import add_credential, list_credentials
from limen.access.directory import find_user
from limen.access.model import Credential, CredentialType
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest, Conflict, NotFound
from limen.privacy.scrub import forget_deleted, secure


def offline_secret(ctx: AccessContext, ref: str, actor: str, at: datetime) -> Credential:
    """The user's offline-code secret credential, created on first use (owner/administrator only)."""
    user = find_user(ctx.conn, ref)
    existing = [c for c in list_credentials(ctx.conn, user.user_id)
                if c.type is CredentialType.OFFLINE_CODE and not c.revoked]  # a revoked secret stays dead
    if existing:
        return existing[0]
    with ctx.issuing(None):  # the person's own secret, whoever asks first: never an API token's (nor revoked with it)
        return add_credential(ctx, ref, CredentialType.OFFLINE_CODE, actor, at)


def issue_code(ctx: AccessContext, kind: offline.CodeKind, actor: str, at: datetime, *,
               start: datetime | None = None, hours: int = 24, days: int = 7,
               uses_per_day: int = 1) -> tuple[str, offline.OfflineGrant]:
    """Issue an offline code with the actor's secret (as the owner's app would) and record it."""
    issuer = find_user(ctx.conn, actor)
    if not issuer.permission.programs:
        raise BadRequest("as", "only owners and administrators issue codes")
    cred = offline_secret(ctx, actor, actor, at)
    start = start or at
    conn = ctx.conn
    with transaction(conn):
        issued = {r[0] for r in conn.execute("SELECT code_id FROM access_codes_issued")}
        code, grant = None, None
        for seq in range(100 if kind is offline.CodeKind.SINGLE_USE else 10):
            if kind is offline.CodeKind.SINGLE_USE:
                code = offline.issue_single_use(cred.secret, start, seq)
            elif kind is offline.CodeKind.LIMITED:
                code = offline.issue_limited(cred.secret, start, hours, seq)
            else:
                code = offline.issue_period_quota(cred.secret, start, days, uses_per_day, seq)
            found = offline.verify(cred.secret, code, start)
            if isinstance(found, offline.OfflineGrant) and found.code_id not in issued:
                grant = found
                break
        if code is None or grant is None:
            raise Conflict("no free sequence number for this window; try another start")
        if ctx.token is not None and grant.end > ctx.token.expires_at:  # the code would outlive its token
            raise BadRequest("days" if kind is offline.CodeKind.PERIOD_QUOTA else "hours",
                             f"a code issued with an API token ends by the token's expiry "
                             f"({rows.iso(ctx.token.expires_at)}); this one would end {rows.iso(grant.end)}")
        conn.execute(
            "INSERT INTO access_codes_issued(code_id, credential_id, kind, code, start_at, end_at, uses_per_day, "
            "issued_at, issued_by, issued_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (grant.code_id, cred.id, kind.value, code_digest(ctx.pepper, code), rows.iso(grant.start),
             rows.iso(grant.end),
             grant.uses_per_day, rows.iso(at), actor, ctx.token.token_id if ctx.token else None))
    ctx.emit(EventKind.CODE_CHANGE, at, actor, cred.user_id, "offline code issued", code_id=grant.code_id,
             code_kind=kind.value, start=rows.iso(grant.start), end=rows.iso(grant.end))
    return code, grant


_CODE_DOMAIN = b"limen.issued-code.v1\x00"
DIGEST_PREFIX = "mac1:"


def code_digest(pepper: pins.Pepper, code: str) -> str:
    """What the lock keeps of an issued code's digits: a MAC under the PIN pepper (outside `limen.db`), so a copy
    of the database alone names no code that opens the door, and revoking by the digits still finds it.  The digits
    themselves are shown once, when issued."""
    return DIGEST_PREFIX + pepper.mac(_CODE_DOMAIN + code.encode("ascii")).hex()


def digest_clear_codes(ctx: AccessContext) -> int:
    """Replace the digits of codes issued before they were kept as digests (or restored from such a backup)."""
    conn = ctx.conn
    if conn.execute("SELECT 1 FROM access_codes_issued WHERE code NOT LIKE ? LIMIT 1",
                    (DIGEST_PREFIX + "%",)).fetchone() is None:
        return 0  # the usual case: no write transaction at every store opened
    secure(conn)  # the digits' cells are zeroed where they were freed
    with transaction(conn):
        clear = conn.execute("SELECT code_id, code FROM access_codes_issued WHERE code NOT LIKE ?",
                             (DIGEST_PREFIX + "%",)).fetchall()
        for r in clear:
            conn.execute("UPDATE access_codes_issued SET code = ? WHERE code_id = ?",
                         (code_digest(ctx.pepper, str(r["code"])), r["code_id"]))
    forget_deleted(conn)  # and their old page images leave the write-ahead log
    return len(clear)


def list_codes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    revoked = {r[0] for r in conn.execute("SELECT code_id FROM access_code_revocations")}
    uses: dict[str, int] = {}
    for r in conn.execute("SELECT code_id, COUNT(*) FROM access_code_uses GROUP BY code_id"):
        uses[r[0]] = r[1]
    return [
        {"code_id": r["code_id"], "kind": r["kind"], "start": r["start_at"],
         "end": r["end_at"], "uses_per_day": r["uses_per_day"], "issued_by": r["issued_by"],
         "uses": uses.get(r["code_id"], 0), "revoked": r["code_id"] in revoked}
        for r in conn.execute("SELECT * FROM access_codes_issued ORDER BY issued_at")
    ]


# A code's id as `offline._code_id` makes it: kind, start hour (day for a period quota), the code's body tail.
_CODE_ID = re.compile(r"single_use:[0-9]{1,9}:[0-9]{2}|(?:limited|period_quota):[0-9]{1,9}:[0-9]{5}")


def revoke_code(ctx: AccessContext, code_or_id: str, actor: str, at: datetime) -> str:
    """Add a code (typed digits or its id) to the revocation list; effective on the next attempt.

    An id need not have been issued here (the owner's app issues codes offline too), but it must be well formed
    (`single_use:…`, `limited:…`, `period_quota:…`): anything else is refused, never recorded as a revocation
    that matches no code."""
    conn = ctx.conn
    code_id = code_or_id
    if code_or_id.isascii() and code_or_id.isdigit():  # a code's digits (other scripts' digits are no code)
        digest = code_digest(ctx.pepper, code_or_id)
        matches = [r["code_id"] for r in conn.execute("SELECT code_id, code FROM access_codes_issued")
                   if hmac.compare_digest(str(r["code"]).encode(), digest.encode())]
        if not matches:
            raise NotFound("no issued code with these digits")
        code_id = matches[0]
    with transaction(conn):
        check_actor(conn, actor)
        if _CODE_ID.fullmatch(code_id) is None:
            raise BadRequest("code", "neither a code's digits (without the star) nor a code id (e.g. "
                                     "limited:498930:00240, as limen codes list shows)")
        conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                     (code_id, rows.iso(at), actor))
    ctx.emit(EventKind.CODE_CHANGE, at, actor, None, "offline code revoked", code_id=code_id)
    return code_id


def sync_revocations(ctx: AccessContext, code_ids: list[str], actor: str, at: datetime) -> int:
    """Merge a synchronised revocation list (from the owner's app or cloud); returns how many were new.  A list
    with an entry that is not a well-formed code id is refused whole (nothing merged): a revocation that matches
    no code would read as done while the code it meant still opens."""
    for position, code_id in enumerate(code_ids):
        if not isinstance(code_id, str) or _CODE_ID.fullmatch(code_id) is None:
            raise BadRequest("code_ids", f"entry {position} is not a code id (e.g. limited:498930:00240); "
                                         "nothing was merged")
    conn = ctx.conn
    with transaction(conn):
        before = conn.execute("SELECT COUNT(*) FROM access_code_revocations").fetchone()[0]
        for code_id in code_ids:
            conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                         (code_id, rows.iso(at), actor))
        added = int(conn.execute("SELECT COUNT(*) FROM access_code_revocations").fetchone()[0] - before)
    ctx.emit(EventKind.CODE_CHANGE, at, actor, None, "revocation list synchronised", added=added)
    return added
