import pytest

from limen.decision import Decision, Outcome, QualityGate, Reason
from limen.service import messages


def reject(reason: Reason, gate: QualityGate | None = None) -> Decision:
    return Decision(Outcome.REJECT, reason, quality_gate=gate)


@pytest.mark.parametrize("reason", [Reason.PAD_FAILED, Reason.INSUFFICIENT_EVIDENCE, Reason.NO_MATCH])
def test_an_attack_reads_like_a_stranger(reason: Reason) -> None:
    assert messages.face_message(reject(reason)) == messages.NOT_RECOGNISED


def test_quality_refusals_tell_the_person_what_to_do() -> None:
    assert messages.face_message(reject(Reason.LOW_QUALITY, QualityGate.TOO_SMALL)) == messages.CLOSER
    assert messages.face_message(reject(Reason.LOW_QUALITY, QualityGate.BLURRED)) == messages.HOLD_STILL
    assert messages.face_message(reject(Reason.NO_FACE, QualityGate.NO_FACE)) == messages.HOLD_STILL


def test_lockout_and_opening() -> None:
    assert messages.face_message(reject(Reason.LOCKED_OUT)) == messages.LOCKED_OUT
    assert messages.keypad_message(reject(Reason.LOCKED_OUT)) == messages.LOCKED_OUT
    assert messages.keypad_message(Decision(Outcome.ACCEPT, Reason.GRANTED)) == messages.OPENED
    assert messages.keypad_message(reject(Reason.CREDENTIAL_REVOKED)) == messages.WRONG_CODE
    # a duress opening looks exactly like any other opening
    assert messages.face_message(Decision(Outcome.ACCEPT, Reason.DURESS)) == messages.OPENED
