"""A private Mosquitto with TLS 1.3 and mutual X.509 on a free port, for link and cloud tests.

The fleet CA, the broker's certificate, a CRL and an ACL (a lock reads only its own
command topic) are generated per test session; the test skips when mosquitto is absent.
"""

from __future__ import annotations

import getpass
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

CLOUD_ID = "limen-cloud"
ACL = f"""user {CLOUD_ID}
topic readwrite limen/#
pattern read limen/%u/cmd
pattern write limen/%u/result
pattern write limen/%u/events
"""


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
        cert = (ca or self.ca).issue(pki.make_csr(key, name), datetime.now(UTC), days, not_before=not_before)
        cert_file = self.dir / f"{name}.pem"
        cert_file.write_bytes(pki.pem(cert))
        return cert_file, key_file

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.dir / f"{name}.pem").read_bytes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(root: Path) -> Iterator[Broker]:
    """Generate the PKI (with one revoked lock, 'revoked-lock'), start mosquitto, stop it afterwards."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto)")
    now = datetime.now(UTC)
    broker = Broker(root, pki.FleetCA.create("Limen test fleet CA", now), free_port())
    broker.ca_file.write_bytes(pki.pem(broker.ca.cert))
    server_key, server_cert = broker.ca.issue_server(broker.host, now)
    (root / "server.key").write_bytes(pki.key_pem(server_key))
    (root / "server.pem").write_bytes(pki.pem(server_cert))
    broker.client("revoked-lock")
    broker.ca.revoke(broker.cert("revoked-lock"), now)
    (root / "crl.pem").write_bytes(broker.ca.crl(now))
    (root / "acl").write_text(ACL)
    conf = root / "mosquitto.conf"
    conf.write_text(f"""user {getpass.getuser()}
persistence false
log_dest stderr
per_listener_settings false
allow_anonymous false
acl_file {root / 'acl'}
listener {broker.port} {broker.host}
cafile {broker.ca_file}
certfile {root / 'server.pem'}
keyfile {root / 'server.key'}
crlfile {root / 'crl.pem'}
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
""")
    log = (root / "mosquitto.log").open("wb")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((broker.host, broker.port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not start: {(root / 'mosquitto.log').read_text()[-2000:]}")
                time.sleep(0.05)
        yield broker
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def expired_window() -> tuple[datetime, int]:
    return datetime.now(UTC) - timedelta(days=10), 1
