"""Truncation of the audit log is detected (issue 14 item 1): the attacks of the review, and no false alarm."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from limen.audit import AuditLog, AuditTruncated, Event, EventKind, attach_witness, open_audit
from limen.audit.keys import load_or_create_key
from limen.audit.witness import WITNESS_FILE, FileWitness, Head
from limen.config import Settings
from limen.vault.keystore.sidekeys import file_side_key

from .conftest import T0

RECORDS = 173


def _fill(settings: Settings, n: int = RECORDS) -> list[str]:
    log = open_audit(settings)
    for i in range(n - log.count()):
        log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"r{i}", source="test"))
    hashes = [r["hash"] for r in log.records()]
    log.close()
    return hashes


def _sql(settings: Settings, *statements: str) -> None:
    """What the attacker did: drop the append-only triggers, then edit audit.db directly."""
    conn = sqlite3.connect(settings.data_dir / "audit.db")
    conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
    conn.execute("DROP TRIGGER IF EXISTS records_no_update")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _cli(settings: Settings, *args: str) -> Any:
    """`limen --data-dir … <args>` in this process (the CLI keeps its settings between invocations: reset)."""
    from typer.testing import CliRunner

    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    try:
        return CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), *args])
    finally:
        STATE._settings = None


def _truncation_alarms(log: AuditLog) -> list[dict]:
    return [r for r in log.records(0, ("alarm",)) if r["reason"] == "audit_truncated"]


def test_cut_back_to_an_earlier_checkpoint_fails_verify_and_alarms_at_start(settings: Settings) -> None:
    _fill(settings)
    _sql(settings, "DELETE FROM records WHERE idx > 31", "DELETE FROM checkpoints WHERE idx > 31")
    log = open_audit(settings)
    try:
        alarms = _truncation_alarms(log)
        assert len(alarms) == 1 and alarms[0]["index"] == 32  # the evidence is chained right after the cut
        assert "witness file says 173 records, log has 32" in alarms[0]["data"]["text"]
        with pytest.raises(AuditTruncated, match="audit log truncated: witness file says 173 records, log has 32"):
            log.verify()
    finally:
        log.close()
    again = open_audit(settings)  # a second start does not re-alarm, and verify keeps failing
    try:
        assert len(_truncation_alarms(again)) == 1
        with pytest.raises(AuditTruncated):
            again.verify()
    finally:
        again.close()


def test_verify_alone_sees_the_cut_before_any_start(settings: Settings) -> None:
    _fill(settings)
    _sql(settings, "DELETE FROM records WHERE idx > 63", "DELETE FROM checkpoints WHERE idx > 63")
    key = load_or_create_key(settings.keys_dir)
    witness = FileWitness(settings.keys_dir / WITNESS_FILE, file_side_key(settings.keys_dir, "audit-witness"),
                          settings.device_id)
    log = AuditLog(settings.data_dir / "audit.db", key, settings.keys_dir, settings.device_id, witness=witness)
    with pytest.raises(AuditTruncated, match="says 173 records, log has 64"):
        log.verify()
    unwitnessed = AuditLog(settings.data_dir / "audit.db", key, settings.keys_dir, settings.device_id)
    assert unwitnessed.verify().records == 64  # what the review saw: a valid, shorter chain


@pytest.mark.parametrize("attack", ["empty both tables", "delete audit.db"])
def test_an_emptied_or_deleted_log_is_detected(settings: Settings, attack: str) -> None:
    _fill(settings)
    if attack == "empty both tables":
        _sql(settings, "DELETE FROM records", "DELETE FROM checkpoints")
    else:
        for suffix in ("", "-wal", "-shm"):
            (settings.data_dir / f"audit.db{suffix}").unlink(missing_ok=True)
    log = open_audit(settings)
    try:
        alarms = _truncation_alarms(log)
        assert [a["index"] for a in alarms] == [0]
        with pytest.raises(AuditTruncated, match="says 173 records, log has 0"):
            log.verify()
    finally:
        log.close()


def test_a_same_length_replacement_is_detected(settings: Settings) -> None:
    """Cut back, then append as many new records: the count fits, the hash at the witnessed head does not."""
    _fill(settings, 40)
    _sql(settings, "DELETE FROM records WHERE idx > 31", "DELETE FROM checkpoints WHERE idx > 31")
    key = load_or_create_key(settings.keys_dir)
    forger = AuditLog(settings.data_dir / "audit.db", key, settings.keys_dir, settings.device_id)
    for i in range(8):
        forger.append(Event(EventKind.SYSTEM, T0, actor="system", reason="forged", subject=f"f{i}"))
    forger._live().close()
    forger._conn = None
    log = open_audit(settings)
    try:
        assert _truncation_alarms(log)
        with pytest.raises(AuditTruncated, match="the log was replaced"):
            log.verify()
    finally:
        log.close()


def test_a_forged_witness_file_is_an_alarm(settings: Settings) -> None:
    _fill(settings, 10)
    (settings.keys_dir / WITNESS_FILE).write_bytes(os.urandom(146))
    log = open_audit(settings)
    try:
        alarms = _truncation_alarms(log)
        assert len(alarms) == 1 and "does not authenticate" in alarms[0]["data"]["text"]
        with pytest.raises(AuditTruncated):
            log.verify()
    finally:
        log.close()


def test_the_vault_copy_catches_a_deleted_log_and_witness_file(settings: Settings) -> None:
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)
    log = open_audit(settings)
    attach_witness(log, SealedHeadWitness(store.vault))
    for i in range(70):
        log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"r{i}"))
    log.close()  # the shutdown checkpoint reaches the vault's copy too
    assert SealedHeadWitness(store.vault).read() == Head(log.count(), log.tail(1)[0]["hash"])
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (settings.data_dir / name).unlink(missing_ok=True)
    (settings.keys_dir / WITNESS_FILE).unlink()
    fresh = open_audit(settings)
    try:
        assert fresh.verify().records == 0  # the witness file is gone: alone, nothing to compare with
        attach_witness(fresh, SealedHeadWitness(store.vault))  # what `open_runtime` does at every start
        alarms = _truncation_alarms(fresh)
        assert len(alarms) == 1 and "vault's sealed head says 70 records, log has 0" in alarms[0]["data"]["text"]
        with pytest.raises(AuditTruncated):
            fresh.verify()
    finally:
        fresh.close()
        store.close()


def test_a_crash_between_commit_and_witness_is_no_alarm(settings: Settings) -> None:
    """Record durable, witness not yet written (the SIGKILL window): witness = log - 1 is accepted."""
    _fill(settings, 20)
    key = load_or_create_key(settings.keys_dir)
    unwitnessed = AuditLog(settings.data_dir / "audit.db", key, settings.keys_dir, settings.device_id)
    unwitnessed.append(Event(EventKind.SYSTEM, datetime.now(UTC), actor="system", reason="killed-before-witness"))
    unwitnessed._live().close()
    unwitnessed._conn = None
    log = open_audit(settings)
    try:
        assert not _truncation_alarms(log)
        assert log.verify().records >= 21
    finally:
        log.close()


def test_restarts_and_concurrent_logs_never_alarm(settings: Settings) -> None:
    for _ in range(3):
        _fill(settings, open_audit(settings).count() + 5)
    log = open_audit(settings)
    try:
        assert not _truncation_alarms(log)
        summary = log.verify()
        witness = FileWitness(settings.keys_dir / WITNESS_FILE, file_side_key(settings.keys_dir, "audit-witness"),
                              settings.device_id)
        assert witness.read() == Head(summary.records, summary.last_hash)
        assert witness.path.stat().st_mode & 0o777 == 0o600
    finally:
        log.close()


def test_a_witness_never_moves_backwards(tmp_path: Path) -> None:
    witness = FileWitness(tmp_path / WITNESS_FILE, file_side_key(tmp_path, "audit-witness"), "dev")
    witness.advance(Head(4, "ef" * 32))
    witness.advance(Head(5, "ab" * 32))
    witness.advance(Head(3, "cd" * 32))  # a slower process arriving late
    assert witness.read() == Head(5, "ab" * 32)


@pytest.mark.parametrize("damage", ["flip a byte of one slot", "zero one slot", "cut the second slot"])
def test_a_damaged_slot_is_tampering_not_a_torn_write(tmp_path: Path, damage: str) -> None:
    """The file is replaced whole (temp file, fsync, rename), so no crash leaves a bad slot: any is an attack."""
    from limen.errors import AuditError

    witness = FileWitness(tmp_path / WITNESS_FILE, file_side_key(tmp_path, "audit-witness"), "dev")
    witness.advance(Head(4, "ef" * 32))
    witness.advance(Head(5, "ab" * 32))
    raw = bytearray(witness.path.read_bytes())
    size = len(raw) // 2
    if damage == "flip a byte of one slot":
        raw[-1] ^= 1
    elif damage == "zero one slot":
        raw[size:] = bytes(size)
    else:
        del raw[size:]
    witness.path.write_bytes(bytes(raw))
    with pytest.raises(AuditError, match="audit witness"):
        witness.read()


def test_the_newest_record_cannot_be_dropped_by_zeroing_the_newer_slot(settings: Settings) -> None:
    """Attack review: the two slots were written alternately in place, a zeroed slot read as "never written", so
    zeroing the newer one and deleting the last record left a log that verified (78 -> 77 records, "ok")."""
    _fill(settings, 78)
    path = settings.keys_dir / WITNESS_FILE
    raw = bytearray(path.read_bytes())
    size = len(raw) // 2
    witness = FileWitness(path, file_side_key(settings.keys_dir, "audit-witness"), settings.device_id)
    head = witness.read()
    assert head is not None
    records = head.count
    newer = (records % 2) * size  # where the old format kept the newest head
    raw[newer : newer + size] = bytes(size)
    path.write_bytes(bytes(raw))
    last = records - 1
    _sql(settings, f"DELETE FROM records WHERE idx = {last}", f"DELETE FROM checkpoints WHERE idx = {last}")
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1 and isinstance(result.exception, AuditTruncated), result.output
    assert "does not authenticate" in str(result.exception)
    log = open_audit(settings)
    try:
        assert len(_truncation_alarms(log)) == 1
    finally:
        log.close()


def test_a_write_killed_before_its_rename_leaves_the_old_head_and_no_alarm(settings: Settings) -> None:
    """A kill between the temp file and the rename: the witness still holds the previous head (one record behind
    the log, which `compare` accepts) and the leftover temp file is swept at the next write."""
    _fill(settings, 20)
    path = settings.keys_dir / WITNESS_FILE
    before = path.read_bytes()
    leftover = path.with_name(f".{path.name}.dead0001.tmp")
    leftover.write_bytes(before[:40])  # the half-written temp file of the killed process
    key = load_or_create_key(settings.keys_dir)
    unwitnessed = AuditLog(settings.data_dir / "audit.db", key, settings.keys_dir, settings.device_id)
    unwitnessed.append(Event(EventKind.SYSTEM, T0, actor="system", reason="killed-before-rename"))
    unwitnessed._live().close()
    unwitnessed._conn = None
    assert path.read_bytes() == before
    log = open_audit(settings)
    try:
        assert not _truncation_alarms(log) and log.verify().records >= 21
        assert not leftover.exists()
    finally:
        log.close()


def test_an_absent_token_does_not_stop_the_trail(tmp_path: Path) -> None:
    from limen.config import load_settings

    settings = load_settings(tmp_path / "d", keystore="pkcs11", pkcs11_module="/nonexistent/libpkcs11.so",
                             pkcs11_pin="irrelevant-pin")
    log = open_audit(settings)
    try:
        log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="still recorded"))
        reasons = [r["reason"] for r in log.records()]
        assert reasons[0] == "audit_witness_unavailable" and "still recorded" in reasons
        assert log.verify().records == 2
        assert not (settings.keys_dir / WITNESS_FILE).exists()  # nothing advanced without its key
    finally:
        log.close()


def test_a_deleted_witness_file_of_an_undeclared_chain_is_alarmed_but_does_not_fail_verify(settings: Settings) -> None:
    """A chain that never declared its witnesses (its first run, or written before declarations): today's
    behaviour, and the warning says why it cannot tell a deletion from a first start."""
    _fill(settings, 10)
    (settings.keys_dir / WITNESS_FILE).unlink()
    log = open_audit(settings)
    try:
        missing = [r for r in log.records(0, ("alarm",)) if r["reason"] == "audit_witness_missing"]
        assert len(missing) == 1 and missing[0]["outcome"] == "warning"
        assert "does not record which witnesses it is kept by" in missing[0]["data"]["text"]
        assert log.verify().records == 12  # nothing shows a shorter log: the chain itself verifies
        assert log.declared_witnesses() == (11, ("file",))  # from now on it does
    finally:
        log.close()


def _declared_chain(settings: Settings, n: int = 70) -> None:
    """A chain past its first start, kept by the witness file and the vault's sealed head (as `open_runtime`)."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    _fill(settings, 3)
    store = open_template_store(settings)
    try:
        log = open_audit(settings)
        attach_witness(log, SealedHeadWitness(store.vault))
        declared = log.declared_witnesses()
        assert declared is not None and declared[1][0] == "file" and declared[1][1].startswith("vault:")
        for i in range(n):
            log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"d{i}"))
        log.close()
    finally:
        store.close()


