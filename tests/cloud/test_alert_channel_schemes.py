"""Alarm channels are an allow-list of apprise schemes that reach a person (review H6 item 5: the save-time check
was a deny list of host schemes, so rsyslog://, kodi://, bark://, enigma2:// and syslog:// were accepted)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen_cloud.api import create_app
from limen_cloud.notify import (
    CHANNEL_SCHEMES,
    _ChannelSet,
    channel_destination_allowed,
    channel_scheme_problem,
)

from .test_alert_step_up import EMAIL, channels
from .test_api import PASSWORD, login

REFUSED = ("rsyslog://93.184.216.34/local0", "kodi://93.184.216.34", "bark://93.184.216.34/devicekey",
           "enigma2://93.184.216.34", "syslog://local0", "mqtt://93.184.216.34/topic")
ACCEPTED = ("ntfy://93.184.216.34/door", "tgram://123456789:abcdefg/12345", "pover://user@token",
            "mailto://user:pw@93.184.216.34?to=a@b.org", "json://93.184.216.34/hook", "gotifys://93.184.216.34/t")


@pytest.mark.parametrize("url", REFUSED)
def test_a_scheme_that_reaches_no_person_is_refused_at_save_naming_the_allowed_ones(engine: Engine, url: str) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, EMAIL)
    r = client.put("/api/owners/me/alerts", json={"urls": [url]}, headers=olga)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "must reach a person" in detail and "ntfy" in detail and "tgram" in detail and "pover" in detail
    assert "93.184.216.34" not in detail and "devicekey" not in detail  # the URL (its tokens) is not echoed
    assert channels(engine) == []
    assert not channel_destination_allowed(url)


def test_schemes_that_reach_a_person_are_accepted(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: public)  # no DNS in tests
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, EMAIL)
    r = client.put("/api/owners/me/alerts", json={"urls": list(ACCEPTED), "password": PASSWORD}, headers=olga)
    assert r.status_code == 200, r.text
    assert channels(engine) == list(ACCEPTED)
    assert all(channel_scheme_problem(u) is None for u in ACCEPTED)
    assert {"ntfy", "ntfys", "pover", "tgram", "mailto", "mailtos", "gotify", "gotifys", "json", "jsons"} <= \
        CHANNEL_SCHEMES


def test_a_channel_saved_before_the_allow_list_is_not_sent_to() -> None:
    built = _ChannelSet.build(("rsyslog://93.184.216.34/local0",))
    failures = built.send("title", "body", "critical")
    assert failures is not None and "must reach a person" in failures
    assert json.dumps(failures).count("93.184.216.34") == 0


@pytest.mark.parametrize("url", ["json://93.184.216.34/x, rsyslog://10.0.0.1", "json://93.184.216.34/x rsyslog://10.0.0.1",
                                 "json://93.184.216.34/x?a=1,rsyslog://10.0.0.1"])
def test_a_url_holding_a_second_channel_is_refused(engine: Engine, url: str) -> None:
    """apprise reads commas and spaces as separators: the check saw json://, apprise also added rsyslog:// (review)."""
    from limen.audit.channels import apprise_object
    from limen.errors import LimenError

    assert channel_scheme_problem(url) is not None and not channel_destination_allowed(url)
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, EMAIL)
    r = client.put("/api/owners/me/alerts", json={"urls": [url]}, headers=olga)
    assert r.status_code == 422 and "one alarm channel per URL" in r.json()["detail"]
    assert channels(engine) == []
    with pytest.raises(LimenError, match="one channel per URL"):          # the lock's own channels: the same
        apprise_object(url)
    failures = _ChannelSet.build((url,)).send("title", "body", "critical")  # one saved before: not sent to
    assert failures is not None and "one alarm channel per URL" in failures
