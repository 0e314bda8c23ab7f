"""`privacy export` carries the person's web-console account and the backup keys registered for them (review 2,
finding 3): names, dates, last use; never a password, authenticator secret, session or token."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen import thresholds
from limen.link.backup import RecipientKind
from limen.privacy.export import export_person
from limen.service.accounts import Accounts, Scope
from tests.link.test_backup import open_lock


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def test_export_has_the_web_account_and_backup_keys_and_no_secret(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        accounts = Accounts(lock.rt.conn, lock.rt.clock)
        password = "a long enough password 42"
        owner = accounts.create_first_owner(accounts.new_setup_token(), "olga-console", password, lock.owner)
        _, token = accounts.issue_token(owner, "my-home-assistant", {Scope.READ}, 30)
        laptop = X25519PrivateKey.generate()
        lock.backups.add_recipient("laptop", RecipientKind.DEVICE, laptop.public_key(), lock.owner, datetime.now(UTC))
        out = export_person(lock.rt.conn, lock.owner, lock.rt.audit.records(), datetime.now(UTC))
        account = out["web_account"]
        assert (account["username"], account["authenticator_enrolled"]) == ("olga-console", False)
        assert [(t["name"], t["scopes"], t["last_used"], t["revoked"]) for t in account["api_tokens"]] == [
            ("my-home-assistant", ["read"], None, False)]
        assert sorted(k["name"] for k in out["backup_keys"]) == ["laptop", "phone"]  # "phone": her paired phone
        text = json.dumps(out, default=str)
        hashes = lock.rt.conn.execute("SELECT password_hash FROM service_owners").fetchone()[0]
        for secret in (token, token.rsplit("_", 1)[-1], password, hashes):
            assert secret not in text
        max_id = lock.rt.access().add_user("Max", lock.owner, datetime.now(UTC)).user_id
        other = export_person(lock.rt.conn, max_id, [], datetime.now(UTC))
        assert other["web_account"] is None and other["backup_keys"] == []
    finally:
        lock.close()
