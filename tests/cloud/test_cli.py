"""`limen-cloud ca init / sign / revoke`: a fleet CA kept in a directory."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from limen.link import pki
from limen_cloud.cli import app


def test_ca_init_sign_revoke(tmp_path: Path) -> None:
    ca_dir, runner = tmp_path / "ca", CliRunner()
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code != 0  # never overwrites a CA
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    signed = runner.invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                                 str(tmp_path / "lock.pem")])
    assert signed.exit_code == 0, signed.output
    cert = x509.load_pem_x509_certificate((tmp_path / "lock.pem").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert runner.invoke(app, ["ca", "revoke", str(ca_dir), str(tmp_path / "lock.pem")]).exit_code == 0
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_ca_crl_reissues_and_pushes(tmp_path: Path) -> None:
    ca_dir, runner, target = tmp_path / "ca", CliRunner(), tmp_path / "broker-crl.pem"
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    before = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    assert runner.invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                               str(tmp_path / "lock.pem")]).exit_code == 0
    assert runner.invoke(app, ["ca", "revoke", str(ca_dir), str(tmp_path / "lock.pem")]).exit_code == 0
    made = runner.invoke(app, ["ca", "crl", str(ca_dir), "--push", str(target)])
    assert made.exit_code == 0, made.output
    pushed = x509.load_pem_x509_crl(target.read_bytes())
    serial = x509.load_pem_x509_certificate((tmp_path / "lock.pem").read_bytes()).serial_number
    assert pushed.get_revoked_certificate_by_serial_number(serial) is not None  # revocations kept
    assert pushed.next_update_utc is not None and before.next_update_utc is not None
    assert pushed.next_update_utc >= before.next_update_utc
    assert runner.invoke(app, ["ca", "crl", str(tmp_path / "no-ca")]).exit_code != 0
