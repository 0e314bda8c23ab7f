from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limen import thresholds as T
from limen.access import pins
from limen.errors import BadRequest


@pytest.mark.parametrize("bad", ["", "12345", "1234567890123", "12 456", "١٢٣٤٥٦", "abcdef", "000000", "123456",
                                 "987654"])
def test_invalid_pins_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(BadRequest) as exc:
        pins.validate_pin(bad)
    assert (bad not in str(exc.value)) or bad == ""


def test_argon2id_production_parameters_and_salt(real_argon2: None) -> None:
    salt = pins.new_salt()
    digest = pins.hash_pin("246813", salt)
    assert len(digest) == pins.PIN_HASH_BYTES
    assert digest == pins.hash_pin("246813", salt)
    assert digest != pins.hash_pin("246814", salt)
    assert digest != pins.hash_pin("246813", pins.new_salt())
    assert T.PIN_ARGON2_MEMORY_KIB >= 19_456


def test_same_hash_is_constant_time_compare() -> None:
    assert pins.same_hash(b"a" * 32, b"a" * 32) and not pins.same_hash(b"a" * 32, b"b" * 32)


digits = st.text(alphabet="0123456789", min_size=0, max_size=3)


@given(pin=st.text(alphabet="0123456789", min_size=6, max_size=6), before=digits, after=digits)
@settings(max_examples=200)
def test_anti_peep_finds_pin_among_decoys(pin: str, before: str, after: str) -> None:
    entry = before + pin + after
    assert pin in pins.entry_candidates(entry, {6})
    assert len(pins.entry_candidates(entry, {6})) <= pins.guesses_per_entry(6, len(entry))


def test_entry_is_truncated_to_max_digits() -> None:
    entry = "1" * T.PIN_ENTRY_MAX_DIGITS + "246813"
    assert "246813" not in pins.entry_candidates(entry, {6})
    assert pins.guesses_per_entry(6) == T.PIN_ENTRY_MAX_DIGITS - 5


# ---------------------------------------------------------------- salts and pepper (issue 14 item 8)
class _Key:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def mac(self, data: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self.key, data, hashlib.sha256).digest()


def test_each_pin_has_its_own_salt_and_needs_the_pepper() -> None:
    hasher = pins.PinHasher(_Key(b"k" * 32), lock_salt=b"s" * 16)
    a, b = hasher.secret_for("246813"), hasher.secret_for("246813")
    assert a != b and a[1:17] != b[1:17]  # same PIN, different salts: one cracking pass finds one PIN
    salt, digest = a[1:17], a[17:]
    assert pins.hash_pin("246813", salt) != digest  # the database alone (salt + digest) is not an Argon2id hash
    assert hasher.matcher().matches("246813", a) and not hasher.matcher().matches("246814", a)
    other = pins.PinHasher(_Key(b"x" * 32), lock_salt=b"s" * 16)
    assert not other.matcher().matches("246813", a)  # a wrong or lost pepper fails closed
    assert not pins.PinHasher(pins.NO_PEPPER, b"s" * 16).matcher().matches("246813", a)


def test_old_hashes_still_match_and_are_recognised_for_upgrade() -> None:
    legacy = pins.hash_pin("246813", b"s" * 16)
    hasher = pins.PinHasher(_Key(b"k" * 32), lock_salt=b"s" * 16)
    assert pins.needs_upgrade(legacy) and not pins.needs_upgrade(hasher.secret_for("246813"))
    assert hasher.matcher().matches("246813", legacy)
