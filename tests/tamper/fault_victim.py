"""Victim processes for the tamper SIGKILL campaign: a fork server (python fault_victim.py).

The server imports Limen once, then for every line `run DATA_DIR` on stdin
forks a child that opens the lock's parts (vault with templates enrolled,
audit log, simulated door), prints `journaled PID` as soon as the intent to
erase is durable, runs the response and prints `done PID`.  The parent kills
the child with SIGKILL at a random moment after `journaled`; the server reaps
it and prints `exited PID`.  Forking skips ~3 s of interpreter start-up per run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def respond(data_dir: Path) -> None:
    from limen.audit import open_audit
    from limen.config import load_settings
    from limen.door import SimulatedLock
    from limen.tamper import SourceKind, TamperSignal, open_responder
    from limen.vault import open_template_store

    settings = load_settings(data_dir)
    store = open_template_store(settings)
    audit = open_audit(settings)
    responder = open_responder(settings, store=store, audit=audit, door=SimulatedLock(travel_s=0.0))
    begin = responder.journal.begin

    def announced(intent: object) -> None:
        begin(intent)  # type: ignore[arg-type]
        print(f"journaled {os.getpid()}", flush=True)

    responder.journal.begin = announced  # type: ignore[method-assign]
    responder.respond(TamperSignal("case", SourceKind.CASE, "held", datetime.now(UTC)))
    print(f"done {os.getpid()}", flush=True)


def serve() -> None:
    import limen.audit  # noqa: F401 - everything the child needs, imported once
    import limen.door  # noqa: F401
    import limen.tamper  # noqa: F401
    import limen.vault  # noqa: F401
    from limen.db import COMPONENTS

    for component in COMPONENTS:  # every schema module open_db imports (some pull in heavy packages)
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"limen.{component}.schema")
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command != "run":
            break
        pid = os.fork()
        if pid == 0:
            try:
                respond(Path(arg))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        print(f"exited {pid}", flush=True)


if __name__ == "__main__":
    serve()
