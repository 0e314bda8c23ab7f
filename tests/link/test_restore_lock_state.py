"""A signed restore needs the owner's sealed PIN while `require_pin_for_remote` is on (an owner without one: refused
until they set one at the lock), and an older backup does not loosen the lock's own state: its lockout, mode,
holidays, forced owner re-authentication, stricter settings, the offline codes
used or revoked since and the one-use credentials spent since stay (review 4: a stolen paired phone that is a backup
recipient turned `require_pin_for_remote` off, cleared the keypad lockout after each few wrong PINs, left privacy
mode and reopened a used single-use code with a restore of an older backup)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen import thresholds
from limen.access.model import CredentialType, OperatingMode, UserType
from limen.access.offline import CodeKind
from limen.access.policy import Update
from limen.link.backup import restore_key
from limen.link.commands import Action
from limen.link.execute import Outcome, seal_pin
from tests.link.test_backup import NEW_OWNER_PIN, OWNER_PIN, Lock, open_lock, restore_command


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Lock]:
    lk = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    yield lk
    lk.close()


def _sealed(lock: Lock, pin: str) -> str:
    return seal_pin(restore_key(lock.rt.settings.keys_dir).public_key(), pin)


def _restore(lock: Lock, blob: bytes, **extra: str) -> Outcome:
    return lock.send(restore_command(lock, blob, from_lock=lock.id, phone_x=lock.phone_x, **extra))


def _reply_key() -> str:
    public = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(public).decode()


def test_a_restore_needs_the_owner_s_sealed_pin_while_require_pin_for_remote_is_on(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    _, blob = lock.backups.make(at)  # require_pin_for_remote off in it (open_lock)
    store.set_config(lock.owner, at, require_pin_for_remote=True)
    store.add_user("Max", lock.owner, at)  # not in the backup: a restore that ran would remove him
    bare = _restore(lock, blob)
    wrong = _restore(lock, blob, pin=_sealed(lock, "000000"))
    assert [(bare.executed, bare.reason), (wrong.executed, wrong.reason)] == [
        (False, "pin_required"), (False, "unknown_credential")]
    assert lock.users() == ["Max", "Olga"] and store.load_state().lockout.wrong_code_count == 1
    done = _restore(lock, blob, pin=_sealed(lock, OWNER_PIN))
    assert (done.executed, done.reason) == (True, "done") and lock.users() == ["Olga"]
    assert store.load_state().config.require_pin_for_remote  # the backup's "off" does not turn it off
    assert "stricter_settings" in done.data["kept_lock_state"].split(",")
    assert not lock.send(lock.command(Action.UNLOCK)).executed  # still pin_required


def test_the_keypad_lockout_survives_a_restore_so_remote_pin_guessing_stays_bounded(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    store.set_config(lock.owner, at, require_pin_for_remote=True)
    _, blob = lock.backups.make(at)
    for _ in range(store.load_state().config.wrong_code_entry_limit):
        lock.send(lock.command(Action.ADD_CODE, reply_key=_reply_key(), pin=_sealed(lock, "000000")))
    locked = store.load_state().lockout
    assert locked.locked_until is not None
    refused = _restore(lock, blob, pin=_sealed(lock, OWNER_PIN))  # even the right PIN waits out the lockout
    assert (refused.executed, refused.reason) == (False, "locked_out")
    assert store.load_state().lockout == locked


def test_a_restore_keeps_the_lock_s_lockout_mode_and_owner_reauthentication(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    _, blob = lock.backups.make(at)
    for _ in range(store.load_state().config.wrong_code_entry_limit):
        lock.keypad("000000")
    store.set_mode(OperatingMode.PRIVACY, lock.owner, at)
    store.apply(Update(owner_reauth_required=True), at)
    before = store.load_state()
    assert before.lockout.locked_until is not None
    done = _restore(lock, blob)  # require_pin_for_remote off: no PIN asked
    after = store.load_state()
    assert done.executed and (after.lockout, after.mode, after.owner_reauth_required) == (
        before.lockout, OperatingMode.PRIVACY, True)
    assert {"locked_until", "mode", "owner_reauth_required"} <= set(done.data["kept_lock_state"].split(","))


def test_a_stricter_setting_made_since_the_backup_stays_and_a_looser_one_does_not(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    store.set_config(lock.owner, at, wrong_code_entry_limit=5, lockout_max_disable_s=600, auto_relock_time_s=9)
    _, blob = lock.backups.make(at)
    store.set_config(lock.owner, at, wrong_code_entry_limit=3, lockout_max_disable_s=60, auto_relock_time_s=4)
    assert _restore(lock, blob).executed
    config = store.load_state().config
    assert (config.wrong_code_entry_limit, config.lockout_max_disable_s, config.auto_relock_time_s) == (3, 600, 9)


def test_codes_used_or_revoked_since_the_backup_stay_spent(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    single, _ = store.issue_code(CodeKind.SINGLE_USE, lock.owner, at, hours=24)
    limited, grant = store.issue_code(CodeKind.LIMITED, lock.owner, at, hours=24)
    _, blob = lock.backups.make(at)
    assert lock.keypad("*" + single)
    store.revoke_code(grant.code_id, lock.owner, at)
    done = _restore(lock, blob)
    assert done.executed and "code_uses" in done.data["kept_lock_state"].split(",")
    assert not lock.keypad("*" + single) and not lock.keypad("*" + limited)


def test_a_one_use_pin_spent_since_the_backup_stays_spent(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    guest = store.add_user("Dora", lock.owner, at, user_type=UserType.DISPOSABLE).user_id
    store.add_credential(guest, CredentialType.PIN, lock.owner, at, secret="8642097")
    _, blob = lock.backups.make(at)
    assert lock.keypad("8642097")
    done = _restore(lock, blob)
    assert done.executed and "credential_uses" in done.data["kept_lock_state"].split(",")
    assert not lock.keypad("8642097")


def test_a_restore_of_an_unchanged_lock_keeps_nothing_and_says_so(lock: Lock) -> None:
    _, blob = lock.backups.make(datetime.now(UTC))
    done = _restore(lock, blob)
    assert done.executed and done.data["kept_lock_state"] == "none" and done.data["owner_without_pin"] == "false"


@pytest.mark.parametrize("own_pin", [True, False], ids=["its-owner-s-pin", "owner-without-a-pin"])
def test_a_replacement_lock_restores_with_its_owner_s_pin_and_never_without_one(tmp_path: Path,
                                                                               own_pin: bool) -> None:
    old = open_lock(tmp_path / "old", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    new = open_lock(tmp_path / "new", "front-door", old.phone, old.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        at = datetime.now(UTC)
        old.rt.access().add_user("Max", old.owner, at)
        _, blob = old.backups.make(at)
        store = new.rt.access()
        store.set_config(new.owner, at, require_pin_for_remote=True)
        if not own_pin:  # the in-person pairing gave her a PIN; revoked since, nothing stands in for it
            store.revoke_credential(store.credentials(new.owner)[0].id, new.owner, at)
        refused = new.send(restore_command(new, blob, from_lock=old.id, phone_x=old.phone_x, origin=old))
        assert (refused.executed, refused.reason) == (False, "pin_required") and new.users() == ["Olga"]
        done = new.send(restore_command(new, blob, from_lock=old.id, phone_x=old.phone_x, origin=old,
                                        pin=_sealed(new, NEW_OWNER_PIN)))
        if own_pin:
            assert (done.executed, done.reason) == (True, "done") and new.users() == ["Max", "Olga"]
        else:
            assert (done.executed, done.reason) == (False, "pin_required") and new.users() == ["Olga"]
            assert "set one at the lock" in done.data["detail"]
    finally:
        old.close()
        new.close()


def test_a_stolen_phone_cannot_restore_once_the_owner_s_pin_is_revoked(lock: Lock) -> None:
    """Review 5: with the owner's (leaked) PIN revoked, the unlock was refused `pin_required` but a restore ran
    with no PIN at all; it is refused too, and changes nothing (nor counts a wrong code)."""
    at = datetime.now(UTC)
    store = lock.rt.access()
    _, blob = lock.backups.make(at)
    store.set_config(lock.owner, at, require_pin_for_remote=True)
    store.revoke_credential(store.credentials(lock.owner)[0].id, lock.owner, at)
    store.add_user("Max", lock.owner, at)
    for extra in ({}, {"pin": _sealed(lock, OWNER_PIN)}):
        refused = _restore(lock, blob, **extra)
        assert (refused.executed, refused.reason) == (False, "pin_required")
        assert "set one at the lock" in refused.data["detail"]
    assert lock.users() == ["Max", "Olga"] and store.load_state().lockout.wrong_code_count == 0


def test_a_restore_that_leaves_the_owner_without_a_pin_says_so_and_the_next_one_is_refused(lock: Lock) -> None:
    """Review 5: the owner changed her PIN after the backup; her own restore revokes the old one (retired here)
    and the backup lacks the new one: the outcome says `owner_without_pin`, and a later restore asks for a PIN."""
    at = datetime.now(UTC)
    store = lock.rt.access()
    store.set_config(lock.owner, at, require_pin_for_remote=True)
    _, blob = lock.backups.make(at)
    store.change_pin(lock.owner, NEW_OWNER_PIN, lock.owner, at)
    done = _restore(lock, blob, pin=_sealed(lock, NEW_OWNER_PIN))
    assert done.executed and done.data["owner_without_pin"] == "true"
    again = _restore(lock, blob)
    assert (again.executed, again.reason) == (False, "pin_required")


def test_a_passage_holiday_removed_since_the_backup_does_not_come_back(lock: Lock) -> None:
    """Review 5: the backup's holidays replaced the lock's, so a passage holiday removed since opened the door at
    will again; the lock keeps its own holidays, as it keeps its mode."""
    at = datetime.now(UTC)
    store = lock.rt.access()
    store.add_holiday(1, at - timedelta(hours=1), at + timedelta(days=2), OperatingMode.PASSAGE, lock.owner, at)
    _, blob = lock.backups.make(at)
    store.remove_schedule("holiday", 1, lock.owner, at)
    done = _restore(lock, blob)
    assert done.executed and "holidays" in done.data["kept_lock_state"].split(",")
    assert store.holidays() == [] and not lock.keypad("000000")


def test_a_vacation_holiday_set_since_the_backup_stays(lock: Lock) -> None:
    at = datetime.now(UTC)
    store = lock.rt.access()
    _, blob = lock.backups.make(at)
    store.add_holiday(1, at - timedelta(hours=1), at + timedelta(days=2), OperatingMode.VACATION, lock.owner, at)
    held = store.holidays()
    done = _restore(lock, blob)
    assert done.executed and "holidays" in done.data["kept_lock_state"].split(",")
    assert store.holidays() == held and not lock.keypad(OWNER_PIN)


def test_a_replacement_lock_takes_none_of_the_backup_s_holidays(tmp_path: Path) -> None:
    old = open_lock(tmp_path / "old", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    new = open_lock(tmp_path / "new", "front-door", old.phone, old.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        at = datetime.now(UTC)
        for index, mode in enumerate((OperatingMode.PASSAGE, OperatingMode.VACATION), start=1):
            old.rt.access().add_holiday(index, at - timedelta(hours=1), at + timedelta(days=2), mode, old.owner, at)
        _, blob = old.backups.make(at)
        done = new.send(restore_command(new, blob, from_lock=old.id, phone_x=old.phone_x, origin=old))
        assert done.executed and "holidays" in done.data["kept_lock_state"].split(",")
        assert new.rt.access().holidays() == []
    finally:
        old.close()
        new.close()
