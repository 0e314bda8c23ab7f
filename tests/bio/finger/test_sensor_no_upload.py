"""Match on sensor never uploads the print (no UpImage on the wire); match on host does."""

from __future__ import annotations

from pathlib import Path

from limen.bio.finger.protocol import Command
from limen.bio.finger.sensor import R30xSensor
from limen.bio.finger.simulator import SimulatedR30x


def test_enrolment_and_search_on_the_sensor_keep_the_image_in_the_module(fvc_db1: Path) -> None:
    with SimulatedR30x([fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif", fvc_db1 / "101_3.tif"]) as module, \
            R30xSensor(module.port, timeout_s=5.0) as sensor:
        sensor.enroll_on_sensor(page=3, wait_s=1.0)
        found = sensor.search_on_sensor(wait_s=1.0)
        assert found is not None and found[0] == 3
        assert Command.UP_IMAGE not in module.commands
        assert module.commands.count(Command.GEN_IMG) == 3 and module.commands.count(Command.VFY_PWD) == 3
        module.present(fvc_db1 / "101_4.tif")
        sensor.capture_image(wait_s=1.0)                   # match on host: the image has to come up
        assert module.commands[-1] == Command.UP_IMAGE
