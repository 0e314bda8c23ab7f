"""Enrolling an authenticator tells the account's destinations (`authenticator_enrolled`).

Review of 0c1695a: the enrolment asks the password again, but with it a stolen session enrolled its own seed unheard —
from then on no log-in (pages or API) worked without the thief's codes, and no page removes a seed — while changing
the password or adding a destination raised an alarm."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import Engine, select

from limen_cloud.db import sessions
from limen_cloud.models import Alarm

from .test_alert_step_up import claim
from .test_api import PASSWORD
from .test_pages import csrf_of, log_in, sign_up
from .test_password_change import EMAIL, client_for, token


def test_enrolling_an_authenticator_raises_an_alarm_and_a_refused_one_none(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    api = token(client)
    assert api is not None
    claim(engine, client, api)
    log_in(client, EMAIL)
    form = client.get("/account/totp").text
    found = re.search(r'name="secret" value="([A-Z2-7]{32})"', form)
    assert found is not None
    secret, csrf = found.group(1), csrf_of(form)
    code = pyotp.TOTP(secret).now()

    def enrolled_alarms() -> list[str]:
        with sessions(engine)() as s:
            return [a.detail for a in s.scalars(select(Alarm).where(Alarm.rule == "authenticator_enrolled"))]

    refused = client.post("/account/totp", data={"csrf": csrf, "secret": secret, "code": code, "password": "wrong"})
    assert refused.status_code == 403 and enrolled_alarms() == []
    done = client.post("/account/totp", data={"csrf": csrf, "secret": secret, "code": code, "password": PASSWORD})
    assert done.status_code == 303
    texts = enrolled_alarms()
    assert len(texts) == 1 and "reset-password --clear-totp" in texts[0] and secret not in texts[0]
