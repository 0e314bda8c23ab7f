"""`LockService` without HTTP: validation, codes shown once, the audit filter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limen.config import Settings
from limen.errors import BadRequest, ConsentRequired, NotFound
from limen.runtime import open_runtime
from limen.service.lockservice import LockService, Upload

PIN = "482915"


@pytest.fixture
def lock(settings: Settings) -> Iterator[LockService]:
    rt = open_runtime(settings)
    service = LockService(rt)
    yield service
    service.close()
    rt.close()


def test_first_owner_then_keypad(lock: LockService) -> None:
    assert not lock.has_users()
    owner = lock.first_owner("Alice", PIN)
    assert lock.has_users() and lock.users()[0]["permission"] == "owner"
    assert lock.keypad("7" + PIN).opened
    result = lock.keypad("0000")
    assert not result.opened and result.decision.reason.value == "unknown_credential"
    for bad in ("", "12a4", "1" * 33):
        with pytest.raises(BadRequest):
            lock.keypad(bad)
    assert lock.existing_owner("Alice", PIN) == owner


def test_codes_are_shown_once_and_validated(lock: LockService) -> None:
    owner = lock.first_owner("Alice", PIN)
    issued = lock.issue_code(owner, "limited", hours=3)
    assert issued["enter_as"] == "*" + issued["code"]
    assert all("code" not in c for c in lock.codes())
    with pytest.raises(BadRequest):
        lock.issue_code(owner, "forever")
    with pytest.raises(BadRequest):
        lock.issue_code(owner, "limited", hours=0)
    with pytest.raises(NotFound):
        lock.revoke_code(owner, "no-such-code")
    lock.revoke_code(owner, issued["code_id"])
    assert lock.codes()[0]["revoked"] is True
    assert not lock.keypad(issued["enter_as"]).opened


def test_audit_filters(lock: LockService) -> None:
    owner = lock.first_owner("Alice", PIN)
    lock.keypad(PIN)
    lock.keypad("0000")
    rejected = lock.audit(kind="unlock_attempt", outcome="reject")
    assert rejected and all(r["outcome"] == "reject" for r in rejected)
    mine = lock.audit(actor=owner)
    assert mine and all(r["actor"] == owner for r in mine)
    assert [r["index"] for r in lock.audit(limit=3)] == sorted((r["index"] for r in lock.audit(limit=3)),
                                                              reverse=True)
    with pytest.raises(BadRequest):
        lock.audit(kind="bogus")


def test_enrolment_needs_consent_and_frames(lock: LockService) -> None:
    owner = lock.first_owner("Alice", PIN)
    frame = Upload("a.jpg", "image/jpeg", b"not really")
    with pytest.raises(ConsentRequired):
        lock.enrol(owner, "Bob", [frame], "door", 30, False, from_camera=True)
    with pytest.raises(BadRequest):
        lock.enrol(owner, "Bob", [], "door", 30, True, from_camera=True)
    with pytest.raises(ConsentRequired):
        lock.enrol(owner, "Bob", [frame], "", 30, True, from_camera=True)
    with pytest.raises(BadRequest):
        lock.unlock_face([])
    assert [u["name"] for u in lock.users()] == ["Alice"]


def test_week_day_schedule_validation(lock: LockService) -> None:
    owner = lock.first_owner("Alice", PIN)
    member = lock.add_user(owner, "Gus", "713502")
    lock.set_week_day(owner, member, 1, ["Mon", "wednesday"], "08:00", "17:30")
    gus = next(u for u in lock.users() if u["name"] == "Gus")
    assert gus["week_days"][0]["days"] == ["mon", "wed"] and gus["user_type"] == "schedule_restricted"
    with pytest.raises(BadRequest):
        lock.set_week_day(owner, member, 1, [], "08:00", "17:30")
    with pytest.raises(BadRequest):
        lock.set_week_day(owner, member, 1, ["mon"], "8h", "17:30")


def test_a_temporary_pin_expires(settings: Settings) -> None:
    from datetime import UTC, datetime

    from limen.clock import FixedClock

    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    rt = open_runtime(settings, clock=clock)
    lock = LockService(rt)
    try:
        owner = lock.first_owner("Alice", PIN)
        lock.add_user(owner, "Cleaner", "713502", "guest", valid_hours=2)
        assert lock.keypad("713502").opened
        clock.advance(3 * 3600)
        late = lock.keypad("713502")
        assert not late.opened and late.decision.reason.value == "credential_expired"
        with pytest.raises(BadRequest):
            lock.add_user(owner, "Bad", "12", "guest", valid_hours=2)
        assert "Bad" not in [u["name"] for u in lock.users()]
    finally:
        lock.close()
        rt.close()


def test_a_running_service_erases_references_whose_consent_ran_out(settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from limen import people
    from limen.bio.templates import Modality
    from limen.clock import FixedClock
    from limen.db import transaction
    from limen.thresholds import SERVICE_RETENTION_CHECK_S

    clock = FixedClock(datetime(2026, 11, 22, tzinfo=UTC))
    rt = open_runtime(settings, clock=clock)
    service = LockService(rt)
    try:
        with transaction(rt.conn):
            person = people.new_person(rt.conn, "Guest", "owner", clock.now())
            people.record_consent(rt.conn, person, Modality.FACE, people.Consent("door", 1), "owner", clock.now())
            people.record_enrolment(rt.conn, person, Modality.FACE, 3, "owner", clock.now())
        rt.store.put(person.id, Modality.FACE, np.random.default_rng(0).normal(0, 0.1, 128))
        service.tick()
        clock.advance(timedelta(days=2).total_seconds())
        service.tick()  # due: more than SERVICE_RETENTION_CHECK_S since the last check
        assert timedelta(days=2).total_seconds() > SERVICE_RETENTION_CHECK_S
        assert rt.store.delete(person.id) == 0  # already erased by the service
        kinds = [r["kind"] for r in rt.audit.tail(5)]  # type: ignore[attr-defined]
        assert "privacy" in kinds
    finally:
        service.close()
        rt.close()


def test_owner_console_warns_while_faces_open_alone_on_rgb(data_dir) -> None:  # type: ignore[no-untyped-def]
    from limen.config import load_settings

    for allowed in (False, True):
        rt = open_runtime(load_settings(data_dir, allow_face_alone_rgb=allowed))
        try:
            warnings = LockService(rt).status()["warnings"]
            assert bool(warnings) is allowed and (not allowed or "allow_face_alone_rgb" in warnings[0])
        finally:
            rt.close()


def test_removing_a_user_after_a_zeroize_succeeds_and_is_audited(lock: LockService) -> None:
    owner = lock.first_owner("Alice", PIN)
    member = lock.add_user(owner, "Gus", "713502")
    lock.rt.store.zeroize()
    lock.remove_user(owner, member)  # no VaultErased: erase-then-delete is one outcome
    assert "Gus" not in [u["name"] for u in lock.users()]
    last = lock.audit(kind="privacy", limit=1)[0]
    assert last["subject"] == member and last["data"]["vault_already_erased"] is True