def test_a_cut_tail_with_every_witness_deleted_fails_verify_until_recover(settings: Settings) -> None:
    """Review H6 (t_E): tail cut back to a checkpoint, the witness file and its key deleted, the vault's sealed
    head row deleted: `limen audit verify` said "ok", with only an `audit_witness_missing` warning.  The chain
    records that both witnesses are kept, so each one missing is a critical truncation."""
    _declared_chain(settings)
    cut = next(c["index"] for c in open_audit(settings).checkpoints() if c["index"] > 10)
    open_audit(settings).close()
    _sql(settings, f"DELETE FROM records WHERE idx > {cut}", f"DELETE FROM checkpoints WHERE idx > {cut}")
    (settings.keys_dir / WITNESS_FILE).unlink()
    (settings.keys_dir / "audit-witness.key").unlink()
    conn = sqlite3.connect(settings.data_dir / "limen.db")
    assert conn.execute("DELETE FROM vault_meta WHERE name = 'audit_head'").rowcount == 1
    conn.commit()
    conn.close()
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1 and isinstance(result.exception, AuditTruncated)
    log = open_audit(settings)
    try:
        alarms = _truncation_alarms(log)
        assert [a["outcome"] for a in alarms] == ["critical", "critical"]
        assert "witness file deleted" in alarms[0]["data"]["text"]
        assert "vault's sealed audit head was deleted" in alarms[1]["data"]["text"]
        assert not [r for r in log.records(0, ("alarm",)) if r["reason"] == "audit_witness_missing"]
    finally:
        log.close()
    assert _cli(settings, "audit", "verify").exit_code == 1  # still, at the next start
    assert _cli(settings, "audit", "recover").exit_code == 0
    assert _cli(settings, "audit", "verify").exit_code == 0


