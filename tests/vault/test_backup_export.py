"""`export_for_backup` / `import_from_backup`: templates move to another vault under that vault's own keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.bio.templates import Modality
from limen.config import load_settings
from limen.errors import BadRequest, Conflict, InvalidSealedTemplate, VaultErased
from limen.vault import VaultTemplateStore, open_template_store
from limen.vault.secrets import templates_for
from tests.vault.conftest import synthetic_faces

FACE = Modality.FACE


def _store(root: Path) -> VaultTemplateStore:
    return open_template_store(load_settings(root, device_id=root.name))


def _enrolled(root: Path, people: int = 4) -> tuple[VaultTemplateStore, np.ndarray, np.ndarray]:
    x, y = synthetic_faces(people, 2, seed=3)
    store = _store(root)
    for person in range(people):
        store.put(f"user-{person}", FACE, x[y == person][0])
    return store, x, y


def test_templates_match_on_another_vault_sealed_under_its_own_keys(tmp_path: Path) -> None:
    old, x, y = _enrolled(tmp_path / "old")
    material = old.export_for_backup()
    old.zeroize()  # the old lock is gone
    new = _store(tmp_path / "new")
    assert new.import_from_backup(material, {"user-0", "user-1", "user-3"}) == 3
    material.wipe()
    assert not any(material.transform) and material.records == []
    for person in (0, 1, 3):
        probe = x[y == person][1]  # the second sample: never enrolled anywhere
        assert new.search(FACE, probe, top_k=1)[0].user_id == f"user-{person}"
        assert new.distance(f"user-{person}", FACE, probe) <= new.threshold(FACE)
    assert all(c.user_id != "user-2" for c in new.search(FACE, x[y == 2][1], top_k=4))  # not chosen: not imported
    blobs = dict(((u, m), b) for u, m, b in new.vault.records.items())
    old_root = (tmp_path / "old" / "keys" / "vault-root.key")
    new_root = (tmp_path / "new" / "keys" / "vault-root.key")
    assert not old_root.exists() or old_root.read_bytes() != new_root.read_bytes()
    assert len(blobs) == 3
    new.close()
    reopened = _store(tmp_path / "new")  # persisted: the imported transform and records open after a restart
    assert reopened.search(FACE, x[y == 1][1], top_k=1)[0].user_id == "user-1"
    reopened.close()
    old.close()


def test_a_vault_with_templates_under_another_transform_refuses(tmp_path: Path) -> None:
    old, _, _ = _enrolled(tmp_path / "old")
    other, x, y = _enrolled(tmp_path / "other", people=2)
    material = old.export_for_backup()
    with pytest.raises(Conflict, match="another transform"):
        other.import_from_backup(material, {"user-0"})
    assert other.search(FACE, x[y == 1][1], top_k=1)[0].user_id == "user-1"  # its own templates still match
    same = old.import_from_backup(material, {"user-0"})  # the same vault (same transform): records replaced
    assert same == 1
    material.wipe()
    for store in (old, other):
        store.close()


def test_foreign_or_damaged_material_is_refused_before_anything_is_sealed(tmp_path: Path) -> None:
    old, _, _ = _enrolled(tmp_path / "old", people=2)
    material = old.export_for_backup()
    new = _store(tmp_path / "new")
    user, modality, payload = material.records[0]
    material.records[0] = (user, modality, payload[:-3])
    with pytest.raises(InvalidSealedTemplate):
        new.import_from_backup(material, {"user-0", "user-1"})
    assert new.vault.records.count() == 0
    material.bits = 4096
    with pytest.raises(BadRequest, match="another vault format"):
        new.import_from_backup(material, {"user-0"})
    material.wipe()
    new.zeroize()
    fresh = old.export_for_backup()
    with pytest.raises(VaultErased):  # an erased vault is re-provisioned by the owner first, never implicitly
        new.import_from_backup(fresh, {"user-0"})
    fresh.wipe()
    for store in (old, new):
        store.close()


def test_the_open_store_is_found_by_its_database_and_forgotten_when_closed(tmp_path: Path) -> None:
    from limen.db import open_db

    store = _store(tmp_path / "lock")
    conn = open_db(tmp_path / "lock" / "limen.db")
    assert templates_for(conn) is store
    store.close()
    assert templates_for(conn) is None
    conn.close()


def test_imported_templates_are_sealed_under_the_replacements_pkcs11_token(softhsm_env: dict[str, str],
                                                                           tmp_path: Path) -> None:
    from tests.vault.conftest import TOKEN_LABEL, TOKEN_PIN

    old, x, y = _enrolled(tmp_path / "old")
    material = old.export_for_backup()
    old.zeroize()
    settings = load_settings(tmp_path / "new", keystore="pkcs11", pkcs11_token_label=TOKEN_LABEL,
                             pkcs11_pin=TOKEN_PIN)
    new = open_template_store(settings)
    new.vault.keystore.destroy_all()  # shared test token: start clean
    new.reprovision()
    try:
        assert new.import_from_backup(material, {"user-2"}) == 1
        assert new.vault.keystore.kind != old.vault.keystore.kind
        assert new.search(FACE, x[y == 2][1], top_k=1)[0].user_id == "user-2"
        new.zeroize()  # the token's keys go: what was imported goes with them
        with pytest.raises(VaultErased):
            new.search(FACE, x[y == 2][1], top_k=1)
    finally:
        material.wipe()
        new.close()
        old.close()
