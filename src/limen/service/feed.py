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

METHODS = ("face", "fingerprint", "pin", "code", "nfc", "remote", "key")
_WITH = {"face": "their face", "fingerprint": "their fingerprint", "pin": "their PIN", "code": "a code",
         "nfc": "their tag", "remote": "the app (remote)", "key": "the mechanical key"}
_WRONG = {"face": ("face not recognised", "faces not recognised"),
          "fingerprint": ("finger not recognised", "fingers not recognised"),
          "pin": ("wrong code", "wrong codes"), "code": ("wrong code", "wrong codes"),
          "nfc": ("unknown tag", "unknown tags"), "remote": ("refused remote unlock", "refused remote unlocks"),
          "key": ("key turn refused", "key turns refused")}
_WHY = {"outside_schedule": "outside their hours", "locked_out": "while the keypad was locked out",
        "second_factor_missing": "the PIN was still needed", "pin_required": "the PIN was still needed",
        "credential_revoked": "with a revoked code", "credential_expired": "with an expired code",
        "pad_failed": "a photo or screen was shown", "lockdown": "during the tamper lockdown",
        "user_disabled": "the person is disabled"}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_ALARM_TEXT = {
    "consecutive_failures_method": "{n} failed attempts in a row at the door",
    "consecutive_failures_total": "{n} failed attempts in a row at the door",
    "multimodal_failures": "{n} failed attempts at the door with several methods",
    "presentation_attack": "someone showed a photo or a screen to the camera",
    "unusual_hour": "{who} came in at an unusual hour",
    "remote_unknown_source": "a remote command came from an unknown device",
    "mechanical_key": "the mechanical key was used",
    "duress": "a duress code was used: someone may be forcing the door open",
    "tamper": "the lock was tampered with",
    "door_forced": "the door was opened while it was locked (forced?)",
    "door_left_open": "the door was left open",
    "lock_jammed": "the lock is jammed",
    "audit_truncated": "the lock's history was cut short (its storage may have been tampered with)",
    "test": "test alarm (sent from the console)",
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
    """"07:02" today, "Mon 30 Nov 07:02" before, with the zone's abbreviation."""
    value = at.astimezone(tz)
    return f"{value:%a %d %b %H:%M %Z}"


def _at(rec: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(rec["at"]))


def activity(records: Iterable[Mapping[str, Any]], names: Mapping[str, str], tz: ZoneInfo, *,
             person: str = "", method: str = "", outcome: str = "", limit: int = 100) -> list[Activity]:
    """Unlock attempts (oldest → newest in `records`) as sentences, newest first; runs of refusals grouped."""
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
            who = names.get(str(rec.get("actor")), "someone")
            items.append(Activity(f"{who} opened with {_WITH.get(how, how)}", _at(rec), local(_at(rec), tz),
                                  "opened", how, rec.get("actor"), (int(rec["index"]),)))
            continue
        if run and (_key(run[-1]) != _key(rec) or _at(rec) - _at(run[-1]) > timedelta(
                seconds=T.SERVICE_FEED_GROUP_S)):
            flush()
        run.append(rec)
    flush()
    return list(reversed(items))[:limit]


def _key(rec: Mapping[str, Any]) -> tuple[str, str | None]:
    return str((rec.get("data") or {}).get("method") or ""), rec.get("actor")


def _refusals(run: list[Mapping[str, Any]], names: Mapping[str, str], tz: ZoneInfo) -> Activity:
    how, actor = _key(run[0])
    one, many = _WRONG.get(how, ("refused attempt", "refused attempts"))
    n = len(run)
    text = f"{n} {many} at the door" if n > 1 else f"{one} at the door"
    if actor and actor in names:  # a known person refused: say who and why
        why = _WHY.get(str(run[-1].get("reason")), str(run[-1].get("reason") or "").replace("_", " "))
        text = f"{names[actor]} was refused ({why})" + (f", {n} times" if n > 1 else "")
    elif run[-1].get("reason") == "locked_out":
        text += " while the keypad was locked out"
    return Activity(text, _at(run[-1]), local(_at(run[-1]), tz), "refused", how, actor,
                    tuple(int(r["index"]) for r in run))


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
    template = _ALARM_TEXT.get(rule, rule.replace("_", " "))
    who = names.get(str(worst.get("subject")), "someone")
    text = template.format(n=len(events) or len(group), who=who)
    indices = tuple(int(r["index"]) for r in group)
    details = tuple(str((r.get("data") or {}).get("text") or "") for r in group)
    return Incident(text[:1].upper() + text[1:], str(worst.get("outcome") or "warning"), _at(group[-1]),
                    local(_at(group[-1]), tz), indices, tuple(dict.fromkeys(str(r.get("reason")) for r in group)),
                    all(i in acknowledged for i in indices),
                    any(bool((r.get("data") or {}).get("channels")) for r in group), details)