def test_an_erased_vault_is_not_a_deleted_witness(settings: Settings) -> None:
    """The vault's copy goes with a crypto-erase, rightly; a new provision is a new vault, not yet declared."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    _declared_chain(settings, 5)
    store = open_template_store(settings)
    try:
        store.vault.zeroize()
        log = open_audit(settings)
        attach_witness(log, SealedHeadWitness(store.vault))
        assert not _truncation_alarms(log) and log.verify().records > 0
        store.vault.provision()
        attach_witness(log, SealedHeadWitness(store.vault))
        assert not _truncation_alarms(log)
        declared = log.declared_witnesses()
        assert declared is not None and declared[1][1] == SealedHeadWitness(store.vault).identity()
        log.close()
    finally:
        store.close()


def test_a_deleted_witness_file_with_the_tail_cut_back_to_a_checkpoint_fails_verify(settings: Settings) -> None:
    """Review: power cut after the last checkpoint, witness file deleted, the unsigned tail dropped.  The vault's
    copy (advanced at checkpoints) agrees with the cut log, and the file that saw the tail is gone: this was a
    warning only and `verify` passed.  The vault's copy having a head shows the file was deleted (they were always
    written together), so it is a truncation alarm."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)
    log = open_audit(settings)
    attach_witness(log, SealedHeadWitness(store.vault))
    for i in range(45):
        log.append(Event(EventKind.UNLOCK_ATTEMPT, T0, actor="kiosk", outcome="reject", reason="unknown_credential",
                         source="keypad", subject=f"r{i}"))
    last_checkpoint = log.checkpoints()[-1]["index"]
    assert log.count() > last_checkpoint + 1
    log._live().close()  # power cut: no shutdown checkpoint
    log._conn = None
    (settings.keys_dir / WITNESS_FILE).unlink()
    _sql(settings, f"DELETE FROM records WHERE idx > {last_checkpoint}")
    fresh = open_audit(settings)
    try:
        # the file alone: cut + its missing-witness warning + the witness file declared (a first run's chain)
        assert fresh.verify().records == last_checkpoint + 3
        attach_witness(fresh, SealedHeadWitness(store.vault))  # what `open_runtime` does at every start
        alarms = _truncation_alarms(fresh)
        assert len(alarms) == 1 and alarms[0]["outcome"] == "critical"
        assert f"vouches for {last_checkpoint + 1} of the {last_checkpoint + 1} records" in alarms[0]["data"]["text"]
        with pytest.raises(AuditTruncated, match="audit witness file deleted"):
            fresh.verify()
    finally:
        fresh.close()
    again = open_audit(settings)  # the next start: no new alarm (the file exists again), verify keeps failing
    try:
        attach_witness(again, SealedHeadWitness(store.vault))
        assert len(_truncation_alarms(again)) == 1
        with pytest.raises(AuditTruncated):
            again.verify()
    finally:
        again.close()
        store.close()


