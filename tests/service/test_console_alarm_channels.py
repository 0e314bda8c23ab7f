"""Alarm delivery set up in the console: apprise URLs added and removed (password-confirmed, audited by
channel id only), stored sealed and shown masked, a test per channel with its result, the warning while
none is configured, and alarms routed to a new channel without restarting the service."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from limen import thresholds as T
from limen.audit.channels import channel_id
from limen.service.alerting import SEALED_FILE, SealedChannels, mask

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import PASSWORD, Owner, csrf_of
from .test_console_live import set_up_owner

WRONG = "951357"


class Receiver:
    """A local HTTP endpoint that apprise's json:// posts to; records every body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                outer.got.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook-secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def add(client: Any, csrf: str, url: str, label: str = "", password: str = PASSWORD) -> Any:
    return client.post("/owner/alarms/channels", data={"csrf": csrf, "url": url, "label": label,
                                                       "password": password})


def test_mask_never_shows_the_token() -> None:
    assert mask("ntfy://ntfy.sh/alice-secret-topic") == "ntfy://nt…ic"
    assert mask("json://a/") == "json://…"
    assert "secret" not in mask("tgram://123456:secret-bot-token/4242")


def test_add_test_and_remove_a_channel(client: Any, owner: Owner, receiver: Receiver) -> None:
    page = client.get("/owner/alarms")
    csrf = csrf_of(page.text)
    assert 'id="no-channel"' in page.text and 'id="no-channels"' in page.text
    assert add(client, csrf, receiver.url, "Alice's phone", password="wrong password").status_code == 403
    r = add(client, csrf, receiver.url, "Alice's phone")
    assert r.status_code == 200 and "Alarm channel added" in r.text
    assert 'id="no-channel"' not in r.text and "hook-secret-path" not in r.text  # masked, never shown back
    cid = channel_id(receiver.url)
    assert f'data-channel="{cid}"' in r.text and "Alice&#39;s phone" in r.text
    sealed = client.app.state.ctx.settings.data_dir / SEALED_FILE
    assert stat.S_IMODE(os.stat(sealed).st_mode) == 0o600
    assert b"hook-secret-path" not in sealed.read_bytes() and b"127.0.0.1" not in sealed.read_bytes()
    assert "hook-secret-path" not in json.dumps(client.get("/api/audit", params={"limit": 1000}).json())
    changes = client.get("/api/audit", params={"kind": "config_change"}).json()
    assert any(x["reason"] == "alarm channel added" and x["subject"] == cid for x in changes)
    assert "No channel" not in client.get("/owner").text and 'id="no-channel"' not in client.get("/owner").text

    r = client.post("/owner/alarms/channels/test", data={"csrf": csrf, "channel": cid})
    assert r.status_code == 200 and "Test delivered" in r.text and "test delivered at" in r.text
    assert receiver.bodies and "this channel works" in json.dumps(receiver.bodies[-1])

    assert add(client, csrf, receiver.url, "again").status_code == 409  # the same URL twice
    r = client.post("/owner/alarms/channels/remove", data={"csrf": csrf, "channel": cid})
    assert r.status_code == 200 and "Alarm channel removed" in r.text and 'id="no-channel"' in r.text
    assert SealedChannels(client.app.state.ctx.settings).load() == []
    removed = client.get("/api/audit", params={"kind": "config_change"}).json()
    assert any(x["reason"] == "alarm channel removed" and x["subject"] == cid for x in removed)
    assert client.post("/owner/alarms/channels/remove", data={"csrf": csrf, "channel": cid}).status_code == 404


def test_a_failing_channel_says_why(client: Any, owner: Owner) -> None:
    csrf = csrf_of(client.get("/owner/alarms").text)
    dead = "json://127.0.0.1:9/nobody-listens"  # the discard port: connection refused
    assert add(client, csrf, dead).status_code == 200
    r = client.post("/owner/alarms/channels/test", data={"csrf": csrf, "channel": channel_id(dead)})
    assert "Test not delivered" in r.text and "test failed at" in r.text
    tests = client.get("/api/audit", params={"kind": "system"}).json()
    assert any(x["reason"] == "alarm channel tested" and x["outcome"] == "failed" for x in tests)


