"""Pure-state builders for policy tests (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from limen.access.model import (
    AccessState,
    AccessUser,
    Credential,
    CredentialType,
    PermissionLevel,
)
from limen.access.pins import hash_pin

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
OWNER_PIN = "246813"
SALT = b"0123456789abcdef"


def user(uid: str, index: int = 1, **kw: Any) -> AccessUser:
    return AccessUser(user_id=uid, index=index, name=uid.title(), **kw)


def pin_cred(uid: str, pin: str, index: int = 1, **kw: Any) -> Credential:
    kw.setdefault("created_at", T0 - timedelta(hours=1))
    kw.setdefault("secret", hash_pin(pin, SALT))
    return Credential(id=f"pin:{index}", user_id=uid, type=CredentialType.PIN, index=index,
                      pin_length=len(pin), **kw)


def offline_cred(uid: str, secret: bytes, index: int = 1) -> Credential:
    return Credential(id=f"offline_code:{index}", user_id=uid, type=CredentialType.OFFLINE_CODE, index=index,
                      secret=secret, created_at=T0)


def state(*users: AccessUser, creds: tuple[Credential, ...] = (), **kw: Any) -> AccessState:
    return AccessState(users={u.user_id: u for u in users}, credentials=creds, pin_salt=SALT, **kw)


def household() -> AccessState:
    """An owner (PIN 246813) and a member (PIN 135792)."""
    owner = user("olga", 1, permission=PermissionLevel.OWNER)
    member = user("max", 2)
    return state(owner, member, creds=(pin_cred("olga", "246813", 1), pin_cred("max", "135792", 2)))


def with_user(s: AccessState, u: AccessUser) -> AccessState:
    return replace(s, users={**s.users, u.user_id: u})


def at(hours: float = 0) -> datetime:
    return T0 + timedelta(hours=hours)
