"""`limen status`: one look at the lock — vault, lockdown, door, audit chain head, pending alarms.

Reads only (the vault is opened as every command opens it).  The door's live
state belongs to the lock service (`limen serve`); this shows the last state
the audit trail recorded.  `--verify` also verifies the whole audit chain.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import typer

from limen.cli.common import STATE, output
from limen.config import Settings
from limen.errors import LimenError


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Verify the whole audit chain too.")] = False,
) -> None:
    """Vault, tamper lockdown, door, audit chain head and pending alarms."""
    STATE.json = STATE.json or json_out
    settings = STATE.settings
    data: dict[str, Any] = {"device_id": settings.device_id, "data_dir": str(settings.data_dir)}
    data["vault"] = _vault(settings)
    data.update(_tamper())
    audit = _audit(settings, verify)
    data["door"] = audit.pop("door")
    data["alarms"] = audit.pop("alarms")
    data["audit"] = audit
    data["access"] = _access(settings)
    output(data, lambda: _print(data))


def _vault(settings: Settings) -> dict[str, Any]:
    from limen.vault import open_template_store

    try:
        store = open_template_store(settings)
    except LimenError as exc:
        return {"state": "unavailable", "error": str(exc)}
    try:
        s = store.status()
        return {"state": s.state, "keystore": s.keystore, "key_generations": s.key_generations,
                "templates": s.records}
    finally:
        store.close()


def _tamper() -> dict[str, Any]:
    from limen.cli.tamper import tamper_status

    t = tamper_status()
    return {"lockdown": t["lockdown"], "tamper": {"pending": t["pending"], "incidents": t["incidents"][:1],
                                                  "sensors": t["sensors"]}}


def _audit(settings: Settings, verify: bool) -> dict[str, Any]:
    from limen.audit import audit_db_path, open_audit
    from limen.db import connect

    path = audit_db_path(settings)
    out: dict[str, Any] = {"records": 0, "head": None, "last_signed_index": None,
                           "door": {"last_recorded": None}, "alarms": {"pending_deliveries": 0, "recent": []}}
    if not path.exists():
        return out
    conn = connect(path)
    try:
        head = conn.execute("SELECT idx, hash, recorded_at FROM records ORDER BY idx DESC LIMIT 1").fetchone()
        signed = conn.execute("SELECT MAX(idx) FROM checkpoints").fetchone()[0]
        if head is not None:
            out.update(records=head["idx"] + 1, head={"index": head["idx"], "hash": head["hash"],
                                                      "recorded_at": head["recorded_at"]},
                       last_signed_index=signed)
        out["door"] = {"last_recorded": _last(conn, "lock_state"), "last_door": _last(conn, "door_state")}
        pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        recent = [dict(r) for r in conn.execute(
            "SELECT idx AS \"index\", at, outcome AS severity, reason AS rule, subject FROM records "
            "WHERE kind = 'alarm' ORDER BY idx DESC LIMIT 5")]
        out["alarms"] = {"pending_deliveries": pending, "recent": recent}
    except sqlite3.DatabaseError as exc:
        out["error"] = f"audit database unreadable ({exc})"
    finally:
        conn.close()
    if verify:
        try:
            summary = open_audit(settings).verify()
            out["verified"] = {"ok": True, "records": summary.records, "checkpoints": summary.checkpoints}
        except LimenError as exc:
            out["verified"] = {"ok": False, "error": str(exc)}
    return out


def _last(conn: sqlite3.Connection, kind: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT idx, at, reason FROM records WHERE kind = ? ORDER BY idx DESC LIMIT 1",
                       (kind,)).fetchone()
    return None if row is None else {"index": row["idx"], "at": row["at"], "state": row["reason"]}


def _access(settings: Settings) -> dict[str, Any]:
    from limen.db import open_db

    conn = open_db(settings.db_path)
    try:
        users = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        row = conn.execute("SELECT mode, lockdown FROM access_lock WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        return {"users": None}
    finally:
        conn.close()
    if row is None:
        return {"users": users, "mode": "unconfigured"}
    return {"users": users, "mode": row["mode"], "policy_lockdown": bool(row["lockdown"])}


def _print(d: dict[str, Any]) -> None:
    v, lock, a, al = d["vault"], d["lockdown"], d["audit"], d["alarms"]
    typer.echo(f"device     {d['device_id']}  ({d['data_dir']})")
    typer.echo(f"vault      {v['state']}" + (f", {v['templates']} templates, {v['keystore']} key store"
                                              if "templates" in v else f": {v.get('error', '')}"))
    typer.echo("lockdown   " + (f"ACTIVE since {lock['since']} ({lock['reason']}): biometric and code unlocks "
                                "disabled; owner re-provisions with `limen tamper clear`" if lock["active"] else "off"))
    if d["tamper"]["pending"]:
        typer.echo(f"tamper     unfinished response {d['tamper']['pending']['incident']} (completes at next start)")
    last = d["door"].get("last_recorded")
    typer.echo("door       " + (f"{last['state']} (recorded {last['at']})" if last else "no state recorded"))
    head = a.get("head")
    typer.echo("audit      " + (f"{a['records']} records, head {head['hash'][:16]}…, signed up to "
                                f"{a['last_signed_index']}" if head else "empty"))
    if "verified" in a:
        typer.echo("           chain " + ("verifies" if a["verified"]["ok"] else f"BROKEN: {a['verified']['error']}"))
    typer.echo(f"alarms     {al['pending_deliveries']} deliveries pending"
               + "".join(f"\n           #{r['index']} {r['severity']} {r['rule']} {r['at']}" for r in al["recent"]))
    acc = d["access"]
    typer.echo(f"access     {acc.get('users')} users, mode {acc.get('mode')}")