@pytest.mark.parametrize("url", ["", "not a url", "nosuchservice://x/y", "ntfy://a b", "x://" + "a" * 2000])
def test_bad_urls_are_refused_with_the_label_kept(client: Any, owner: Owner, url: str) -> None:
    csrf = csrf_of(client.get("/owner/alarms").text)
    r = add(client, csrf, url, "Kitchen tablet")
    assert r.status_code == 400 and 'id="error"' in r.text and 'value="Kitchen tablet"' in r.text
    assert SealedChannels(client.app.state.ctx.settings).load() == []


def test_an_altered_sealed_file_is_said_and_set_aside(client: Any, owner: Owner, receiver: Receiver) -> None:
    csrf = csrf_of(client.get("/owner/alarms").text)
    add(client, csrf, receiver.url)
    sealed = client.app.state.ctx.settings.data_dir / SEALED_FILE
    box = json.loads(sealed.read_bytes())
    box["ct"] = box["ct"][:-4] + ("AAAA" if box["ct"][-4:] != "AAAA" else "BBBB")
    sealed.write_text(json.dumps(box))
    from limen.errors import ConfigError

    with pytest.raises(ConfigError, match="do not unseal"):
        SealedChannels(client.app.state.ctx.settings).load()
    assert client.get("/owner").status_code == 200  # the console (and the other channels) keep working …
    page = client.get("/owner/alarms")
    assert 'id="channels-problem"' in page.text and 'id="no-channel"' in page.text  # … and say it plainly
    system = client.get("/api/audit", params={"kind": "system"}).json()
    assert any(x["reason"] == "alarm channels unreadable" for x in system)
    assert add(client, csrf, receiver.url, "again").status_code == 200  # a new list; the old file kept aside
    assert len(list(sealed.parent.glob(f"{SEALED_FILE}.broken-*"))) == 1
    assert [c.label for c in SealedChannels(client.app.state.ctx.settings).load()] == ["again"]


def test_an_alarm_goes_to_a_channel_added_while_running(client: Any, owner: Owner, receiver: Receiver) -> None:
    csrf = csrf_of(client.get("/owner/alarms").text)
    add(client, csrf, receiver.url, "phone")
    for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
        client.post("/api/kiosk/keypad", json={"entry": WRONG})
    assert receiver.got.wait(30), "the alarm was not delivered to the new channel"
    assert any(b.get("title", "").startswith("[WARNING]") for b in receiver.bodies), receiver.bodies


# ---------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-alarm-channels")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_alarm_channel_journey(server: Server, playwright: Any, receiver: Receiver) -> None:
    with chromium(playwright) as page:
        set_up_owner(page, server)
        assert page.locator("#no-channel").is_visible()  # the dashboard says alarms go nowhere
        page.click("#no-channel a")
        page.fill("#add-channel input[name=label]", "Olivia's phone")
        page.fill("#add-channel input[name=url]", receiver.url)
        page.fill("#add-channel input[name=password]", PASSWORD)
        page.click("#add-channel button[type=submit]")
        page.wait_for_selector("text=Alarm channel added")
        assert page.locator("#no-channel").count() == 0
        row = page.locator("#channels li.channel")
        assert row.count() == 1 and "hook-secret-path" not in row.inner_text()
        row.locator("button.send-test").click()
        page.wait_for_selector("#channels .test-result.good")
        assert receiver.bodies, "the test did not reach the endpoint"
        shot(page, "console-alarm-channels")
        page.click("#channels details.remove summary")
        page.fill("#channels input[name=password]", PASSWORD)
        page.once("dialog", lambda d: d.dismiss())  # "Remove this alarm channel?" — no
        page.click("#channels button.remove-channel")
        assert page.locator("#channels li.channel").count() == 1
        page.once("dialog", lambda d: d.accept())
        page.click("#channels button.remove-channel")
        page.wait_for_selector("text=Alarm channel removed")
        assert page.locator("#channels li.channel").count() == 0 and page.locator("#no-channel").is_visible()
