"""What a person at the door may read: a short message per outcome, never which PAD cue fired.

A presentation attack reads exactly like a stranger ("not recognised"), so an
attacker learns nothing about which check caught them.  The owner pages and the
audit trail keep the real reason.
"""

from __future__ import annotations

from limen.decision import Decision, QualityGate, Reason

OPENED = "opened"
NOT_RECOGNISED = "not recognised"
CLOSER = "try again closer"
HOLD_STILL = "hold still, face the camera"
LOCKED_OUT = "locked out, try later"
ENTER_PIN = "enter your PIN as well"
NOT_NOW = "not allowed at this time"  # the person's hours (a schedule)
# A mode that keeps the door shut (privacy, vacation) refuses every entry before it is checked, right or wrong, so
# this says nothing about the entry; nor which mode (vacation would tell the house is empty).
SHUT_NOW = "the door is not opening from outside just now"
WRONG_CODE = "code not accepted"
UNAVAILABLE = "unavailable, use your key or call the owner"
NO_PIN_YET = "recognised, but you have no PIN yet: ask the owner to add one"
FOLLOW_PROMPTS = "follow the prompts on the screen"
FACE_FIRST = "show your face first, then your PIN"

# Not here, so a wrong code's answer at the keypad: a remote-only user's right PIN (REMOTE_ONLY_USER), as any
# keypad credential refused for what it is (access.policy), tells a guesser nothing.
_COMMON = {
    Reason.LOCKED_OUT: LOCKED_OUT,
    Reason.OUTSIDE_SCHEDULE: NOT_NOW,
    Reason.MODE_FORBIDS: SHUT_NOW,
    Reason.LOCKDOWN: UNAVAILABLE,
    Reason.VAULT_ERASED: UNAVAILABLE,
    Reason.OWNER_REAUTH_REQUIRED: UNAVAILABLE,
}


def face_message(decision: Decision, challenged: bool = False) -> str:
    """The kiosk's message for a face attempt (recognition or access decision).

    `challenged`: the person was shown a head-move challenge; a face not seen or moves not performed
    (insufficient evidence) then reads "follow the prompts", never which check failed.
    """
    if decision.accepted:
        return OPENED
    if challenged and decision.reason in (Reason.NO_FACE, Reason.INSUFFICIENT_EVIDENCE):
        return FOLLOW_PROMPTS
    if decision.reason is Reason.NO_FACE:
        return HOLD_STILL
    if decision.reason is Reason.LOW_QUALITY:
        return CLOSER if decision.quality_gate is QualityGate.TOO_SMALL else HOLD_STILL
    if decision.reason in (Reason.PIN_REQUIRED, Reason.SECOND_FACTOR_MISSING):
        return ENTER_PIN
    return _COMMON.get(decision.reason, NOT_RECOGNISED)  # PAD refusals included, on purpose


def keypad_message(decision: Decision) -> str:
    """The kiosk's message for a PIN or code."""
    if decision.accepted:
        return OPENED
    if decision.reason is Reason.CODE_CLEARED:
        return "code cleared"
    if decision.reason is Reason.FACE_FIRST:  # the rule needs a face too (a held face may have been forgotten)
        return FACE_FIRST
    return _COMMON.get(decision.reason, WRONG_CODE)
