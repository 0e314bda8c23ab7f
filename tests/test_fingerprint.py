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
    gen = save_pages(settings.data_dir / PAGES_FILE, SensorPages(MODULE, {0: ada, 1: bo, 2: lapsed}), box).generation
    fingers = rt.fingers()
    assert isinstance(fingers, LockFingers)

    found = fingers.identify(SensorMatch(0, MODULE, gen))
    assert found.user_id == ada and found.matched and found.score == found.threshold == T.FINGER_MATCH_DEFAULT
    assert not found.sensor_liveness                                   # MEDIUM: a first factor
    assert fingers.verify("Ada", SensorMatch(0, MODULE, gen)).matched      # the claim (or a held face) agrees
    assert fingers.verify(bo, SensorMatch(1, MODULE, gen)).user_id == bo

    refused = {
        "claimed as someone else's": fingers.verify("Bo", SensorMatch(0, MODULE, gen)),
        "no match on the module": fingers.identify(SensorMatch(None, MODULE, gen)),
        "a page the map does not list": fingers.identify(SensorMatch(7, MODULE, gen)),
        "another module's page": fingers.identify(SensorMatch(0, MODULE.replace("0009", "000A"), gen)),
        "consent no longer runs": fingers.identify(SensorMatch(2, MODULE, gen)),
    }
    for why, evidence in refused.items():
        assert not evidence.matched and evidence.score is None, why
    assert refused["claimed as someone else's"].user_id == bo        # the attempt speaks of the claimed person
    unknown = fingers.verify("Nobody", SensorMatch(0, MODULE, gen))
    assert unknown.refusal is Reason.UNKNOWN_USER and not unknown.matched

    changed = fingers.identify(SensorMatch(1, MODULE, "an earlier generation"))   # the map changed since
    assert not changed.matched and changed.user_id is None and "changed" in changed.detail
    assert not fingers.identify(SensorMatch(1, MODULE, None)).matched  # the map was unreadable at the search

    people.delete(rt.conn, people.find(rt.conn, "Ada"))               # erased after the module's search
    assert not fingers.identify(SensorMatch(0, MODULE, gen)).matched


def test_an_unreadable_page_map_is_a_refusal_not_an_error(rt: Runtime, settings: Settings) -> None:
    ada = _person(rt, "Ada")
    box = box_for(rt.conn)
    assert box is not None
    gen = save_pages(settings.data_dir / PAGES_FILE, SensorPages(MODULE, {0: ada}), box).generation
    body = (settings.data_dir / PAGES_FILE).read_text()
    (settings.data_dir / PAGES_FILE).write_text(body.replace(body[-20:-10], "0" * 10))   # altered
    evidence = rt.fingers().identify(SensorMatch(0, MODULE, gen))
    assert evidence.refusal is Reason.VAULT_ERASED and not evidence.matched


def test_a_host_match_of_a_person_whose_consent_ran_out_is_no_match(rt: Runtime) -> None:
    """Retention erases references only at its next pass: until then the door must not open for them."""
    from limen import fingerprint
    from limen.bio.finger.extract import extract_file
    from limen.bio.finger.image import load_image
    from tests.conftest import shared

    db = shared("fvc2002", "DB1_B")
    now = datetime.now(UTC)
    for name, finger, days, given in (("Ada", 101, 30, now), ("Cy", 102, 1, now - timedelta(days=3))):
        templates = [extract_file(db / f"{finger}_{i}.tif") for i in (1, 2, 3)]
        fingerprint.enrol(rt, rt.access(), name, people.Consent("door", days), "test", given, templates=templates)
    fingers = rt.fingers()
    ada = fingers.identify(load_image(db / "101_6.tif"))
    assert ada.matched and ada.user_id == people.find(rt.conn, "Ada").id
    lapsed = fingers.identify(load_image(db / "102_6.tif"))
    assert not lapsed.matched and lapsed.user_id is None and lapsed.score is None
    claimed = fingers.verify("Cy", load_image(db / "102_6.tif"))
    assert not claimed.matched and claimed.user_id == people.find(rt.conn, "Cy").id
