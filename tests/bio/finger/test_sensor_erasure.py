"""Match on sensor: every erasure path deletes the person's pages on the fingerprint module, with the simulated
module on a pty: removal from the web service, consent expiry, remote "delete me", decommission and `limen vault
zeroize` (the module's library emptied before the crypto-erase), a backup restore's removals (in person and
signed).  A delete the module refuses is reported: audited as failed and counted in the erasure receipt (and for
the CLI, stderr and exit 1)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import people
from limen.audit.event import EventKind
from limen.bio.finger.protocol import SensorRefused
from limen.bio.finger.sensor import PAGES_FILE, R30xSensor
from limen.bio.finger.simulator import SimulatedR30x
from limen.config import Settings
from limen.link.execute import lock_eraser
from limen.runtime import Runtime, open_runtime
from limen.tamper.response import ResponseReport
from tests.bio.finger.test_match_on_sensor import AS_OLGA, _enrol, _limen
from tests.cli.test_access_cli import OWNER_PIN


@pytest.fixture()
def enrolled(settings: Settings, fvc_db1: Path) -> Iterator[tuple[SimulatedR30x, str, str]]:
    """Olga (owner, PIN only), Ada on page 0 and Bo on page 1 of a paired simulated module."""
    data = settings.data_dir
    with SimulatedR30x() as module:
        assert _limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
        assert _limen(data, "finger", "pair", module.port, "--current-password", "00000000", *AS_OLGA).returncode == 0
        ada = _enrol(data, module, "Ada", fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif")
        bo = _enrol(data, module, "Bo", fvc_db1 / "102_1.tif", fvc_db1 / "102_2.tif")
        assert module.pages() == [0, 1]
        yield module, str(ada["user_id"]), str(bo["user_id"])


def _sensor_records(rt: Runtime) -> list[dict[str, object]]:
    return [{"reason": r["reason"], "outcome": r["outcome"], "subject": r["subject"], "source": r["source"],
             **r["data"]}
            for r in rt.audit.tail(100) if r["kind"] == EventKind.PRIVACY.value and "sensor" in (r["reason"] or "")]


def _olga(rt: Runtime) -> str:
    return people.find(rt.conn, "Olga").id


def test_removal_from_the_web_service_deletes_the_pages(settings: Settings,
                                                        enrolled: tuple[SimulatedR30x, str, str]) -> None:
    from limen.service.lockservice import LockService

    module, ada, bo = enrolled
    rt = open_runtime(settings)
    try:
        LockService(rt).remove_user(_olga(rt), ada)
        assert module.pages() == [1]                                  # Ada's page gone, Bo's kept
        (record,) = _sensor_records(rt)
        assert record["outcome"] == "erased" and record["pages_erased"] == [0] and record["subject"] == ada
        module.refuse_delete = True                                   # refused: audited as failed, not hidden
        LockService(rt).remove_user(_olga(rt), bo)
        assert module.pages() == [1]
        failed = _sensor_records(rt)[-1]
        assert failed["outcome"] == "failed" and failed["pages_failed"] == [1] and "0x0C" in str(failed["detail"])
    finally:
        rt.close()


def test_consent_expiry_deletes_the_pages(settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    with sqlite3.connect(settings.data_dir / "limen.db") as db:         # Ada's consent was given long ago
        db.execute("UPDATE consents SET given_at = '2020-01-01T00:00:00+00:00' WHERE user_id = ?", (ada,))
    rt = open_runtime(settings)                                          # retention runs at every start
    try:
        assert module.pages() == [1]
        (expired,) = [r for r in rt.audit.tail(100) if r["source"] == "retention" and r["subject"] == ada
                      and str(r["reason"]).startswith("retention expired")]
        assert expired["data"]["sensor_pages_erased"] == 1 and expired["data"]["sensor_pages_failed"] == 0
        assert people.by_id(rt.conn, ada) is not None                   # the person stays; the reference goes
    finally:
        rt.close()


def test_remote_delete_me_deletes_the_pages_and_the_receipt_says_so(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    rt = open_runtime(settings)
    try:
        erased = lock_eraser(rt).erase_person(ada, _olga(rt), datetime.now(UTC))   # what "delete me" runs
        assert module.pages() == [1]
        assert erased["sensor_pages_erased"] == 1 and erased["sensor_incomplete"] == 0 and erased["person"] == 1
        module.refuse_delete = True
        refused = lock_eraser(rt).erase_person(bo, _olga(rt), datetime.now(UTC))
        assert refused["sensor_pages_failed"] == 1 and refused["sensor_incomplete"] == 1 and module.pages() == [1]
        assert _sensor_records(rt)[-1]["outcome"] == "failed"
    finally:
        rt.close()


def test_decommission_empties_the_module_before_the_crypto_erase(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    rt = open_runtime(settings)
    try:
        erased = lock_eraser(rt).decommission(_olga(rt), datetime.now(UTC))
        assert module.pages() == []
        assert erased["sensor_emptied"] == 1 and erased["sensor_pages_erased"] == 2 and erased["vault_zeroized"] == 1
        assert not (settings.data_dir / PAGES_FILE).exists()
        (record,) = _sensor_records(rt)
        assert record["reason"] == "fingerprint sensor library emptied" and record["outcome"] == "erased"
    finally:
        rt.close()


def test_a_refused_empty_is_reported_in_the_decommission_receipt(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    module.refuse_delete = True
    rt = open_runtime(settings)
    try:
        erased = lock_eraser(rt).decommission(_olga(rt), datetime.now(UTC))
        assert module.pages() == [0, 1]
        assert erased["sensor_emptied"] == 0 and erased["sensor_pages_failed"] == 2 and erased["sensor_incomplete"] == 1
        (record,) = _sensor_records(rt)
        assert record["outcome"] == "failed" and "0x0D" in str(record["detail"])
    finally:
        rt.close()


def case_opened(rt: Runtime) -> ResponseReport:
    """The runtime's tamper response to an opened case (its guard, and the module's emptier, built first)."""
    from limen.tamper.signals import SourceKind, TamperSignal

    rt.controller  # noqa: B018 - builds the tamper guard (and the module's emptier)
    assert rt.monitor is not None
    return rt.monitor.responder.respond(TamperSignal("case", SourceKind.CASE, "opened", datetime.now(UTC)))


def test_a_tamper_response_empties_the_module_after_its_crypto_erase(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    from limen.bio.finger.sensor import EmptyOnWipe

    module, ada, bo = enrolled
    rt = open_runtime(settings)
    try:
        assert case_opened(rt).erased
        wiper = rt._sensor_wiper
        assert isinstance(wiper, EmptyOnWipe) and wiper.thread is not None
        wiper.thread.join(timeout=10)
        assert module.pages() == [] and not (settings.data_dir / PAGES_FILE).exists()
        (record,) = _sensor_records(rt)
        assert record["outcome"] == "erased" and record["emptied"] is True
    finally:
        rt.close()


def test_a_tamper_response_reports_a_module_that_does_not_answer(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    rt = open_runtime(settings)
    try:
        module.silent = True                                          # unplugged, as far as the lock can tell
        case_opened(rt)
    finally:
        rt.close()                                                    # waits for the emptier's outcome
    assert module.pages() == [0, 1]
    rt = open_runtime(settings)
    try:
        (record,) = _sensor_records(rt)
        assert record["outcome"] == "failed" and "by hand" in str(record["detail"]) and record["source"] == "tamper"
    finally:
        rt.close()


def test_empty_on_the_driver_and_the_simulator(fvc_db1: Path) -> None:
    prints = [fvc_db1 / f"101_{i}.tif" for i in (1, 2, 3, 4)]
    with SimulatedR30x(prints) as sim, R30xSensor(sim.port, timeout_s=5.0) as sensor:
        sensor.enroll_on_sensor(page=2, wait_s=1.0)
        sensor.enroll_on_sensor(page=5, wait_s=1.0)
        assert sim.pages() == [2, 5]
        sim.refuse_delete = True
        with pytest.raises(SensorRefused):
            sensor.empty_library()
        assert sim.pages() == [2, 5]
        sim.refuse_delete = False
        sensor.empty_library()
        assert sim.pages() == []


# ------------------------------------------------- vault zeroize and backup restore (CLI and signed command)


def _json(out: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert out.stdout, out.stderr
    return dict(json.loads(out.stdout))


def _backup_of_this_lock(data: Path) -> tuple[str, Path]:
    """A recovery key and a backup made now (Olga, Ada, Bo)."""
    printed = str(_json(_limen(data, "link", "recovery-key", "--as", "Olga"))["recovery_key"])
    return printed, Path(str(_json(_limen(data, "link", "backup"))["file"]))


def test_vault_zeroize_empties_the_module_first(settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    data = settings.data_dir
    out = _limen(data, "vault", "zeroize", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    said = _json(out)
    assert said["state"] == "erased" and said["sensor_emptied"] == 1 and said["sensor_pages_erased"] == 2
    assert module.pages() == [] and not (data / PAGES_FILE).exists()
    rt = open_runtime(settings)
    try:
        (record,) = _sensor_records(rt)
        assert record["reason"] == "fingerprint sensor library emptied" and record["outcome"] == "erased"
        (zeroized,) = [r for r in rt.audit.tail(100) if r["kind"] == EventKind.VAULT.value]
        assert zeroized["reason"] == "zeroized" and zeroized["data"]["sensor_emptied"] == 1
    finally:
        rt.close()
    again = _limen(data, "vault", "zeroize", "--yes")                 # nothing left on the module to report
    assert again.returncode == 0 and "sensor_emptied" not in _json(again), again.stdout + again.stderr


def test_vault_zeroize_reports_a_refused_empty_and_still_erases(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    data = settings.data_dir
    printed, blob = _backup_of_this_lock(data)
    module.refuse_delete = True
    out = _limen(settings.data_dir, "vault", "zeroize", "--yes")
    assert out.returncode == 1 and "not emptied" in out.stderr and "0x0D" in out.stderr, out.stdout + out.stderr
    said = _json(out)
    assert said["state"] == "erased" and said["sensor_emptied"] == 0 and said["sensor_pages_failed"] == 2
    assert module.pages() == [0, 1]
    assert _json(_limen(settings.data_dir, "vault", "status"))["state"] == "erased"   # the crypto-erase stands
    rt = open_runtime(settings)
    try:
        (record,) = _sensor_records(rt)
        assert record["outcome"] == "failed" and record["pages_failed"] == [0, 1]
    finally:
        rt.close()
    # the vault is erased, the pages still recorded: nothing can reach the module now, and every path says so
    again = _limen(data, "vault", "zeroize", "--yes")
    assert again.returncode == 1 and "erased before" in again.stderr and _json(again)["sensor_incomplete"] == 1
    removed = _limen(data, "users", "remove", "Bo", "--as", "Olga")
    assert removed.returncode == 1 and "by hand" in removed.stderr, removed.stdout + removed.stderr
    assert _json(removed)["name"] == "Bo"
    assert _limen(data, "users", "add", "Cy", "--as", "Olga", LIMEN_NEW_PIN="582913").returncode == 0
    restored = _limen(data, "link", "restore", str(blob), "--recovery-key", printed)
    assert restored.returncode == 1 and "by hand" in restored.stderr, restored.stdout + restored.stderr
    assert _json(restored)["sensor_incomplete"] == 1
    assert sorted(u["name"] for u in json.loads(_limen(data, "users", "list").stdout)) == ["Ada", "Olga"]
    rt = open_runtime(settings)
    try:
        erased = lock_eraser(rt).decommission(_olga(rt), datetime.now(UTC))       # not raised mid-erasure
        assert erased["vault_zeroized"] == 1 and erased["sensor_incomplete"] == 1 and module.pages() == [0, 1]
    finally:
        rt.close()


def test_cli_restore_deletes_the_pages_of_people_the_backup_does_not_have(
        settings: Settings, fvc_db1: Path, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    module, ada, bo = enrolled
    data = settings.data_dir
    printed, blob = _backup_of_this_lock(data)
    cy = _enrol(data, module, "Cy", fvc_db1 / "103_1.tif", fvc_db1 / "103_2.tif")    # after the backup
    assert module.pages() == [0, 1, 2]
    out = _limen(data, "link", "restore", str(blob), "--recovery-key", printed)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _json(out)["sensor_pages_erased"] == 1 and module.pages() == [0, 1]       # Cy's page; Ada's, Bo's kept
    dee = _enrol(data, module, "Dee", fvc_db1 / "104_1.tif", fvc_db1 / "104_2.tif")
    assert module.pages() == [0, 1, 2]
    module.refuse_delete = True                                  # refused: the restore stands, the page is reported
    kept = _limen(data, "link", "restore", str(blob), "--recovery-key", printed)
    assert kept.returncode == 1 and "page(s) [2]" in kept.stderr, kept.stdout + kept.stderr
    said = _json(kept)
    assert said["sensor_pages_failed"] == 1 and said["sensor_incomplete"] == 1 and module.pages() == [0, 1, 2]
    rt = open_runtime(settings)
    try:
        assert people.by_id(rt.conn, str(dee["user_id"])) is None
        records = _sensor_records(rt)
        assert [(r["subject"], r["outcome"], r["source"]) for r in records] == [
            (cy["user_id"], "erased", "cli"), (dee["user_id"], "failed", "cli")]
        restored = [r for r in rt.audit.tail(100) if r["reason"] == "backup restored"]
        assert restored[-1]["data"]["sensor_pages_failed"] == 1
    finally:
        rt.close()


def test_signed_restore_deletes_the_pages_of_people_the_backup_does_not_have(
        settings: Settings, fvc_db1: Path, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from limen.link.backup import RecipientKind
    from limen.link.commands import DeviceRegistry
    from limen.link.execute import for_runtime
    from tests.link.test_backup import Lock, restore_command

    module, ada, bo = enrolled
    data = settings.data_dir
    phone, phone_x = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    rt = open_runtime(settings)
    try:
        olga, at = _olga(rt), datetime.now(UTC)
        rt.access().set_config(olga, at, require_pin_for_remote=False)
        DeviceRegistry(rt.conn).pair("phone", phone.public_key(), olga, olga, at)
        link = for_runtime(rt)
        assert link.eraser is not None
        link.eraser.backups.add_recipient("phone", RecipientKind.DEVICE, phone_x.public_key(), olga, at)
        _, blob = link.eraser.backups.make(at)                                    # Olga, Ada, Bo
    finally:
        rt.close()
    cy = _enrol(data, module, "Cy", fvc_db1 / "103_1.tif", fvc_db1 / "103_2.tif")
    dee = _enrol(data, module, "Dee", fvc_db1 / "104_1.tif", fvc_db1 / "104_2.tif")
    assert module.pages() == [0, 1, 2, 3]
    rt = open_runtime(settings)
    try:
        link = for_runtime(rt)
        assert link.eraser is not None
        lock = Lock(rt, link, link.eraser.backups, phone, phone_x, olga)
        outcome = lock.send(restore_command(lock, blob, from_lock=lock.id, phone_x=phone_x))
        assert outcome.executed, outcome
        assert outcome.data["sensor_pages_erased"] == "2" and outcome.data["sensor_incomplete"] == "0"
        assert module.pages() == [0, 1]
        assert {r["subject"] for r in _sensor_records(rt)} == {cy["user_id"], dee["user_id"]}
        assert all(r["source"] == "remote" and r["outcome"] == "erased" for r in _sensor_records(rt))
    finally:
        rt.close()
    ed = _enrol(data, module, "Ed", fvc_db1 / "105_1.tif", fvc_db1 / "105_2.tif")
    module.refuse_delete = True                           # refused: the restore stands, the outcome says so
    rt = open_runtime(settings)
    try:
        link = for_runtime(rt)
        assert link.eraser is not None
        lock = Lock(rt, link, link.eraser.backups, phone, phone_x, olga, counter=lock.counter)
        outcome = lock.send(restore_command(lock, blob, from_lock=lock.id, phone_x=phone_x))
        assert outcome.executed, outcome
        assert outcome.data["sensor_pages_failed"] == "1" and outcome.data["sensor_incomplete"] == "1"
        assert module.pages() == [0, 1, 2] and people.by_id(rt.conn, str(ed["user_id"])) is None
        failed = _sensor_records(rt)[-1]
        assert failed["subject"] == ed["user_id"] and failed["outcome"] == "failed" and failed["pages_failed"] == [2]
    finally:
        rt.close()



def test_after_a_crypto_erase_the_sealed_page_map_is_reported_unreadable_not_raised(
        settings: Settings, enrolled: tuple[SimulatedR30x, str, str]) -> None:
    """The pairing and page map outlive a vault erased (or re-provisioned) since: erasing a person's pages or
    emptying the module then says the map cannot be read (empty it by hand), it does not raise from a retention
    pass at start-up, a service removal or a restore."""
    from limen.bio.finger.sensor import empty_library, erase_pages_of
    from limen.errors import VaultErased
    from limen.vault.secrets import SecretBox

    def erased() -> bytearray:
        raise VaultErased()

    module, ada, _ = enrolled
    for box in (SecretBox(lambda: bytearray(b"\x07" * 32)), SecretBox(erased)):  # re-provisioned; erased
        for outcome in (erase_pages_of(settings.data_dir, box, ada), empty_library(settings.data_dir, box)):
            assert outcome.detail and "by hand" in outcome.detail and not outcome.erased and not outcome.emptied
    assert module.pages() == [0, 1]  # nothing was sent to the module
