from __future__ import annotations

import sqlite3
from datetime import time, timedelta
from pathlib import Path

import pytest

from limen.access import offline
from limen.access.attempt import code_attempt, face_attempt, pin_attempt
from limen.access.model import (
    CredentialType,
    Day,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
)
from limen.access.store import AccessStore, ensure_user
from limen.audit.event import EventKind, MemoryAuditSink
from limen.db import open_db
from limen.decision import Reason
from limen.errors import BadRequest, Conflict, NotFound

from .builders import OWNER_PIN, T0


def dump(store: AccessStore) -> list[str]:
    return list(store.conn.iterdump())


def test_first_user_must_be_owner_with_pin(store: AccessStore) -> None:
    with pytest.raises(BadRequest):
        store.add_user("Max", "", T0, pin="135792")
    with pytest.raises(BadRequest):
        store.add_user("Olga", "", T0, permission=PermissionLevel.OWNER)
    assert not store.has_users()
    owner = store.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER)
    assert owner.permission is PermissionLevel.OWNER and owner.index == 1


def test_only_owners_and_admins_change_users(store: AccessStore, owner_id: str) -> None:
    member = store.add_user("Max", owner_id, T0, pin="135792")
    with pytest.raises(BadRequest):
        store.add_user("Eve", member.user_id, T0)
    admin = store.add_user("Ada", owner_id, T0, permission=PermissionLevel.ADMINISTRATOR)
    with pytest.raises(BadRequest):
        store.add_user("Oscar", admin.user_id, T0, permission=PermissionLevel.OWNER)
    with pytest.raises(BadRequest):
        store.set_status("Olga", UserStatus.DISABLED, admin.user_id, T0)
    guest = store.add_user("Gina", admin.user_id, T0, permission=PermissionLevel.GUEST)
    assert guest.permission is PermissionLevel.GUEST


def test_every_change_is_an_audit_event_naming_the_actor(store: AccessStore, owner_id: str,
                                                         sink: MemoryAuditSink) -> None:
    store.add_user("Max", owner_id, T0, pin="135792")
    store.modify_user("Max", owner_id, T0, name="Maxime")
    store.add_week_day("Maxime", 1, Day.MONDAY, time(9), time(17), owner_id, T0)
    store.issue_code(offline.CodeKind.SINGLE_USE, owner_id, T0)
    kinds = [e.kind for e in sink.events]
    assert kinds.count(EventKind.USER_CHANGE) == 3 and EventKind.SCHEDULE_CHANGE in kinds
    assert EventKind.CODE_CHANGE in kinds
    assert all(e.actor == owner_id for e in sink.events[1:])
    text = repr(sink.events)
    assert "135792" not in text and OWNER_PIN not in text


@pytest.mark.parametrize(
    "change",
    [
        lambda s, o: s.add_user("Bad\x07Name", o, T0),
        lambda s, o: s.add_user("Zero\u200bWidth", o, T0),
        lambda s, o: s.add_user("", o, T0),
        lambda s, o: s.add_user("x" * 65, o, T0),
        lambda s, o: s.add_user("Olga", o, T0),                         # duplicate name
        lambda s, o: s.add_user("Max", o, T0, index=0),
        lambda s, o: s.add_user("Max", o, T0, index=70_000),
        lambda s, o: s.add_user("Max", o, T0, index=1),                # taken
        lambda s, o: s.add_user("Max", o, T0, pin="1" * 500),
        lambda s, o: s.add_user("Max", o, T0, pin="12"),
        lambda s, o: s.add_user("Max", o, T0, pin=OWNER_PIN),          # duplicate credential
        lambda s, o: s.add_credential("Olga", CredentialType.PIN, o, T0, secret=OWNER_PIN),
        lambda s, o: s.add_credential("Olga", CredentialType.PIN, o, T0, secret="12345678901234567890"),
        lambda s, o: s.add_credential("Olga", CredentialType.RFID, o, T0, secret="\x00"),
        lambda s, o: s.add_credential("Olga", CredentialType.PIN, o, T0, secret="975310", max_uses=0),
        lambda s, o: s.add_credential("Olga", CredentialType.PIN, o, T0, secret="975310",
                                      valid_from=T0, valid_until=T0),
        lambda s, o: s.add_week_day("Olga", 1, Day.MONDAY, time(17), time(9), o, T0),
        lambda s, o: s.add_week_day("Olga", 0, Day.MONDAY, time(9), time(17), o, T0),
        lambda s, o: s.add_week_day("Olga", 99, Day.MONDAY, time(9), time(17), o, T0),
        lambda s, o: s.add_year_day("Olga", 1, T0, T0 - timedelta(days=1), o, T0),
        lambda s, o: s.add_holiday(1, T0, T0, OperatingMode.VACATION, o, T0),
        lambda s, o: s.set_config(o, T0, wrong_code_entry_limit=0),
        lambda s, o: s.set_config(o, T0, timezone="Nowhere/Land"),
        lambda s, o: s.set_config(o, T0, colour=3),
        lambda s, o: s.remove_credential("pin:99", o, T0),
        lambda s, o: s.set_status("Olga", UserStatus.DISABLED, o, T0),  # the last owner
        lambda s, o: s.remove_user("Olga", o, T0),
    ],
)
def test_bad_input_changes_nothing(store: AccessStore, owner_id: str, change) -> None:  # type: ignore[no-untyped-def]
    before = dump(store)
    with pytest.raises((BadRequest, Conflict, NotFound)):
        change(store, owner_id)
    assert dump(store) == before


