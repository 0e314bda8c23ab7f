"""`limen status`: one look at the lock — vault, lockdown, door, face rule, audit chain head, pending alarms.

The lockdown is worded by its cause: an owner's (or the app's) lockdown is
lifted by an owner (`limen access lockdown off`), a tamper lockdown only by
re-provisioning (`limen tamper clear`); after one, the people whose faces and
fingerprints went with the old keys are named until they enrol again.

Opens the lock as every command does (`open_runtime`) and reads.  The door's
live state belongs to the lock service (`limen serve`); this shows the last
state the audit trail recorded.  `--verify` also verifies the whole audit chain.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Annotated, Any

import typer

from limen.cli.common import STATE, error_text, output
from limen.cli.common import gettext as _
from limen.errors import LimenError
from limen.service.i18n import N_

if TYPE_CHECKING:
    from limen.config import Settings
    from limen.runtime import Runtime

_RECENT = 5_000  # records scanned for the last door state and recent alarms
FACE_ALONE_WARNING = N_("WARNING: allow_face_alone_rgb is on: a face seen by an RGB camera opens alone; a photo "
                         "or a phone screen may pass (docs/access.md)")


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Verify the whole audit chain too.")] = False,
) -> None:
    """Vault, lockdown, door, face rule, audit chain head and pending alarms."""
    from limen.cli.tamper import tamper_status
    from limen.runtime import open_runtime

    STATE.json = STATE.json or json_out
    settings = STATE.settings
    data: dict[str, Any] = {"device_id": settings.device_id, "data_dir": str(settings.data_dir)}
    rt = open_runtime(settings)
    try:
        data["vault"] = _vault(rt)
        t = tamper_status(rt)
        data["lockdown"] = t["lockdown"]
        data["tamper"] = {"pending": t["pending"], "incidents": t["incidents"][:1], "sensors": t["sensors"],
                          "sources": tamper_source_names(settings)}
        audit = _audit(rt, verify)
        data["door"] = audit.pop("door")
        data["alarms"] = audit.pop("alarms")
        data["audit"] = audit
        data["access"] = _access(rt)
        data["re_enrol"] = _re_enrol(rt)
        data["backups"] = _backups(rt)
        data["fingers"] = _fingers(rt, settings)
    finally:
        rt.close()
    data["pad_models"] = _pad_models(settings)
    data["access"]["duress_reaches_nobody"] = duress_reaches_nobody(settings, data["access"]["duress_users"])
    data["face_rule"] = {"allow_face_alone_rgb": settings.allow_face_alone_rgb,
                         "face_alone_min": "medium" if settings.allow_face_alone_rgb else "high",
                         "warning": FACE_ALONE_WARNING if settings.allow_face_alone_rgb else None}
    output(data, lambda: _print(data))


def tamper_source_names(settings: Settings) -> list[str]:
    """Every tamper source the settings configure, as `runtime.tamper_sources` builds them: the switches and
    shock sensors of `tamper_sources`, the supply (`tamper_supply`) and each watched process (`tamper_watchdog`)."""
    names = list(settings.tamper_sources)
    if settings.tamper_supply is not None:
        names.append(f"supply:{settings.tamper_supply}")
    names += [f"watchdog:{item.partition(':')[0]}" for item in settings.tamper_watchdog]
    return names


NO_TAMPER_SOURCES = N_("no tamper sources configured (settings tamper_sources, tamper_supply, tamper_watchdog): "
                        "no case, escutcheon, shock switch, supply voltage or process is watched")


def model_detail(detail: str) -> str:
    """A model row's detail (`minifasnet_models.status`) in the CLI's language: its two states, or the error."""
    return {"verified": _("verified"), "not imported": _("not imported")}.get(detail) or error_text(detail)


def _pad_models(settings: Settings) -> dict[str, Any]:
    """PAD's imported models: faces pass PAD only when every one is imported and verifies."""
    from limen.pad.minifasnet_models import status as model_status

    rows = model_status(settings.models_dir)
    return {"ready": all(r.verified for r in rows),
            "models": {r.variant.spec.model: r.detail for r in rows}}


def _vault(rt: Runtime) -> dict[str, Any]:
    try:
        s = rt.store.status()
    except LimenError as exc:
        return {"state": "unavailable", "error": str(exc)}
    return {"state": s.state, "keystore": s.keystore, "key_generations": s.key_generations, "templates": s.records}


