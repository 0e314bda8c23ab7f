"""`SecretBox`: small secrets sealed under the vault; TOTP seeds sealed (issue 14 item 8)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyotp
import pytest

from limen.clock import FixedClock
from limen.config import Settings
from limen.db import open_db
from limen.errors import InvalidSealedTemplate, VaultErased
from limen.service.accounts import Accounts
from limen.vault import open_template_store

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_secret_opens_only_under_its_label_survives_rotation_and_dies_with_an_erase(settings: Settings) -> None:
    store = open_template_store(settings)
    box = store.vault.secrets
    blob = box.seal("offline-code:offline_code:1", b"k" * 32)
    assert b"k" * 32 not in blob and box.unseal("offline-code:offline_code:1", blob) == b"k" * 32
    with pytest.raises(InvalidSealedTemplate):
        box.unseal("offline-code:offline_code:2", blob)  # moved to another record: does not open
    store.put("alice", "face", np.ones(128))  # type: ignore[arg-type]
    store.rotate()
    assert box.unseal("offline-code:offline_code:1", blob) == b"k" * 32
    store.zeroize()
    with pytest.raises(VaultErased):
        box.unseal("offline-code:offline_code:1", blob)
    store.close()


def _accounts(settings: Settings) -> Accounts:
    conn = open_db(settings.db_path)
    if conn.execute("SELECT 1 FROM users WHERE id = 'u1'").fetchone() is None:
        conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES ('u1', 'Alice', 'now', 'test')")
    return Accounts(conn, FixedClock(AT))


def test_totp_seeds_are_sealed_and_an_erase_refuses_codes_without_crashing(settings: Settings) -> None:
    store = open_template_store(settings)
    accounts = _accounts(settings)
    seed = pyotp.random_base32()
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1", seed)
    assert seed.encode() not in Path(settings.db_path).read_bytes()
    stored = accounts.conn.execute("SELECT totp_secret FROM service_owners").fetchone()[0]
    assert stored.startswith("sealed:v1:")
    assert accounts.login("alice", "a long password", pyotp.TOTP(seed).at(AT)) is not None
    store.zeroize()
    accounts.clock.advance(60)  # type: ignore[attr-defined]  # a fresh time step: not a replay
    assert accounts.login("alice", "a long password", pyotp.TOTP(seed).at(accounts.clock.now())) is None
    store.close()


def test_totp_seeds_stored_in_the_clear_are_sealed_once_a_vault_is_open(settings: Settings) -> None:
    accounts = _accounts(settings)  # no vault open yet: the old behaviour
    seed = pyotp.random_base32()
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1", seed)
    assert accounts.conn.execute("SELECT totp_secret FROM service_owners").fetchone()[0] == seed
    store = open_template_store(settings)
    again = _accounts(settings)
    assert again.conn.execute("SELECT totp_secret FROM service_owners").fetchone()[0].startswith("sealed:v1:")
    assert again.login("alice", "a long password", pyotp.TOTP(seed).at(AT)) is not None  # owners keep working
    store.close()
