"""A PIN alone from a person whose rule needs a face too: 'show your face first', never "wrong code".

The face held for the PIN is volatile (a restart forgets it), so the person who typed their PIN after a
restart must be told what is missing.  That answer also tells a guesser the PIN is right, so it spends a try
of the keypad lockout like a wrong code (final review, finding 1); the face + PIN that follows opens and costs
nothing.
"""

from __future__ import annotations

from limen.access.attempt import Attempt, PinEntry
from limen.access.model import AccessState, CredentialRule
from limen.access.policy import judge
from limen.decision import Decision, Reason, reject
from limen.service import i18n
from limen.service.messages import FACE_FIRST, WRONG_CODE, keypad_message

from .builders import at, household, user, with_user


def _dual() -> AccessState:
    return with_user(household(), user("max", 2, credential_rule=CredentialRule.DUAL, last_pin_at=at(-1)))


def test_a_lone_pin_under_a_dual_rule_asks_for_the_face() -> None:
    judgement = judge(Attempt((PinEntry("135792"),)), _dual(), at())
    decision = judgement.decision
    assert not decision.accepted and decision.reason is Reason.FACE_FIRST
    assert judgement.update.lockout is not None  # the answer tells a guesser the PIN is right: it spends a try
    assert judgement.update.lockout.wrong_code_count == 1
    assert keypad_message(decision) == FACE_FIRST != WRONG_CODE


def test_a_wrong_pin_under_a_dual_rule_is_still_a_wrong_code() -> None:
    judgement = judge(Attempt((PinEntry("000000"),)), _dual(), at())
    assert judgement.decision.reason is Reason.UNKNOWN_CREDENTIAL
    assert judgement.update.lockout is not None and judgement.update.lockout.wrong_code_count == 1
    assert keypad_message(judgement.decision) == WRONG_CODE


def test_the_single_rule_pin_still_opens() -> None:
    assert judge(Attempt((PinEntry("135792"),)), household(), at()).decision.accepted


def test_the_door_says_it_in_chinese() -> None:
    decision: Decision = reject(Reason.FACE_FIRST)
    i18n.set_language("zh_CN")
    try:
        assert i18n.message(keypad_message(decision)) == "请先刷脸，再输入密码"
    finally:
        i18n.set_language("en")


def test_a_remote_unlock_under_a_dual_rule_is_not_told_to_show_a_face() -> None:
    from limen.access.attempt import remote_attempt
    from limen.access.model import PermissionLevel

    s = with_user(household(), user("max", 2, credential_rule=CredentialRule.DUAL, permission=PermissionLevel.OWNER,
                                    last_pin_at=at(-1)))
    decision = judge(remote_attempt("max", True, "135792", "phone"), s, at()).decision
    assert not decision.accepted and decision.reason is not Reason.FACE_FIRST
