"""The R30x driver against the simulated module on a pty: pairing, password, images, faults, tamper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from limen.bio.finger import protocol
from limen.bio.finger.sensor import REFUSED_IDENTITY, R30xSensor, pack_image, unpack_image
from limen.bio.finger.simulator import SimulatedR30x, sensor_frame
from limen.db import open_db
from limen.tamper.binding import CHANGED, bind_sensors, check_sensors


@pytest.fixture
def module() -> Iterator[SimulatedR30x]:
    with SimulatedR30x() as sim:
        yield sim


def _ridges(seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:300, 0:300]
    rng = np.random.default_rng(seed)
    return (128 + 100 * np.sin(x / 1.5 + 8 * np.sin(y / 40 + rng.uniform(0, 6)))).astype(np.uint8)


def test_the_handshake_packet_is_the_documented_one() -> None:
    packet = protocol.encode(protocol.Pid.COMMAND, bytes([protocol.Command.VFY_PWD]) + bytes(4))
    assert packet.hex() == "ef01ffffffff0100071300000000001b"


def test_pairing_sets_a_random_password_that_every_scan_then_needs(module: SimulatedR30x) -> None:
    with R30xSensor(module.port, timeout_s=1.0) as sensor:
        pairing = sensor.pair()
    assert pairing.password == module.password != protocol.DEFAULT_PASSWORD
    assert pairing.identity.startswith("r30x:sys=0009:lib=200:addr=FFFFFFFF")
    with R30xSensor(module.port, password=protocol.DEFAULT_PASSWORD, timeout_s=1.0) as stranger:
        with pytest.raises(protocol.SensorAuthError):
            stranger.capture_image(wait_s=0.1)
        assert stranger.identify() == REFUSED_IDENTITY
    with R30xSensor(module.port, password=pairing.password, timeout_s=1.0) as sensor:
        assert sensor.identify() == pairing.identity


def test_an_image_comes_up_at_4_bits_per_pixel(module: SimulatedR30x) -> None:
    image = _ridges()
    module.present(image)
    with R30xSensor(module.port, timeout_s=2.0) as sensor:
        got = sensor.capture_image(wait_s=1.0)
    assert got.shape == (288, 256) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - sensor_frame(image).astype(int)).max() <= 17


def test_pack_and_unpack_are_inverse_on_4_bit_levels() -> None:
    image = (np.random.default_rng(0).integers(0, 16, (288, 256)) * 17).astype(np.uint8)
    assert np.array_equal(unpack_image(pack_image(image)), image)


def test_no_finger_times_out_with_a_clear_error(module: SimulatedR30x) -> None:
    with R30xSensor(module.port, timeout_s=1.0) as sensor, pytest.raises(protocol.SensorTimeout, match="no finger"):
        sensor.capture_image(wait_s=0.2)


def test_garbage_and_silence_fail_the_password_check(module: SimulatedR30x) -> None:
    module.garbage = True   # a handshake not answered correctly proves nothing: it fails like a refused password
    with R30xSensor(module.port, timeout_s=0.3) as sensor, pytest.raises(protocol.SensorAuthError, match="garbage"):
        sensor.handshake()
    module.garbage, module.silent = False, True
    with R30xSensor(module.port, timeout_s=0.3) as sensor, pytest.raises(protocol.SensorAuthError,
                                                                          match="did not answer"):
        sensor.handshake()


def test_a_corrupted_checksum_is_refused() -> None:
    packet = bytearray(protocol.encode(protocol.Pid.ACK, b"\x00"))
    packet[-1] ^= 0xFF
    address, pid, length = protocol.decode_header(bytes(packet[:9]))
    with pytest.raises(protocol.SensorProtocolError, match="checksum"):
        protocol.decode_body(address, pid, length, bytes(packet[9:]))


def test_a_swapped_module_is_a_tamper_mismatch(module: SimulatedR30x, tmp_path: Path) -> None:
    with R30xSensor(module.port, timeout_s=1.0) as sensor:
        pairing = sensor.pair()
    conn = open_db(tmp_path / "limen.db")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with R30xSensor(module.port, password=pairing.password, timeout_s=1.0) as sensor:
        bind_sensors(conn, [sensor], "owner", at)
        assert check_sensors(conn, [sensor]) == []
        module.swap_module()
        problems = check_sensors(conn, [sensor])
    assert [(p.name, p.kind, p.problem) for p in problems] == [("fingerprint", "fingerprint", CHANGED)]


def test_match_on_sensor_with_real_prints(fvc_db1: Path) -> None:
    with SimulatedR30x([fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif", fvc_db1 / "101_3.tif",
                        fvc_db1 / "102_1.tif"]) as sim, R30xSensor(sim.port, timeout_s=5.0) as sensor:
        sensor.enroll_on_sensor(page=7, wait_s=1.0)
        found = sensor.search_on_sensor(wait_s=1.0)
        assert found is not None and found[0] == 7
        assert sensor.search_on_sensor(wait_s=1.0) is None


def test_a_module_with_a_serial_number_reports_it_in_its_identity() -> None:
    with SimulatedR30x(serial_number=bytes.fromhex("0011223344556677")) as sim, \
            R30xSensor(sim.port, timeout_s=1.0) as sensor:
        assert sensor.identify().endswith(":sn=0011223344556677")  # type: ignore[union-attr]
        sim.serial_number = bytes.fromhex("0011223344556678")      # same model, another unit
        assert sensor.identify().endswith(":sn=0011223344556678")  # type: ignore[union-attr]
