"""Schemathesis against the OpenAPI schema: no 500s, every error a JSON body with a reason."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from limen.config import Settings
from limen.service import close_app, create_app
from limen.service.accounts import Scope

from .conftest import PASSWORD, PIN


def test_api_never_fails_with_a_server_error(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": ["testserver", "localhost"]}))  # in-process names
    try:
        ctx = app.state.ctx
        user_id = ctx.lock.first_owner("Alice", PIN)
        owner = ctx.accounts.create_first_owner(ctx.setup_token, "alice", PASSWORD, user_id)
        scopes = {Scope.READ, Scope.MANAGE, Scope.UNLOCK}
        auth = {"Authorization": f"Bearer {ctx.accounts.issue_token(owner, 'fuzz', scopes, days=1)[1]}",
                "Cookie": f"limen_kiosk={ctx.accounts.pair_local_screen()}"}  # the door screen's endpoints too
        ctx.lock.issue_code(user_id, "single_use")
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        statuses: list[int] = []
        for operation in operations:
            fuzz(operation, auth, statuses)
        assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
    finally:
        close_app(app)


def fuzz(operation: Any, auth: dict[str, str], statuses: list[int]) -> None:
    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case: Any) -> None:
        response = case.call(headers=auth)
        statuses.append(response.status_code)
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, (where, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict) and body.get("reason") and body.get("error"), (where, response.text[:300])

    check()
