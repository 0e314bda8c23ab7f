"""A private Mosquitto with TLS 1.3 and mutual X.509 on a free port, for link and cloud tests.

The fleet CA, the broker's certificate, a CRL and an ACL (a lock reads only its own
command topic) are generated per test session by the generator `limen-cloud broker-config` uses;
the test skips when mosquitto is absent.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from limen.link import pki
from limen_cloud.broker import ACL as ACL  # re-exported for the tests
from limen_cloud.broker import CLOUD_ID as CLOUD_ID
from limen_cloud.broker import write_config


@dataclass
class Broker:
    dir: Path
    ca: pki.FleetCA
    port: int
    host: str = "127.0.0.1"
    revoked: list[str] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def client(self, name: str, *, ca: pki.FleetCA | None = None, days: int = 30,
               not_before: datetime | None = None) -> tuple[Path, Path]:
        """A key made 'on the device' and a certificate from a CSR, as a lock is provisioned."""
        key_file = self.dir / f"{name}.key"
        key = pki.new_key(key_file)
        cert = (ca or self.ca).issue(pki.make_csr(key, name), datetime.now(UTC), days, not_before=not_before,
                                     service=name in pki.SERVICE_NAMES)
        cert_file = self.dir / f"{name}.pem"
        cert_file.write_bytes(pki.pem(cert))
        return cert_file, key_file

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.dir / f"{name}.pem").read_bytes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto)")
    return exe


def prepare(root: Path, persistence: bool = False) -> Broker:
    """The fleet PKI (with one revoked lock, 'revoked-lock'), CRL, ACL and mosquitto.conf under `root`.

    The broker's files come from `limen_cloud.broker.write_config`, what `limen-cloud broker-config` writes.
    """
    now = datetime.now(UTC)
    broker = Broker(root, pki.FleetCA.create("Limen test fleet CA", now), free_port())
    broker.client("revoked-lock")
    broker.ca.revoke(broker.cert("revoked-lock"), now)
    write_config(root, broker.ca, broker.host, broker.port, now, bind=broker.host, persistence=persistence)
    return broker


def launch(broker: Broker) -> subprocess.Popen[bytes]:
    """Start mosquitto on the prepared configuration and wait until it accepts connections."""
    log = (broker.dir / "mosquitto.log").open("ab")
    proc = subprocess.Popen([mosquitto(), "-c", str(broker.dir / "mosquitto.conf")], stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((broker.host, broker.port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mosquitto did not start: {(broker.dir / 'mosquitto.log').read_text()[-2000:]}")
            time.sleep(0.05)


def start_broker(root: Path) -> Iterator[Broker]:
    """A prepared, running broker for the duration of the generator (skips when mosquitto is absent)."""
    mosquitto()
    broker = prepare(root)
    proc = launch(broker)
    try:
        yield broker
    finally:
        proc.terminate()
        proc.wait(10)


def expired_window() -> tuple[datetime, int]:
    return datetime.now(UTC) - timedelta(days=10), 1
