"""Home Assistant's lockdown sensor follows the lock's one lockdown flag whoever changed it: `limen access lockdown
on|off` and `limen tamper simulate|clear` run as other processes (their records reach no observer of the service's),
and the service's link loop still publishes each change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.config import load_settings
from limen.link.loop import LinkLoop
from limen.service import close_app, create_app
from tests.cli.test_access_cli import limen

from .broker import Broker, start_broker
from .test_homeassistant_serve import BASE, Recorded, home_assistant
from .test_run import provision


@pytest.fixture  # one per test: retained discovery must not carry into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_the_lockdown_sensor_follows_a_lockdown_started_or_lifted_by_another_process(
        broker: Broker, tmp_path: Path) -> None:
    d = tmp_path / "data"
    provision(d, tmp_path, broker, Ed25519PrivateKey.generate())
    app = create_app(load_settings(d, link_broker=f"{broker.host}:{broker.port}", homeassistant=True))
    ctx = app.state.ctx
    seen = Recorded()
    ha_client = home_assistant(broker, seen)
    loop = LinkLoop(ctx.runtime, ctx.lock.serialised(), period_s=0.2).start()
    try:
        seen.until(f"{BASE}/lockdown", b"OFF", timeout=60)
        assert limen(d, "access", "lockdown", "on", "--as", "Olga").exit_code == 0
        seen.until(f"{BASE}/lockdown", b"ON", timeout=30)
        assert limen(d, "access", "lockdown", "off", "--as", "Olga").exit_code == 0
        seen.until(f"{BASE}/lockdown", b"OFF", timeout=30)

        assert limen(d, "tamper", "simulate", "case", "--yes").exit_code == 0
        seen.until(f"{BASE}/lockdown", b"ON", timeout=30)
        cleared = limen(d, "tamper", "clear", "--as", "Olga")
        assert cleared.exit_code == 0, cleared.output
        seen.until(f"{BASE}/lockdown", b"OFF", timeout=30)
    finally:
        loop.stop()
        ha_client.close()
        close_app(app)
    lockdowns = [p for t, p in seen.log if t == f"{BASE}/lockdown"]
    assert lockdowns[-4:] == [b"ON", b"OFF", b"ON", b"OFF"]
