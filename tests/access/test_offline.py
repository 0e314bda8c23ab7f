from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from limen import thresholds as T
from limen.access import offline
from limen.errors import BadRequest

secrets_ = st.binary(min_size=32, max_size=32)
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(secret=secrets_, issued=instants, seq=st.integers(0, 99), later_s=st.integers(0, 6 * 3600 - 1))
@settings(max_examples=100)
def test_single_use_roundtrip_within_six_hours(secret: bytes, issued: datetime, seq: int, later_s: int) -> None:
    code = offline.issue_single_use(secret, issued, seq)
    assert len(code) == 1 + 2 + T.OFFLINE_CODE_MAC_DIGITS and code.isdigit()
    hour_start = issued.replace(minute=0, second=0, microsecond=0)
    when = hour_start + timedelta(seconds=later_s)
    grant = offline.verify(secret, code, when)
    assert isinstance(grant, offline.OfflineGrant)
    assert grant.kind is offline.CodeKind.SINGLE_USE and grant.seq == seq
    assert grant.start == hour_start and grant.end == hour_start + timedelta(hours=6)
    assert grant.start <= when < grant.end


@given(secret=secrets_, issued=instants, seq=st.integers(0, 99))
@settings(max_examples=50)
def test_single_use_not_found_after_its_window(secret: bytes, issued: datetime, seq: int) -> None:
    code = offline.issue_single_use(secret, issued, seq)
    late = issued.replace(minute=0, second=0, microsecond=0) + timedelta(hours=6)
    assert offline.verify(secret, code, late) is None


@given(secret=secrets_, start=instants, hours=st.integers(1, 9999), seq=st.integers(0, 9),
       offset=st.floats(0, 1))
@settings(max_examples=100)
def test_limited_roundtrip(secret: bytes, start: datetime, hours: int, seq: int, offset: float) -> None:
    code = offline.issue_limited(secret, start, hours, seq)
    when = start + timedelta(hours=hours * offset)
    grant = offline.verify(secret, code, when)
    assert isinstance(grant, offline.OfflineGrant)
    assert grant.end - grant.start == timedelta(hours=hours) and grant.seq == seq
    assert grant.start <= start < grant.start + timedelta(hours=1)


@given(secret=secrets_, start=instants, days=st.integers(1, 999), quota=st.integers(1, 9), seq=st.integers(0, 9))
@settings(max_examples=100)
def test_period_quota_roundtrip(secret: bytes, start: datetime, days: int, quota: int, seq: int) -> None:
    code = offline.issue_period_quota(secret, start, days, quota, seq)
    grant = offline.verify(secret, code, start)
    assert isinstance(grant, offline.OfflineGrant)
    assert grant.uses_per_day == quota and grant.end - grant.start == timedelta(days=days)


@given(secret=secrets_, issued=instants, seq=st.integers(0, 9), pos=st.integers(0, 30), delta=st.integers(1, 9))
@settings(max_examples=200)
def test_any_changed_digit_is_refused(secret: bytes, issued: datetime, seq: int, pos: int, delta: int) -> None:
    code = offline.issue_limited(secret, issued, 48, seq)
    pos = pos % len(code)
    changed = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1 :]
    assert offline.verify(secret, changed, issued) is None


@given(a=secrets_, b=secrets_, issued=instants)
@settings(max_examples=50)
def test_other_secret_refuses(a: bytes, b: bytes, issued: datetime) -> None:
    assume(a != b)
    assert offline.verify(b, offline.issue_single_use(a, issued, 0), issued) is None


@given(secret=secrets_, issued=instants, seq=st.integers(0, 99))
@settings(max_examples=30, deadline=None)
def test_clear_code_names_its_target(secret: bytes, issued: datetime, seq: int) -> None:
    code = offline.issue_single_use(secret, issued, seq)
    grant = offline.verify(secret, code, issued)
    clear = offline.issue_clear(secret, code, issued)
    request = offline.verify(secret, clear, issued)
    assert isinstance(request, offline.ClearRequest) and isinstance(grant, offline.OfflineGrant)
    assert request.target_id == grant.code_id


