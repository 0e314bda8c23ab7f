"""`open_runtime` is the one composition root: no other module opens limen.db, the vault or the audit log.

A static check over src/limen: every call that opens one of them (`sqlite3.connect`, `limen.db.connect` /
`open_db`, `open_audit`, `AuditLog(...)`, `open_template_store`) sits in `limen.runtime`, inside the package
that owns the store, or in one of the few places listed below with the reason it may not go through the runtime.
A new opener anywhere else fails here: give the part what it needs from the runtime instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "limen"
OPENERS = {"limen.db": {"connect", "open_db"}, "limen.audit": {"open_audit", "AuditLog"},
           "limen.audit.log": {"AuditLog"}, "limen.vault": {"open_template_store"}}

# (module, function) → why it opens a store itself.
ALLOWED: dict[tuple[str, str], str] = {
    ("db", "connect"): "the connection helper itself",
    ("db", "scratch_db"): "a private in-memory database (a backup's rows brought forward), not the lock's store",
    ("runtime", "Runtime.connection"): "the composition root",
    ("runtime", "open_runtime"): "the composition root",
    ("audit/__init__", "open_audit"): "the audit package opens its own store for the runtime",
    ("audit/log", "_open_store"): "the audit package's own store",
    ("audit/log", "AuditLog._ReaderCtx.__enter__"): "the audit log's reader connections",
    ("audit/delivery", "Dispatcher.pending_channels"): "the alarm delivery thread's own connection to audit.db",
    ("audit/delivery", "Dispatcher._until_next"): "the alarm delivery thread's own connection to audit.db",
    ("audit/delivery", "Dispatcher._deliver_channel"): "the alarm delivery thread's own connection to audit.db",
    ("vault/__init__", "_records"): "recovery path: an interrupted crypto-erase completes before anything else",
    ("vault/witness", "SealedHeadWitness._store"): "a never-waiting write beside a held write lock",
    ("tamper/response", "TamperResponder.__init__"): "recovery path and the monitor thread (built by the runtime)",
    ("tamper/__init__", "open_responder"): "a responder built before the runtime has an audit log (tests, recovery)",
    ("tamper/__init__", "open_responder.open_store"): "a tamper before the vault is open still erases it",
    # The audit trail's own tools read and repair the evidence even when the vault or limen.db cannot be opened.
    ("cli/audit", "_names"): "names beside ids in `limen audit tail`, read-only; absent limen.db → ids",
    ("cli/audit", "tail"): "evidence readable without the vault",
    ("cli/audit", "verify"): "evidence verifiable without the vault",
    ("cli/audit", "_with_vault_copy"): "the vault's copy of the head, optional for `verify`",
    ("cli/audit", "export"): "evidence exportable without the vault",
    ("cli/audit", "checkpoint"): "signing the head needs only the audit key",
    ("cli/audit", "recover"): "a corrupt audit.db cannot be opened by the runtime: this replaces it",
    ("cli/audit", "_incidents_accounted"): "the store `recover` replaces: which tamper incidents it accounts for",
    ("cli/alerts", "test"): "alarm channels must work when the vault does not (its failure is an alarm)",
    ("cli/alerts", "list_"): "the outbox, readable when the vault is not",
    ("cli/alerts", "deliver"): "alarm delivery without the vault",
}


def openers() -> set[tuple[str, str, int]]:
    found: set[tuple[str, str, int]] = set()
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).with_suffix("").as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in OPENERS:
                names |= {a.asname or a.name for a in node.names if a.name in OPENERS[node.module]}

        class Visit(ast.NodeVisitor):
            def __init__(self) -> None:
                self.where: list[str] = []

            def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
                self.where.append(node.name)
                self.generic_visit(node)
                self.where.pop()

            visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope  # noqa: N815

            def visit_Call(self, node: ast.Call) -> None:
                f = node.func
                direct = isinstance(f, ast.Name) and f.id in names
                raw = (isinstance(f, ast.Attribute) and f.attr == "connect" and isinstance(f.value, ast.Name)
                       and f.value.id == "sqlite3")
                if direct or raw:
                    found.add((module, ".".join(self.where), node.lineno))
                self.generic_visit(node)

        Visit().visit(tree)
    return found


def test_only_the_runtime_and_the_owning_packages_open_the_lock_s_stores() -> None:
    stray = sorted(f"src/limen/{m}.py:{line} in {fn or '<module>'}" for m, fn, line in openers()
                   if (m, fn) not in ALLOWED)
    assert not stray, "opens limen.db, the vault or the audit log outside the runtime:\n" + "\n".join(stray)


def test_the_scan_sees_the_runtime_open_everything() -> None:
    seen = {(m, fn) for m, fn, _ in openers()}
    assert ("runtime", "open_runtime") in seen and ("db", "connect") in seen  # the check is not blind
    assert ("cli/vault", "status") not in seen and ("cli/vault", "_status_dict") not in seen
