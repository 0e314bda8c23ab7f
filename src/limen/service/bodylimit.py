"""A request body limit in front of an ASGI app (the lock's service and the cloud's API).

`BodyLimitMiddleware` refuses a body over `limit` bytes with 413: by its
`Content-Length` before the app runs, or while a chunked body streams (the app's
read raises `TooLarge`, an HTTP error FastAPI passes through as it is); nothing
past the limit is kept.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TooLarge(StarletteHTTPException):
    """Raised from `receive` past the limit: FastAPI's body parsing re-raises HTTP errors as they are (413)."""

    def __init__(self, reason: str) -> None:
        super().__init__(413, reason)


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes with 413 and `answer` (JSON; default `{"error": "too_large",
    "reason": reason}`), by header or while streaming; nothing is kept."""

    def __init__(self, app: ASGIApp, limit: int, reason: str, answer: dict[str, str] | None = None) -> None:
        self.app, self.limit, self.reason = app, limit, reason
        self.body = json.dumps(answer or {"error": "too_large", "reason": reason}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge(self.reason)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode())]})
        await send({"type": "http.response.body", "body": self.body})