def test_pin_history_refuses_reuse(store: AccessStore, owner_id: str) -> None:
    store.add_user("Max", owner_id, T0, pin="135792")
    store.change_pin("Max", "864209", owner_id, T0)
    with pytest.raises(BadRequest):
        store.change_pin("Max", "135792", owner_id, T0)
    state = store.load_state()
    assert [c.pin_length for c in state.credentials_of(store.user("Max").user_id, CredentialType.PIN)] == [6]


def test_schedule_makes_unrestricted_user_schedule_restricted(store: AccessStore, owner_id: str) -> None:
    store.add_user("Max", owner_id, T0, pin="135792")
    store.add_week_day("Max", 1, Day.MONDAY, time(9), time(11), owner_id, T0)
    assert store.user("Max").user_type is UserType.SCHEDULE_RESTRICTED
    assert store.decide(pin_attempt("135792"), T0).decision.accepted            # Monday 10:00
    assert store.decide(pin_attempt("135792"), T0 + timedelta(hours=2)).decision.reason is Reason.OUTSIDE_SCHEDULE
    store.remove_schedule("week-day", 1, owner_id, T0, ref="Max")
    assert store.week_days(store.user("Max").user_id) == []


def test_remove_user_cascades(store: AccessStore, owner_id: str) -> None:
    max_id = store.add_user("Max", owner_id, T0, pin="135792").user_id
    store.add_year_day("Max", 1, T0, T0 + timedelta(days=1), owner_id, T0)
    store.remove_user("Max", owner_id, T0)
    with pytest.raises(NotFound):
        store.user("Max")
    assert store.credentials(max_id) == [] and store.year_days(max_id) == []


def test_face_enrolled_user_is_implicit_member_until_ensured(store: AccessStore, owner_id: str) -> None:
    store.conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES ('f1', 'Fay', ?, 'face')",
                       (T0.isoformat(),))
    fay = store.user("Fay")
    assert fay.implicit and fay.status is UserStatus.ENABLED and fay.permission is PermissionLevel.MEMBER
    from limen.access.attempt import FaceEvidence
    from limen.decision import Assurance
    from limen.pad.contract import Purpose
    from limen.pad.fusion import PadVerdict

    matched = FaceEvidence("f1", 0.3, 0.45, PadVerdict(True, "bona_fide", Assurance.HIGH, Purpose.VERIFY))
    assert store.decide(face_attempt(matched), T0).decision.accepted
    ensure_user(store.conn, "f1", owner_id, T0)
    assert not store.user("Fay").implicit and store.user("Fay").index == 2
    with pytest.raises(NotFound):
        ensure_user(store.conn, "nobody", owner_id, T0)


def test_expiring_credential_survives_restart(db_path: Path, store: AccessStore, owner_id: str) -> None:
    store.add_user("Gina", owner_id, T0, user_type=UserType.EXPIRING)
    with pytest.raises(BadRequest):
        store.add_credential("Gina", CredentialType.PIN, owner_id, T0, secret="357913")
    store.add_credential("Gina", CredentialType.PIN, owner_id, T0, secret="357913", expire_after_s=600)
    assert store.decide(pin_attempt("357913"), T0).decision.accepted
    reopened = AccessStore(open_db(db_path), MemoryAuditSink())
    assert reopened.decide(pin_attempt("357913"), T0 + timedelta(seconds=599)).decision.accepted
    late = reopened.decide(pin_attempt("357913"), T0 + timedelta(seconds=600)).decision
    assert late.reason is Reason.CREDENTIAL_EXPIRED