@pytest.mark.parametrize("junk", ["", "1", "12345678901", "abc", "1" * 40, "4" + "0" * 10, "9", "٣" * 11])
def test_junk_is_not_a_code(junk: str) -> None:
    assert offline.verify(b"k" * 32, junk, datetime(2026, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(("kwargs", "field"), [({"hours": 0}, "hours"), ({"hours": 10_000}, "hours"),
                                                ({"seq": 10}, "seq")])
def test_issue_validates(kwargs: dict[str, int], field: str) -> None:
    args = {"hours": 5, "seq": 0} | kwargs
    with pytest.raises(BadRequest) as exc:
        offline.issue_limited(b"k" * 32, datetime(2026, 1, 1, tzinfo=UTC), **args)
    assert exc.value.field == field


def test_guessing_figures() -> None:
    assert offline.candidates_per_guess(offline.CodeKind.SINGLE_USE) == T.OFFLINE_SINGLE_USE_HOURS
    assert offline.code_space(offline.CodeKind.LIMITED) == 10**T.OFFLINE_CODE_MAC_DIGITS


# ---------------------------------------------------------------- sealed under the vault (issue 14 item 8)
def test_offline_secrets_are_sealed_under_the_vault_and_die_with_its_erase(settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from limen.access.attempt import code_attempt
    from limen.access.model import CredentialType, PermissionLevel
    from limen.access.store import AccessStore
    from limen.audit.event import MemoryAuditSink
    from limen.db import open_db
    from limen.decision import Reason
    from limen.errors import VaultErased
    from limen.vault import open_template_store

    from .builders import OWNER_PIN, T0

    vault = open_template_store(settings)
    conn = open_db(settings.db_path)
    access = AccessStore(conn, MemoryAuditSink())
    owner = access.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
    first, _ = access.issue_code(offline.CodeKind.SINGLE_USE, owner, T0)
    second, _ = access.issue_code(offline.CodeKind.SINGLE_USE, owner, T0)
    cred = access.offline_secret(owner, owner, T0)
    stored = bytes(conn.execute("SELECT secret FROM access_credentials WHERE id = ?", (cred.id,)).fetchone()[0])
    assert len(stored) == 61 and cred.secret not in stored  # sealed: a copied limen.db holds no HMAC key
    assert access.decide(code_attempt(first), T0 + timedelta(hours=1)).decision.accepted
    vault.zeroize()
    late = access.decide(code_attempt(second), T0 + timedelta(hours=1)).decision  # no crash: fails closed
    assert not late.accepted and late.reason is Reason.UNKNOWN_CREDENTIAL
    with pytest.raises(VaultErased):
        access.issue_code(offline.CodeKind.SINGLE_USE, owner, T0)
    assert [c for c in access.credentials(owner) if c.type is CredentialType.OFFLINE_CODE] == []
    vault.close()
    conn.close()


def test_offline_secrets_stored_in_the_clear_are_sealed_once_a_vault_is_open(settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from limen.access.attempt import code_attempt
    from limen.access.model import PermissionLevel
    from limen.access.store import AccessStore
    from limen.audit.event import MemoryAuditSink
    from limen.db import open_db
    from limen.vault import open_template_store

    from .builders import OWNER_PIN, T0

    conn = open_db(settings.db_path)
    access = AccessStore(conn, MemoryAuditSink())  # no vault open: the old behaviour (clear secret)
    owner = access.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
    code, _ = access.issue_code(offline.CodeKind.SINGLE_USE, owner, T0)
    clear = bytes(conn.execute("SELECT secret FROM access_credentials WHERE cred_type = 'offline_code'").fetchone()[0])
    assert len(clear) == offline.SECRET_BYTES
    vault = open_template_store(settings)
    reopened = AccessStore(conn, MemoryAuditSink())
    sealed = bytes(conn.execute("SELECT secret FROM access_credentials WHERE cred_type = 'offline_code'").fetchone()[0])
    assert len(sealed) == 61 and clear not in sealed
    assert reopened.decide(code_attempt(code), T0 + timedelta(hours=1)).decision.accepted  # users keep working
    vault.close()
    conn.close()
