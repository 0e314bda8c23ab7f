"""`limen serve` builds the door's 1:N finger index while it warms, not at the first finger attempt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from limen.audit.event import EventKind
from limen.bio.finger.extract import extract_file
from limen.bio.finger.references import ReferenceIndex, open_references
from limen.config import Settings
from limen.errors import VaultError
from limen.runtime import Runtime
from limen.service import app as app_module
from limen.service import close_app, create_app
from tests.conftest import shared


def _no_face_models(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(rt: Runtime) -> None:
        return None

    monkeypatch.setattr(app_module, "_load_models", nothing)
    monkeypatch.setattr(app_module, "_warm_models", nothing)


def _enrol(rt: Runtime, data_dir: Path) -> None:
    fvc = shared("fvc2002", "DB1_B")
    impressions = [extract_file(fvc / f"101_{i}.tif") for i in (1, 2, 3)]
    open_references(rt.conn, data_dir).put("ab12", impressions, position=2)


def test_warming_builds_the_finger_index_without_an_attempt(settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _no_face_models(monkeypatch)
    application = create_app(settings)
    try:
        ctx = application.state.ctx
        _enrol(ctx.runtime, settings.data_dir)
        assert len(ctx.runtime.finger_index) == 0                # nothing built yet
        app_module._warm(ctx)
        assert len(ctx.runtime.finger_index) == 3                # every impression indexed, no attempt made
        assert not list(ctx.runtime.audit.find(EventKind.UNLOCK_ATTEMPT))  # and no attempt was recorded
    finally:
        close_app(application)


def test_no_finger_enrolled_builds_nothing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_face_models(monkeypatch)
    searched: list[object] = []
    monkeypatch.setattr(ReferenceIndex, "search", lambda self, refs, probe: searched.append(probe) or [])
    application = create_app(settings)
    try:
        ctx = application.state.ctx
        app_module._warm(ctx)
        assert searched == [] and len(ctx.runtime.finger_index) == 0   # nothing unsealed, nothing searched
    finally:
        close_app(application)


def test_a_failed_warm_is_logged_without_biometrics_and_the_start_goes_on(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _no_face_models(monkeypatch)

    def broken(self: ReferenceIndex, references: object, probe: object) -> list[object]:
        raise VaultError("finger:ab12:2 does not open")

    monkeypatch.setattr(ReferenceIndex, "search", broken)
    application = create_app(settings)
    try:
        ctx = application.state.ctx
        _enrol(ctx.runtime, settings.data_dir)
        with caplog.at_level(logging.WARNING):
            app_module._warm(ctx)                                 # no exception
        assert "fingerprint index not built at start (VaultError)" in caplog.text
        assert "ab12" not in caplog.text
        assert len(ctx.runtime.finger_index) == 0
    finally:
        close_app(application)