def test_a_clean_restart_with_the_vault_copy_never_alarms(settings: Settings) -> None:
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)
    try:
        for _ in range(3):
            log = open_audit(settings)
            attach_witness(log, SealedHeadWitness(store.vault))
            for i in range(40):
                log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"r{i}"))
            log.close()
        log = open_audit(settings)
        attach_witness(log, SealedHeadWitness(store.vault))
        assert not _truncation_alarms(log) and log.verify().records == 122  # + the two witnesses declared
        log.close()
    finally:
        store.close()


def _unguarded_vault_chain(settings: Settings, starts: int = 3) -> None:
    """75 records over `starts` runtime-like starts: records 0-2 from a first run (no vault yet, undeclared), the
    witness file declared at record 3 and the vault's copy at record 4."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    _fill(settings, 3)
    for _ in range(starts - 1):
        store = open_template_store(settings)
        try:
            log = open_audit(settings)
            attach_witness(log, SealedHeadWitness(store.vault))
            for i in range(36 - log.count() % 36):
                log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"v{i}"))
            log.close()
        finally:
            store.close()
    _fill(settings, 75)


def _delete_vault_head(settings: Settings) -> None:
    conn = sqlite3.connect(settings.data_dir / "limen.db")  # no key needed
    assert conn.execute("DELETE FROM vault_meta WHERE name = 'audit_head'").rowcount == 1
    conn.commit()
    conn.close()


@pytest.mark.parametrize("attack", ["cut back to before the declaration", "delete audit.db"])
def test_a_trail_cut_before_its_declaration_with_both_witnesses_deleted_fails_verify(settings: Settings,
                                                                                    attack: str) -> None:
    """Attack review: in a 75-record chain the declaration is record 3; keeping records 0-2 (or deleting audit.db),
    deleting the witness file and the vault's `audit_head` row gave "ok: 6 records" ("ok: 0 records"), a warning
    at most.  A provisioned vault keeps its sealed head from its provisioning on, so the row gone is tampering."""
    _unguarded_vault_chain(settings)
    log = open_audit(settings)
    try:
        declared = log.declared_witnesses()
        assert log.count() == 75 and declared is not None and declared[0] == 4
        assert next(r["index"] for r in log.records() if r["reason"] == "audit_witnesses_kept") == 3
    finally:
        log.close()
    if attack == "delete audit.db":
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            (settings.data_dir / name).unlink(missing_ok=True)
    else:
        _sql(settings, "DELETE FROM records WHERE idx > 2", "DELETE FROM checkpoints WHERE idx > 2")
    (settings.keys_dir / WITNESS_FILE).unlink()
    _delete_vault_head(settings)
    for _ in range(2):  # and at every later start
        result = _cli(settings, "audit", "verify")
        assert result.exit_code == 1 and isinstance(result.exception, AuditTruncated), result.output
    log = open_audit(settings)
    try:
        alarms = _truncation_alarms(log)
        assert len(alarms) == 1 and alarms[0]["outcome"] == "critical"
        assert "vault's sealed audit head was deleted" in alarms[0]["data"]["text"]
    finally:
        log.close()


def test_a_provisioned_vault_holds_a_head_from_the_start_and_a_reprovisioned_one_too(settings: Settings) -> None:
    """No false alarm: the row exists before the first attach (so a first start, a re-provision after an erase and
    a skipped witness write never look like a deletion), and an erased vault vouches for nothing."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)
    try:
        witness = SealedHeadWitness(store.vault)
        assert witness.read() == Head(0, "")
        store.vault.zeroize()
        assert witness.read() is None
        store.vault.provision()
        assert witness.read() == Head(0, "")
    finally:
        store.close()


