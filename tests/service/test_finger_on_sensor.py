"""Match on sensor (`finger_matching = "sensor"`) through the lock service, with the simulated module that
`limen serve --simulate-sensors` starts: the console enrols on a page of the module's library (sealed page map,
nothing on the host), the door screen's decision comes from the module's search, a module with another
password is a tamper alarm and a refusal, and removing a finger or a person deletes the page on the module."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from limen.audit.event import EventKind
from limen.bio.finger.references import open_references
from limen.bio.finger.sensor import PAGES_FILE, load_pages, save_pages
from limen.bio.finger.simulator import SimulatedR30x
from limen.config import FingerMatching, Settings, load_settings
from limen.service.finger import FingerDesk
from limen.vault.secrets import box_for
from tests.conftest import shared
from tests.service.conftest import PASSWORD, PIN, Owner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LIMEN_FINGER_MATCHING", "sensor")
    loaded = load_settings(data_dir)
    assert loaded.finger_matching is FingerMatching.SENSOR
    return loaded


@pytest.fixture
def fvc() -> Path:
    return shared("fvc2002", "DB1_B")


@pytest.fixture
def module(client: TestClient) -> Iterator[SimulatedR30x]:
    desk: FingerDesk = client.app.state.fingers  # type: ignore[attr-defined]
    yield desk.simulate()
    desk.close()


def _file(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/tiff")


def _enrol(owner: Owner, user_id: str, fvc: Path, finger: str) -> object:
    data = {"csrf": owner.csrf, "position": "2", "purpose": "door", "retention_days": "30", "consent": "yes",
            "password": PASSWORD}
    files = [("images", _file(fvc / f"{finger}_{i}.tif")) for i in (1, 2)]
    return owner.client.post(f"/owner/users/{user_id}/fingers", data=data, files=files, follow_redirects=False)


def _scan(client: TestClient, path: Path) -> dict[str, object]:
    r = client.post("/api/kiosk/finger", files={"image": _file(path)})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _rt(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.ctx.runtime  # type: ignore[attr-defined]


def _events(client: TestClient, kind: EventKind) -> list[dict[str, object]]:
    return [{**r, **(r.get("data") or {})} for r in _rt(client).audit.records(kinds=(kind.value,))]


def _page_map(client: TestClient, settings: Settings) -> dict[int, str]:
    rt = _rt(client)
    sensor = rt.finger_sensor()
    return load_pages(settings.data_dir / PAGES_FILE, box_for(rt.conn), sensor.identity).pages


def test_console_enrols_on_the_module_and_the_door_screen_decides_by_its_search(
        owner: Owner, module: SimulatedR30x, fvc: Path, settings: Settings) -> None:
    page = owner.client.get(f"/owner/users/{owner.user_id}/fingers")
    assert 'id="finger-on-sensor"' in page.text and 'id="no-finger"' in page.text
    assert _enrol(owner, owner.user_id, fvc, "101").status_code == 303   # type: ignore[attr-defined]
    assert module.pages() == [0]                                         # the model is on the module …
    assert _page_map(owner.client, settings) == {0: owner.user_id}       # … its person in the page map …
    sealed = (settings.data_dir / PAGES_FILE).read_text()
    assert owner.user_id not in sealed                                   # … which is sealed under the vault
    refs = open_references(_rt(owner.client).conn, settings.data_dir)
    assert refs.enrolled() == [] and not list((settings.data_dir / "fingerprints").glob("*"))  # nothing on the host
    assert [c.type.value for c in owner.client.app.state.ctx.lock.access.credentials(  # type: ignore[attr-defined]
        owner.user_id)].count("fingerprint") == 1                         # Matter's Fingerprint credential
    listed = owner.client.get(f"/owner/users/{owner.user_id}/fingers")
    assert 'data-page="0"' in listed.text and 'id="no-finger"' not in listed.text
    (enrolment,) = _events(owner.client, EventKind.ENROLMENT)[-1:]
    assert enrolment["on_sensor"] is True and enrolment["page"] == 0

    # the door screen: no host reference exists, so only the module's search can recognise this finger
    assert _scan(owner.client, fvc / "105_1.tif")["opened"] is False                 # another finger
    genuine = _scan(owner.client, fvc / "101_3.tif")
    assert genuine["opened"] is False and genuine["awaiting_second_factor"] is True, genuine  # MEDIUM: + PIN
    opened = owner.client.post("/api/kiosk/keypad", json={"entry": PIN}).json()
    assert opened["opened"] is True and opened["name"] == "Alice", opened
    attempts = _events(owner.client, EventKind.UNLOCK_ATTEMPT)
    assert [(a["factors"], a["reason"]) for a in attempts] == [
        (["fingerprint"], "no_match"), (["fingerprint"], "second_factor_missing"), (["fingerprint", "pin"], "granted")]

    # the page map names the person when the attempt is judged: a page it does not list is nobody's,
    # though the module still holds (and finds) the model
    rt = _rt(owner.client)
    box = box_for(rt.conn)
    pages = load_pages(settings.data_dir / PAGES_FILE, box, rt.finger_sensor().identity)
    save_pages(settings.data_dir / PAGES_FILE, pages.without(0), box)
    assert module.pages() == [0]
    unmapped = _scan(owner.client, fvc / "101_4.tif")
    assert unmapped["opened"] is False and unmapped["awaiting_second_factor"] is False, unmapped
    assert _events(owner.client, EventKind.UNLOCK_ATTEMPT)[-1]["reason"] == "no_match"


def test_images_go_to_the_module_not_to_the_host_matcher(owner: Owner, module: SimulatedR30x, fvc: Path) -> None:
    one = owner.client.post(f"/owner/users/{owner.user_id}/fingers", follow_redirects=False, files=[
        ("images", _file(fvc / "101_1.tif"))], data={"csrf": owner.csrf, "position": "2", "purpose": "door",
                                                     "retention_days": "30", "consent": "yes", "password": PASSWORD})
    assert one.status_code == 400 and "two impressions" in one.text
    assert module.pages() == []
    mismatched = owner.client.post(f"/owner/users/{owner.user_id}/fingers", follow_redirects=False, files=[
        ("images", _file(fvc / "101_1.tif")), ("images", _file(fvc / "105_1.tif"))],
        data={"csrf": owner.csrf, "position": "2", "purpose": "door", "retention_days": "30", "consent": "yes",
              "password": PASSWORD})
    assert mismatched.status_code == 400 and module.pages() == []        # RegModel refused: nothing enrolled
    assert _events(owner.client, EventKind.ENROLMENT) == []


def test_a_module_with_another_password_is_tamper_and_refused(owner: Owner, module: SimulatedR30x, fvc: Path
                                                               ) -> None:
    assert _enrol(owner, owner.user_id, fvc, "101").status_code == 303   # type: ignore[attr-defined]
    module.password ^= 0x5A5A5A5A                                        # not the password set at pairing
    r = owner.client.post("/api/kiosk/finger", files={"image": _file(fvc / "101_3.tif")})
    assert r.status_code == 503 and "unavailable" in r.text
    alarms = _events(owner.client, EventKind.ALARM)
    assert [a["subject"] for a in alarms] == ["fingerprint-sensor"], alarms
    assert _events(owner.client, EventKind.UNLOCK_ATTEMPT) == []          # no attempt was judged
    refused = _enrol(owner, owner.user_id, fvc, "102")                  # nor is a finger enrolled on it
    assert refused.status_code == 400 and module.pages() == [0]          # type: ignore[attr-defined]
    assert len(_events(owner.client, EventKind.ALARM)) == 2


def test_removing_a_finger_or_a_person_deletes_the_page(owner: Owner, module: SimulatedR30x, fvc: Path,
                                                        settings: Settings) -> None:
    client = owner.client
    assert client.post("/owner/users", data={"csrf": owner.csrf, "name": "Bo", "pin": "713502",
                                              "password": PASSWORD}).status_code == 200
    bo = next(u["user_id"] for u in client.get("/api/users").json() if u["name"] == "Bo")
    assert _enrol(owner, owner.user_id, fvc, "101").status_code == 303   # type: ignore[attr-defined]
    assert _enrol(owner, bo, fvc, "102").status_code == 303              # type: ignore[attr-defined]
    assert module.pages() == [0, 1] and _page_map(client, settings) == {0: owner.user_id, 1: bo}

    module.refuse_delete = True                                          # not confirmed: reported, page kept
    kept = client.post(f"/owner/users/{owner.user_id}/fingers/page/0/remove",
                       data={"csrf": owner.csrf, "password": PASSWORD})
    assert kept.status_code == 409 and "not removed from the sensor" in kept.text
    assert module.pages() == [0, 1] and 0 in _page_map(client, settings)
    module.refuse_delete = False
    gone = client.post(f"/owner/users/{owner.user_id}/fingers/page/0/remove",
                       data={"csrf": owner.csrf, "password": PASSWORD}, follow_redirects=False)
    assert gone.status_code == 303 and module.pages() == [1] and _page_map(client, settings) == {1: bo}
    erased = [e for e in _events(client, EventKind.PRIVACY) if e["reason"] == "fingerprint sensor pages erased"]
    assert [(e["outcome"], e["pages_failed"], e["pages_erased"]) for e in erased] == [
        ("failed", [0], []), ("erased", [], [0])]
    assert _scan(client, fvc / "101_3.tif")["opened"] is False          # the owner's finger: found no more
    assert _events(client, EventKind.UNLOCK_ATTEMPT)[-1]["reason"] == "no_match"

    assert client.delete(f"/api/users/{bo}", headers=owner.api()).status_code == 200   # the person
    assert module.pages() == [] and _page_map(client, settings) == {}
    bos = _scan(client, fvc / "102_3.tif")
    assert bos["opened"] is False and bos["awaiting_second_factor"] is False, bos
    assert _events(client, EventKind.UNLOCK_ATTEMPT)[-1]["reason"] == "no_match"
    erased = [e for e in _events(client, EventKind.PRIVACY) if e["reason"] == "fingerprint sensor pages erased"]
    assert [(e["subject"], e["pages_erased"]) for e in erased][-1] == (bo, [1])


def test_a_lock_paired_with_a_real_module_is_not_simulated(client: TestClient, settings: Settings) -> None:
    from limen.errors import ConfigError

    (settings.data_dir / "finger-sensor.json").write_text("{}")         # a real module's pairing
    desk: FingerDesk = client.app.state.fingers  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="paired with a fingerprint module"):
        desk.simulate()
    assert desk.simulator is None and (settings.data_dir / "finger-sensor.json").read_text() == "{}"
