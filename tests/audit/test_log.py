"""AuditLog: durable appends, the hash chain, signed checkpoints, tamper evidence."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from limen.audit import AuditLog, Event, EventKind, open_audit
from limen.audit.chain import GENESIS, record_hash
from limen.audit.keys import AUDIT_KEY_NAME
from limen.clock import FixedClock
from limen.config import Settings
from limen.errors import BadRequest, ChainBroken, LimenError, StorageError
from limen.thresholds import AUDIT_CHECKPOINT_EVERY

from .conftest import T0, attempt


def _fill(log: AuditLog, n: int) -> list[int]:
    return [log.append(Event(EventKind.CONFIG_CHANGE, T0, actor="owner:o1", reason=f"change {i}",
                             source="cli", data={"i": i})) for i in range(n)]


def _raw(settings: Settings) -> sqlite3.Connection:
    conn = sqlite3.connect(settings.data_dir / "audit.db", isolation_level=None)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("DROP TRIGGER records_no_delete")
    return conn


def test_append_returns_consecutive_indexes_and_links_records(audit: AuditLog) -> None:
    assert _fill(audit, 5) == [0, 1, 2, 3, 4]
    records = audit.tail(10)
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert records[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:], strict=False))
    assert all(r["hash"] == record_hash(r) for r in records)
    assert audit.verify().records == 5


def test_tail_returns_the_last_n_oldest_first(audit: AuditLog) -> None:
    _fill(audit, 10)
    assert [r["index"] for r in audit.tail(3)] == [7, 8, 9]
    assert audit.tail(0) == []
    with pytest.raises(BadRequest):
        audit.tail(-1)


def test_checkpoint_every_n_records_and_at_close(settings: Settings) -> None:
    log = open_audit(settings)
    _fill(log, AUDIT_CHECKPOINT_EVERY * 2 + 3)
    assert [c["index"] for c in log.checkpoints()] == [AUDIT_CHECKPOINT_EVERY - 1, 2 * AUDIT_CHECKPOINT_EVERY - 1]
    log.close()
    reopened = open_audit(settings)
    assert reopened is not log
    assert reopened.checkpoints()[-1]["index"] == AUDIT_CHECKPOINT_EVERY * 2 + 2
    summary = reopened.verify()
    assert summary.unsigned_tail == 1  # the witness file declared at this start (record 2 * EVERY + 3)
    assert reopened.append(Event(EventKind.SYSTEM, T0, reason="start")) == AUDIT_CHECKPOINT_EVERY * 2 + 4
    reopened.close()


def test_open_audit_is_shared_per_data_dir(settings: Settings, audit: AuditLog) -> None:
    assert open_audit(settings) is audit


def test_stale_reference_after_close_still_appends(settings: Settings) -> None:
    """One component closing the shared log never makes another lose an event."""
    log = open_audit(settings)
    log.append(Event(EventKind.SYSTEM, T0, reason="a"))
    log.close()
    assert log.closed
    assert log.append(Event(EventKind.SYSTEM, T0, reason="b")) == 1
    fresh = open_audit(settings)
    assert fresh is not log and fresh.verify().records == 3  # a, b, then the witness file declared at this start
    log.close()
    fresh.close()


def test_audit_key_is_private_and_public_key_exported(settings: Settings, audit: AuditLog) -> None:
    key = settings.keys_dir / AUDIT_KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = (settings.keys_dir / f"{AUDIT_KEY_NAME}.pub").read_text().strip()
    assert len(pub) == 44  # base64 of 32 bytes
    assert audit.key.key_id in audit.public_keys()


def test_key_survives_reopen(settings: Settings) -> None:
    first = open_audit(settings)
    kid = first.key.key_id
    first.close()
    second = open_audit(settings)
    assert second.key.key_id == kid
    second.close()


@pytest.mark.parametrize("data", [
    {"embedding": [0.1, 0.2]},
    {"method": "pin", "pin": "1234"},
    {"nested": {"template": "x"}},
    {"vector": list(range(128))},
    {"blob": b"\x00\x01"},
    {"score": float("nan")},
    {"long": "x" * 10_000},
])
def test_secret_or_biometric_data_is_refused_and_nothing_written(audit: AuditLog, data: dict) -> None:
    with pytest.raises(BadRequest):
        audit.append(Event(EventKind.UNLOCK_ATTEMPT, T0, data=data))
    assert audit.count() == 0


def test_naive_time_is_refused(audit: AuditLog) -> None:
    with pytest.raises(BadRequest):
        audit.append(Event(EventKind.SYSTEM, datetime(2026, 1, 1)))  # noqa: DTZ001


# ------------------------------------------------------------------ tamper evidence
def test_records_are_append_only_in_sqlite(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 3)
    conn = sqlite3.connect(settings.data_dir / "audit.db", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("UPDATE records SET reason = 'x' WHERE idx = 1")
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("DELETE FROM records WHERE idx = 1")
    conn.close()
    assert audit.verify().records == 3


def test_edit_is_detected_at_the_edited_record(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 10)
    _raw(settings).execute("UPDATE records SET reason = 'nothing happened' WHERE idx = 6")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 6


def test_edit_of_data_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 4)
    _raw(settings).execute("""UPDATE records SET data = '{"i":99}' WHERE idx = 2""")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 2


def test_deletion_in_the_middle_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 10)
    _raw(settings).execute("DELETE FROM records WHERE idx = 4")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 4


def test_deletion_of_the_signed_tail_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 10)
    audit.checkpoint()
    _raw(settings).execute("DELETE FROM records WHERE idx >= 7")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 7


def test_insertion_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 6)
    conn = _raw(settings)
    for idx in range(5, 2, -1):  # make room (renumbering from the end)
        conn.execute("UPDATE records SET idx = ? WHERE idx = ?", (idx + 1, idx))
    row = conn.execute("SELECT * FROM records WHERE idx = 2").fetchone()
    conn.execute("INSERT INTO records VALUES (3,?,?,?,?,?,?,?,?,?,?,?,?)", row[1:])
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 3


def test_reordering_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 6)
    conn = _raw(settings)
    conn.execute("UPDATE records SET idx = -1 WHERE idx = 2")
    conn.execute("UPDATE records SET idx = 2 WHERE idx = 3")
    conn.execute("UPDATE records SET idx = 3 WHERE idx = -1")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 2


def test_rewritten_chain_is_caught_by_the_signed_checkpoint(settings: Settings, audit: AuditLog) -> None:
    """An attacker who edits a record and recomputes every later hash still fails the signature."""
    _fill(audit, AUDIT_CHECKPOINT_EVERY + 2)
    conn = _raw(settings)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM records ORDER BY idx")]
    prev = GENESIS
    for row in rows:
        row["index"] = row.pop("idx")
        row["data"] = {"i": -1} if row["index"] == 5 else __import__("json").loads(row["data"])
        row["prev"] = prev
        row["hash"] = record_hash(row)
        prev = row["hash"]
        conn.execute("UPDATE records SET prev = ?, hash = ?, data = ? WHERE idx = ?",
                     (row["prev"], row["hash"], __import__("json").dumps(row["data"]), row["index"]))
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == AUDIT_CHECKPOINT_EVERY - 1
    assert "checkpoint" in err.value.reason


def test_forged_checkpoint_signature_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 5)
    audit.checkpoint()
    conn = _raw(settings)
    sig = conn.execute("SELECT signature FROM checkpoints").fetchone()[0]
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    conn.execute("UPDATE checkpoints SET signature = ?", (forged,))
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == 4
    assert "signature" in err.value.reason


def test_deleted_periodic_checkpoint_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, AUDIT_CHECKPOINT_EVERY + 1)
    _raw(settings).execute("DELETE FROM checkpoints")
    with pytest.raises(ChainBroken) as err:
        audit.verify()
    assert err.value.index == AUDIT_CHECKPOINT_EVERY - 1


def test_checkpoint_by_unknown_key_is_detected(settings: Settings, audit: AuditLog) -> None:
    _fill(audit, 3)
    audit.checkpoint()
    _raw(settings).execute("UPDATE checkpoints SET key_id = 'ffffffffffffffff'")
    with pytest.raises(ChainBroken, match="unknown key"):
        audit.verify()


# ------------------------------------------------------------------ bad input, clocks, corruption
def test_clock_jumping_backwards_is_recorded_and_chain_stays_valid(settings: Settings) -> None:
    clock = FixedClock(T0)
    log = AuditLog(settings.data_dir / "audit.db", open_audit(settings).key, settings.keys_dir, "lock", clock)
    log.append(Event(EventKind.SYSTEM, T0, reason="a"))
    clock.at = T0 - timedelta(hours=3)
    index = log.append(Event(EventKind.SYSTEM, clock.at, reason="b"))
    records = log.tail(5)
    assert index == records[-1]["index"]
    jumps = [r for r in records if r["reason"] == "clock_jumped_backwards"]
    assert len(jumps) == 1 and jumps[0]["index"] == index - 1
    assert log.verify().records == index + 1
    log.close()


def test_corrupt_database_page_gives_a_clear_error(settings: Settings) -> None:
    log = open_audit(settings)
    _fill(log, 400)
    log.close()
    path = settings.data_dir / "audit.db"
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(4096))
    with pytest.raises(LimenError) as err:  # StorageError or ChainBroken, never a raw sqlite3 error
        reopened = open_audit(settings)
        reopened.verify()
    assert isinstance(err.value, StorageError | ChainBroken)
    assert "audit" in str(err.value)


def test_garbage_file_is_refused_with_storage_error(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "audit.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StorageError):
        open_audit(settings)


def test_concurrent_appends_from_threads_keep_one_valid_chain(audit: AuditLog) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(25):
            idx = audit.append(Event(EventKind.SYSTEM, datetime.now(UTC), reason=f"t{k}-{i}"))
            with lock:
                got.append(idx)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(100))
    assert audit.verify().records == 100


def test_two_connections_append_to_the_same_chain(settings: Settings, audit: AuditLog, tmp_path: Path) -> None:
    other = AuditLog(settings.data_dir / "audit.db", audit.key, settings.keys_dir, "lock")
    a = audit.append(Event(EventKind.SYSTEM, T0, reason="one"))
    b = other.append(Event(EventKind.SYSTEM, T0, reason="two"))
    c = audit.append(attempt("accept"))
    assert (a, b, c) == (0, 1, 2)
    assert audit.verify().records == 3
    other.close()


def test_recover_preserves_a_corrupt_store_and_starts_a_recorded_chain(settings: Settings) -> None:
    from limen.audit import quarantine_store

    log = open_audit(settings)
    _fill(log, 3)
    with pytest.raises(LimenError, match="verifies"):
        quarantine_store(settings)
    log.close()
    (settings.data_dir / "audit.db").write_bytes(b"garbage" * 500)
    kept = quarantine_store(settings)
    assert kept.exists() and kept.read_bytes().startswith(b"garbage")
    fresh = open_audit(settings)
    first = fresh.tail(5)[0]
    assert first["index"] == 0 and first["reason"] == "audit_store_replaced"
    assert first["data"]["previous"] == kept.name
    assert fresh.verify().records == 1
    fresh.close()


def test_bad_alert_url_is_recorded_not_fatal(data_dir: Path) -> None:
    from limen.config import load_settings

    settings = load_settings(data_dir, alert_urls=["not a url", "signed+ftp://x/"])
    log = open_audit(settings)
    problems = [r for r in log.records() if r["reason"] == "alert_channel_unusable"]
    assert len(problems) == 2 and "alert_urls[0]" in problems[0]["data"]["problem"]
    assert "ftp" not in json_dumps(problems)   # the URL itself is never echoed
    log.close()


def json_dumps(obj: object) -> str:
    import json

    return json.dumps(obj)


def test_lowering_the_checkpoint_interval_keeps_old_chains_valid(settings: Settings) -> None:
    log = open_audit(settings)
    _fill(log, AUDIT_CHECKPOINT_EVERY + 3)
    log.close()
    stricter = AuditLog(settings.data_dir / "audit.db", log.key, settings.keys_dir, "lock", every=4)
    assert stricter.verify().records == AUDIT_CHECKPOINT_EVERY + 3
    stricter._live().close()
    stricter._conn = None


def test_unreadable_audit_key_is_replaced_and_old_checkpoints_still_verify(settings: Settings) -> None:
    log = open_audit(settings)
    _fill(log, AUDIT_CHECKPOINT_EVERY + 1)
    old = log.key.key_id
    log.close()
    (settings.keys_dir / AUDIT_KEY_NAME).write_bytes(b"garbage")
    fresh = open_audit(settings)
    assert fresh.key.key_id != old
    last = fresh.tail(1)[0]
    assert last["reason"] == "audit_key_replaced" and last["data"]["previous"].startswith(AUDIT_KEY_NAME)
    fresh.checkpoint()
    summary = fresh.verify()
    assert set(summary.key_ids) == {old, fresh.key.key_id}
    fresh.close()
