"""`limen audit …` and `limen alerts …` in-process."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limen.audit import Event, EventKind, open_audit
from limen.cli import app
from limen.cli.common import STATE
from limen.config import load_settings
from limen.errors import AuditError, ChainBroken, ConfigError

from .conftest import T0, Receiver


@pytest.fixture
def run(data_dir: Path) -> Iterator:
    runner = CliRunner()

    def invoke(*args: str):
        STATE._settings = None
        result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
        STATE._settings = None
        return result

    yield invoke
    STATE._settings, STATE.json = None, False


def _seed(data_dir: Path, n: int = 5) -> None:
    log = open_audit(load_settings(data_dir))
    for i in range(n):
        log.append(Event(EventKind.USER_CHANGE, T0, actor="owner:o1", subject=f"u{i}", reason="added"))
    log.close()


def test_tail_shows_the_last_records(run, data_dir: Path) -> None:
    _seed(data_dir)
    result = run("audit", "tail", "-n", "2")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()  # this start declared the witness file (record 5)
    assert len(lines) == 2 and "subject=u4" in lines[0] and "reason=audit_witnesses_kept" in lines[-1]
    as_json = json.loads(run("--json", "audit", "tail", "-n", "3").stdout)
    assert [r["index"] for r in as_json] == [3, 4, 5]


def test_verify_then_tamper_then_verify_names_the_record(run, data_dir: Path) -> None:
    _seed(data_dir, 8)
    ok = run("--json", "audit", "verify")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["records"] == 10  # + the witness file and vault declared
    conn = sqlite3.connect(data_dir / "audit.db", isolation_level=None)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("UPDATE records SET subject = 'u99' WHERE idx = 3")
    conn.close()
    broken = run("audit", "verify")
    assert isinstance(broken.exception, ChainBroken) and broken.exception.index == 3


def test_export_and_verify_file_with_pinned_key(run, data_dir: Path, tmp_path: Path) -> None:
    _seed(data_dir, 6)
    out = tmp_path / "trail.jsonl"
    assert run("audit", "export", str(out)).exit_code == 0
    key = data_dir / "keys" / "audit_ed25519.pub"
    result = run("--json", "audit", "verify", "--file", str(out), "--key", str(key))
    assert result.exit_code == 0 and json.loads(result.stdout)["records"] == 7  # + the witness file declared
    out.write_text("\n".join(out.read_text().splitlines()[:-3]) + "\n")
    assert isinstance(run("audit", "verify", "--file", str(out)).exception, ChainBroken)


def test_alerts_test_without_channels_is_a_config_error(run) -> None:
    assert isinstance(run("alerts", "test").exception, ConfigError)


def test_alerts_test_delivers_and_list_shows_it(run, data_dir: Path, receiver: Receiver,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIMEN_ALERT_URLS", json.dumps([f"json://127.0.0.1:{receiver.port}/"]))
    result = run("--json", "alerts", "test")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["delivered"] is True
    assert receiver.wait_for(1)
    listed = json.loads(run("--json", "alerts", "list").stdout)
    assert [(r["rule"], r["status"]) for r in listed] == [("test", "delivered")]
    assert json.loads(run("--json", "alerts", "list", "--pending").stdout) == []


def test_alerts_test_to_a_dead_service_fails_and_stays_queued(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIMEN_ALERT_URLS", json.dumps(["json://127.0.0.1:9/"]))
    assert isinstance(run("alerts", "test").exception, AuditError)
    pending = json.loads(run("--json", "alerts", "list", "--pending").stdout)
    assert len(pending) == 1 and pending[0]["attempts"] == 1
    deliver = json.loads(run("--json", "alerts", "deliver").stdout)
    assert deliver == {"delivered": 0, "failed": 0, "unconfigured_channels": []}  # backoff not yet over


def test_verify_fails_on_a_log_cut_back_to_an_earlier_checkpoint(run, data_dir: Path) -> None:
    """Issue 14 item 1: the review's truncation said "ok: 32 records" for a log of 173."""
    _seed(data_dir, 173)
    conn = sqlite3.connect(data_dir / "audit.db", isolation_level=None)
    conn.execute("DROP TRIGGER records_no_delete")
    conn.execute("DELETE FROM records WHERE idx > 31")
    conn.execute("DELETE FROM checkpoints WHERE idx > 31")
    conn.close()
    result = run("audit", "verify")
    assert result.exit_code != 0
    assert isinstance(result.exception, ChainBroken)
    assert "audit log truncated: witness file says 173 records, log has 32" in str(result.exception)
    assert isinstance(run("audit", "verify").exception, ChainBroken)  # and on every later run


def test_recover_after_a_truncation_starts_a_recorded_chain_that_verifies(run, data_dir: Path) -> None:
    _seed(data_dir, 40)
    conn = sqlite3.connect(data_dir / "audit.db", isolation_level=None)
    conn.execute("DROP TRIGGER records_no_delete")
    conn.execute("DELETE FROM records WHERE idx > 31")
    conn.execute("DELETE FROM checkpoints WHERE idx > 31")
    conn.close()
    assert run("audit", "verify").exit_code != 0
    recovered = run("audit", "recover")
    assert recovered.exit_code == 0, recovered.output
    assert list(data_dir.glob("audit.db.broken-*"))  # the truncated store is kept as evidence
    ok = run("--json", "audit", "verify")
    assert ok.exit_code == 0, ok.output
    reasons = [r["reason"] for r in json.loads(run("--json", "audit", "tail", "-n", "5").stdout)]
    assert "audit_store_replaced" in reasons


def test_an_export_without_a_pinned_key_is_said_to_be_self_consistent_only(run, data_dir: Path,
                                                                           tmp_path: Path) -> None:
    """Review finding: an export made on another machine under the same device id printed plain "ok"."""
    _seed(data_dir, 4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _seed(elsewhere, 4)  # another machine, another key, the same (default) device id
    forged = tmp_path / "forged.jsonl"
    STATE._settings = None
    assert CliRunner().invoke(app, ["--data-dir", str(elsewhere), "audit", "export", str(forged)]).exit_code == 0
    result = run("audit", "verify", "--file", str(forged))
    assert result.exit_code == 0  # self-consistent: it is
    assert result.stdout.startswith("self-consistent only") and "NOT pinned" in result.stdout
    assert "ok:" not in result.stdout
    assert json.loads(run("--json", "audit", "verify", "--file", str(forged)).stdout)["key_pinned"] is False
    key = str(data_dir / "keys" / "audit_ed25519.pub")
    pinned = run("audit", "verify", "--file", str(forged), "--key", key)
    assert isinstance(pinned.exception, AuditError)  # the lock's own key refuses it
    own = tmp_path / "own.jsonl"
    assert run("audit", "export", str(own)).exit_code == 0
    checked = run("--json", "audit", "verify", "--file", str(own), "--key", key)
    assert checked.exit_code == 0 and json.loads(checked.stdout)["key_pinned"] is True