def _audit(rt: Runtime, verify: bool) -> dict[str, Any]:
    log = rt.audit
    count = log.count()
    out: dict[str, Any] = {"records": count, "head": None, "last_signed_index": None,
                           "door": {"last_recorded": None, "last_door": None},
                           "alarms": {"pending_deliveries": log.pending_deliveries(), "recent": []}}
    if count:
        head = log.tail(1)[0]
        signed = [c["index"] for c in log.checkpoints()]
        out.update(head={"index": head["index"], "hash": head["hash"], "recorded_at": head["recorded_at"]},
                   last_signed_index=max(signed) if signed else None)
        recent = list(log.records(max(0, count - _RECENT), ("lock_state", "door_state", "alarm")))
        out["door"] = {"last_recorded": _last(recent, "lock_state"), "last_door": _last(recent, "door_state")}
        alarms = [r for r in recent if r["kind"] == "alarm"][-5:]
        out["alarms"]["recent"] = [{"index": r["index"], "at": r["at"], "severity": r["outcome"], "rule": r["reason"],
                                    "subject": r["subject"]} for r in reversed(alarms)]
    if verify:
        try:
            summary = log.verify()
            out["verified"] = {"ok": True, "records": summary.records, "checkpoints": summary.checkpoints}
        except LimenError as exc:
            out["verified"] = {"ok": False, "error": str(exc)}
    return out


