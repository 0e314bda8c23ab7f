"""`SplitKeyStore`: a restored SoftHSM2 token directory alone does not bring an erased vault back (issue 14 item 8)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from limen.vault.keystore.base import KeyStore
from limen.vault.keystore.software import SoftwareKeyStore

from .conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN
from .test_keystore import KeyStoreContract

REPO = Path(__file__).resolve().parents[2]

_ATTACK = """
import json, sys
from pathlib import Path
from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault import sealed
from limen.vault.keystore.pkcs11 import Pkcs11KeyStore
from limen.vault.keystore.software import SoftwareKeyStore
from limen.vault.keystore.split import SplitKeyStore
phase, work, module, label, pin = sys.argv[1:6]
work = Path(work)
token = Pkcs11KeyStore(module, label, pin, prefix="restore")
store = SplitKeyStore(token, SoftwareKeyStore(work / "vault-companion.key"))
binding = sealed.Binding("template", "alice", "face")
if phase == "seal":
    generation = store.create_key()
    (work / "split.bin").write_bytes(sealed.seal(store, generation, binding, b"alice's template"))
    (work / "token-only.bin").write_bytes(sealed.seal(token, generation, binding, b"alice's template"))
elif phase == "zeroize":
    store.destroy_all()
else:
    out = {}
    for name, keystore in (("split", store), ("token-only", token)):
        try:
            out[name] = sealed.unseal(keystore, binding, (work / f"{name}.bin").read_bytes()).decode()
        except (InvalidSealedTemplate, KeyStoreError) as exc:
            out[name] = type(exc).__name__
    print(json.dumps(out))
"""


def _token(root: Path) -> dict[str, str]:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("SoftHSM2 not installed (apt-get install softhsm2)")
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PYTHONPATH": str(REPO / "src")}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "restore", "--so-pin", "so-0815",
                    "--pin", "restore-pin-4711"], check=True, capture_output=True, env=env)
    return env


def _phase(env: dict[str, str], phase: str, work: Path) -> str:
    done = subprocess.run([sys.executable, "-c", _ATTACK, phase, str(work), SOFTHSM_MODULE, "restore",
                           "restore-pin-4711"], check=True, capture_output=True, text=True, env=env)
    return done.stdout


def test_a_token_directory_restored_after_zeroize_recovers_nothing(tmp_path: Path) -> None:
    env = _token(tmp_path / "hsm")
    work = tmp_path / "work"
    work.mkdir()
    _phase(env, "seal", work)
    backup = tmp_path / "tokens-before-zeroize"
    shutil.copytree(tmp_path / "hsm" / "tokens", backup)  # the attacker's copy of the token directory
    _phase(env, "zeroize", work)
    assert not (work / "vault-companion.key").exists()
    shutil.rmtree(tmp_path / "hsm" / "tokens")
    shutil.copytree(backup, tmp_path / "hsm" / "tokens")  # ... restored after the erase
    opened = json.loads(_phase(env, "open", work))
    assert opened["token-only"] == "alice's template"  # the restore is real: the token alone would give it back
    assert opened["split"] == "InvalidSealedTemplate"  # the companion was shredded: nothing comes back


@pytest.mark.usefixtures("softhsm_env")
class TestSplitKeyStore(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _clean(self, softhsm_env: dict[str, str], request: pytest.FixtureRequest, tmp_path: Path) -> None:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

        self.prefix = f"s-{request.node.name[:40]}"
        self.companion = tmp_path / "vault-companion.key"
        Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, prefix=self.prefix).destroy_all()

    def make(self) -> KeyStore:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore
        from limen.vault.keystore.split import SplitKeyStore

        return SplitKeyStore(Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, prefix=self.prefix),
                             SoftwareKeyStore(self.companion))

    def reopen(self, ks: KeyStore) -> KeyStore:
        return self.make()

    def test_zeroize_shreds_the_companion(self) -> None:
        ks = self.make()
        ks.create_key()
        assert self.companion.exists()
        ks.destroy_all()
        assert not self.companion.exists() and ks.generations() == []


@pytest.mark.usefixtures("softhsm_env")
def test_token_side_keys_survive_a_zeroize_and_stay_the_same(tmp_path: Path) -> None:
    from limen.config import load_settings
    from limen.vault import open_keystore
    from limen.vault.keystore.sidekeys import AUDIT_WITNESS, PIN_PEPPER, open_side_key

    settings = load_settings(tmp_path / "d", keystore="pkcs11", pkcs11_module=SOFTHSM_MODULE,
                             pkcs11_token_label=TOKEN_LABEL, pkcs11_pin=TOKEN_PIN)
    pepper = open_side_key(settings, PIN_PEPPER)
    before = pepper.mac(b"246813")
    assert open_side_key(settings, AUDIT_WITNESS).mac(b"246813") != before
    keystore = open_keystore(settings)
    keystore.create_key()
    keystore.destroy_all()
    assert open_side_key(settings, PIN_PEPPER).mac(b"246813") == before
    assert not (settings.keys_dir / "pin-pepper.key").exists()  # a token side key is no file on disk


@pytest.mark.usefixtures("softhsm_env")
def test_on_a_pkcs11_lock_the_pin_pepper_is_the_tokens_and_survives_a_zeroize(tmp_path: Path) -> None:
    import subprocess as sp
    from datetime import UTC, datetime

    from limen.access.model import PermissionLevel
    from limen.access.store import AccessStore
    from limen.audit.event import MemoryAuditSink
    from limen.config import load_settings
    from limen.db import open_db
    from limen.vault import open_template_store

    at = datetime(2026, 3, 2, tzinfo=UTC)
    settings = load_settings(tmp_path / "d", keystore="pkcs11", pkcs11_module=SOFTHSM_MODULE,
                             pkcs11_token_label=TOKEN_LABEL, pkcs11_pin=TOKEN_PIN)
    store = open_template_store(settings)
    access = AccessStore(open_db(settings.db_path), MemoryAuditSink())
    access.add_user("Olga", "", at, pin="246813", permission=PermissionLevel.OWNER)
    assert not (settings.keys_dir / "pin-pepper.key").exists() and (settings.keys_dir / "pin-pepper.token").exists()
    store.zeroize()  # a tamper erase: the templates go, the PIN still opens
    assert access.authenticate("Olga", "246813", at).name == "Olga"
    store.close()
    without_vault = ("from limen.access.store import AccessStore; from limen.audit.event import MemoryAuditSink; "
                     "from limen.db import open_db; import sys; from datetime import datetime, UTC; "
                     "s = AccessStore(open_db(__import__('pathlib').Path(sys.argv[1])), MemoryAuditSink()); "
                     "s.authenticate('Olga', '246813', datetime.now(UTC))")
    done = sp.run([sys.executable, "-c", without_vault, str(settings.db_path)], capture_output=True, text=True,
                  env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode != 0 and "PIN pepper is in the PKCS#11 token" in done.stderr  # one clear error
