"""PINs: validation, Argon2id hashing, anti-peep matching.

A PIN is stored only as an Argon2id hash (argon2-cffi, OWASP parameters from
`thresholds.PIN_ARGON2_*`) under the lock's random PIN salt.  One salt per lock,
not per PIN, is deliberate: a keypad entry is hashed once per candidate and
compared against every stored hash with `hmac.compare_digest`, and duplicate
PINs can be refused (Matter's DuplicateCredential).  With a 10^6 code space a
per-PIN salt would not slow an attacker who holds the database anyway; the
online guessing limit is the lockout (see docs/access.md).

Anti-peep entry: the keypad accepts up to `PIN_ENTRY_MAX_DIGITS` digits, and
every window of a stored PIN's length is a candidate, so a user may type decoy
digits before and after the PIN.  That gives an attacker several guesses per
attempt; `guesses_per_entry` says how many, and the bench accounts for it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable

from argon2.low_level import Type, hash_secret_raw

from limen import thresholds as T
from limen.errors import BadRequest

PIN_HASH_BYTES = 32
PIN_SALT_BYTES = 16


def new_salt() -> bytes:
    return secrets.token_bytes(PIN_SALT_BYTES)


def validate_pin(pin: str, min_length: int = T.PIN_MIN_LENGTH, max_length: int = T.PIN_MAX_LENGTH) -> str:
    """Return `pin` if it is all ASCII digits of an allowed length; never echo it in the error."""
    if not pin.isascii() or not pin.isdigit():
        raise BadRequest("pin", "a PIN is made of digits 0-9 only")
    if not min_length <= len(pin) <= max_length:
        raise BadRequest("pin", f"a PIN has {min_length} to {max_length} digits")
    if len(set(pin)) == 1 or pin in "0123456789012345" or pin in "9876543210987654":
        raise BadRequest("pin", "a PIN may not be one repeated digit or a straight run")
    return pin


def hash_pin(pin: str, salt: bytes) -> bytes:
    """Argon2id of the PIN under the lock's salt (raw bytes)."""
    return hash_secret_raw(
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
