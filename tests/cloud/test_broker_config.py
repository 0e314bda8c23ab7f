"""`limen-cloud broker-config`: the generated mosquitto.conf runs a real Mosquitto that a lock and the cloud join."""

from __future__ import annotations

import queue
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import Engine
from typer.testing import CliRunner

from limen.errors import LinkError
from limen.link import pki
from limen.link.mqtt import MqttLink, Topics
from limen_cloud.bridge import CloudBridge
from limen_cloud.cli import app
from tests.link.broker import free_port, mosquitto


def wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def lock_cert(runner: CliRunner, ca_dir: Path, d: Path, lock_id: str) -> ssl.SSLContext:
    """A lock provisioned as the docs say: its own key and CSR, signed with `limen-cloud ca sign`."""
    key = pki.new_key(d / f"{lock_id}.key")
    (d / f"{lock_id}.csr").write_bytes(pki.make_csr(key, lock_id))
    signed = runner.invoke(app, ["ca", "sign", str(ca_dir), str(d / f"{lock_id}.csr"), "--out",
                                 str(d / f"{lock_id}.pem")])
    assert signed.exit_code == 0, signed.output
    return pki.client_context(ca_dir / "ca.pem", d / f"{lock_id}.pem", d / f"{lock_id}.key")


def test_the_generated_broker_takes_a_lock_and_the_cloud(tmp_path: Path, engine: Engine) -> None:
    exe = mosquitto()
    runner, ca_dir, out, port = CliRunner(), tmp_path / "ca", tmp_path / "broker", free_port()
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    made = runner.invoke(app, ["broker-config", "--ca-dir", str(ca_dir), "--out", str(out), "--host", "127.0.0.1",
                               "--port", str(port), "--bind", "127.0.0.1"])
    assert made.exit_code == 0, made.output
    assert f"mosquitto -c {(out / 'mosquitto.conf').resolve()}" in made.output
    conf = (out / "mosquitto.conf").read_text()
    for line in ("require_certificate true", "use_identity_as_username true", "tls_version tlsv1.3",
                 "allow_anonymous false", f"crlfile {(out / 'crl.pem').resolve()}"):
        assert line in conf.splitlines()
    assert "pattern read limen/%u/cmd" in (out / "acl").read_text()
    for key in ("server.key", "limen-cloud.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    assert server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.IPAddress)[0].exploded == "127.0.0.1"
    cloud = x509.load_pem_x509_certificate((out / "limen-cloud.pem").read_bytes())
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cloud.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    again = runner.invoke(app, ["broker-config", "--ca-dir", str(ca_dir), "--out", str(out)])
    assert again.exit_code != 0  # never overwrites a broker's keys

    log = tmp_path / "mosquitto.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen([exe, "-c", str(out / "mosquitto.conf")], stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for(port, proc, log)
        got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        other: queue.Queue[tuple[str, bytes]] = queue.Queue()
        door = MqttLink("front-door", lock_cert(runner, ca_dir, tmp_path, "front-door"), "127.0.0.1", port,
                        subscriptions=(Topics("front-door").cmd,),
                        on_message=lambda t, p: got.put((t, p))).connect(timeout=5)
        nosy = MqttLink("back-door", lock_cert(runner, ca_dir, tmp_path, "back-door"), "127.0.0.1", port,
                        subscriptions=(Topics("front-door").cmd,),  # another lock's topic: the ACL refuses
                        on_message=lambda t, p: other.put((t, p))).connect(timeout=5)
        bridge = CloudBridge(engine, pki.client_context(out / "ca.pem", out / "limen-cloud.pem",
                                                        out / "limen-cloud.key"), "127.0.0.1", port).connect(5)
        try:
            sock = door.client.socket()
            assert isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3"
            bridge.relay("front-door", b'{"signed": "by the owner"}')
            assert got.get(timeout=5) == ("limen/front-door/cmd", b'{"signed": "by the owner"}')
            time.sleep(0.5)
            assert other.empty()
        finally:
            bridge.close()
            nosy.close()
            door.close()
        with pytest.raises(LinkError):  # no client certificate: refused
            MqttLink("anonymous", pki.client_context(out / "ca.pem", None, None), "127.0.0.1", port).connect(5)
    finally:
        proc.terminate()
        proc.wait(10)
