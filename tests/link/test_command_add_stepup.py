"""A signed `add_user` / `add_code` makes a way in, so with `require_pin_for_remote` on (the default) it needs
the owner's sealed PIN as a remote unlock does (review 3: a stolen paired phone, refused an unlock without the
PIN, had the lock mint a PIN or code sealed to it that opened the door at the keypad)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.access.model import CredentialType
from limen.audit.event import EventKind
from limen.errors import NotFound
from limen.link.commands import Action
from limen.link.execute import LinkCommands, Outcome, open_reply, seal_pin

from .conftest import OWNER_PIN, LockRig, build_rig

WRONG_PIN = "135799"


@pytest.fixture
def pin_rig(tmp_path: Path) -> Iterator[tuple[LockRig, X25519PrivateKey]]:
    """The rig with the default `require_pin_for_remote` and the lock's restore key (sealed PINs open)."""
    rig = build_rig(tmp_path)
    lock_key = X25519PrivateKey.generate()
    rig.link = LinkCommands(rig.verifier, rig.controller, rig.store, rig.sink, lambda *a: 0, restore_key=lock_key)
    rig.store.set_config(rig.owner, rig.clock.now(), require_pin_for_remote=True)
    yield rig, lock_key
    rig.devices.conn.close()


def _reply() -> tuple[X25519PrivateKey, str]:
    private = X25519PrivateKey.generate()
    return private, base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _add(rig: LockRig, action: Action, reply_pub: str, **pin: str) -> Outcome:
    args = {"name": "Thief", "reply_key": reply_pub} if action is Action.ADD_USER else {"reply_key": reply_pub}
    return rig.send(rig.signed(action, **args, **pin))


def _opens(rig: LockRig, action: Action, reply: X25519PrivateKey, outcome: Outcome) -> bool:
    sealed = outcome.data["sealed_pin" if action is Action.ADD_USER else "sealed_code"]
    secret = open_reply(reply, sealed).decode()
    rig.controller.lock()
    rig.settle()
    return rig.controller.keypad(secret if action is Action.ADD_USER else "*" + secret).accepted


def _nothing_added(rig: LockRig) -> bool:
    try:
        rig.store.user("Thief")
    except NotFound:
        return not rig.store.list_codes()
    return False


ADDS = [Action.ADD_USER, Action.ADD_CODE]


@pytest.mark.parametrize("action", ADDS)
def test_without_the_owners_pin_nothing_is_added_and_the_refusal_is_audited(
        pin_rig: tuple[LockRig, X25519PrivateKey], action: Action) -> None:
    rig, _ = pin_rig
    _, reply_pub = _reply()
    outcome = _add(rig, action, reply_pub)
    assert not outcome.executed and outcome.reason == "pin_required"
    assert "sealed_pin" not in outcome.data and "sealed_code" not in outcome.data and _nothing_added(rig)
    record = [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND][-1]
    assert record.outcome == "refused" and record.reason == "pin_required" and record.data["action"] == action.value
    assert rig.door.is_locked


@pytest.mark.parametrize("action", ADDS)
def test_with_the_owners_sealed_pin_the_new_pin_or_code_opens(pin_rig: tuple[LockRig, X25519PrivateKey],
                                                             action: Action) -> None:
    rig, lock_key = pin_rig
    reply, reply_pub = _reply()
    outcome = _add(rig, action, reply_pub, pin=seal_pin(lock_key.public_key(), OWNER_PIN))
    assert outcome.executed and outcome.reason == "done"
    assert OWNER_PIN not in str(outcome.to_dict()) and all(OWNER_PIN not in str(e.data) for e in rig.sink.events)
    assert _opens(rig, action, reply, outcome)


@pytest.mark.parametrize("action", ADDS)
def test_wrong_pins_count_toward_the_keypad_lockout_as_a_remote_unlocks_do(
        pin_rig: tuple[LockRig, X25519PrivateKey], action: Action) -> None:
    rig, lock_key = pin_rig
    _, reply_pub = _reply()
    limit = rig.store.load_state().config.wrong_code_entry_limit
    for n in range(1, limit):
        wrong = _add(rig, action, reply_pub, pin=seal_pin(lock_key.public_key(), WRONG_PIN))
        assert not wrong.executed and wrong.reason == "unknown_credential"
        assert rig.store.load_state().lockout.wrong_code_count == n
    wrong = _add(rig, action, reply_pub, pin=seal_pin(lock_key.public_key(), WRONG_PIN))
    assert rig.store.load_state().lockout.locked_until is not None  # the keypad's lockout, for every PIN
    right = _add(rig, action, reply_pub, pin=seal_pin(lock_key.public_key(), OWNER_PIN))
    assert not right.executed and right.reason == "locked_out" and _nothing_added(rig)
    assert not rig.controller.keypad(OWNER_PIN).accepted  # the door's keypad is locked out too


