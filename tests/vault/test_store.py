"""`VaultTemplateStore` through the `TemplateStore` protocol, persistence, zeroize and bad records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from limen.bio.templates import Modality, OperatingPoint, TemplateStore
from limen.config import Settings, load_settings
from limen.errors import BadRequest, InvalidSealedTemplate, KeyStoreError, NotFound, StorageError, VaultErased
from limen.vault import open_template_store
from limen.vault.hazmat.transforms import hamming
from tests.vault.conftest import synthetic_faces

FACE = Modality.FACE


@pytest.fixture
def faces() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_faces(12, 3, seed=7)


def _enrol(store: TemplateStore, faces: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = faces
    for person in range(int(y.max()) + 1):
        store.put(f"user-{person}", FACE, x[y == person][0])


def test_is_a_template_store_that_matches_in_the_protected_domain(settings: Settings, faces) -> None:
    store = open_template_store(settings)
    assert isinstance(store, TemplateStore)
    _enrol(store, faces)
    x, y = faces
    t = store.threshold(FACE, OperatingPoint.DEFAULT)
    assert store.threshold(FACE, OperatingPoint.FMR_1E3) >= t
    for i in range(len(x)):
        best = store.search(FACE, x[i], top_k=3)
        assert best[0].user_id == f"user-{y[i]}" and best[0].distance <= t
        assert best[1].distance > t
        assert best == sorted(best, key=lambda c: c.distance)
        assert store.distance(f"user-{y[i]}", FACE, x[i]) == best[0].distance
    with pytest.raises(NotFound):
        store.distance("nobody", FACE, x[0])
    with pytest.raises(BadRequest):
        store.put("user-x", FACE, np.zeros(64))
    with pytest.raises(BadRequest):
        store.threshold(Modality.FINGERPRINT)


def test_persists_across_reopen_and_delete_removes(settings: Settings, faces) -> None:
    x, y = faces
    store = open_template_store(settings)
    _enrol(store, faces)
    d = store.distance("user-1", FACE, x[4])
    store.close()
    again = open_template_store(settings)
    assert again.distance("user-1", FACE, x[4]) == d
    assert again.delete("user-1") == 1
    assert again.delete("user-1") == 0
    with pytest.raises(NotFound):
        again.distance("user-1", FACE, x[4])
    assert all(c.user_id != "user-1" for c in again.search(FACE, x[4], 20))
    assert open_template_store(settings).status().records == 11


def test_no_raw_embedding_or_bits_are_written(settings: Settings, faces) -> None:
    x, _ = faces
    store = open_template_store(settings)
    _enrol(store, faces)
    blob = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert x[0].tobytes()[:16] not in blob
    assert x[0].astype(np.float32).tobytes()[:16] not in blob
    bits = store.vault.project(x[0])
    assert bits.tobytes()[:16] not in blob


def test_renewal_new_seed_does_not_match_old_template(settings: Settings, faces) -> None:
    x, _ = faces
    vault = open_template_store(settings).vault
    vault.enrol("u", "face", x[0])
    first = _stored_payload(settings)
    vault.enrol("u", "face", x[0])
    second = _stored_payload(settings)
    old_masked = np.frombuffer(first[19:], dtype=np.uint8)
    new_masked = np.frombuffer(second[19:], dtype=np.uint8)
    assert 0.4 < hamming(old_masked, new_masked) < 0.6  # unrelated in the stored domain
    # and after a re-provision (new device secret) the same face gives unrelated bits
    before = vault.project(x[0])
    vault.zeroize()
    vault.provision()
    assert 0.4 < hamming(before, vault.project(x[0])) < 0.6


def _stored_payload(settings: Settings) -> bytes:
    from limen.vault import sealed
    from limen.vault.keystore.software import SoftwareKeyStore, default_key_path

    conn = sqlite3.connect(settings.db_path)
    (blob,) = conn.execute("SELECT sealed FROM vault_records").fetchone()
    conn.close()
    ks = SoftwareKeyStore(default_key_path(settings.keys_dir))
    return sealed.unseal(ks, sealed.Binding("template", "u", "face"), blob)


def _corrupt(settings: Settings, sql: str) -> None:
    conn = sqlite3.connect(settings.db_path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE vault_records SET sealed = substr(sealed, 1, 40) WHERE user_id = 'user-2'",
        "UPDATE vault_records SET sealed = zeroblob(length(sealed)) WHERE user_id = 'user-2'",
        "UPDATE vault_records SET user_id = 'user-99' WHERE user_id = 'user-2'",  # swapped / moved record
        "UPDATE vault_records SET sealed = (SELECT sealed FROM vault_records WHERE user_id = 'user-3')"
        " WHERE user_id = 'user-2'",
    ],
)
def test_corrupt_truncated_or_swapped_records_fail_opaque(settings: Settings, faces, sql: str) -> None:
    _enrol(open_template_store(settings), faces)
    _corrupt(settings, sql)
    store = open_template_store(settings)
    with pytest.raises(InvalidSealedTemplate):
        store.search(FACE, faces[0][0])


def test_zeroize_leaves_nothing_that_unseals(settings: Settings, faces) -> None:
    store = open_template_store(settings)
    _enrol(store, faces)
    key_file = settings.keys_dir / "vault-root.key"
    root_key = bytes(store.vault.keystore._keys[1])  # type: ignore[attr-defined]
    conn = sqlite3.connect(settings.db_path)
    records = [bytes(r[0]) for r in conn.execute("SELECT sealed FROM vault_records")]
    conn.close()
    assert key_file.exists() and len(records) == 12
    store.zeroize()
    store.zeroize()  # idempotent
    raw = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert root_key not in raw
    for record in records:
        assert record[7:67] not in raw  # wrapped data key gone
        assert record[-64:] not in raw  # ciphertext gone
    assert not key_file.exists()
    reopened = open_template_store(settings)
    assert reopened.status().state == "erased"
    for call in (lambda: reopened.search(FACE, faces[0][0]), lambda: reopened.put("n", FACE, faces[0][0]),
                 lambda: reopened.distance("user-1", FACE, faces[0][0]), lambda: reopened.rotate()):
        with pytest.raises(VaultErased):
            call()
    reopened.reprovision()
    assert reopened.status().state == "active" and reopened.status().records == 0
    reopened.put("new", FACE, faces[0][0])
    assert reopened.search(FACE, faces[0][0], 5)[0].user_id == "new"


def test_rotate_rewraps_under_a_new_root_key(settings: Settings, faces) -> None:
    store = open_template_store(settings)
    _enrol(store, faces)
    before = store.search(FACE, faces[0][5], 3)
    assert store.rotate() == 12
    assert store.status().key_generations == [2]
    store.close()
    again = open_template_store(settings)
    assert again.search(FACE, faces[0][5], 3) == before


def test_missing_key_with_records_fails_closed(settings: Settings, faces) -> None:
    _enrol(open_template_store(settings), faces)
    (settings.keys_dir / "vault-root.key").unlink()
    with pytest.raises(KeyStoreError):
        open_template_store(settings)


def test_disk_full_mid_write_keeps_previous_record(settings: Settings, faces) -> None:
    x, _ = faces
    store = open_template_store(settings)
    store.put("u", FACE, x[0])
    conn = store.vault.records.conn  # type: ignore[attr-defined]
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full for this database
    with pytest.raises(StorageError):
        for i in range(40):
            store.put(f"other-{i}", FACE, x[i % len(x)])
    again = open_template_store(settings)
    assert again.distance("u", FACE, x[0]) == 0.0
    for user_id, _, _ in again.vault.records.items():
        assert again.distance(user_id, FACE, x[0]) >= 0.0  # every stored record opens


def test_fragments_k_of_n(tmp_path: Path, data_dir: Path, faces) -> None:
    dirs = [tmp_path / f"module-{i}" for i in range(5)]
    settings = load_settings(data_dir, fragments_n=5, fragments_k=3, fragment_dirs=dirs)
    store = open_template_store(settings)
    _enrol(store, faces)
    store.close()
    for d in dirs[:2]:  # two modules lost
        for f in d.iterdir():
            f.unlink()
    assert open_template_store(settings).search(FACE, faces[0][0], 1)[0].user_id == "user-0"
    victim = next(dirs[2].iterdir())  # a third fragment corrupted: beyond tolerance for that record
    raw = bytearray(victim.read_bytes())
    raw[40] ^= 0xFF
    victim.write_bytes(bytes(raw))
    from limen.errors import FragmentError

    with pytest.raises(FragmentError):
        open_template_store(settings).search(FACE, faces[0][0], 1)
    store = open_template_store(settings)
    store.zeroize()
    assert all(not any(d.iterdir()) for d in dirs if d.exists())


def test_bad_fragment_settings(tmp_path: Path, data_dir: Path) -> None:
    from limen.errors import ConfigError

    settings = load_settings(data_dir, fragments_n=3, fragments_k=2, fragment_dirs=[tmp_path / "a"])
    with pytest.raises(ConfigError):
        open_template_store(settings)


def test_pkcs11_backed_store(softhsm_env: dict[str, str], data_dir: Path, faces) -> None:
    from tests.vault.conftest import TOKEN_LABEL, TOKEN_PIN

    settings = load_settings(data_dir, keystore="pkcs11", pkcs11_token_label=TOKEN_LABEL, pkcs11_pin=TOKEN_PIN)
    store = open_template_store(settings)
    store.vault.keystore.destroy_all()  # shared test token: start clean
    store.reprovision()
    _enrol(store, faces)
    assert store.search(FACE, faces[0][0], 1)[0].user_id == "user-0"
    store.zeroize()
    assert store.vault.keystore.generations() == []
    store.close()
    bad = load_settings(data_dir, keystore="pkcs11", pkcs11_token_label=TOKEN_LABEL, pkcs11_pin="nope")
    with pytest.raises(KeyStoreError):
        open_template_store(bad)


def test_an_unwritable_journal_does_not_stop_the_crypto_erase(settings: Settings, faces,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing disk (perhaps provoked by an attacker) must not keep the keys alive (review finding)."""
    import errno

    store = open_template_store(settings)
    _enrol(store, faces)
    journal = store.vault.journal

    def read_only(state: bytes) -> None:
        raise OSError(errno.EROFS, "read-only file system")

    monkeypatch.setattr(journal, "_set", read_only)
    with pytest.raises(OSError):
        store.zeroize()
    assert store.vault.keystore.generations() == []   # root keys destroyed regardless
    assert store._index is None                         # unmasked search bits dropped from memory
    key_file = settings.keys_dir / "vault-root.key"
    assert not key_file.exists() or not any(key_file.read_bytes())


def test_an_erase_by_another_process_is_noticed_and_memory_dropped(settings: Settings, faces) -> None:
    x, _ = faces
    mine = open_template_store(settings)
    _enrol(mine, faces)
    mine.search(FACE, x[0])                       # index and transform now decrypted in this process
    assert mine._index is not None and mine.vault.holds_secrets()
    assert mine.forget_if_erased() is False       # nothing erased yet: keep them
    other = open_template_store(settings)         # e.g. the tamper daemon
    other.zeroize()
    assert mine.forget_if_erased() is True
    assert mine._index is None and not mine.vault.holds_secrets()
    with pytest.raises(VaultErased):
        mine.search(FACE, x[0])
