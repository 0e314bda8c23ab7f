"""A failed handshake on the paired module (no answer, garbage, wrong password, the module gone) is a tamper
alarm on the audit trail and one clear error — never a bare serial exception, never "no finger"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from limen import fingerprint
from limen.audit.event import EventKind
from limen.bio.finger import protocol
from limen.bio.finger.sensor import PairedSensor, R30xSensor
from limen.bio.finger.simulator import SimulatedR30x
from limen.config import load_settings
from limen.errors import SensorUnavailable
from limen.runtime import Runtime, open_runtime


@pytest.fixture
def module() -> Iterator[SimulatedR30x]:
    with SimulatedR30x() as sim:
        yield sim


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    runtime = open_runtime(load_settings(data))
    yield runtime
    runtime.close()


def _paired(module: SimulatedR30x) -> PairedSensor:
    with R30xSensor(module.port, timeout_s=0.5) as sensor:
        pairing = sensor.pair()
    return PairedSensor(module.port, pairing.password, pairing.identity)


def _alarms(rt: Runtime) -> list[dict[str, object]]:
    return [{**r, **(r.get("data") or {})} for r in rt.audit.records(kinds=(EventKind.ALARM.value,))]


def test_an_unplugged_module_is_sensor_unavailable_not_a_serial_exception(module: SimulatedR30x) -> None:
    port = module.port
    module.unplug()
    with pytest.raises(protocol.SensorDisconnected, match="unplugged or cable cut") as raised:
        R30xSensor(port, timeout_s=0.3)
    assert isinstance(raised.value, SensorUnavailable) and isinstance(raised.value, protocol.SensorError)


def test_a_module_unplugged_while_open_is_sensor_unavailable(module: SimulatedR30x) -> None:
    with R30xSensor(module.port, timeout_s=0.3) as sensor:
        module.unplug()
        with pytest.raises((protocol.SensorDisconnected, protocol.SensorAuthError)):
            sensor.handshake()


def test_a_wrong_answer_code_fails_the_password_check(module: SimulatedR30x) -> None:
    paired = _paired(module)
    module.password ^= 1                        # the module now refuses the paired password
    with pytest.raises(protocol.SensorAuthError, match="refused the paired password"):
        paired.open()


def test_no_finger_is_said_only_after_a_good_handshake(module: SimulatedR30x) -> None:
    paired = _paired(module)
    with pytest.raises(protocol.SensorNoFinger, match="no finger"):
        paired.capture(wait_s=0.1)
    module.silent = True
    with pytest.raises(protocol.SensorAuthError, match="did not answer its password check") as raised:
        paired.capture(wait_s=0.1)
    assert not isinstance(raised.value, protocol.SensorTimeout)


@pytest.mark.parametrize("fault", ["silent", "garbage", "wrong-password", "unplugged"])
def test_a_failed_handshake_on_the_paired_module_is_a_tamper_alarm(module: SimulatedR30x, rt: Runtime,
                                                                   fault: str) -> None:
    paired = _paired(module)
    module.present(np.full((300, 300), 128, np.uint8))
    if fault == "silent":
        module.silent = True
    elif fault == "garbage":
        module.garbage = True
    elif fault == "wrong-password":
        module.swap_module()
    else:
        module.unplug()
    expected = protocol.SensorDisconnected if fault == "unplugged" else protocol.SensorAuthError
    with pytest.raises(expected):
        fingerprint.read(rt, paired, wait_s=0.2)
    alarms = _alarms(rt)
    assert len(alarms) == 1 and alarms[0]["reason"] == "tamper" and alarms[0]["outcome"] == "critical", alarms
    assert alarms[0]["subject"] == "fingerprint-sensor"
    assert "fingerprint sensor" in str(alarms[0]["text"])
    assert f"{paired.password:08x}" not in str(alarms[0]).lower()
    assert list(rt.audit.find(EventKind.UNLOCK_ATTEMPT)) == []


def test_no_finger_after_a_good_handshake_is_no_alarm(module: SimulatedR30x, rt: Runtime) -> None:
    paired = _paired(module)
    with pytest.raises(protocol.SensorNoFinger):
        fingerprint.read(rt, paired, wait_s=0.1)
    assert _alarms(rt) == []
