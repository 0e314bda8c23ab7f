"""Web push end to end: a browser subscribes on /account, an alarm of its owner's lock is encrypted to it
(RFC 8291) and POSTed with a VAPID token (RFC 8292) to a local HTTP server playing the push service; the test
decrypts it with the browser's keys and checks the token.  Dead subscriptions (404/410) are removed."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen import thresholds as T
from limen_cloud.api import create_app, utcnow
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, PushSubscription
from limen_cloud.notify import NOT_REACHED, AlarmNotifier, load_or_create_vapid, vapid_public_key

from .test_api import PASSWORD
from .test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up

LOCAL = ("127.0.0.0/8",)
CONTACT = "mailto:ops@example.org"
DETAIL = "Max Mustermann's face failed liveness 3 times"  # the alarm's detail must not travel


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """A local HTTP server playing the browser vendor's push service: records each POST; status per path."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.received.append({"path": self.path, "body": body,
                                           "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(outer.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]


class Browser:
    """What a browser's PushManager holds: a P-256 key pair and a 16-byte auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.endpoint = endpoint

    def subscription(self, label: str = "Olga's phone") -> dict[str, Any]:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64u(point), "auth": b64u(self.auth)}, "label": label}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        value = json.loads(plain)
        assert isinstance(value, dict)
        return value


def check_vapid(headers: dict[str, str], public_key: str, audience: str) -> dict[str, Any]:
    """RFC 8292: `Authorization: vapid t=<JWT ES256>, k=<key>`; k is the cloud's key, the JWT verifies under it,
    names the push service's origin, expires within 24 h, and carries the operator's contact."""
    scheme, _, params = headers["authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid" and fields["k"] == public_key
    head_b64, claims_b64, sig_b64 = fields["t"].split(".")
    assert json.loads(unb64u(head_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = unb64u(sig_b64)
    assert len(signature) == 64  # JWS ES256: r ‖ s
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(public_key))
    key.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    claims = json.loads(unb64u(claims_b64))
    assert claims["aud"] == audience and claims["sub"] == CONTACT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return dict(claims)


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.server.shutdown()
    service.server.server_close()


def raise_alarm(engine: Engine, lock_id: str, rule: str = "audit_truncated") -> int:
    with sessions(engine)() as s, s.begin():
        row = Alarm(lock_id=lock_id, rule=rule, detail=DETAIL, raised_at=datetime(2026, 12, 1, 9, 30))
        s.add(row)
        s.flush()
        return row.id


def subscriptions(engine: Engine) -> list[PushSubscription]:
    with sessions(engine)() as s:
        return list(s.scalars(select(PushSubscription).order_by(PushSubscription.id)))


def test_the_vapid_key_is_made_once_0600_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "vapid.key"
    first = load_or_create_vapid(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert vapid_public_key(load_or_create_vapid(path)) == vapid_public_key(first)  # not made again
    assert len(unb64u(vapid_public_key(first))) == 65
    (tmp_path / "ed.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIP" + b"A" * 40
                                      + b"\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError):
        load_or_create_vapid(tmp_path / "ed.key")


def test_an_alarm_reaches_the_subscribed_browser_encrypted_and_signed(engine: Engine, push_service: PushService,
                                                                        tmp_path: Path) -> None:
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    key = vapid_public_key(vapid)
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=key),
                        base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front door")
    old = raise_alarm(engine, "front-door")  # raised before any browser subscribed: not pushed

    page = client.get("/account")
    assert f'data-key="{key}"' in page.text and '<script src="/push.js"></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "script-src" not in client.get("/locks").headers["content-security-policy"]  # only /account runs one
    assert "pushManager.subscribe" in client.get("/push.js").text
    worker = client.get("/push-sw.js")
    assert worker.headers["content-type"].startswith("text/javascript") and "showNotification" in worker.text
    csrf = csrf_of(page.text)

    phone, dead = Browser(push_service.url("/push/phone")), Browser(push_service.url("/push/dead"))
    assert client.post("/account/push", json=phone.subscription()).status_code == 403  # no CSRF token
    assert client.post("/account/push", json=phone.subscription(), headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"}).status_code == 403
    bad_point = phone.subscription()
    bad_point["keys"]["p256dh"] = b64u(b"\x04" + b"\x01" * 64)  # not on the curve
    internal = Browser("http://10.0.0.7/push/x").subscription()  # not allow-listed
    plain_http_name = Browser(f"http://push.example:{push_service.port}/x").subscription()
    for refused in (bad_point, internal, plain_http_name):
        assert client.post("/account/push", json=refused, headers={"X-CSRF-Token": csrf}).status_code == 422
    for browser in (phone, dead):  # with the password (tests/cloud/test_alert_step_up.py)
        made = client.post("/account/push", json={**browser.subscription(), "password": PASSWORD},
                           headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
    with sessions(engine)() as s:  # the second browser was told to the first: the owner says it was them
        [told] = s.scalars(select(Alarm).where(Alarm.rule == "alarm_destination_added"))
    assert client.post(f"/alarms/{told.id}/ack", data={"csrf": csrf}).status_code == 303
    # an account alarm is pushed even acknowledged (test_push_account_alarms.py): out of the way of what follows
    assert AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT).deliver_push() == 2
    push_service.received.clear()
    listed = client.get("/account").text
    assert "Olga&#39;s phone" in listed and "/push/phone" not in listed  # the endpoint (a capability) not shown

    mallory = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=key),
                         base_url=ORIGIN, follow_redirects=False)
    sign_up(mallory, "mallory@example.org")
    log_in(mallory, "mallory@example.org")
    own_lock(engine, mallory, "mallory@example.org", "shed", "Shed")
    raise_alarm(engine, "shed")  # another owner's alarm: never pushed to Olga's browsers
    stolen = phone.subscription()  # Olga's endpoint with someone else's keys: does not take her alarms away
    stolen["keys"]["auth"] = b64u(secrets.token_bytes(16))
    mallory_csrf = csrf_of(mallory.get("/account").text)
    assert mallory.post("/account/push", json={**stolen, "password": PASSWORD},
                        headers={"X-CSRF-Token": mallory_csrf}).status_code == 409

    push_service.status["/push/dead"] = 410
    alarm_id = raise_alarm(engine, "front-door", "lock:door_forced")
    notifier = AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT)
    assert notifier.deliver_push() == 1
    [sent] = push_service.to("/push/phone")
    assert len(push_service.received) == 2  # the phone and the dead browser; nothing for Mallory's alarm
    message = phone.decrypt(sent["body"])
    assert message == {"v": 1, "alarm_id": alarm_id, "lock": "Front door", "kind": "lock:door_forced",
                       "severity": "warning", "at": "2026-12-01T09:30:00Z"}
    assert b"Mustermann" not in sent["body"] and "detail" not in message and old != alarm_id
    with pytest.raises(Exception):  # noqa: B017,PT011 (http_ece raises its own error): another browser cannot
        dead.decrypt(sent["body"])
    assert sent["headers"]["content-encoding"] == "aes128gcm" and sent["headers"]["ttl"] == str(T.CLOUD_PUSH_TTL_S)
    assert sent["headers"]["urgency"] == "high"
    claims = check_vapid(sent["headers"], key, f"http://127.0.0.1:{push_service.port}")
    other = load_or_create_vapid(tmp_path / "other.key")  # a token made by anyone else, claiming the cloud's key
    token = other.sign(claims)["Authorization"].split("t=", 1)[1].split(",", 1)[0]
    forged = {"authorization": f"vapid t={token},k={key}"}
    with pytest.raises(InvalidSignature):
        check_vapid(forged, key, f"http://127.0.0.1:{push_service.port}")

    [left] = subscriptions(engine)  # the 410 removed the dead subscription
    assert left.endpoint == phone.endpoint and left.cursor == alarm_id and left.last_error is None
    assert notifier.deliver_push() == 0 and len(push_service.to("/push/phone")) == 1  # once

    push_service.status["/push/phone"] = 503  # the push service fails: kept, retried after a backoff
    second = raise_alarm(engine, "front-door")
    assert notifier.deliver_push() == 0
    [held] = subscriptions(engine)
    assert held.cursor == alarm_id and held.last_error == "HTTP 503" and held.next_at is not None
    assert notifier.deliver_push() == 0 and len(push_service.to("/push/phone")) == 2  # not before the backoff
    push_service.status["/push/phone"] = 201
    assert notifier.deliver_push(utcnow() + timedelta(minutes=5)) == 1
    assert phone.decrypt(push_service.to("/push/phone")[-1]["body"])["alarm_id"] == second
    [held] = subscriptions(engine)
    assert held.cursor == second and held.last_error is None

    kept = client.post(f"/account/push/{held.id}/delete", data={"csrf": csrf})  # a session alone cannot silence it
    assert kept.status_code == 403 and "still receives alarms" in kept.text and len(subscriptions(engine)) == 1
    removed = client.post(f"/account/push/{held.id}/delete", data={"csrf": csrf, "password": PASSWORD})
    assert removed.status_code == 303 and subscriptions(engine) == []


def test_push_goes_only_to_public_or_allow_listed_addresses(engine: Engine, push_service: PushService,
                                                            tmp_path: Path) -> None:
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=vapid_public_key(vapid)),
                        base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front door")
    phone = Browser(push_service.url("/push/phone"))
    csrf = csrf_of(client.get("/account").text)
    assert client.post("/account/push", json={**phone.subscription(), "password": PASSWORD},
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    raise_alarm(engine, "front-door")
    # the operator removed loopback from the allow-list since: the connection itself is refused
    assert AlarmNotifier(engine, (), vapid=vapid, vapid_contact=CONTACT).deliver_push() == 0
    assert push_service.received == [] and subscriptions(engine)[0].last_error == NOT_REACHED


def test_without_a_vapid_key_push_is_not_offered(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True), base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    page = client.get("/account")
    assert "Web push is not set up" in page.text and "<script" not in page.text
    phone = Browser("https://push.example/x")
    assert client.post("/account/push", json=phone.subscription(),
                       headers={"X-CSRF-Token": csrf_of(page.text)}).status_code == 404
    assert client.get("/api/push/key").status_code == 404
    assert AlarmNotifier(engine).deliver_push() == 0