def test_disposable_user_opens_once(store: AccessStore, owner_id: str) -> None:
    store.add_user("Dan", owner_id, T0, user_type=UserType.DISPOSABLE)
    store.add_credential("Dan", CredentialType.PIN, owner_id, T0, secret="579135")
    assert store.decide(pin_attempt("579135"), T0).decision.accepted
    assert store.decide(pin_attempt("579135"), T0).decision.reason is Reason.CREDENTIAL_EXHAUSTED


def test_revocation_takes_effect_on_next_attempt(store: AccessStore, owner_id: str) -> None:
    store.add_user("Max", owner_id, T0)
    cred = store.add_credential("Max", CredentialType.PIN, owner_id, T0, secret="135792", max_uses=5)
    assert store.decide(pin_attempt("135792"), T0).decision.accepted
    store.revoke_credential(cred.id, owner_id, T0)
    assert store.decide(pin_attempt("135792"), T0).decision.reason is Reason.CREDENTIAL_REVOKED


def test_offline_codes_issue_use_replay_revoke(store: AccessStore, owner_id: str) -> None:
    code, grant = store.issue_code(offline.CodeKind.SINGLE_USE, owner_id, T0)
    second, other = store.issue_code(offline.CodeKind.SINGLE_USE, owner_id, T0)
    assert code != second and grant.code_id != other.code_id
    assert store.decide(code_attempt(code), T0 + timedelta(hours=1)).decision.accepted
    assert store.decide(code_attempt(code), T0 + timedelta(hours=1)).decision.reason is Reason.CODE_REPLAYED
    store.revoke_code(second, owner_id, T0)
    assert store.decide(code_attempt(second), T0).decision.reason is Reason.CREDENTIAL_REVOKED
    listed = {c["code_id"]: c for c in store.list_codes()}
    assert listed[grant.code_id]["uses"] == 1 and listed[other.code_id]["revoked"]
    assert store.sync_revocations(["limited:1:00010", other.code_id], owner_id, T0) == 1
    with pytest.raises(BadRequest, match="entry 1 is not a code id"):          # a typo refuses the whole list
        store.sync_revocations(["limited:1:00011", "*" + code + "#"], owner_id, T0)
    assert "limited:1:00011" not in {r[0] for r in store._ctx.conn.execute(  # noqa: SLF001 - nothing merged
        "SELECT code_id FROM access_code_revocations")}


def test_members_cannot_issue_codes(store: AccessStore, owner_id: str) -> None:
    member = store.add_user("Max", owner_id, T0, pin="135792")
    with pytest.raises(BadRequest):
        store.issue_code(offline.CodeKind.SINGLE_USE, member.user_id, T0)


def test_authenticate_actor_counts_wrong_pins(store: AccessStore, owner_id: str) -> None:
    assert store.authenticate("Olga", OWNER_PIN, T0).user_id == owner_id
    store.set_config(owner_id, T0, wrong_code_entry_limit=2)
    for _ in range(2):
        with pytest.raises(BadRequest):
            store.authenticate("Olga", "999111", T0)
    with pytest.raises(BadRequest):
        store.authenticate("Olga", OWNER_PIN, T0)  # locked out
    member = store.add_user("Max", owner_id, T0, pin="135792")
    with pytest.raises(BadRequest):
        store.authenticate(member.name, "135792", T0 + timedelta(hours=1))


def test_schema_rejects_direct_bad_rows(store: AccessStore, owner_id: str) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO access_week_days VALUES (?, 1, 0, 0, 10)", (owner_id,))


def test_key_turn_ends_privacy_mode_persistently(store: AccessStore, owner_id: str) -> None:
    from limen.access.attempt import key_attempt

    store.set_mode(OperatingMode.PRIVACY, owner_id, T0)
    assert store.decide(key_attempt(), T0).decision.accepted
    assert store.load_state().mode is OperatingMode.NORMAL


def test_after_revoking_the_offline_secret_new_codes_use_a_new_one(store: AccessStore, owner_id: str) -> None:
    old = store.offline_secret(owner_id, owner_id, T0)
    store.revoke_credential(old.id, owner_id, T0)
    fresh = store.offline_secret(owner_id, owner_id, T0)
    assert fresh.id != old.id
    code, _ = store.issue_code(offline.CodeKind.SINGLE_USE, owner_id, T0)
    assert store.decide(code_attempt(code), T0 + timedelta(minutes=5)).decision.accepted