@pytest.mark.parametrize("sealed", ["clear", "other_lock"])
def test_a_pin_not_sealed_to_this_lock_is_refused(pin_rig: tuple[LockRig, X25519PrivateKey], sealed: str) -> None:
    rig, _ = pin_rig
    _, reply_pub = _reply()
    pin = OWNER_PIN if sealed == "clear" else seal_pin(X25519PrivateKey.generate().public_key(), OWNER_PIN)
    outcome = _add(rig, Action.ADD_CODE, reply_pub, pin=pin)
    assert not outcome.executed and "pin" in outcome.reason and _nothing_added(rig)


def test_with_require_pin_for_remote_off_no_pin_is_asked(pin_rig: tuple[LockRig, X25519PrivateKey]) -> None:
    rig, _ = pin_rig
    rig.store.set_config(rig.owner, rig.clock.now(), require_pin_for_remote=False)
    reply, reply_pub = _reply()
    outcome = _add(rig, Action.ADD_USER, reply_pub)
    assert outcome.executed and _opens(rig, Action.ADD_USER, reply, outcome)


@pytest.mark.parametrize("action", ADDS)
@pytest.mark.parametrize("how", ["revoked", "too_old"])
def test_an_owner_pin_the_unlock_refuses_adds_nothing_counts_as_wrong_and_is_not_recorded_used(
        pin_rig: tuple[LockRig, X25519PrivateKey], action: Action, how: str) -> None:
    """Review 4: the step-up checked only that the PIN matched (revoked ones too), so a PIN the remote unlock
    refuses (revoked, past the owner's PIN-age limit) added a person and reset the PIN's 72 h clock."""
    rig, lock_key = pin_rig
    at = rig.clock.now()
    if how == "revoked":
        pin = next(c for c in rig.store.credentials(rig.owner) if c.type is CredentialType.PIN)
        rig.store.revoke_credential(pin.id, rig.owner, at)
    else:
        rig.store.modify_user(rig.owner, rig.owner, at, pin_max_age_days=1)
        rig.clock.advance(2 * 86400)
    last_pin_at = rig.store.user(rig.owner).last_pin_at
    reason = "credential_revoked" if how == "revoked" else "credential_expired"
    unlock = rig.send(rig.signed(Action.UNLOCK, pin=seal_pin(lock_key.public_key(), OWNER_PIN)))
    assert not unlock.executed and unlock.reason == "unknown_credential"  # told a wrong PIN; the audit says why
    count = rig.store.load_state().lockout.wrong_code_count
    _, reply_pub = _reply()
    outcome = _add(rig, action, reply_pub, pin=seal_pin(lock_key.public_key(), OWNER_PIN))
    assert not outcome.executed and outcome.reason == "unknown_credential" and _nothing_added(rig)
    assert "detail" not in outcome.data
    assert "sealed_pin" not in outcome.data and "sealed_code" not in outcome.data
    assert rig.store.load_state().lockout.wrong_code_count == count + 1  # a wrong code, as at the door
    assert rig.store.user(rig.owner).last_pin_at == last_pin_at
    record = [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND][-1]
    assert record.outcome == "refused" and record.reason == reason and record.data["action"] == action.value


def test_a_forced_owners_remote_unlock_answers_granted_to_the_phone_and_the_audit_says_duress(
        pin_rig: tuple[LockRig, X25519PrivateKey]) -> None:
    """Review 5: the outcome went back to the phone as "duress" — and the coercer may hold that phone."""
    from limen.access.model import UserType

    rig, lock_key = pin_rig
    rig.store.modify_user(rig.owner, rig.owner, rig.clock.now(), user_type=UserType.FORCED)
    unlock = rig.send(rig.signed(Action.UNLOCK, pin=seal_pin(lock_key.public_key(), OWNER_PIN)))
    assert unlock.executed and unlock.reason == "granted" and "duress" not in str(unlock.to_dict())
    assert any(e.reason == "duress" for e in rig.sink.events if e.kind is EventKind.UNLOCK_ATTEMPT)