def _last(records: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [r for r in records if r["kind"] == kind]
    return None if not found else {"index": found[-1]["index"], "at": found[-1]["at"], "state": found[-1]["reason"]}


def _access(rt: Runtime) -> dict[str, Any]:
    from limen.access.model import UserType

    state = rt.access().load_state()
    users = len([u for u in state.users.values()])
    forced = sum(1 for u in state.users.values() if u.user_type is UserType.FORCED)
    return {"users": users, "mode": state.mode.value, "policy_lockdown": state.lockdown, "duress_users": forced}


def _re_enrol(rt: Runtime) -> list[dict[str, str]]:
    """The people the last re-provisioning erased (`lockdown_cleared`'s `re_enrol`) who have not enrolled since."""
    from limen import people

    count = rt.audit.count()
    cleared = [r for r in rt.audit.records(max(0, count - _RECENT), ("system",)) if r["reason"] == "lockdown_cleared"]
    if not cleared:
        return []
    names, enrolled = people.names(rt.conn), people.enrolled_ids(rt.conn)
    ids = (cleared[-1].get("data") or {}).get("re_enrol") or []
    return [{"user_id": str(u), "name": names[str(u)]} for u in ids if str(u) in names and str(u) not in enrolled]


def duress_reaches_nobody(settings: Settings, duress_users: int) -> bool:
    """A duress alarm is silent: the lock sends it only to signed webhooks (community security; never to apprise
    or a siren) and, when the lock is linked, to the cloud, which tells the owner.  With duress users and
    neither, a forced entry opens the door and alerts no one."""
    silent = any(url.startswith(("signed+https://", "signed+http://")) for url in settings.alert_urls)
    return duress_users > 0 and not silent and not settings.link_broker


def _fingers(rt: Runtime, settings: Settings) -> dict[str, Any]:
    """Enrolled fingers whose minutiae an older or unknown extractor found (their markers, nothing unsealed)."""
    from limen import people
    from limen.bio.finger.versions import FOLDER, outdated

    rows = outdated(settings.data_dir / FOLDER)
    names = people.names(rt.conn) if rows else {}
    return {"outdated": [{"user_id": u, "name": names.get(u, u), "position": p, "extractor": v} for u, p, v in rows]}


def _backups(rt: Runtime) -> dict[str, Any]:
    from limen.link.backup_summary import summary

    return summary(rt.conn)


def _cells(text: str) -> int:
    """Terminal columns `text` takes: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _row(label: str, text: str) -> str:
    """One line of `limen status`: the translated label padded to the column, then its text."""
    return label + " " * max(1, _LABEL_COLUMNS - _cells(label)) + text


_LABEL_COLUMNS = 11
_INDENT = " " * _LABEL_COLUMNS


def _print(d: dict[str, Any]) -> None:
    v, lock, a, al = d["vault"], d["lockdown"], d["audit"], d["alarms"]
    typer.echo(_row(_("device"), f"{d['device_id']}  ({d['data_dir']})"))
    typer.echo(_row(_("vault"), _("{state}, {templates} templates, {keystore} key store").format(
        state=v["state"], templates=v["templates"], keystore=v["keystore"]) if "templates" in v
        else f"{v['state']}: {error_text(str(v.get('error', '')))}"))
    typer.echo(_row(_("lockdown"), lockdown_text(lock)))
    if d["re_enrol"]:
        typer.echo(_row(_("enrol"), _("{who}: faces and fingerprints were erased by the tamper re-provisioning; "
                                      "they open with a PIN, code or key until they enrol again").format(
            who=", ".join(p["name"] for p in d["re_enrol"]))))
    if d["tamper"]["pending"]:
        typer.echo(_row(_("tamper"), _("unfinished response {incident} (completes at next start)").format(
            incident=d["tamper"]["pending"]["incident"])))
    sources = d["tamper"]["sources"]
    typer.echo(_row(_("tamper"), _("sources {sources}").format(sources=", ".join(sources)) if sources
                    else _(NO_TAMPER_SOURCES)))
    pad = d["pad_models"]
    typer.echo(_row(_("pad"), _("MiniFASNet imported and verified") if pad["ready"] else
                    _("faces refused: {models} (limen models import PATH)").format(
                        models="; ".join(f"{k} {model_detail(v)}" for k, v in pad["models"].items()))))
    face = d["face_rule"]
    typer.echo(_row(_("face"), _(face["warning"]) if face["warning"] else
                    _("opens alone only with a depth/IR cue; an RGB face asks for the PIN/code")))
    last = d["door"].get("last_recorded")
    typer.echo(_row(_("door"), _("{state} (recorded {at})").format(state=last["state"], at=last["at"]) if last
                    else _("no state recorded")))
    head = a.get("head")
    typer.echo(_row(_("audit"), _("{records} records, head {head}…, signed up to {signed}").format(
        records=a["records"], head=head["hash"][:16], signed=a["last_signed_index"]) if head else _("empty")))
    if "verified" in a:
        typer.echo(_INDENT + (_("chain verifies") if a["verified"]["ok"] else
                              _("chain BROKEN: {error}").format(error=error_text(a["verified"]["error"]))))
    typer.echo(_row(_("alarms"), _("{n} deliveries pending").format(n=al["pending_deliveries"]))
               + "".join(f"\n{_INDENT}#{r['index']} {r['severity']} {r['rule']} {r['at']}" for r in al["recent"]))
    b = d["backups"]
    typer.echo(_row(_("backups"), _("none set up (limen link backup-key / recovery-key)") if not b["set_up"] else
                    (_("{n} made, to {keys} key; templates {templates}") if b["recipients"] == 1 else
                     _("{n} made, to {keys} keys; templates {templates}")).format(
                        n=b["counter"], keys=b["recipients"],
                        templates=_("INCLUDED (owner opted in)") if b["templates"] else _("not included"))))
    old = d["fingers"]["outdated"]
    if old:
        typer.echo(_row(_("fingers"), _("{who}: made by an older or unknown extractor; re-enrol for better accuracy: "
                                        "limen finger enrol NAME --position N --replace …").format(
            who=", ".join(f"{f['name']} --position {f['position']}" for f in old))))
    acc = d["access"]
    typer.echo(_row(_("access"), _("{users} users, mode {mode}").format(users=acc.get("users"), mode=acc.get("mode"))))
    if acc.get("duress_reaches_nobody"):
        typer.echo(_INDENT + _("WARNING: {n} duress users, but a duress alarm reaches nobody: it goes only to a "
                               "signed webhook (alert_urls signed+https://…) or the cloud (link_broker)").format(
            n=acc["duress_users"]))


def lockdown_text(lock: dict[str, Any]) -> str:
    """The lockdown row (also `limen tamper status`), by cause: what it refuses and what lifts it."""
    if not lock["active"]:
        return _("off")
    if lock["cause"] == "command":
        return _("ACTIVE (owner lockdown) since {since} ({reason}): biometric and code unlocks disabled, nothing "
                 "erased; an owner lifts it with `limen access lockdown off --as NAME` or on the console").format(
            since=lock["since"], reason=lock["reason"])
    return _("ACTIVE (tamper lockdown) since {since} ({reason}): faces and fingerprints erased, biometric and code "
             "unlocks disabled; an owner re-provisions with `limen tamper clear`, then everyone enrols again").format(
        since=lock["since"], reason=lock["reason"])
