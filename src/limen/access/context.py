"""What every access repository works with: one connection, the audit sink, the event source, the PIN pepper."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from limen.access import pins
from limen.audit.event import AuditSink, Event, EventKind


@dataclass
class AccessContext:
    """Shared by the repositories of one `AccessStore`; the pepper can be replaced (a restored backup's)."""

    conn: sqlite3.Connection
    audit: AuditSink
    source: str
    pepper: pins.Pepper

    @property
    def token(self) -> TokenIssuer | None:
        """The API token acting in this call (`issuing`), else None (a person): this thread's / task's only."""
        return _ISSUING.get().get(id(self))

    @contextmanager
    def issuing(self, token: TokenIssuer | None) -> Iterator[None]:
        """Changes made inside are the token's: credentials and codes record it and end by its expiry, and the
        audit records name it (its id, never the secret).

        Held in a context variable keyed by this context, not on the shared object: another thread (or task)
        changing the lock through the same store meanwhile acts as itself, never as this token.
        """
        reset = _ISSUING.set(MappingProxyType({**_ISSUING.get(), id(self): token}))
        try:
            yield
        finally:
            _ISSUING.reset(reset)

    def until(self, valid_until: datetime | None) -> datetime | None:
        """A new credential's end: never after the issuing token's expiry."""
        if self.token is None:
            return valid_until
        return self.token.expires_at if valid_until is None else min(valid_until, self.token.expires_at)

    def emit(self, kind: EventKind, at: datetime, actor: str, subject: str | None, reason: str,
             **data: Any) -> None:
        """Append one change event naming actor, subject and what changed (never a PIN or secret)."""
        if self.token is not None:
            data = {**data, "token_id": self.token.token_id}
        self.audit.append(Event(kind, at, actor=actor, subject=subject, reason=reason, source=self.source,
                                data=data))


@dataclass(frozen=True)
class TokenIssuer:
    """An API token acting for its owner: its id (never the secret) and when it expires."""

    token_id: str
    expires_at: datetime


# AccessContext (by id: it is alive while its `issuing` block runs, the only time it has an entry) → the token
_ISSUING: ContextVar[Mapping[int, TokenIssuer | None]] = ContextVar("limen_access_issuing",
                                                                    default=MappingProxyType({}))
