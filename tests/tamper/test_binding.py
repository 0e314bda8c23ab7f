from __future__ import annotations

from pathlib import Path

import pytest

from limen.config import Settings
from limen.db import open_db
from limen.errors import BadRequest
from limen.tamper import SourceKind
from limen.tamper.binding import (
    ABSENT,
    CHANGED,
    UNBOUND,
    CallableSensor,
    SimulatedSensor,
    V4L2Camera,
    bind_sensors,
    check_sensors,
)

from .conftest import T0, Lock, unsealable_templates


def fake_sysfs(root: Path, serial: str) -> Path:
    usb = root / "devices" / "usb1" / "1-1"
    iface = usb / "1-1:1.0"
    iface.mkdir(parents=True)
    (usb / "idVendor").write_text("046d\n")
    (usb / "idProduct").write_text("0825\n")
    (usb / "serial").write_text(serial + "\n")
    node = root / "class" / "video0"
    node.mkdir(parents=True)
    (node / "name").write_text("UVC Camera\n")
    (node / "device").symlink_to(iface)
    return root / "class"


def test_v4l2_identity_from_sysfs(tmp_path: Path) -> None:
    cam = V4L2Camera("/dev/video0", sysfs=fake_sysfs(tmp_path, "ABC123"))
    identity = cam.identify()
    assert identity is not None and "usb:046d:0825" in identity and "serial:ABC123" in identity
    assert V4L2Camera("video9", sysfs=tmp_path / "class").identify() is None


def test_bind_then_check(settings: Settings, tmp_path: Path) -> None:
    conn = open_db(settings.db_path)
    cam = SimulatedSensor("camera", identity="usb:046d:0825|serial:1")
    finger = CallableSensor("fingerprint", "fingerprint", lambda: "R503|fw2")
    assert bind_sensors(conn, [cam, finger], "owner", T0) == {"camera": "usb:046d:0825|serial:1",
                                                              "fingerprint": "R503|fw2"}
    assert check_sensors(conn, [cam, finger]) == []
    cam.identity = "usb:046d:0825|serial:2"
    assert [m.problem for m in check_sensors(conn, [cam])] == [CHANGED]
    cam.identity = None
    assert [m.problem for m in check_sensors(conn, [cam])] == [ABSENT]
    assert [m.problem for m in check_sensors(conn, [SimulatedSensor("depth")])] == [UNBOUND]


def test_broken_driver_reads_as_absent(settings: Settings) -> None:
    def broken() -> str:
        raise OSError("i2c timeout")

    conn = open_db(settings.db_path)
    bind_sensors(conn, [SimulatedSensor("fingerprint", "fingerprint", "R503")], "owner", T0)
    assert check_sensors(conn, [CallableSensor("fingerprint", "fingerprint", broken)])[0].problem == ABSENT


def test_cannot_bind_an_absent_sensor(settings: Settings) -> None:
    with pytest.raises(BadRequest):
        bind_sensors(open_db(settings.db_path), [SimulatedSensor("camera", identity=None)], "owner", T0)


def test_swapped_camera_at_session_start_is_a_tamper(lock: Lock) -> None:
    cam = SimulatedSensor("camera", identity="usb:1|serial:A")
    bind_sensors(lock.responder.conn, [cam], "owner", T0)
    assert lock.responder.check_sensors([cam]) == []
    assert lock.store.status().state == "active"
    cam.identity = "usb:1|serial:B"
    problems = lock.responder.check_sensors([cam])
    assert [p.problem for p in problems] == [CHANGED]
    assert unsealable_templates(lock.settings) == 0
    (event,) = list(lock.audit.records(0, ("tamper",)))
    assert event["source"] == "tamper:camera" and event["reason"] == CHANGED
    assert event["data"]["kind"] == SourceKind.SENSOR.value
