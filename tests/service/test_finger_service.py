"""The fingerprint in the lock service: the console adds and removes fingers, the door screen reads them
from the (simulated) sensor through the controller, and sensor faults keep the door shut."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from limen.audit.event import EventKind
from limen.bio.finger.references import open_references
from limen.service.finger import FingerDesk
from tests.conftest import shared
from tests.service.conftest import PASSWORD, PIN, Owner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def fvc() -> Path:
    return shared("fvc2002", "DB1_B")


@pytest.fixture(autouse=True)
def _close_simulator(client: TestClient) -> Iterator[None]:
    yield
    _desk(client).close()


def _desk(client: TestClient) -> FingerDesk:
    desk: FingerDesk = client.app.state.fingers  # type: ignore[attr-defined]
    return desk


def _file(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/tiff")


def _add(owner: Owner, fvc: Path, finger: str = "101", position: int = 2, consent: bool = True,
         ) -> object:
    data = {"csrf": owner.csrf, "position": str(position), "purpose": "door", "retention_days": "30",
            "password": PASSWORD}  # an owner's finger: the password confirms it
    if consent:
        data["consent"] = "yes"
    files = [("images", _file(fvc / f"{finger}_{i}.tif")) for i in (1, 2, 3)]
    return owner.client.post(f"/owner/users/{owner.user_id}/fingers", data=data, files=files,
                             follow_redirects=False)


def _attempts(client: TestClient) -> list[dict[str, object]]:
    audit = client.app.state.ctx.runtime.audit  # type: ignore[attr-defined]
    return [dict(r.data) for r in audit.find(EventKind.UNLOCK_ATTEMPT)]


def test_console_adds_lists_and_removes_a_finger(owner: Owner, fvc: Path, settings) -> None:  # type: ignore[no-untyped-def]
    page = owner.client.get(f"/owner/users/{owner.user_id}/fingers")
    assert page.status_code == 200 and 'id="no-finger"' in page.text and "Add a finger" in page.text
    refused = _add(owner, fvc, consent=False)
    assert refused.status_code == 400 and "consent" in refused.text          # type: ignore[attr-defined]
    refs = open_references(owner.client.app.state.ctx.runtime.conn, settings.data_dir)  # type: ignore[attr-defined]
    assert refs.enrolled() == []                                                # nothing enrolled without consent
    added = _add(owner, fvc)
    assert added.status_code == 303                                            # type: ignore[attr-defined]
    assert refs.fingers(owner.user_id) == [2]
    page = owner.client.get(f"/owner/users/{owner.user_id}/fingers?done=finger-added")
    assert "right index" in page.text and "Finger added." in page.text
    lock = owner.client.app.state.ctx.lock  # type: ignore[attr-defined]
    assert [c.type.value for c in lock.access.credentials(owner.user_id)].count("fingerprint") == 1  # Matter's
    removed = owner.client.post(f"/owner/users/{owner.user_id}/fingers/2/remove",
                                data={"csrf": owner.csrf, "password": PASSWORD}, follow_redirects=False)
    assert removed.status_code == 303 and refs.enrolled() == []
    assert not list((settings.data_dir / "fingerprints").glob("*.fmr"))


def test_console_refuses_bad_uploads_and_strangers(owner: Owner, client: TestClient, tmp_path: Path,
                                                   fvc: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    r = owner.client.post(f"/owner/users/{owner.user_id}/fingers",
                          data={"csrf": owner.csrf, "position": "0", "purpose": "door", "retention_days": "30",
                                "consent": "yes", "password": PASSWORD},
                          files=[("images", _file(junk)), ("images", _file(junk))])
    assert r.status_code == 400 and "not a decodable image" in r.text
    r = owner.client.post(f"/owner/users/{owner.user_id}/fingers", data={"csrf": "forged", "consent": "yes"})
    assert r.status_code == 403
    assert owner.client.get("/owner/users/0123456789abcdef/fingers").status_code == 404
    owner.client.post("/logout")
    r = owner.client.get(f"/owner/users/{owner.user_id}/fingers", follow_redirects=False)
    assert r.status_code in (303, 401)


def test_door_screen_finger_then_pin_opens_through_the_simulated_sensor(owner: Owner, fvc: Path) -> None:
    assert _add(owner, fvc).status_code == 303                                 # type: ignore[attr-defined]
    client = owner.client
    no_sensor = client.post("/api/kiosk/finger")
    assert no_sensor.status_code == 409 and "no fingerprint sensor" in no_sensor.text
    _desk(client).simulate()
    page = client.get("/kiosk/finger")
    assert 'id="finger-scan"' in page.text and 'id="finger-simulated"' in page.text
    stranger = client.post("/api/kiosk/finger", files={"image": _file(fvc / "105_1.tif")})
    assert stranger.status_code == 200 and stranger.json()["opened"] is False
    assert stranger.json()["message"] == "not recognised"
    genuine = client.post("/api/kiosk/finger", files={"image": _file(fvc / "101_6.tif")})
    body = genuine.json()
    assert body["opened"] is False and body["awaiting_second_factor"] is True, body
    opened = client.post("/api/kiosk/keypad", json={"entry": PIN})
    assert opened.json()["opened"] is True
    attempts = _attempts(client)
    assert [a["factors"] for a in attempts[-3:]] == [["fingerprint"], ["fingerprint"], ["fingerprint", "pin"]]


def test_the_form_flow_and_a_finger_that_is_not_there(owner: Owner, fvc: Path) -> None:
    _desk(owner.client).simulate()
    empty = owner.client.post("/kiosk/finger", data={})                      # nothing laid on the sensor
    assert empty.status_code == 400 and "no finger on the sensor" in empty.text
    blank = owner.client.post("/kiosk/finger", files={"image": ("blank.png", _png_blank(), "image/png")})
    assert blank.status_code == 400 and "blank" in blank.text                 # refused before any attempt
    assert _attempts(owner.client) == []


def test_a_swapped_sensor_keeps_the_door_shut_and_raises_an_alarm(owner: Owner, fvc: Path) -> None:
    desk = _desk(owner.client)
    simulator = desk.simulate()
    simulator.swap_module()
    r = owner.client.post("/api/kiosk/finger", files={"image": _file(fvc / "101_6.tif")})
    assert r.status_code == 503 and "unavailable" in r.text
    audit = owner.client.app.state.ctx.runtime.audit  # type: ignore[attr-defined]
    alarms = [dict(a.data) for a in audit.find(EventKind.ALARM)]
    assert any("fingerprint sensor failed its password check" in str(a) for a in alarms)
    assert _attempts(owner.client) == []


def test_a_real_sensor_lock_refuses_uploaded_images(owner: Owner, fvc: Path, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    from limen.bio.finger.sensor import PairedSensor

    desk = _desk(owner.client)
    monkeypatch.setattr(desk, "sensor", lambda: PairedSensor("/dev/null", 1, "r30x:x"))
    r = owner.client.post("/api/kiosk/finger", files={"image": _file(fvc / "101_6.tif")})
    assert r.status_code == 400 and "not from uploaded images" in r.text


def _png_blank() -> bytes:
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((300, 300), 255, np.uint8))
    assert ok
    return bytes(data)


def test_the_person_page_links_to_the_fingers(owner: Owner) -> None:
    page = owner.client.get(f"/owner/users/{owner.user_id}")
    assert f'href="/owner/users/{owner.user_id}/fingers"' in page.text


def test_the_door_screen_offers_the_finger(owner: Owner) -> None:
    assert 'href="/kiosk/finger"' in owner.client.get("/kiosk").text
    page = owner.client.get("/kiosk/finger")                       # no sensor paired: says so, offers the PIN
    assert page.status_code == 200 and 'id="finger-none"' in page.text


def test_serve_simulate_sensors_starts_a_paired_simulated_module(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "LIMEN_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-c", "from limen.cli import main; main()", "serve", "--port", str(port),
               "--simulate-sensors"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("SIMULATED fingerprint sensor" in line for line in lines):
            lines.append(proc.stdout.readline())
        line = next(line for line in lines if "SIMULATED fingerprint sensor" in line)
        pty = line.split(" on ")[1].split(":")[0]
        assert pty.startswith("/dev/pts/") and os.path.exists(pty)
        for _ in range(100):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/kiosk/finger", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert page.status_code == 200 and 'id="finger-simulated"' in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_simulate_sensors_on_a_lock_paired_with_a_module_is_one_clear_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "finger-sensor.json").write_text("{}")          # a real module's pairing (content not read)
    env = {**os.environ, "LIMEN_DATA_DIR": str(data)}
    command = [sys.executable, "-c", "from limen.cli import main; main()", "serve", "--port", "0",
               "--simulate-sensors"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--simulate-sensors is for a lock without one" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (data / "finger-sensor.json").read_text() == "{}"    # the real module's pairing is left as it was


def test_a_damaged_pairing_record_is_one_clear_line(tmp_path: Path) -> None:
    from limen.bio.finger.sensor import load_pairing
    from limen.errors import VaultError

    for body in ("{}", "{\"password_sealed\": \"zz\", \"port\": \"/dev/x\", \"identity\": \"m\"}", "{\"trunc"):
        path = tmp_path / "finger-sensor.json"
        path.write_text(body)
        with pytest.raises(VaultError, match="pairing record finger-sensor.json is damaged"):
            load_pairing(path, box=None)  # type: ignore[arg-type]  # never reached: the record is read first


@pytest.mark.parametrize("fault", ["silent", "garbage", "unplugged"])
def test_a_failed_handshake_is_a_503_and_a_tamper_alarm_never_no_finger_nor_500(owner: Owner, fault: str) -> None:
    simulator = _desk(owner.client).simulate()
    if fault == "silent":
        simulator.silent = True
    elif fault == "garbage":
        simulator.garbage = True
    else:
        simulator.unplug()
    api = owner.client.post("/api/kiosk/finger")
    assert api.status_code == 503 and "unavailable" in api.text, api.text
    form = owner.client.post("/kiosk/finger", data={})
    assert form.status_code == 503 and "no finger" not in form.text
    audit = owner.client.app.state.ctx.runtime.audit  # type: ignore[attr-defined]
    alarms = [str(dict(a.data)) for a in audit.find(EventKind.ALARM)]
    assert len(alarms) == 2 and all("fingerprint sensor" in a for a in alarms), alarms
    assert _attempts(owner.client) == []


def test_an_unplugged_paired_module_is_one_clear_line_on_the_cli(tmp_path: Path) -> None:
    from limen.bio.finger.simulator import SimulatedR30x
    from tests.cli.test_cli import limen

    data = tmp_path / "data"
    with SimulatedR30x() as module:
        assert limen(data, "finger", "pair", module.port, "--current-password", "00000000").returncode == 0
        module.unplug()
        out = limen(data, "identify", "--sensor", module.port)
    assert out.returncode == 1, out.stderr
    assert "unexpected" not in out.stderr and "Traceback" not in out.stderr
    assert "serial port unavailable" in out.stderr and len(out.stderr.strip().splitlines()) <= 3
    tail = limen(data, "--json", "audit", "tail", "-n", "5")
    assert "cannot be reached" in tail.stdout
