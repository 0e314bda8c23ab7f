"""The service answers while it warms its models: loading holds no lock the request path needs."""

from __future__ import annotations

import threading

import pytest

from limen.config import Settings
from limen.runtime import Runtime
from limen.service import app as app_module
from limen.service import close_app, create_app
from tests.service.conftest import make_client

HANG_GUARD_S = 120  # only so that a regression fails instead of hanging the run; nothing here is timed


def test_pages_and_api_answer_while_models_load(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    loading, release, loaded = threading.Event(), threading.Event(), threading.Event()
    ran_under_lock: list[bool] = []
    application = create_app(settings)
    ctx = application.state.ctx

    def slow_load(rt: Runtime) -> None:  # stands for seconds of reading weights on a small board
        loading.set()
        release.wait(HANG_GUARD_S)
        loaded.set()

    def run_once(rt: Runtime) -> None:
        ran_under_lock.append(ctx.lock.serialised().locked())

    monkeypatch.setattr(app_module, "_load_models", slow_load)
    monkeypatch.setattr(app_module, "_warm_models", run_once)
    try:
        with make_client(application) as client:
            assert loading.wait(HANG_GUARD_S)
            assert client.get("/api/health").json() == {"status": "ok", "setup_required": True}
            page = client.get(f"/setup?token={ctx.setup_token}")  # takes the door path's lock (has_owner)
            assert page.status_code == 200
            assert ctx.lock.has_owner() is False
            assert not loaded.is_set(), "a request waited for the models to load"
            release.set()
            warm = next(t for t in threading.enumerate() if t.name == "limen-warm")
            warm.join(HANG_GUARD_S)
            assert not warm.is_alive()
        assert ran_under_lock == [True]  # each model's one run still excludes a concurrent unlock
    finally:
        release.set()
        close_app(application)


def test_warming_the_vault_re_derives_few_float64_rows(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from limen.vault.hazmat.transforms import SignProjection

    rows: list[int] = []
    real = SignProjection._rows

    def counted(self: SignProjection, indices):  # type: ignore[no-untyped-def]
        rows.append(len(indices))
        return real(self, indices)

    monkeypatch.setattr(SignProjection, "_rows", counted)
    application = create_app(settings)
    try:
        app_module._warm_models(application.state.ctx.runtime)
    finally:
        close_app(application)
    assert sum(rows) < 64  # a face-like probe settles a handful of signs, not all 32,768 rows (64 MB)
