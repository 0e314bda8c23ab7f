"""`limen.fingerprint.LockFingers`: a match on the sensor is named by the sealed page map when the attempt is
judged — only the module the map belongs to, only a person whose fingerprint consent runs, only the person a
held face or a claim names — and is taken at the host's operating point, never higher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from limen import people
from limen import thresholds as T
from limen.bio.finger.sensor import PAGES_FILE, SensorPages, save_pages
from limen.bio.templates import Modality
from limen.config import Settings
from limen.decision import Reason
from limen.fingerprint import LockFingers, SensorMatch
from limen.runtime import Runtime, open_runtime
from limen.vault.secrets import box_for

MODULE = "r30x:sys=0009:lib=200:addr=FFFFFFFF:pkt=128:sn=none"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


def _person(rt: Runtime, name: str, days: int = 30, given: datetime | None = None) -> str:
    at = given or datetime.now(UTC)
    person = people.new_person(rt.conn, name, "test", at)
    people.record_consent(rt.conn, person, Modality.FINGERPRINT, people.Consent("door", days), "test", at)
    return person.id


def test_the_page_map_names_the_person_at_the_hosts_operating_point(rt: Runtime, settings: Settings) -> None:
    ada, bo = _person(rt, "Ada"), _person(rt, "Bo")
    lapsed = _person(rt, "Cy", days=1, given=datetime.now(UTC) - timedelta(days=3))
    box = box_for(rt.conn)
    assert box is not None
    save_pages(settings.data_dir / PAGES_FILE, SensorPages(MODULE, {0: ada, 1: bo, 2: lapsed}), box)
    fingers = rt.fingers()
    assert isinstance(fingers, LockFingers)

    found = fingers.identify(SensorMatch(0, MODULE))
    assert found.user_id == ada and found.matched and found.score == found.threshold == T.FINGER_MATCH_DEFAULT
    assert not found.sensor_liveness                                   # MEDIUM: a first factor
    assert fingers.verify("Ada", SensorMatch(0, MODULE)).matched      # the claim (or a held face) agrees
    assert fingers.verify(bo, SensorMatch(1, MODULE)).user_id == bo

    refused = {
        "claimed as someone else's": fingers.verify("Bo", SensorMatch(0, MODULE)),
        "no match on the module": fingers.identify(SensorMatch(None, MODULE)),
        "a page the map does not list": fingers.identify(SensorMatch(7, MODULE)),
        "another module's page": fingers.identify(SensorMatch(0, MODULE.replace("0009", "000A"))),
        "consent no longer runs": fingers.identify(SensorMatch(2, MODULE)),
    }
    for why, evidence in refused.items():
        assert not evidence.matched and evidence.score is None, why
    assert refused["claimed as someone else's"].user_id == bo        # the attempt speaks of the claimed person
    unknown = fingers.verify("Nobody", SensorMatch(0, MODULE))
    assert unknown.refusal is Reason.UNKNOWN_USER and not unknown.matched

    people.delete(rt.conn, people.find(rt.conn, "Ada"))               # erased after the module's search
    assert not fingers.identify(SensorMatch(0, MODULE)).matched


def test_an_unreadable_page_map_is_a_refusal_not_an_error(rt: Runtime, settings: Settings) -> None:
    ada = _person(rt, "Ada")
    box = box_for(rt.conn)
    assert box is not None
    save_pages(settings.data_dir / PAGES_FILE, SensorPages(MODULE, {0: ada}), box)
    body = (settings.data_dir / PAGES_FILE).read_text()
    (settings.data_dir / PAGES_FILE).write_text(body.replace(body[-20:-10], "0" * 10))   # altered
    evidence = rt.fingers().identify(SensorMatch(0, MODULE))
    assert evidence.refusal is Reason.VAULT_ERASED and not evidence.matched
