"""Sensor binding: the identity of each camera and fingerprint sensor, recorded at provisioning.

`bind_sensors(conn, probes, actor, at)` records what each probe reports;
`check_sensors(conn, probes)` compares, and the capture layer calls it (through
`TamperMonitor.check_sensors`) at the start of every capture session.  A sensor
that is gone, reports another identity, or was never bound is a mismatch, and a
mismatch is a tamper: a swapped camera could feed recorded faces.

Identities are descriptive strings, not secrets (USB vendor/product/serial,
device model).  Two sensors of the same model without a serial number cannot
be told apart from software: the binding then proves the model and the port,
no more (docs/tamper.md).
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from limen.db import transaction
from limen.errors import BadRequest

SYSFS_V4L2 = Path("/sys/class/video4linux")
ABSENT, CHANGED, UNBOUND = "absent", "swapped", "unbound"


class SensorProbe(Protocol):
    name: str          # stable role name: "camera", "depth", "fingerprint"
    kind: str          # "camera" | "fingerprint"

    def identify(self) -> str | None:
        """The sensor's identity now, or None when it is not there."""
        ...


@dataclass(frozen=True)
class Mismatch:
    name: str
    kind: str
    problem: str       # ABSENT, CHANGED or UNBOUND

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "problem": self.problem}


class SimulatedSensor:
    """A sensor whose identity tests set (None = unplugged); also the identity of file/video sources."""

    def __init__(self, name: str, kind: str = "camera", identity: str | None = "simulated:0") -> None:
        self.name, self.kind, self.identity = name, kind, identity

    def identify(self) -> str | None:
        return self.identity


class CallableSensor:
    """A sensor whose driver reports its identity (e.g. a fingerprint module's serial/product string)."""

    def __init__(self, name: str, kind: str, identify: Callable[[], str | None]) -> None:
        self.name, self.kind, self._identify = name, kind, identify

    def identify(self) -> str | None:
        try:
            return self._identify()
        except Exception:  # noqa: BLE001 - a sensor that cannot answer is absent (fail closed)
            return None


class V4L2Camera:
    """A V4L2 camera (`/dev/videoN`) identified from sysfs: driver name, USB vendor/product/serial, port."""

    def __init__(self, device: str = "video0", name: str = "camera", sysfs: Path = SYSFS_V4L2) -> None:
        self.device, self.name, self.kind, self.sysfs = Path(device).name, name, "camera", sysfs

    def identify(self) -> str | None:
        node = self.sysfs / self.device
        if not node.exists():
            return None
        parts = [f"v4l2:{_read(node / 'name')}"]
        usb = _usb_parent(node / "device")
        if usb is not None:
            parts += [f"usb:{_read(usb / 'idVendor')}:{_read(usb / 'idProduct')}",
                      f"serial:{_read(usb / 'serial')}", f"port:{usb.name}"]
        return "|".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:64]
    except OSError:
        return ""


def _usb_parent(device: Path) -> Path | None:
    try:
        here = device.resolve()
    except OSError:
        return None
    for candidate in (here, *here.parents):
        if (candidate / "idVendor").exists():
            return candidate
    return None


def bind_sensors(conn: sqlite3.Connection, probes: Iterable[SensorProbe], actor: str, at: datetime) -> dict[str, str]:
    """Record each present sensor's identity, replacing earlier bindings; `BadRequest` if one is absent."""
    found: dict[str, tuple[str, str]] = {}
    for probe in probes:
        identity = probe.identify()
        if identity is None:
            raise BadRequest(probe.name, "sensor not present: connect it before binding")
        found[probe.name] = (probe.kind, identity)
    with transaction(conn):
        conn.execute("DELETE FROM tamper_sensors")
        for name, (kind, identity) in found.items():
            conn.execute("INSERT INTO tamper_sensors(name, kind, identity, bound_at, bound_by) VALUES (?,?,?,?,?)",
                         (name, kind, identity, at.isoformat(), actor))
    return {name: identity for name, (_, identity) in found.items()}


def bound_sensors(conn: sqlite3.Connection) -> list[dict[str, str]]:
    rows = conn.execute("SELECT name, kind, identity, bound_at, bound_by FROM tamper_sensors ORDER BY name")
    return [dict(r) for r in rows]


def check_sensors(conn: sqlite3.Connection, probes: Iterable[SensorProbe]) -> list[Mismatch]:
    """Compare every probe with its binding (constant-time); bound sensors without a probe are not checked."""
    bound = {r["name"]: r["identity"] for r in bound_sensors(conn)}
    problems = []
    for probe in probes:
        identity = probe.identify()
        expected = bound.get(probe.name)
        if identity is None:
            problems.append(Mismatch(probe.name, probe.kind, ABSENT))
        elif expected is None:
            problems.append(Mismatch(probe.name, probe.kind, UNBOUND))
        elif not hmac.compare_digest(identity.encode(), expected.encode()):
            problems.append(Mismatch(probe.name, probe.kind, CHANGED))
    return problems
