"""The restore onto a replacement lock is owner-signed: relayed through the cloud (real Mosquitto, TLS 1.3;
SQLite and PostgreSQL), an unsigned restore (refused by the cloud, and by the lock when relayed anyway) and one
signed by a device paired only on the smashed lock are refused and restore nothing; the owner's phone, paired on
the replacement in person, restores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.audit.keys import public_b64
from limen.link.backup import restore_key, unwrap_key
from limen.link.commands import Action, Command, DeviceRegistry, SignedCommand, sign
from limen.link.execute import seal_reply
from tests.link.test_backup import MAX_PIN, open_lock

from .test_backups import LOCK_ID, Fleet, _restore, broker, fleet  # noqa: F401 - fixtures


def test_the_replacement_lock_restores_only_an_owner_signed_restore_from_a_device_paired_on_it(
        fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    laptop = Ed25519PrivateKey.generate()  # paired on the old lock only (the backup knows it, the new lock not)
    DeviceRegistry(fleet.lock.rt.conn).pair("laptop", laptop.public_key(), fleet.lock.owner, fleet.lock.owner,
                                            datetime.now(UTC))
    listed = fleet.upload()
    blob = fleet.client.get(f"/api/locks/{LOCK_ID}/backups/{listed['id']}", headers=fleet.owner).content

    fleet.lock.rt.store.zeroize()  # tamper erase; the lock is smashed and replaced under its id
    fleet.link.close()
    fleet.lock.close()
    new = open_lock(tmp_path / "replacement", LOCK_ID, fleet.lock.phone, fleet.lock.phone_x)
    fleet.link = fleet.connect(new)
    try:
        _, content_key = unwrap_key(blob, fleet.lock.phone_x)
        args = {"backup": listed["sha256"], "key": seal_reply(restore_key(new.rt.settings.keys_dir).public_key(),
                                                              content_key),
                "from_lock_key": public_b64(fleet.lock.rt.audit.key.public)}
        signed = new.command(Action.RESTORE, **args)

        def by_laptop(counter: int) -> SignedCommand:
            return sign(Command(LOCK_ID, Action.RESTORE, counter, datetime.now(UTC) + timedelta(seconds=60),
                                "laptop", args), laptop)

        unsigned = SignedCommand(signed.body, None)  # the cloud's own, unsigned
        asked = fleet.client.post(f"/api/locks/{LOCK_ID}/restore", headers=fleet.owner,
                                  json={"backup_id": listed["id"], "payload": unsigned.to_bytes().decode()})
        assert asked.status_code == 422 and "no signature" in asked.json()["detail"]  # refused before relaying
        forced = new.link.handle(unsigned.attach(blob).to_bytes(), datetime.now(UTC))  # a cloud relaying it anyway
        refused = _restore(fleet, listed["id"], by_laptop(1))
        assert [(forced.executed, forced.reason), (refused["executed"], refused["reason"])] == [
            (False, "unsigned"), (False, "unknown_device")]
        assert new.users() == ["Olga"] and not new.keypad(MAX_PIN)  # nothing restored
        done = _restore(fleet, listed["id"], signed)
        assert (done["executed"], done["reason"]) == (True, "done")
        assert new.users() == ["Max", "Olga"] and new.keypad(MAX_PIN)
        again = _restore(fleet, listed["id"], by_laptop(2))  # the backup knows the laptop: it stays unpaired here
        assert (again["executed"], again["reason"]) == (False, "unknown_device")
    finally:
        new.close()
        fleet.lock = new  # closed again by the fixture: a no-op on the replacement's connections
