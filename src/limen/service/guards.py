"""Guards in front of every route: the Host name, and the methods a path answers.

`HostGuard` answers 400 to any request whose `Host` is not one of the
service's names (`Settings.allowed_hosts`, default: the bind address, the
machine's name and loopback, each bare or with the configured port), so a page
on another site whose name was rebound to the lock's address (DNS rebinding)
reaches nothing.  `MethodGuard` answers `OPTIONS` with 204 and an `Allow`
header, and an unsupported method with 405 and the full `Allow` list.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match, Mount

from limen.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_WILDCARD = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names of "every address", not a bind here


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Every `Host` value the service answers: each name bare and with the configured port, lower-case."""
    names = list(settings.allowed_hosts)
    if not names:
        names = ["127.0.0.1", "localhost", "[::1]"]
        if settings.host not in _WILDCARD:
            names.append(settings.host)
        hostname = socket.gethostname().lower()
        names += [hostname, f"{hostname}.local"]
    out: set[str] = set()
    for name in names:
        name = name.strip().lower()
        if ":" in name and not name.startswith("["):  # a bare IPv6 address
            name = f"[{name}]"
        out.add(name)
        if not name.rsplit("]", 1)[-1].count(":"):  # no port given: also with the configured port
            out.add(f"{name}:{settings.port}")
    return frozenset(out)


async def _json(send: Send, status: int, code: str, reason: str,
                headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": code, "reason": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """400 for a request whose Host header is not one of `hosts`."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").strip().lower()
            if host not in self.hosts:
                shown = host[:80] or "(none)"
                await _json(send, 400, "bad_host", f"this lock does not answer to the name {shown!r}; the owner "
                                                   "adds it to allowed_hosts in limen.toml if it is the lock's")
                return
        await self.app(scope, receive, send)


class MethodGuard:
    """`OPTIONS` → 204 with `Allow`; a method no route of the path takes → 405 with the full `Allow`."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self._methods(scope)
            if methods:
                allow = ((b"allow", ", ".join(sorted(methods | {"OPTIONS"})).encode()),)
                if scope["method"] == "OPTIONS":
                    await send({"type": "http.response.start", "status": 204, "headers": list(allow)})
                    await send({"type": "http.response.body", "body": b""})
                    return
                if scope["method"] not in methods:
                    await _json(send, 405, "method_not_allowed", f"{scope['method'][:16]} is not allowed here; "
                                "see the Allow header", allow)
                    return
        await self.app(scope, receive, send)

    def _methods(self, scope: Scope) -> set[str]:
        """Methods some route takes at this path; empty when none does or a mount (static files) serves it."""
        methods: set[str] = set()
        for method in _METHODS:
            probe = {**scope, "method": method}
            for route in self.routes:
                match, _ = route.matches(probe)
                if match is Match.FULL:
                    if isinstance(route, Mount):
                        return set()
                    methods.add(method)
                    break
        return methods
