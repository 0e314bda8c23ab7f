"""Match on sensor, two things at once on one lock (in process, the simulated module on a pty): two enrolments
never share a page, a search judged after its page changed hands names nobody, and a tamper response's Empty
that met a scan on the serial line is sent again once the line is free."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import fingerprint, people
from limen.bio.finger.sensor import PAGES_FILE, PairedSensor, R30xSensor, load_pages
from limen.bio.finger.simulator import SimulatedR30x
from limen.config import FingerMatching, Settings, load_settings
from limen.errors import ConfigError, VaultError
from limen.runtime import Runtime, open_runtime
from limen.vault.secrets import box_for

CONSENT = people.Consent("door", 30)


@pytest.fixture
def rt(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("LIMEN_FINGER_MATCHING", "sensor")
    settings: Settings = load_settings(data_dir)
    assert settings.finger_matching is FingerMatching.SENSOR
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def module(rt: Runtime) -> Iterator[SimulatedR30x]:
    with SimulatedR30x() as sim:
        with R30xSensor(sim.port) as sensor:
            pairing = sensor.pair()
        rt.use_finger_sensor(PairedSensor(sim.port, pairing.password, pairing.identity))
        yield sim


def _enrol(rt: Runtime, module: SimulatedR30x, name: str, prints: list[Path],
           serialised: object = contextlib.nullcontext) -> fingerprint.FingerEnrolled:
    for p in prints:
        module.present(p)
    return fingerprint.enrol(rt, rt.access(), name, CONSENT, "owner", datetime.now(UTC), sensor=rt.finger_sensor(),
                             wait_s=1.0, serialised=serialised)  # type: ignore[arg-type]


def _page_map(rt: Runtime) -> dict[int, str]:
    sensor = rt.finger_sensor()
    assert sensor is not None
    return load_pages(rt.settings.data_dir / PAGES_FILE, box_for(rt.conn), sensor.identity).pages  # type: ignore[arg-type]


def _identify(rt: Runtime, module: SimulatedR30x, probe: Path) -> str | None:
    module.present(probe)
    match = fingerprint.read(rt, rt.finger_sensor(), wait_s=1.0)
    return rt.fingers().identify(match).user_id if rt.fingers().identify(match).matched else None


def test_two_enrolments_at_once_never_share_a_page(rt: Runtime, module: SimulatedR30x, fvc_db1: Path) -> None:
    """Ada's enrolment stored her finger and waits for the service lock to record it; Bo's enrolment runs
    meanwhile.  Without the reservation Bo's finger went on Ada's page and Ada's record, saved last, named it."""
    entries = 0
    bo: list[fingerprint.FingerEnrolled] = []

    @contextlib.contextmanager
    def service_lock() -> Iterator[None]:
        nonlocal entries
        entries += 1
        if entries == 2:  # Ada: the finger is on the module, the page map does not list it yet
            bo.append(_enrol(rt, module, "Bo", [fvc_db1 / "102_1.tif", fvc_db1 / "102_2.tif"]))
        yield

    ada = _enrol(rt, module, "Ada", [fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif"], service_lock)
    assert bo and bo[0].page != ada.page
    assert module.pages() == sorted([ada.page, bo[0].page])  # type: ignore[type-var]
    assert _page_map(rt) == {ada.page: ada.user_id, bo[0].page: bo[0].user_id}
    assert rt.sensor_pages_reserved == set()
    assert _identify(rt, module, fvc_db1 / "102_3.tif") == bo[0].user_id      # Bo's finger is Bo, never Ada
    assert _identify(rt, module, fvc_db1 / "101_3.tif") == ada.user_id


def test_a_search_is_judged_by_the_page_map_it_was_made_under(rt: Runtime, module: SimulatedR30x,
                                                              fvc_db1: Path) -> None:
    """The module found Ada's page; before the attempt is judged Ada is erased and Bo enrolled on that same page.
    Judged by the map as it is then, the attempt named Bo for Ada's finger."""
    ada = _enrol(rt, module, "Ada", [fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif"])
    module.present(fvc_db1 / "101_3.tif")
    searched = fingerprint.read(rt, rt.finger_sensor(), wait_s=1.0)
    assert isinstance(searched, fingerprint.SensorMatch) and searched.page == ada.page

    assert rt.erase_sensor_pages(ada.user_id, "owner", datetime.now(UTC)).erased == [ada.page]
    people.delete(rt.conn, people.find(rt.conn, "Ada"))
    bo = _enrol(rt, module, "Bo", [fvc_db1 / "102_1.tif", fvc_db1 / "102_2.tif"])
    assert bo.page == ada.page and _page_map(rt) == {ada.page: bo.user_id}       # the page changed hands

    late = rt.fingers().identify(searched)
    assert not late.matched and late.user_id is None and late.detail == fingerprint.PAGES_CHANGED
    assert _identify(rt, module, fvc_db1 / "102_3.tif") == bo.user_id          # a new search is judged as usual


def _tamper(rt: Runtime, module: SimulatedR30x) -> None:
    from tests.bio.finger.test_sensor_erasure import case_opened

    module.commands.clear()  # the pairing's Empty
    assert case_opened(rt).erased


def _wait_for_empty(module: SimulatedR30x) -> None:
    from limen.bio.finger.protocol import Command

    deadline = time.monotonic() + 30
    while Command.EMPTY not in module.commands:
        assert time.monotonic() < deadline, "the tamper response sent no Empty"
        time.sleep(0.02)


def _emptied(rt: Runtime) -> list[tuple[str, str]]:
    return [(r["outcome"], r["source"]) for r in rt.audit.tail(100)
            if r["kind"] == "privacy" and r["reason"] == "fingerprint sensor library emptied"]


def _sensor_alarms(rt: Runtime) -> list[dict[str, object]]:
    return [r for r in rt.audit.tail(100) if r["kind"] == "alarm" and r["subject"] == "fingerprint-sensor"]


def test_a_tamper_empty_that_met_a_scan_is_sent_again_once_the_line_is_free(
        rt: Runtime, module: SimulatedR30x, fvc_db1: Path) -> None:
    """A scan holds the line; the response's Empty goes at once (and fails here, as an interleaved exchange
    may); once the scan lets go, it is sent again and the library is emptied."""
    _enrol(rt, module, "Ada", [fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif"])
    module.refuse_delete = True
    with rt.sensor_lock:  # a kiosk scan on the serial line
        _tamper(rt, module)
        _wait_for_empty(module)               # not held up by the scan …
        assert module.pages() == [0]          # … but it failed
        module.refuse_delete = False
    wiper = rt._sensor_wiper
    assert wiper is not None and wiper.thread is not None  # type: ignore[attr-defined]
    wiper.thread.join(timeout=60)  # type: ignore[attr-defined]
    assert module.pages() == [] and not (rt.settings.data_dir / PAGES_FILE).exists()
    assert _emptied(rt) == [("erased", "tamper")] and not _sensor_alarms(rt)


def test_a_tamper_empty_that_fails_twice_is_a_critical_alarm(rt: Runtime, module: SimulatedR30x,
                                                             fvc_db1: Path) -> None:
    from limen.bio.finger.protocol import Command

    _enrol(rt, module, "Ada", [fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif"])
    sensor = rt.finger_sensor()
    assert sensor is not None
    module.refuse_delete = True
    _tamper(rt, module)
    wiper = rt._sensor_wiper
    assert wiper is not None and wiper.thread is not None  # type: ignore[attr-defined]
    wiper.thread.join(timeout=60)  # type: ignore[attr-defined]
    assert module.pages() == [0] and module.commands.count(Command.EMPTY) == 2   # tried, and tried again
    with pytest.raises((VaultError, ConfigError)):   # the host's page map went with the crypto-erase, at once
        fingerprint.page_map(rt.conn, rt.settings.data_dir, sensor.identity)
    assert _emptied(rt) == [("failed", "tamper")]
    (alarm,) = _sensor_alarms(rt)
    assert alarm["outcome"] == "critical" and "not emptied" in str(alarm["data"]["text"])  # type: ignore[index]
