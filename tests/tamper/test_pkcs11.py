"""The response with the PKCS#11 key store (a throw-away SoftHSM2 token; skipped without SoftHSM2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from limen.audit import open_audit
from limen.config import load_settings
from limen.db import open_db
from limen.door import SimulatedLock
from limen.tamper import is_locked_down, open_responder
from limen.vault import open_keystore, open_template_store
from tests.vault.conftest import TOKEN_LABEL, TOKEN_PIN, softhsm_env  # noqa: F401 - the shared token fixture

from .conftest import enrol, signal, unsealable_templates


@pytest.mark.usefixtures("softhsm_env")
def test_response_destroys_the_token_keys(data_dir: Path) -> None:
    settings = load_settings(data_dir, keystore="pkcs11", pkcs11_token_label=TOKEN_LABEL, pkcs11_pin=TOKEN_PIN)
    store = open_template_store(settings)
    enrol(store)
    assert store.status().key_generations
    audit = open_audit(settings)
    responder = open_responder(settings, store=store, audit=audit, door=SimulatedLock(travel_s=0.0))
    try:
        report = responder.respond(signal())
    finally:
        responder.close()
        store.close()
        audit.close()
    assert report.complete and report.erased
    keystore = open_keystore(settings)
    try:
        assert keystore.generations() == []       # no root key object left in the token
    finally:
        keystore.close()
    assert unsealable_templates(settings) == 0
    assert is_locked_down(open_db(settings.db_path))
