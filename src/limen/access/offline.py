"""Offline codes: keypad codes an owner's app derives while the lock is offline.

Both sides hold a 32-byte secret (a credential of type OFFLINE_CODE).  A code is
a kind digit, the parameters the lock cannot guess, and `OFFLINE_CODE_MAC_DIGITS`
decimal digits of HMAC-SHA256(secret, "limen-offline-v1|kind|parameters"):

    single-use   1 SS M…M            seq (00-99); the lock tries the last 6 start
                                     hours; valid 6 h from its hour; used once
    limited      2 HHHHH DDDD S M…M  start hour (mod 10^5), duration hours, seq;
                                     reusable inside its window
    period quota 3 DDDD NNN Q S M…M  start day (mod 10^4), days, uses per day, seq
    clear        9 <target body> M…M revokes the target code (door stays shut)

Every candidate the lock tries is one chance for a guesser: a single-use guess
succeeds with probability 6 / 10^8, a limited or quota guess 1 / 10^8; keypad
lockout bounds the number of guesses (see docs/access.md and bench/bruteforce.py).
Wrapped fields (hour mod 10^5, day mod 10^4) resolve to the value nearest `at`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from limen import thresholds as T
from limen.errors import BadRequest

SECRET_BYTES = 32
_HOUR = 3600
_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CodeKind(StrEnum):
    SINGLE_USE = "single_use"
    LIMITED = "limited"
    PERIOD_QUOTA = "period_quota"


_KIND_DIGIT = {CodeKind.SINGLE_USE: "1", CodeKind.LIMITED: "2", CodeKind.PERIOD_QUOTA: "3"}
_DIGIT_KIND = {v: k for k, v in _KIND_DIGIT.items()}
_BODY_DIGITS = {CodeKind.SINGLE_USE: 2, CodeKind.LIMITED: 10, CodeKind.PERIOD_QUOTA: 9}
CLEAR_DIGIT = "9"


@dataclass(frozen=True)
class OfflineGrant:
    """What a valid code allows.  `code_id` names it in use and revocation records (never the code)."""

    kind: CodeKind
    code_id: str
    start: datetime
    end: datetime
    seq: int
    uses_per_day: int | None = None


@dataclass(frozen=True)
class ClearRequest:
    target_id: str


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def hour_of(at: datetime) -> int:
    return int((at - _EPOCH).total_seconds()) // _HOUR


def day_of(at: datetime) -> int:
    return int((at - _EPOCH).total_seconds()) // _DAY


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big") % 10**T.OFFLINE_CODE_MAC_DIGITS
    return f"{value:0{T.OFFLINE_CODE_MAC_DIGITS}d}"


def _code_id(kind: CodeKind, start_unit: int, body_tail: str) -> str:
    return f"{kind.value}:{start_unit}:{body_tail}"


# ------------------------------------------------------------------ issuing (the owner's side)


def issue_single_use(secret: bytes, at: datetime, seq: int) -> str:
    """A code valid once, from the hour containing `at` for `OFFLINE_SINGLE_USE_HOURS`."""
    _check_range("seq", seq, 0, 99)
    body = f"{seq:02d}"
    return "1" + body + _mac(secret, f"limen-offline-v1|1|{hour_of(at)}|{body}")


def issue_limited(secret: bytes, start: datetime, hours: int, seq: int) -> str:
    """A code usable any number of times from `start`'s hour for `hours` hours."""
    _check_range("hours", hours, 1, 9999)
    _check_range("seq", seq, 0, 9)
    h = hour_of(start)
    body = f"{h % 100_000:05d}{hours:04d}{seq:d}"
    return "2" + body + _mac(secret, f"limen-offline-v1|2|{h}|{body[5:]}")


def issue_period_quota(secret: bytes, start: datetime, days: int, uses_per_day: int, seq: int) -> str:
    """A code valid from `start`'s day (UTC) for `days` days, at most `uses_per_day` openings a day."""
    _check_range("days", days, 1, 999)
    _check_range("uses_per_day", uses_per_day, 1, 9)
    _check_range("seq", seq, 0, 9)
    d = day_of(start)
    body = f"{d % 10_000:04d}{days:03d}{uses_per_day:d}{seq:d}"
    return "3" + body + _mac(secret, f"limen-offline-v1|3|{d}|{body[4:]}")


def issue_clear(secret: bytes, code: str, at: datetime) -> str:
    """The clear code that revokes `code` when typed at the keypad (while `code` could still be valid)."""
    grant = verify(secret, code, at)
    if not isinstance(grant, OfflineGrant):
        raise BadRequest("code", "not a valid offline code for this secret")
    target = code[: 1 + _BODY_DIGITS[grant.kind]]
    return CLEAR_DIGIT + target + _mac(secret, f"limen-offline-v1|9|{grant.code_id}")


