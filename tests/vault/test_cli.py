"""`limen vault status | zeroize --yes | rotate [--reprovision]` in-process."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from limen.errors import BadRequest, VaultErased


def limen(data_dir: Path, *args: str) -> Result:
    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    STATE.json = False
    return CliRunner().invoke(app, list(args), env={"LIMEN_DATA_DIR": str(data_dir)})


def test_status_zeroize_rotate(data_dir: Path) -> None:
    out = limen(data_dir, "--json", "vault", "status")
    assert out.exit_code == 0, out.output
    status = json.loads(out.stdout)
    assert status["state"] == "active" and status["key_generations"] == [1] and status["templates"] == 0

    refused = limen(data_dir, "vault", "zeroize")
    assert isinstance(refused.exception, BadRequest)
    assert json.loads(limen(data_dir, "--json", "vault", "status").stdout)["state"] == "active"

    rotated = limen(data_dir, "--json", "vault", "rotate")
    assert json.loads(rotated.stdout)["key_generations"] == [2]

    erased = limen(data_dir, "--json", "vault", "zeroize", "--yes")
    assert json.loads(erased.stdout)["state"] == "erased"
    assert json.loads(limen(data_dir, "--json", "vault", "status").stdout)["state"] == "erased"
    assert isinstance(limen(data_dir, "vault", "rotate").exception, VaultErased)

    again = limen(data_dir, "vault", "rotate", "--reprovision")
    assert again.exit_code == 0 and "re-provisioned" in again.stdout
    assert json.loads(limen(data_dir, "--json", "vault", "status").stdout)["state"] == "active"


def test_lab_protection_is_registered(data_dir: Path) -> None:
    out = limen(data_dir, "lab", "--help")
    assert out.exit_code == 0 and "protection" in out.output


def test_lab_protection_needs_a_set_and_checks_bits(data_dir: Path) -> None:
    assert isinstance(limen(data_dir, "lab", "protection").exception, BadRequest)
    bad = limen(data_dir, "lab", "protection", "--pairs", str(data_dir / "none.csv"), "--bits", "100")
    assert isinstance(bad.exception, BadRequest) and bad.exception.field == "--bits"


def test_vault_changes_are_recorded_on_the_audit_trail(data_dir: Path) -> None:
    from limen.audit import open_audit
    from limen.config import load_settings

    for args in (("vault", "rotate"), ("vault", "zeroize", "--yes"), ("vault", "rotate", "--reprovision")):
        assert limen(data_dir, *args).exit_code == 0
    log = open_audit(load_settings(data_dir))
    try:
        vault = [r for r in log.records(0) if r["kind"] == "vault"]
    finally:
        log.close()
    assert [r["reason"] for r in vault] == ["rotated", "zeroized", "reprovisioned"]
    assert vault[0]["data"]["key_generations"] == [2] and vault[0]["actor"] == "cli"