# ---------------------------------------------------------------- secrets at rest (issue 14 items 8, 9)
class _OtherPepper:
    def mac(self, data: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(b"not the lock's pepper", data, hashlib.sha256).digest()


def _pin_secret(store: AccessStore, user_id: str) -> bytes:
    row = store.conn.execute("SELECT secret FROM access_credentials WHERE user_id = ? AND cred_type = 'pin'",
                             (user_id,)).fetchone()
    return bytes(row[0])


def test_pins_are_salted_per_credential_and_a_copied_database_alone_opens_nothing(
        db_path: Path, store: AccessStore, owner_id: str) -> None:
    from limen.access import pins

    max_id = store.add_user("Max", owner_id, T0, pin="135792").user_id
    mine, owners = _pin_secret(store, max_id), _pin_secret(store, owner_id)
    assert not pins.needs_upgrade(mine) and mine[1:17] != owners[1:17]  # a salt per credential
    pepper = db_path.parent / "keys" / "pin-pepper.key"
    assert pepper.stat().st_mode & 0o777 == 0o600
    copy = AccessStore(open_db(db_path), MemoryAuditSink(), pepper=_OtherPepper())  # the database, not the key
    assert not copy.decide(pin_attempt("135792"), T0).decision.accepted
    assert store.decide(pin_attempt("135792"), T0).decision.accepted


def test_old_pin_hashes_keep_working_and_are_rewritten_at_first_use(store: AccessStore, owner_id: str) -> None:
    from limen.access import pins

    max_id = store.add_user("Max", owner_id, T0, pin="135792").user_id
    salt = bytes(store.conn.execute("SELECT pin_salt FROM access_lock").fetchone()[0])
    store.conn.execute("UPDATE access_credentials SET secret = ? WHERE user_id = ? AND cred_type = 'pin'",
                       (pins.hash_pin("135792", salt), max_id))  # as stored before the pepper
    store.conn.commit()
    assert store.decide(pin_attempt("0135792"), T0).decision.accepted  # anti-peep entries still match
    upgraded = _pin_secret(store, max_id)
    assert not pins.needs_upgrade(upgraded)
    assert store.decide(pin_attempt("135792"), T0).decision.accepted
    store.conn.execute("UPDATE access_credentials SET secret = ? WHERE user_id = ? AND cred_type = 'pin'",
                       (pins.hash_pin(OWNER_PIN, salt), owner_id))
    store.conn.commit()
    assert store.authenticate("Olga", OWNER_PIN, T0).user_id == owner_id
    assert not pins.needs_upgrade(_pin_secret(store, owner_id))


def test_pins_still_open_after_the_vault_is_crypto_erased(db_path: Path, store: AccessStore, owner_id: str) -> None:
    from limen.vault.keystore.software import SoftwareKeyStore, default_key_path

    keystore = SoftwareKeyStore(default_key_path(db_path.parent / "keys"))
    keystore.create_key()
    keystore.destroy_all()  # what a tamper erase does to the key store
    assert (db_path.parent / "keys" / "pin-pepper.key").exists()
    assert store.authenticate("Olga", OWNER_PIN, T0).user_id == owner_id


def test_authenticate_counts_every_wrong_pin_of_racing_connections(db_path: Path, store: AccessStore,
                                                                   owner_id: str, real_argon2: None) -> None:
    """The lockout is read inside the write transaction: racing wrong PINs are never lost updates."""
    import threading

    racers = 4
    store.set_config(owner_id, T0, wrong_code_entry_limit=50)
    stores = [AccessStore(open_db(db_path), MemoryAuditSink()) for _ in range(racers)]
    barrier = threading.Barrier(racers)

    def wrong(s: AccessStore) -> None:
        barrier.wait()
        with pytest.raises(BadRequest):
            s.authenticate("Olga", "999111", T0)

    threads = [threading.Thread(target=wrong, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.load_state().lockout.wrong_code_count == racers


def test_issued_codes_are_kept_as_a_mac_of_their_digits(store: AccessStore, owner_id: str, db_path: Path) -> None:
    """A copy of limen.db alone names no code that opens the door (the digits were kept in clear), and the
    digits are shown once: the listing has none; revoking by the digits still works."""
    import hashlib

    code, grant = store.issue_code(offline.CodeKind.LIMITED, owner_id, T0, hours=48)
    with sqlite3.connect(db_path) as db:
        kept = db.execute("SELECT code FROM access_codes_issued WHERE code_id = ?", (grant.code_id,)).fetchone()[0]
    assert code not in kept and hashlib.sha256(code.encode()).hexdigest() not in kept  # keyed: no offline search
    assert all("code" not in c for c in store.list_codes())
    assert store.revoke_code(code, owner_id, T0) == grant.code_id
    assert store.decide(code_attempt(code), T0 + timedelta(hours=1)).decision.reason is Reason.CREDENTIAL_REVOKED


def test_codes_issued_in_clear_before_are_digested_when_the_store_opens(store: AccessStore, owner_id: str,
                                                                       db_path: Path) -> None:
    code, grant = store.issue_code(offline.CodeKind.SINGLE_USE, owner_id, T0)
    with sqlite3.connect(db_path) as db:  # as an older lock (or an older backup restored) left it
        db.execute("UPDATE access_codes_issued SET code = ? WHERE code_id = ?", (code, grant.code_id))
    again = AccessStore(store.conn, store.audit, pepper=store.pepper)
    with sqlite3.connect(db_path) as db:
        assert code not in db.execute("SELECT code FROM access_codes_issued").fetchone()[0]
    assert again.revoke_code(code, owner_id, T0) == grant.code_id


def test_an_api_tokens_try_at_another_persons_pin_spends_a_keypad_try(store: AccessStore, owner_id: str,
                                                                      sink: MemoryAuditSink) -> None:
    """The refusal of a taken PIN tells the issuer a PIN that opens the door: a manage + unlock API token could
    try every PIN through `POST /api/users`, unthrottled and unaudited.  Each one now counts as a wrong keypad
    entry, and the token stores no PIN while the keypad is locked out; the owner is not held back."""
    from limen.access.context import TokenIssuer
    from limen.access.credentials import PinTaken

    store.add_user("Max", owner_id, T0, pin="739164")
    limit = store.load_state().config.wrong_code_entry_limit
    token = TokenIssuer("0123456789abcdef", T0 + timedelta(days=30))
    with pytest.raises(PinTaken):
        store.add_user("Eve", owner_id, T0, pin="739164")              # the owner: refused, nothing counted
    assert store.load_state().lockout.wrong_code_count == 0
    before = [line for line in dump(store) if "access_lock" not in line]
    with store.issuing(token):
        for refused_change in (lambda: store.add_user("Eve", owner_id, T0, pin="739164"),
                               lambda: store.add_credential("Olga", CredentialType.PIN, owner_id, T0,
                                                            secret="739164")):
            with pytest.raises(PinTaken):
                refused_change()
            assert [line for line in dump(store) if "access_lock" not in line] == before  # only the count changed
        assert store.load_state().lockout.wrong_code_count == 2
        for _ in range(limit - 2):
            with pytest.raises(PinTaken):
                store.add_user("Eve", owner_id, T0, pin="739164")
        assert store.load_state().lockout.locked_until is not None     # locked out, as at the keypad
        with pytest.raises(BadRequest, match="locked out"):
            store.add_user("Eve", owner_id, T0, pin="135792")            # a free PIN is not stored meanwhile either
        with pytest.raises(BadRequest, match="locked out"):
            store.change_pin("Max", "135792", owner_id, T0)
    refused = [e for e in sink.events if e.reason.startswith("PIN refused")]
    assert len(refused) == limit and all(e.data.get("token_id") == token.token_id for e in refused)
    assert store.add_user("Eve", owner_id, T0, pin="135792").name == "Eve"  # the owner adds a PIN meanwhile
    with store.issuing(token):
        assert store.add_user("Ida", owner_id, T0 + timedelta(days=2), pin="246135").name == "Ida"  # and it ends


def test_codes_digested_when_the_store_opens_leave_no_digits_in_the_database_files(store: AccessStore, owner_id: str,
                                                                                  db_path: Path) -> None:
    """The conversion is for a copy of limen.db naming no code: the digits' old page images must not stay in
    the write-ahead log (or in the freed space of a page) after it."""
    code, grant = store.issue_code(offline.CodeKind.LIMITED, owner_id, T0, hours=48)
    with sqlite3.connect(db_path) as db:  # as an older lock left it
        db.execute("UPDATE access_codes_issued SET code = ? WHERE code_id = ?", (code, grant.code_id))
    AccessStore(store.conn, store.audit, pepper=store.pepper)
    files = {p.name: p.read_bytes() for p in db_path.parent.glob(db_path.name + "*") if p.is_file()}
    assert files and all(code.encode() not in data for data in files.values()), [n for n, d in files.items()
                                                                               if code.encode() in d]