def test_a_provision_cut_short_is_redone_and_no_alarm(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sealed head is written before the transform secret that makes a vault provisioned: a power cut in
    between leaves an unprovisioned vault, provisioned again at the next start, never one without its head."""
    import limen.vault.witness as vault_witness
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    def cut(vault: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(vault_witness, "seal_first_head", cut)
    with pytest.raises(KeyboardInterrupt):
        open_template_store(settings)
    monkeypatch.undo()
    store = open_template_store(settings)
    try:
        assert SealedHeadWitness(store.vault).read() == Head(0, "")
        log = open_audit(settings)
        attach_witness(log, SealedHeadWitness(store.vault))
        assert not _truncation_alarms(log) and log.verify().records >= 0
        log.close()
    finally:
        store.close()


def test_a_witness_gone_or_forged_while_the_lock_runs_is_left_for_the_next_start(tmp_path: Path) -> None:
    """Rewritten from the log, a deleted or forged witness would vouch for whatever the log holds now."""
    from limen.errors import AuditError

    witness = FileWitness(tmp_path / WITNESS_FILE, file_side_key(tmp_path, "audit-witness"), "dev")
    witness.advance(Head(4, "ef" * 32))
    witness.path.unlink()
    with pytest.raises(AuditError, match="deleted while the lock ran"):
        witness.advance(Head(5, "ab" * 32))
    assert not witness.path.exists()
    witness.reset(Head(5, "ab" * 32))  # what the next start does once it has alarmed
    forged = witness.path.read_bytes()[:-1] + b"\0"
    witness.path.write_bytes(forged)
    with pytest.raises(AuditError, match="does not authenticate"):
        witness.advance(Head(6, "cd" * 32))
    assert witness.path.read_bytes() == forged


def test_a_cut_while_the_lock_runs_with_both_witnesses_deleted_alarms_at_the_next_start(settings: Settings) -> None:
    """Review of ca82a65: the running lock wrote both witnesses again from the cut log (the file at its next append,
    the vault's row at its shutdown checkpoint), so 82 records cut to 60 with the witness file and the `audit_head`
    row deleted while it ran started again with no alarm and verified."""
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)
    try:
        for start in range(2):  # the second start declares both witnesses
            log = open_audit(settings)
            attach_witness(log, SealedHeadWitness(store.vault))
            for i in range(40):
                log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject=f"r{start}-{i}"))
            if start == 0:
                log.close()
        assert log.count() == 82 and log.declared_witnesses() is not None
        _sql(settings, "DELETE FROM records WHERE idx > 59", "DELETE FROM checkpoints WHERE idx > 59")
        (settings.keys_dir / WITNESS_FILE).unlink()
        _delete_vault_head(settings)
        log.append(Event(EventKind.SYSTEM, T0, actor="system", reason="filler", subject="after the cut"))
        log.close()  # a clean stop: the shutdown checkpoint
        assert not (settings.keys_dir / WITNESS_FILE).exists()
        log = open_audit(settings)
        try:
            attach_witness(log, SealedHeadWitness(store.vault))
            texts = [a["data"]["text"] for a in _truncation_alarms(log)]
            assert len(texts) == 2 and "witness file deleted" in texts[0], texts
            assert "vault's sealed audit head was deleted" in texts[1]
            with pytest.raises(AuditTruncated):
                log.verify()
        finally:
            log.close()
    finally:
        store.close()
