"""`limen-cloud serve --crl-push`: the broker's 7-day CRL is re-issued before its nextUpdate (an expired CRL makes
Mosquitto refuse every lock) and after a revocation that was not pushed; the broker is told to reload (SIGHUP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from limen import thresholds as T
from limen.link import pki
from limen_cloud.cli import CrlRenewer, _load, app, crl_renewal_due, renew_crl


def ca_with_lock(tmp_path: Path) -> tuple[Path, Path]:
    ca_dir = tmp_path / "ca"
    assert CliRunner().invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    assert CliRunner().invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                                    str(tmp_path / "lock.pem")]).exit_code == 0
    return ca_dir, tmp_path / "lock.pem"


def next_update(path: Path) -> datetime:
    value = x509.load_pem_x509_crl(path.read_bytes()).next_update_utc
    assert value is not None
    return value


def test_renewed_before_next_update_and_not_while_fresh(tmp_path: Path) -> None:
    ca_dir, _ = ca_with_lock(tmp_path)
    target, now = tmp_path / "broker-crl.pem", datetime.now(UTC)
    ca = _load(ca_dir)
    target.write_bytes(ca.crl(now - timedelta(days=6)))  # issued six days ago: one day left
    assert crl_renewal_due(ca, target, now) == "its nextUpdate is near"
    assert renew_crl(ca_dir, target, None, now) == "its nextUpdate is near"
    assert next_update(target) > now + timedelta(days=6)
    fresh = target.read_bytes()
    assert renew_crl(ca_dir, target, None, now) is None and target.read_bytes() == fresh  # left alone
    later = now + timedelta(days=7) - timedelta(seconds=T.CLOUD_CRL_RENEW_BEFORE_S - 60)
    assert crl_renewal_due(ca, target, later) == "its nextUpdate is near"  # due again before it expires


def test_renewed_when_missing_foreign_or_lacking_a_revocation(tmp_path: Path) -> None:
    ca_dir, lock = ca_with_lock(tmp_path)
    target, now = tmp_path / "broker-crl.pem", datetime.now(UTC)
    assert renew_crl(ca_dir, target, None, now) == "missing or unreadable" and target.exists()
    other = pki.FleetCA.create("another CA", now)
    target.write_bytes(other.crl(now))
    assert renew_crl(ca_dir, target, None, now) == "not signed by this CA"
    assert CliRunner().invoke(app, ["ca", "revoke", str(ca_dir), str(lock)]).exit_code == 0  # without --push
    assert renew_crl(ca_dir, target, None, now) == "a revocation is missing from it"
    serial = x509.load_pem_x509_certificate(lock.read_bytes()).serial_number
    assert x509.load_pem_x509_crl(target.read_bytes()).get_revoked_certificate_by_serial_number(serial) is not None
    assert renew_crl(ca_dir, target, None, now) is None


def test_the_renewer_thread_pushes_and_reloads_the_broker(tmp_path: Path) -> None:
    ca_dir, _ = ca_with_lock(tmp_path)
    target, pid_file, hup = tmp_path / "broker-crl.pem", tmp_path / "broker.pid", tmp_path / "hup"
    target.write_bytes(_load(ca_dir).crl(datetime.now(UTC) - timedelta(days=6, hours=12)))
    broker = subprocess.Popen([sys.executable, "-c", (  # stands in for Mosquitto: notes each SIGHUP
        "import pathlib, signal, time\n"
        f"signal.signal(signal.SIGHUP, lambda *a: pathlib.Path({str(hup)!r}).write_text('reload'))\n"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).write_text('')\n"
        "time.sleep(30)\n")])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pid_file.write_text(f"{broker.pid}\n")
        renewer = CrlRenewer(ca_dir, target, pid_file, period_s=0.05).start()
        try:
            deadline = time.monotonic() + 10
            while not hup.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            renewer.stop()
        assert hup.read_text() == "reload"
        assert next_update(target) > datetime.now(UTC) + timedelta(days=6)
        assert broker.poll() is None  # reloaded, not killed
    finally:
        os.kill(broker.pid, signal.SIGTERM)
        broker.wait(10)


def test_serve_refuses_crl_push_without_the_ca(tmp_path: Path) -> None:
    answer = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--crl-push",
                                      str(tmp_path / "crl.pem"), "--vapid-key", str(tmp_path / "v.key"),
                                      "--receipt-key", str(tmp_path / "r.key")])
    assert answer.exit_code != 0 and "--crl-push needs --ca-dir" in answer.output


def test_the_renewer_never_rewrites_the_revocation_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `ca revoke` landing while the renewer holds an older copy of the CA is not lost."""
    import limen_cloud.cli as cloud_cli

    ca_dir, lock = ca_with_lock(tmp_path)
    stale = _load(ca_dir)  # the renewer's copy, loaded before the revocation below
    assert CliRunner().invoke(app, ["ca", "revoke", str(ca_dir), str(lock)]).exit_code == 0
    listed = (ca_dir / "revoked.json").read_bytes()
    monkeypatch.setattr(cloud_cli, "_load", lambda d: stale)
    assert renew_crl(ca_dir, tmp_path / "broker-crl.pem", None, datetime.now(UTC)) == "missing or unreadable"
    assert (ca_dir / "revoked.json").read_bytes() == listed  # the revocation is still on the list


def test_serve_does_not_trust_forwarded_client_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limits key on the peer's address: X-Forwarded-For must not pick the bucket."""
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.update(kw))
    answer = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--vapid-key",
                                      str(tmp_path / "v.key"), "--receipt-key", str(tmp_path / "r.key")])
    assert answer.exit_code == 0, answer.output
    assert seen.get("proxy_headers") is False
