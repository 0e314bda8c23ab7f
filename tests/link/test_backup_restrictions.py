"""A restore of an older backup keeps the restrictions made on the lock since the backup (`keep_restrictions`):
a non-access person stays non-access, a person put on a schedule keeps it, a stricter credential rule or PIN age
limit stays, a disabled person stays disabled; a restriction the backup holds is not loosened by today's lock."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen import thresholds
from limen.access.model import CredentialRule, Day, UserStatus, UserType
from limen.link.backup import unwrap_key
from tests.link.test_backup import Lock, open_lock, restore_command


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def _lock(tmp_path: Path) -> Lock:
    return open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


def _restore(lock: Lock, blob: bytes) -> dict[str, str]:
    out = lock.send(restore_command(lock, blob, from_lock="front-door", phone_x=lock.phone_x))
    assert out.executed, out
    return out.data


def test_non_access_rule_and_pin_age_made_since_the_backup_stay(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    try:
        at = datetime.now(UTC)
        store = lock.rt.access()
        max_ = store.add_user("Max", lock.owner, at, pin="5551234").user_id
        ann = store.add_user("Ann", lock.owner, at, pin="5559876").user_id
        _, blob = lock.backups.make(at)
        store.modify_user(max_, lock.owner, at, user_type=UserType.NON_ACCESS)
        store.modify_user(ann, lock.owner, at, credential_rule=CredentialRule.DUAL, pin_max_age_days=30)
        data = _restore(lock, blob)
        assert data["kept_restrictions"] == "2" and data["kept_lower_permissions"] == "0", data
        assert store.user(max_).user_type is UserType.NON_ACCESS
        ann_now = store.user(ann)
        assert (ann_now.credential_rule, ann_now.pin_max_age_days) == (CredentialRule.DUAL, 30)
        assert store.user(lock.owner).user_type is UserType.UNRESTRICTED  # no one else touched
    finally:
        lock.close()


def test_a_schedule_made_since_the_backup_stays(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    try:
        at = datetime.now(UTC)
        store = lock.rt.access()
        max_ = store.add_user("Max", lock.owner, at, pin="5551234").user_id
        _, blob = lock.backups.make(at)
        store.add_week_day(max_, 1, Day.MONDAY, time(6), time(7), lock.owner, at)  # unrestricted -> restricted
        store.add_year_day(max_, 2, at, at + timedelta(days=3), lock.owner, at)
        before = (store.user(max_).user_type, store.week_days(max_), store.year_days(max_))
        assert before[0] is UserType.SCHEDULE_RESTRICTED
        data = _restore(lock, blob)
        assert data["kept_restrictions"] == "1", data
        assert (store.user(max_).user_type, store.week_days(max_), store.year_days(max_)) == before
    finally:
        lock.close()


def test_todays_schedules_replace_the_backups_and_a_disabled_person_stays_disabled(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    try:
        at = datetime.now(UTC)
        store = lock.rt.access()
        max_ = store.add_user("Max", lock.owner, at, pin="5551234", user_type=UserType.WEEK_DAY_SCHEDULE).user_id
        store.add_week_day(max_, 1, Day.MONDAY | Day.TUESDAY, time(0), time(23), lock.owner, at)
        ann = store.add_user("Ann", lock.owner, at, pin="5559876").user_id
        _, blob = lock.backups.make(at)
        store.add_week_day(max_, 1, Day.MONDAY, time(6), time(7), lock.owner, at)  # narrowed since the backup
        store.set_status(ann, UserStatus.DISABLED, lock.owner, at)
        narrowed = store.week_days(max_)
        data = _restore(lock, blob)
        assert data["kept_restrictions"] == "1", data
        assert store.week_days(max_) == narrowed and store.user(max_).user_type is UserType.WEEK_DAY_SCHEDULE
        assert store.user(ann).status is UserStatus.DISABLED
    finally:
        lock.close()


def test_a_restriction_the_backup_holds_is_not_loosened(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    try:
        at = datetime.now(UTC)
        store = lock.rt.access()
        max_ = store.add_user("Max", lock.owner, at, pin="5551234", user_type=UserType.NON_ACCESS,
                              credential_rule=CredentialRule.DUAL).user_id
        _, blob = lock.backups.make(at)
        store.modify_user(max_, lock.owner, at, user_type=UserType.UNRESTRICTED, credential_rule=CredentialRule.SINGLE)
        _, content_key = unwrap_key(blob, lock.phone_x)
        restored = lock.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door")
        assert restored.kept_restrictions == 0 and restored.to_dict()["kept_restrictions"] == 0
        user = store.user(max_)
        assert (user.user_type, user.credential_rule) == (UserType.NON_ACCESS, CredentialRule.DUAL)
    finally:
        lock.close()