# ------------------------------------------------------------------ verifying (the lock's side)


def verify(secret: bytes, code: str, at: datetime, any_time: bool = False) -> OfflineGrant | ClearRequest | None:
    """The grant or clear request `code` carries under `secret` at `at`, or None.

    Checks the MAC in constant time for every candidate; validity windows are
    checked by the policy, except that a single-use code is only searched among
    the hours it could still be valid in (the last 30 days with `any_time`).
    """
    if not code.isascii() or not code.isdigit() or len(code) > T.OFFLINE_CODE_MAX_DIGITS:
        return None
    if code[0] == CLEAR_DIGIT:
        return _verify_clear(secret, code[1:], at)
    kind = _DIGIT_KIND.get(code[0])
    if kind is None or len(code) != 1 + _BODY_DIGITS[kind] + T.OFFLINE_CODE_MAC_DIGITS:
        return None
    body, mac = code[1 : 1 + _BODY_DIGITS[kind]], code[1 + _BODY_DIGITS[kind] :]
    for grant in _candidates(kind, body, at, any_time):
        if hmac.compare_digest(_mac(secret, _message(grant, body)), mac):
            return grant
    return None


def _verify_clear(secret: bytes, rest: str, at: datetime) -> ClearRequest | None:
    kind = _DIGIT_KIND.get(rest[:1])
    if kind is None or len(rest) != 1 + _BODY_DIGITS[kind] + T.OFFLINE_CODE_MAC_DIGITS:
        return None
    body, mac = rest[1 : 1 + _BODY_DIGITS[kind]], rest[1 + _BODY_DIGITS[kind] :]
    for grant in _candidates(kind, body, at, any_time=False):
        if hmac.compare_digest(_mac(secret, f"limen-offline-v1|9|{grant.code_id}"), mac):
            return ClearRequest(grant.code_id)
    return None


def _message(grant: OfflineGrant, body: str) -> str:
    if grant.kind is CodeKind.SINGLE_USE:
        return f"limen-offline-v1|1|{hour_of(grant.start)}|{body}"
    if grant.kind is CodeKind.LIMITED:
        return f"limen-offline-v1|2|{hour_of(grant.start)}|{body[5:]}"
    return f"limen-offline-v1|3|{day_of(grant.start)}|{body[4:]}"


def _candidates(kind: CodeKind, body: str, at: datetime, any_time: bool) -> list[OfflineGrant]:
    if kind is CodeKind.SINGLE_USE:
        return _single_use_candidates(body, at, any_time)
    if kind is CodeKind.LIMITED:
        h = _nearest(int(body[:5]), 100_000, hour_of(at))
        hours, seq = int(body[5:9]), int(body[9])
        if hours == 0:
            return []
        start = _EPOCH + timedelta(hours=h)
        return [OfflineGrant(kind, _code_id(kind, h, body[5:]), start, start + timedelta(hours=hours), seq)]
    d = _nearest(int(body[:4]), 10_000, day_of(at))
    days, quota, seq = int(body[4:7]), int(body[7]), int(body[8])
    if days == 0 or quota == 0:
        return []
    start = _EPOCH + timedelta(days=d)
    return [OfflineGrant(kind, _code_id(kind, d, body[4:]), start, start + timedelta(days=days), seq, quota)]


def _single_use_candidates(body: str, at: datetime, any_time: bool) -> list[OfflineGrant]:
    now_h = hour_of(at)
    span = T.OFFLINE_SINGLE_USE_HOURS
    hours = range(now_h - span + 1, now_h + 1) if not any_time else range(now_h - 24 * 30, now_h + 1)
    grants = []
    for h in reversed(hours):
        start = _EPOCH + timedelta(hours=h)
        grants.append(
            OfflineGrant(CodeKind.SINGLE_USE, _code_id(CodeKind.SINGLE_USE, h, body), start,
                         start + timedelta(hours=span), int(body))
        )
    return grants


def _nearest(value: int, modulus: int, around: int) -> int:
    """The integer ≡ value (mod modulus) closest to `around`."""
    base = around - (around % modulus) + value
    return min((base - modulus, base, base + modulus), key=lambda v: abs(v - around))


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise BadRequest(field, f"must be {low}..{high}")


def code_space(kind: CodeKind) -> int:
    """How many codes of `kind` an attacker must choose among for one MAC (10^MAC digits)."""
    return 10**T.OFFLINE_CODE_MAC_DIGITS


def candidates_per_guess(kind: CodeKind) -> int:
    """How many MACs the lock checks for one typed code of `kind`."""
    return T.OFFLINE_SINGLE_USE_HOURS if kind is CodeKind.SINGLE_USE else 1
