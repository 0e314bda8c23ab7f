"""A lock rig for link tests: access store, simulated door, controller, paired owner device."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen import thresholds
from limen.access.model import PermissionLevel
from limen.access.store import AccessStore
from limen.audit.event import AuditSink, MemoryAuditSink
from limen.clock import FixedClock
from limen.controller import AccessController
from limen.db import open_db
from limen.door import SimulatedLock
from limen.link.commands import Action, Command, CommandVerifier, DeviceRegistry, SignedCommand, sign
from limen.link.execute import LinkCommands

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LOCK_ID = "front-door"
OWNER_PIN = "246813"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@dataclass
class LockRig:
    clock: FixedClock
    sink: MemoryAuditSink
    store: AccessStore
    door: SimulatedLock
    controller: AccessController
    devices: DeviceRegistry
    verifier: CommandVerifier
    link: LinkCommands
    owner: str
    phone: Ed25519PrivateKey
    erased: list[str]
    counter: int = 0

    def command(self, action: Action = Action.UNLOCK, *, lock: str = LOCK_ID, device: str = "phone",
                expires_in: float = 60, counter: int | None = None, **args: str) -> Command:
        if counter is None:
            self.counter += 1
            counter = self.counter
        return Command(lock, action, counter, self.clock.now() + timedelta(seconds=expires_in), device, args)

    def signed(self, action: Action = Action.UNLOCK, key: Ed25519PrivateKey | None = None, **kw: object) -> bytes:
        return sign(self.command(action, **kw), key or self.phone).to_bytes()  # type: ignore[arg-type]

    def send(self, payload: bytes | SignedCommand):
        raw = payload.to_bytes() if isinstance(payload, SignedCommand) else payload
        return self.link.handle(raw, self.clock.now())

    def settle(self) -> None:
        self.clock.advance(0.5)
        self.controller.tick()


def build_rig(tmp_path: Path, audit: AuditSink | None = None, clock: FixedClock | None = None) -> LockRig:
    """The lock: owner Olga (signed remote unlock without PIN allowed), a paired phone, a simulated door."""
    clock = clock or FixedClock(T0)
    sink = MemoryAuditSink()
    log = audit or sink
    conn = open_db(tmp_path / "limen.db")
    store = AccessStore(conn, log)
    at = clock.now()
    owner = store.add_user("Olga", "", at, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
    store.set_config(owner, at, require_pin_for_remote=False)
    door = SimulatedLock(clock, travel_s=0.5, auto_relock_s=30)
    controller = AccessController(store, door, log, clock)
    devices = DeviceRegistry(conn)
    phone = Ed25519PrivateKey.generate()
    devices.pair("phone", phone.public_key(), owner, owner, at)
    verifier = CommandVerifier(devices, LOCK_ID)
    erased: list[str] = []

    def erase(user: str, actor: str, at: datetime) -> int:
        erased.append(user)
        return 1

    link = LinkCommands(verifier, controller, store, log, erase)
    return LockRig(clock, sink, store, door, controller, devices, verifier, link, owner, phone, erased)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LockRig]:
    r = build_rig(tmp_path)
    yield r
    r.devices.conn.close()
