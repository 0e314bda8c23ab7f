"""An API token's `issuing` applies only to the call that issues (final review, finding 2).

`AccessContext.issuing` set the token on the context every thread of the store shares: a person's change made
by another thread meanwhile was recorded as the token's (ended by its expiry, revoked with it, audited under
its id).  The token now lives in a context variable: this thread's (or task's) calls only.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from limen.access.context import TokenIssuer
from limen.access.model import CredentialType
from limen.access.store import AccessStore
from limen.audit.event import EventKind, MemoryAuditSink

from .builders import T0

TOKEN = TokenIssuer("tok-api-1", T0 + timedelta(hours=2))


def test_a_token_applies_only_to_the_thread_that_issues(store: AccessStore, owner_id: str,
                                                        sink: MemoryAuditSink) -> None:
    store.add_user("Max", owner_id, T0)
    store.add_user("Tom", owner_id, T0)
    inside, person_done = threading.Event(), threading.Event()
    made: dict[str, str] = {}

    def api() -> None:  # the token's request: enters `issuing`, waits while the person acts, then changes
        with store.issuing(TOKEN):
            inside.set()
            assert person_done.wait(30)
            made["api"] = store.add_credential("Tom", CredentialType.PIN, owner_id, T0, secret="580246").id

    def person() -> None:  # the owner at the console, in another thread, during the token's block
        assert inside.wait(30)
        try:
            made["person"] = store.add_credential("Max", CredentialType.PIN, owner_id, T0, secret="135792").id
        finally:
            person_done.set()

    threads = [threading.Thread(target=api), threading.Thread(target=person)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(made) == {"api", "person"}
    rows = {r["id"]: r for r in store.conn.execute("SELECT id, issued_token, valid_until FROM access_credentials")}
    assert rows[made["person"]]["issued_token"] is None and rows[made["person"]]["valid_until"] is None
    assert rows[made["api"]]["issued_token"] == TOKEN.token_id and rows[made["api"]]["valid_until"] is not None
    added = {e.data["credential_id"]: e for e in sink.events if e.kind is EventKind.CREDENTIAL_CHANGE
             and e.reason == "credential added"}
    assert "token_id" not in added[made["person"]].data
    assert added[made["api"]].data["token_id"] == TOKEN.token_id


def test_issuing_nests_and_ends(store: AccessStore, owner_id: str) -> None:
    ctx = store._ctx
    assert ctx.token is None
    with store.issuing(TOKEN):
        assert ctx.token == TOKEN
        with store.issuing(None):  # a person's own secret inside a token's request (codes.py)
            assert ctx.token is None
        assert ctx.token == TOKEN
    assert ctx.token is None
