"""The fleet broker's configuration: Mosquitto with TLS 1.3 only and mutual X.509, from the fleet CA.

`write_config` writes what `limen-cloud broker-config` and the tests' private broker use: the broker's
server certificate (SAN = the name locks connect to), the CRL, the ACL (each lock reads only its own
command topic and writes only its own topics; the cloud reads and writes `limen/#`) and mosquitto.conf.
`issue_cloud_client` makes the cloud bridge's own key (0600) and client certificate (CN `limen-cloud`,
the ACL's user: Mosquitto takes the certificate's CN as the user name).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from limen import thresholds as T
from limen.link import pki

CLOUD_ID = "limen-cloud"
ACL = f"""user {CLOUD_ID}
topic readwrite limen/#
user homeassistant
topic read homeassistant/#
topic readwrite limen/+/ha/#
pattern read limen/%u/cmd
pattern write limen/%u/result
pattern write limen/%u/events
pattern write limen/%u/backup
pattern write limen/%u/csr
pattern read limen/%u/cert
pattern read limen/%u/head
pattern readwrite limen/%u/ha/#
pattern write homeassistant/+/limen_%u/#
"""


@dataclass(frozen=True)
class BrokerFiles:
    """Where `write_config` put each file (all in one directory)."""

    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def crl(self) -> Path:
        return self.dir / "crl.pem"

    @property
    def acl(self) -> Path:
        return self.dir / "acl"


def write_config(out: Path, ca: pki.FleetCA, host: str, port: int, at: datetime, *, bind: str | None = None,
                 persistence: bool = True, user: str | None = None, server_days: int = 365) -> BrokerFiles:
    """Issue the broker's certificate for `host` and write CA, CRL, ACL and mosquitto.conf into `out`.

    `bind` is the address the listener binds (None: every interface).  The CRL is the CA's current one;
    `limen-cloud ca revoke --push <out>/crl.pem` replaces it.  `user` is who Mosquitto runs as when
    started by root (default: the user writing the files, who owns the 0600 server key).
    """
    out.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(out)
    files.ca.write_bytes(pki.pem(ca.cert))
    server_key, server_cert = ca.issue_server(host, at, server_days)
    pki.write_key(files.server_key, server_key)
    files.server_cert.write_bytes(pki.pem(server_cert))
    files.crl.write_bytes(ca.crl(at))
    files.acl.write_text(ACL)
    store = f"persistence true\npersistence_location {out.resolve()}/\n" if persistence else "persistence false\n"
    listener = f"listener {port} {bind}" if bind else f"listener {port}"
    files.conf.write_text(f"""# limen-cloud broker-config: the fleet broker (TLS 1.3, mutual X.509) for {host}:{port}
user {user or getpass.getuser()}
{store}log_dest stderr
per_listener_settings false
allow_anonymous false
max_queued_messages 100000
max_packet_size {T.LINK_MAX_BROKER_PACKET_BYTES}
acl_file {files.acl.resolve()}
{listener}
cafile {files.ca.resolve()}
certfile {files.server_cert.resolve()}
keyfile {files.server_key.resolve()}
crlfile {files.crl.resolve()}
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
""")
    return files


def issue_cloud_client(out: Path, ca: pki.FleetCA, at: datetime, days: int = 365) -> tuple[Path, Path]:
    """The cloud bridge's key (made here, 0600) and client certificate (CN `limen-cloud`): (cert, key) paths."""
    key_file = out / f"{CLOUD_ID}.key"
    key = pki.new_key(key_file)
    cert = ca.issue(pki.make_csr(key, CLOUD_ID), at, days, service=True)
    cert_file = out / f"{CLOUD_ID}.pem"
    cert_file.write_bytes(pki.pem(cert))
    return cert_file, key_file
