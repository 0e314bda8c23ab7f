"""Each package owns its tables: no module issues SQL against another package's tables.

A static check over src/limen.  Every table is owned by the package whose schema creates it (`CREATE TABLE` in
that package; the core registry `users`/`consents`/`enrolments` belongs to `limen.people`, `schema_versions` to
`limen.db`).  A string in any other package that reads or writes it in SQL (FROM, JOIN, INTO, UPDATE, TABLE) fails
here, and so does a package-prefixed table name (`access_credentials`, `link_devices`, …) written out in another
package (a name that a dynamic query would use).  Go through the owner's repository instead (e.g. `limen.people`,
`limen.access.holdings`, `limen.vault.records`, `limen.link.commands`), passing the connection in so that an
erasure or a restore stays one transaction.  The few exceptions are listed with their reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "limen"
_CREATE = re.compile(r"CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA)\b")
_TABLE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)

# (module, table) → why that module may name another package's table.
ALLOWED: dict[tuple[str, str], str] = {
    ("audit/log", "schema_versions"): "audit.db is a database file of its own, with its own schema_versions",
    ("tamper/schema", "access_lock"): "the (append-only) migration that moved lockdown's one source of truth "
                                      "from access_lock into tamper_lockdown",
    ("link/backup", "access_credentials"): "the restore reseals offline-code secrets in the rows it hands to "
                                           "access.holdings.restore_rows (a comparison, no SQL)",
}


def package(module: str) -> str:
    top = module.split("/")[0]
    return {"people": "core"}.get(top, top)


def _modules() -> dict[str, str]:
    return {p.relative_to(SRC).with_suffix("").as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(SRC.rglob("*.py"))}


def owners(modules: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {"schema_versions": "db"}  # limen.db's migration record
    for module, text in modules.items():
        for table in _CREATE.findall(text):
            found.setdefault(table.lower(), package(module))
    return found


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def foreign_tables(module: str, source: str, owner: dict[str, str],
                   allowed: dict[tuple[str, str], str] = ALLOWED) -> set[tuple[str, int, str]]:
    """(module, line, table) for every other package's table `source` names in SQL (or, prefixed, at all)."""
    mine = package(module)
    found = set()
    for line, text in _strings(ast.parse(source)):
        named = {t.lower() for t in _TABLE.findall(text)} if _SQL.search(text) else set()
        if "_" in text and text in owner:  # a prefixed table name alone: the table of a dynamic query
            named.add(text)
        for table in named:
            if table in owner and owner[table] != mine and (module, table) not in allowed:
                found.add((module, line, table))
    return found


def test_no_module_issues_sql_against_another_package_s_tables() -> None:
    modules = _modules()
    owner = owners(modules)
    stray = sorted(f"src/limen/{m}.py:{line} names {t} (owned by {owner[t]})"
                   for module, text in modules.items() for m, line, t in foreign_tables(module, text, owner))
    assert not stray, "SQL across packages (use the owner's repository):\n" + "\n".join(stray)


def test_the_scan_knows_the_owners_and_catches_a_raw_write() -> None:
    owner = owners(_modules())
    assert owner["users"] == "core" and owner["access_credentials"] == "access" and owner["link_devices"] == "link"
    assert owner["vault_records"] == "vault" and owner["backup_recipients"] == "link"
    raw = 'conn.execute("DELETE FROM users WHERE id = ?", (uid,))\nTABLES = ("access_credentials",)\n'
    assert {t for _, _, t in foreign_tables("privacy/erase", raw, owner)} == {"users", "access_credentials"}
    assert not foreign_tables("people", raw.splitlines()[0], owner)  # the owner itself may


def test_every_exception_is_still_needed() -> None:
    modules = _modules()
    owner = owners(modules)
    for module, table in ALLOWED:
        found = foreign_tables(module, modules[module], owner, allowed={})
        assert table in {t for _, _, t in found}, f"{module} no longer names {table}: drop the exception"
