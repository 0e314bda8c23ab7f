"""Export to JSON lines and offline verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.audit import AuditLog, Event, EventKind, verify_export
from limen.audit.keys import AUDIT_KEY_NAME, SigningKey, public_b64
from limen.config import Settings
from limen.errors import AuditError, ChainBroken

from .conftest import T0


@pytest.fixture
def exported(audit: AuditLog, tmp_path: Path) -> Path:
    for i in range(40):
        audit.append(Event(EventKind.USER_CHANGE, T0, actor="owner:o1", subject=f"u{i}", reason="added"))
    path = tmp_path / "trail.jsonl"
    assert audit.export(path) == 40
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))


def test_export_verifies_offline(exported: Path) -> None:
    summary = verify_export(exported)
    assert summary.records == 40
    assert summary.checkpoints >= 2


def test_export_verifies_against_the_pinned_device_key(exported: Path, settings: Settings) -> None:
    pub = (settings.keys_dir / f"{AUDIT_KEY_NAME}.pub").read_text()
    assert verify_export(exported, pub).records == 40


def test_export_by_another_key_fails_the_pin(exported: Path) -> None:
    other = public_b64(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(AuditError, match="expected key"):
        verify_export(exported, other)


@pytest.mark.parametrize("cut", [1, 2, 10])
def test_truncated_export_is_detected(exported: Path, cut: int) -> None:
    items = _lines(exported)
    _write(exported, items[:-cut])
    with pytest.raises(ChainBroken):
        verify_export(exported)


def test_export_cut_mid_line_is_detected(exported: Path) -> None:
    text = exported.read_text()
    exported.write_text(text[: len(text) * 2 // 3])
    with pytest.raises(ChainBroken, match="truncated"):
        verify_export(exported)


def test_edited_record_in_export_is_named(exported: Path) -> None:
    items = _lines(exported)
    for item in items:
        if item.get("type") == "record" and item["index"] == 17:
            item["subject"] = "someone-else"
    _write(exported, items)
    with pytest.raises(ChainBroken) as err:
        verify_export(exported)
    assert err.value.index == 17


def test_removed_record_in_export_is_named(exported: Path) -> None:
    items = [i for i in _lines(exported) if not (i.get("type") == "record" and i["index"] == 9)]
    _write(exported, items)
    with pytest.raises(ChainBroken) as err:
        verify_export(exported)
    assert err.value.index == 9


def test_export_resigned_by_a_forger_is_caught_by_the_pin(exported: Path, settings: Settings) -> None:
    """A forger rewrites everything with their own key: self-consistent, but not the device's key."""
    forger = SigningKey(Ed25519PrivateKey.generate())
    items = _lines(exported)
    from limen.audit.chain import make_checkpoint

    items[0]["public_keys"] = {forger.key_id: public_b64(forger.public)}
    for i, item in enumerate(items):
        if item.get("type") == "checkpoint":
            cp = make_checkpoint(forger, item["device_id"], item["index"], item["hash"], item["at"], item["every"])
            items[i] = {"type": "checkpoint", **cp}
    _write(exported, items)
    with pytest.raises(ChainBroken):  # the end marker is still the device's signature
        verify_export(exported)
    pub = (settings.keys_dir / f"{AUDIT_KEY_NAME}.pub").read_text()
    with pytest.raises(AuditError):
        verify_export(exported, pub)


def test_not_an_export_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(AuditError, match="not a Limen audit export"):
        verify_export(path)
    with pytest.raises(AuditError):
        verify_export(tmp_path / "missing.jsonl")


def test_export_of_empty_log(audit: AuditLog, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    assert audit.export(path) == 0
    assert verify_export(path).records == 0
