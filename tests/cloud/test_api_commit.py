"""The REST API commits before it answers: an owner who acknowledges and reads straight back sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm

from .test_api import connected, login

Message = MutableMapping[str, Any]


def test_an_acknowledgement_is_committed_before_the_answer_leaves(engine: Engine) -> None:
    app = create_app(engine, open_signup=True)
    seen_at_answer: list[datetime | None] = []
    alarm_ids: list[int] = []

    async def watching(scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        """Reads the database from another session the moment the response starts (as a second client would)."""
        async def peek(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["path"].endswith("/ack"):
                with sessions(engine)() as s:
                    row = s.get(Alarm, alarm_ids[0])
                    seen_at_answer.append(row.acknowledged_at if row else None)
            await send(message)
        await app(scope, receive, peek)

    client = TestClient(watching)  # type: ignore[arg-type]
    olga = login(client, "olga@example.org")
    connected(engine, "front-door", "abc-def-123")
    assert client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                       headers=olga).status_code == 201
    with sessions(engine)() as s, s.begin():
        alarm = Alarm(lock_id="front-door", rule="audit_truncated", detail="cut back", raised_at=datetime(2026, 1, 1))
        s.add(alarm)
        s.flush()
        alarm_ids.append(alarm.id)
    answer = client.post(f"/api/alarms/{alarm_ids[0]}/ack", headers=olga)
    assert answer.status_code == 200 and answer.json()["acknowledged_at"] is not None
    assert seen_at_answer and seen_at_answer[0] is not None  # committed before the response started
    assert client.get("/api/alarms", headers=olga).json() == []  # read straight back: no longer pending
