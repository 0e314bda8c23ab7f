"""`limen finger pair`: the owner's (PIN) on an owned lock, audited without the password, a lock already paired
needs --replace (an alarm, the old module's page map forgotten), and a paired module starts with an empty library."""

from __future__ import annotations

import json
from pathlib import Path

from limen.bio.finger.protocol import DEFAULT_PASSWORD
from limen.bio.finger.sensor import PAGES_FILE, PAIRING_FILE
from limen.bio.finger.simulator import SimulatedR30x
from tests.cli.test_access_cli import OWNER_PIN, subprocess_limen

PAIR = ("finger", "pair", "--current-password", "00000000")


def _pair(data: Path, port: str, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return subprocess_limen(data, "--json", *PAIR, port, *args, **env)


def _audit(data: Path) -> list[dict[str, object]]:
    return list(json.loads(subprocess_limen(data, "--json", "audit", "tail", "-n", "50").stdout))


def test_pairing_an_owned_lock_needs_the_owners_pin_and_is_audited_without_the_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert subprocess_limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
    with SimulatedR30x() as module:
        anyone = _pair(data, module.port)
        assert anyone.returncode == 1 and "--as" in anyone.stdout
        wrong = _pair(data, module.port, "--as", "Olga", LIMEN_ACTOR_PIN="999999")
        assert wrong.returncode == 1
        assert module.password == DEFAULT_PASSWORD and not (data / PAIRING_FILE).exists()  # module untouched
        paired = _pair(data, module.port, "--as", "Olga", LIMEN_ACTOR_PIN=OWNER_PIN)
        assert paired.returncode == 0, paired.stdout + paired.stderr
        identity = json.loads(paired.stdout)["identity"]
        password = module.password
    records = _audit(data)
    (record,) = [r for r in records if r["reason"] == "fingerprint sensor paired"]
    assert record["outcome"] == "paired" and record["actor"] not in ("cli", "Olga", None)  # the owner's id
    assert record["data"]["identity"] == identity and record["data"]["replaced"] is None  # type: ignore[index]
    text = json.dumps(records).lower()
    assert f"{password:08x}" not in text and str(password) not in text


def test_re_pairing_needs_replace_raises_an_alarm_and_forgets_the_old_page_map(tmp_path: Path) -> None:
    data = tmp_path / "data"
    owner = {"LIMEN_ACTOR_PIN": OWNER_PIN}
    assert subprocess_limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
    with SimulatedR30x() as module:
        assert _pair(data, module.port, "--as", "Olga", **owner).returncode == 0
        record = (data / PAIRING_FILE).read_bytes()
        (data / PAGES_FILE).write_text("{}")            # the paired module's page map (content not read here)
        module.swap_module()                            # a module on its factory password on the same port
        refused = _pair(data, module.port, "--as", "Olga", **owner)
        assert refused.returncode == 1 and "--replace" in refused.stdout
        assert (data / PAIRING_FILE).read_bytes() == record and module.password == DEFAULT_PASSWORD
        assert not [r for r in _audit(data) if r["kind"] == "alarm"]
        replaced = _pair(data, module.port, "--replace", "--as", "Olga", **owner)
        assert replaced.returncode == 0, replaced.stdout + replaced.stderr
        assert module.password != DEFAULT_PASSWORD and not (data / PAGES_FILE).exists()
    assert (data / PAIRING_FILE).read_bytes() != record
    records = _audit(data)
    (again,) = [r for r in records if r["reason"] == "fingerprint sensor paired" and r["outcome"] == "re-paired"]
    assert str(again["data"]["replaced"]).startswith("r30x:")  # type: ignore[index]
    alarms = [r for r in records if r["kind"] == "alarm"]
    assert len(alarms) == 1 and "re-paired" in str(alarms[0]["data"]) and alarms[0]["subject"] == "fingerprint-sensor"


def test_a_paired_module_starts_with_an_empty_library(tmp_path: Path) -> None:
    with SimulatedR30x() as module:
        module._library[7] = object()  # type: ignore[assignment]  # a model stored before the pairing
        assert _pair(tmp_path / "data", module.port).returncode == 0
        assert module.pages() == []
