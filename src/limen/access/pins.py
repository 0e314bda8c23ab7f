"""PINs: validation, salted and peppered Argon2id hashing, anti-peep matching.

A PIN is stored as ``0x02 ‖ salt(16) ‖ HMAC-SHA256(pepper, Argon2id(PIN, salt))``
(`PinHasher.secret_for`): a random salt per credential, so one pass over the
10^6 space cracks one PIN, not all of them; and a pepper, the key store's
``pin-pepper`` side key (a 0600 key file, or a token key), so a copied
`limen.db` alone cracks nothing.  The pepper is not destroyed by a tamper
erase: PINs keep opening the door after the templates are crypto-erased
(docs/vault.md says why).  Hashes of the old format (32 bytes of Argon2id
under the lock-wide salt) still match and are rewritten in the new format at
their first successful use (`needs_upgrade`).

A per-credential salt costs the lock one Argon2id per (candidate, stored PIN
of that length) on every keypad entry; `PinMatcher` computes each at most once
per entry, all of them whatever matches (a right, a disabled or expired, and a
wrong PIN take the same time: `policy.find_pin`), side by side on the Argon2id
threads (`PinMatcher.prefetch`).  The online guessing limit is still the lockout (docs/access.md).

Anti-peep entry: the keypad accepts up to `PIN_ENTRY_MAX_DIGITS` digits, and
every window of a stored PIN's length is a candidate, so a user may type decoy
digits before and after the PIN.  That gives an attacker several guesses per
attempt; `guesses_per_entry` says how many, and the bench accounts for it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from argon2.low_level import Type, hash_secret_raw

from limen import thresholds as T
from limen.errors import BadRequest

PIN_HASH_BYTES = 32
PIN_SALT_BYTES = 16


PEPPERED_V2 = 2
_V2_SIZE = 1 + PIN_SALT_BYTES + PIN_HASH_BYTES


class Pepper(Protocol):
    def mac(self, data: bytes) -> bytes: ...


def new_salt() -> bytes:
    return secrets.token_bytes(PIN_SALT_BYTES)


def needs_upgrade(stored: bytes) -> bool:
    """Whether `stored` is an old-format hash (lock-wide salt, no pepper)."""
    return not (len(stored) == _V2_SIZE and stored[0] == PEPPERED_V2)


class PinHasher:
    """Stores and checks PINs with per-credential salts and the pepper (see the module docstring)."""

    def __init__(self, pepper: Pepper, lock_salt: bytes) -> None:
        self.pepper, self.lock_salt = pepper, lock_salt

    def secret_for(self, pin: str) -> bytes:
        salt = new_salt()
        return bytes([PEPPERED_V2]) + salt + self.pepper.mac(_PEPPER_DOMAIN + hash_pin(pin, salt))

    def matcher(self) -> PinMatcher:
        return PinMatcher(self)


_PEPPER_DOMAIN = b"limen.pin.v2\x00"


class _NoPepper:
    """A state built without the key store (tests, tools): peppered PINs never match — fail closed."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, "sha256").digest()


NO_PEPPER = _NoPepper()


class PinMatcher:
    """Checks candidates of one entry against stored PINs; each Argon2id computed at most once."""

    def __init__(self, hasher: PinHasher) -> None:
        self._hasher = hasher
        self._argon: dict[tuple[str, bytes], bytes] = {}

    def prefetch(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        """Compute the Argon2id of every (candidate, stored PIN) pair at once on the Argon2id threads (at most
        `ARGON2_CONCURRENCY` side by side): the same work as one by one, in less time where cores are free."""
        jobs: dict[tuple[str, bytes], Future[bytes]] = {}
        for candidate, stored in pairs:
            key = (candidate, self._hasher.lock_salt if needs_upgrade(stored) else stored[1 : 1 + PIN_SALT_BYTES])
            if key not in self._argon and key not in jobs:
                jobs[key] = _submit(*key)
        for key, job in jobs.items():
            self._argon[key] = bytes(job.result())

    def _argon2(self, candidate: str, salt: bytes) -> bytes:
        key = (candidate, salt)
        if key not in self._argon:
            self._argon[key] = hash_pin(candidate, salt)
        return self._argon[key]

    def matches(self, candidate: str, stored: bytes) -> bool:
        if needs_upgrade(stored):
            return same_hash(self._argon2(candidate, self._hasher.lock_salt), stored)
        salt, digest = stored[1 : 1 + PIN_SALT_BYTES], stored[1 + PIN_SALT_BYTES :]
        return same_hash(self._hasher.pepper.mac(_PEPPER_DOMAIN + self._argon2(candidate, salt)), digest)


def validate_pin(pin: str, min_length: int = T.PIN_MIN_LENGTH, max_length: int = T.PIN_MAX_LENGTH) -> str:
    """Return `pin` if it is all ASCII digits of an allowed length; never echo it in the error."""
    if not pin.isascii() or not pin.isdigit():
        raise BadRequest("pin", "a PIN is made of digits 0-9 only")
    if not min_length <= len(pin) <= max_length:
        raise BadRequest("pin", f"a PIN has {min_length} to {max_length} digits")
    if len(set(pin)) == 1 or pin in "0123456789012345" or pin in "9876543210987654":
        raise BadRequest("pin", "a PIN may not be one repeated digit or a straight run")
    return pin


# Argon2id runs on a few dedicated threads, so at most this many computations (and their memory) exist at
# once, and only those threads' malloc arenas ever hold the 19 MiB blocks: a request thread that ran one
# would keep its block cached, and a service has dozens of request threads.
ARGON2_CONCURRENCY = max(1, T.PIN_ARGON2_MEMORY_BUDGET_KIB // T.PIN_ARGON2_MEMORY_KIB)
_ARGON2_POOL = ThreadPoolExecutor(max_workers=ARGON2_CONCURRENCY, thread_name_prefix="limen-argon2")


def hash_pin(pin: str, salt: bytes) -> bytes:
    """Argon2id of the PIN under `salt` (raw bytes; `PinHasher` adds the pepper).

    Bounded by `PIN_ARGON2_MEMORY_BUDGET_KIB`: under a flood of keypad or API
    PINs the service's memory stays flat and the excess waits.
    """
    return bytes(_submit(pin, salt).result())


def _submit(pin: str, salt: bytes) -> Future[bytes]:
    return _ARGON2_POOL.submit(
        hash_secret_raw,
        pin.encode("ascii"),
        salt,
        time_cost=T.PIN_ARGON2_TIME_COST,
        memory_cost=T.PIN_ARGON2_MEMORY_KIB,
        parallelism=T.PIN_ARGON2_PARALLELISM,
        hash_len=PIN_HASH_BYTES,
        type=Type.ID,
    )


def entry_candidates(entry: str, lengths: Iterable[int]) -> list[str]:
    """Every window of the keypad entry whose length is one a stored PIN has (anti-peep), longest first."""
    digits = entry[: T.PIN_ENTRY_MAX_DIGITS]
    seen: dict[str, None] = {}
    for length in sorted(set(lengths), reverse=True):
        for start in range(0, len(digits) - length + 1):
            seen.setdefault(digits[start : start + length], None)
    return list(seen)


def guesses_per_entry(pin_length: int, entry_digits: int = T.PIN_ENTRY_MAX_DIGITS) -> int:
    """How many distinct PINs of `pin_length` one maximal keypad entry can test."""
    return max(0, entry_digits - pin_length + 1)


def same_hash(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
