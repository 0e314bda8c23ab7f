"""History and alarms as people read them: sentences in the lock's time zone, names not ids, one alarm per incident.

Straight from audit records (the trail keeps the exact reasons): `activity`
turns unlock attempts into "Alice opened with her face" and runs of refusals
into "3 wrong codes at the door"; `incidents` folds the alarms one burst of
failures raises under several rules (per method, in total, multimodal) into one
incident with its severity, sentence and acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from limen import thresholds as T
from limen.access.policy import OWNER_LOCKDOWN
from limen.service.i18n import N_, format_when, gettext, ngettext

METHODS = ("face", "fingerprint", "pin", "code", "nfc", "remote", "key")
_WITH = {"face": N_("{who} opened with their face"), "fingerprint": N_("{who} opened with their fingerprint"),
         "pin": N_("{who} opened with their PIN"), "code": N_("{who} opened with a code"),
         "nfc": N_("{who} opened with their tag"), "remote": N_("{who} opened with the app (remote)"),
         "key": N_("{who} opened with the mechanical key")}
_WRONG = {"face": (N_("face not recognised at the door"), N_("{n} faces not recognised at the door")),
          "fingerprint": (N_("finger not recognised at the door"), N_("{n} fingers not recognised at the door")),
          "pin": (N_("wrong code at the door"), N_("{n} wrong codes at the door")),
          "code": (N_("wrong code at the door"), N_("{n} wrong codes at the door")),
          "nfc": (N_("unknown tag at the door"), N_("{n} unknown tags at the door")),
          "remote": (N_("refused remote unlock at the door"), N_("{n} refused remote unlocks at the door")),
          "key": (N_("key turn refused at the door"), N_("{n} key turns refused at the door"))}
_ANY_WRONG = (N_("refused attempt at the door"), N_("{n} refused attempts at the door"))
_GUEST_OPENED = N_("{who} opened with their guest code")  # a guest's code is a PIN credential of a guest user
_DURING_LOCKOUT = (N_("code typed while the keypad was locked out"),  # refused whether right or wrong
                   N_("{n} codes typed while the keypad was locked out"))
# Refused before the entry was checked, right or wrong, by whatever method: not wrong codes, not strangers.
_SHUT = {"mode_forbids": (N_("attempt while the lock's mode kept the door shut"),
                          N_("{n} attempts while the lock's mode kept the door shut")),
         "lockdown": (N_("attempt during the lockdown"), N_("{n} attempts during the lockdown"))}
_WHY = {"outside_schedule": N_("outside their hours"), "locked_out": N_("while the keypad was locked out"),
        "second_factor_missing": N_("the PIN was still needed"), "pin_required": N_("the PIN was still needed"),
        "face_first": N_("the face was still needed"),
        "credential_revoked": N_("with a revoked code"), "credential_expired": N_("with an expired code"),
        "pad_failed": N_("a photo or screen was shown"), "lockdown": N_("during the tamper lockdown"),
        "lockdown_command": N_("during the owner's lockdown"),
        "disabled_user": N_("the person is disabled"),
        "remote_only_user": N_("they may only open remotely")}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_ALARM_TEXT = {
    "consecutive_failures_method": N_("{n} failed attempts in a row at the door"),
    "consecutive_failures_total": N_("{n} failed attempts in a row at the door"),
    "multimodal_failures": N_("{n} failed attempts at the door with several methods"),
    "presentation_attack": N_("someone showed a photo or a screen to the camera"),
    "unusual_hour": N_("{who} came in at an unusual hour"),
    "remote_unknown_source": N_("a remote command came from an unknown device"),
    "mechanical_key": N_("the mechanical key was used"),
    "duress": N_("a duress code was used: someone may be forcing the door open"),
    "tamper": N_("the lock was tampered with"),
    "door_forced": N_("the door was opened while it was locked (forced?)"),
    "door_left_open": N_("the door was left open"),
    "lock_jammed": N_("the lock is jammed"),
    "audit_truncated": N_("the lock's history was cut short (its storage may have been tampered with)"),
    "test": N_("test alarm (sent from the console)"),
}
ACK_REASON = "alarm acknowledged"


@dataclass(frozen=True)
class Activity:
    """One line of the feed: what happened, when (local), who, how, and the audit records behind it."""

    text: str
    at: datetime
    when: str
    outcome: str  # "opened" | "refused"
    method: str
    user_id: str | None
    records: tuple[int, ...]


@dataclass(frozen=True)
class Incident:
    """Alarms of one incident: the worst severity, one sentence, when (local), acknowledged or not."""

    text: str
    severity: str
    at: datetime
    when: str
    alarms: tuple[int, ...]
    rules: tuple[str, ...]
    acknowledged: bool
    notified: bool
    details: tuple[str, ...] = field(default=())


def local(at: datetime, tz: ZoneInfo) -> str:
    """"Mon 30 Nov 07:02 CST" in the lock's zone, in the request's language (Babel)."""
    return format_when(at, tz)


def _at(rec: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(rec["at"]))


def activity(records: Iterable[Mapping[str, Any]], names: Mapping[str, str], tz: ZoneInfo, *,
             person: str = "", method: str = "", outcome: str = "", limit: int = 100,
             guests: frozenset[str] = frozenset()) -> list[Activity]:
    """Unlock attempts (oldest → newest in `records`) as sentences, newest first; runs of refusals grouped
    (wrong codes apart from codes typed during a lockout).  `guests`: ids of guest users (their PIN is a code)."""
    items: list[Activity] = []
    run: list[Mapping[str, Any]] = []

    def flush() -> None:
        if run:
            items.append(_refusals(run, names, tz))
            run.clear()

    for rec in records:
        if rec.get("kind") != "unlock_attempt":
            continue
        how = str((rec.get("data") or {}).get("method") or rec.get("source") or "")
        accepted = rec.get("outcome") == "accept"
        if person and rec.get("actor") != person:
            continue
        if method and how != method:
            continue
        if outcome and outcome != ("opened" if accepted else "refused"):
            continue
        if accepted:
            flush()
            who = names.get(str(rec.get("actor")), gettext("someone"))
            guest = how == "pin" and str(rec.get("actor")) in guests
            text = gettext(_GUEST_OPENED if guest else _WITH.get(how, N_("{who} opened"))).format(who=who)
            items.append(Activity(text, _at(rec), local(_at(rec), tz),
                                  "opened", how, rec.get("actor"), (int(rec["index"]),)))
            continue
        if run and (_key(run[-1]) != _key(rec) or _at(rec) - _at(run[-1]) > timedelta(
                seconds=T.SERVICE_FEED_GROUP_S)):
            flush()
        run.append(rec)
    flush()
    return list(reversed(items))[:limit]


def _key(rec: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """What a run of refusals shares: the method, the person, and what refused it unchecked (the keypad locked
    out, a mode keeping the door shut, the lockdown; else "")."""
    reason = str(rec.get("reason") or "")
    return (str((rec.get("data") or {}).get("method") or ""), rec.get("actor"),
            reason if reason == "locked_out" or reason in _SHUT else "")


def _refusals(run: list[Mapping[str, Any]], names: Mapping[str, str], tz: ZoneInfo) -> Activity:
    how, actor, unchecked = _key(run[0])
    locked_out = unchecked == "locked_out"
    one, many = (_DURING_LOCKOUT if locked_out and how in ("pin", "code") else _SHUT.get(unchecked)
                 or _WRONG.get(how, _ANY_WRONG))
    n = len(run)
    text = ngettext(one, many, n).format(n=n)
    if actor and actor in names:  # a known person refused: say who and why
        reason = _reason(run[-1])
        why = gettext(_WHY[reason]) if reason in _WHY else reason.replace("_", " ")
        text = ngettext("{who} was refused ({why})", "{who} was refused ({why}), {n} times", n).format(
            who=names[actor], why=why, n=n)
    elif locked_out and how not in ("pin", "code"):
        text = gettext("{what} while the keypad was locked out").format(what=text)
    return Activity(text, _at(run[-1]), local(_at(run[-1]), tz), "refused", how, actor,
                    tuple(int(r["index"]) for r in run))


def _reason(rec: Mapping[str, Any]) -> str:
    """A refusal's reason; a lockdown's by its cause, which the decision's detail names first; a remote-only
    user at the door as such in a record written before that had its own reason."""
    reason = str(rec.get("reason") or "")
    detail = str((rec.get("data") or {}).get("detail") or "")
    if reason == "lockdown" and detail.startswith(OWNER_LOCKDOWN):
        return "lockdown_command"
    if reason == "mode_forbids" and detail == "remote-only user":  # recorded so before remote_only_user
        return "remote_only_user"
    return reason


def incidents(alarms: Iterable[Mapping[str, Any]], acknowledged: set[int], names: Mapping[str, str],
              tz: ZoneInfo) -> list[Incident]:
    """Alarm records (oldest → newest) folded into incidents, newest first.

    An alarm joins the open incident when it shares an attempt with it (one burst raising several rules)
    or follows it by the same rule and subject within `SERVICE_ALARM_INCIDENT_S`.
    """
    groups: list[list[Mapping[str, Any]]] = []
    for rec in alarms:
        if rec.get("kind") != "alarm":
            continue
        events = set((rec.get("data") or {}).get("events") or ())
        target = None
        for group in reversed(groups[-5:]):
            last = group[-1]
            close = _at(rec) - _at(last) <= timedelta(seconds=T.SERVICE_ALARM_INCIDENT_S)
            shared = events & set().union(*[set((g.get("data") or {}).get("events") or ()) for g in group])
            same = (rec.get("reason"), rec.get("subject")) == (last.get("reason"), last.get("subject"))
            if close and (shared or same):
                target = group
                break
        if target is None:
            groups.append([rec])
        else:
            target.append(rec)
    out = [_incident(g, acknowledged, names, tz) for g in groups]
    return list(reversed(out))


def _incident(group: list[Mapping[str, Any]], acknowledged: set[int], names: Mapping[str, str],
              tz: ZoneInfo) -> Incident:
    worst = min(group, key=lambda r: SEVERITY_ORDER.get(str(r.get("outcome")), 3))
    events: set[int] = set()
    for r in group:
        events |= set((r.get("data") or {}).get("events") or ())
    rule = str(worst.get("reason"))
    template = gettext(_ALARM_TEXT[rule]) if rule in _ALARM_TEXT else rule.replace("_", " ")
    who = names.get(str(worst.get("subject")), gettext("someone"))
    text = template.format(n=len(events) or len(group), who=who)
    indices = tuple(int(r["index"]) for r in group)
    details = tuple(str((r.get("data") or {}).get("text") or "") for r in group)
    return Incident(text[:1].upper() + text[1:], str(worst.get("outcome") or "warning"), _at(group[-1]),
                    local(_at(group[-1]), tz), indices, tuple(dict.fromkeys(str(r.get("reason")) for r in group)),
                    all(i in acknowledged for i in indices),
                    any(bool((r.get("data") or {}).get("channels")) for r in group), details)
