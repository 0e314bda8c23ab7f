"""The Matter certification flows for lockout, reproduced against the persistent store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from limen.access.attempt import pin_attempt
from limen.access.store import AccessStore
from limen.audit.event import MemoryAuditSink
from limen.db import open_db
from limen.decision import Reason

from .builders import T0


def configure(store: AccessStore, owner_id: str, limit: int = 3, disable_s: int = 10) -> None:
    store.set_config(owner_id, T0, wrong_code_entry_limit=limit, user_code_temporary_disable_time_s=disable_s)
    store.add_user("Max", owner_id, T0, pin="135792")


def test_three_wrong_pins_then_valid_fails_then_succeeds_after_disable_time(store: AccessStore,
                                                                             owner_id: str) -> None:
    configure(store, owner_id)
    reasons = [store.decide(pin_attempt("999111"), T0 + timedelta(seconds=i)).decision.reason for i in range(3)]
    assert reasons == [Reason.UNKNOWN_CREDENTIAL] * 3
    during = store.decide(pin_attempt("135792"), T0 + timedelta(seconds=5)).decision
    assert during.reason is Reason.LOCKED_OUT and not during.accepted
    after = store.decide(pin_attempt("135792"), T0 + timedelta(seconds=2 + 10)).decision
    assert after.accepted and after.reason is Reason.GRANTED


def test_lockout_survives_a_restart(db_path: Path, store: AccessStore, owner_id: str) -> None:
    configure(store, owner_id)
    for i in range(3):
        store.decide(pin_attempt("999111"), T0 + timedelta(seconds=i))
    store.conn.close()
    reopened = AccessStore(open_db(db_path), MemoryAuditSink())
    assert reopened.decide(pin_attempt("135792"), T0 + timedelta(seconds=5)).decision.reason is Reason.LOCKED_OUT


def test_repeated_lockouts_escalate_and_success_resets(store: AccessStore, owner_id: str) -> None:
    configure(store, owner_id, limit=1, disable_s=10)
    t = T0
    store.decide(pin_attempt("999111"), t)                      # lockout 1: 10 s
    t += timedelta(seconds=10)
    store.decide(pin_attempt("999111"), t)                      # lockout 2: 20 s
    assert store.decide(pin_attempt("135792"), t + timedelta(seconds=15)).decision.reason is Reason.LOCKED_OUT
    t += timedelta(seconds=20)
    assert store.decide(pin_attempt("135792"), t).decision.accepted
    store.decide(pin_attempt("999111"), t)                      # back to 10 s after a success
    assert store.decide(pin_attempt("135792"), t + timedelta(seconds=10)).decision.accepted


def test_wrong_attempts_during_lockout_do_not_count(store: AccessStore, owner_id: str) -> None:
    configure(store, owner_id, limit=3, disable_s=10)
    for i in range(3):
        store.decide(pin_attempt("999111"), T0 + timedelta(seconds=i))
    for i in range(10):
        store.decide(pin_attempt("999111"), T0 + timedelta(seconds=3 + i * 0.1))
    assert store.load_state().lockout.lockouts == 1
