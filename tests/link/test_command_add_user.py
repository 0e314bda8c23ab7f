"""A signed `add_user`: a member or guest added through the same verified, audited path as every command."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.access.model import PermissionLevel
from limen.audit.event import EventKind
from limen.errors import NotFound
from limen.link.commands import Action, Command, Refusal, SignedCommand
from limen.link.execute import open_reply

from .conftest import LockRig


def remote_records(rig: LockRig) -> list:
    return [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND]


def no_user(rig: LockRig, name: str) -> bool:
    try:
        rig.store.user(name)
    except NotFound:
        return True
    return False


def test_a_signed_add_user_creates_a_member_audited(rig: LockRig) -> None:
    outcome = rig.send(rig.signed(Action.ADD_USER, name="Max"))
    assert outcome.executed and outcome.action == "add_user"
    user = rig.store.user("Max")
    assert user.permission is PermissionLevel.MEMBER and outcome.data["user"] == user.user_id
    record = remote_records(rig)[-1]
    assert record.outcome == "executed" and record.data["action"] == "add_user" and record.data["signed"]
    assert record.data["pin_set"] == "false"
    changes = [e for e in rig.sink.events if e.kind is EventKind.USER_CHANGE and e.subject == user.user_id]
    assert changes and changes[0].actor == rig.owner  # the device's owner acts, as for a code


def test_with_a_reply_key_the_lock_draws_a_pin_sealed_to_the_device(rig: LockRig) -> None:
    reply = X25519PrivateKey.generate()
    reply_pub = base64.b64encode(reply.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    outcome = rig.send(rig.signed(Action.ADD_USER, name="Guest Ann", permission="guest", reply_key=reply_pub))
    assert outcome.executed and rig.store.user("Guest Ann").permission is PermissionLevel.GUEST
    pin = open_reply(reply, outcome.data["sealed_pin"]).decode()
    assert pin.isdigit() and pin not in str(outcome.to_dict()) and all(pin not in str(e.data)
                                                                       for e in rig.sink.events)
    rig.controller.lock()
    rig.settle()
    assert rig.controller.keypad(pin).accepted


@pytest.mark.parametrize("permission", ["owner", "administrator", "superuser"])
def test_a_remote_command_never_adds_an_owner_or_administrator(rig: LockRig, permission: str) -> None:
    outcome = rig.send(rig.signed(Action.ADD_USER, name="Eve", permission=permission))
    assert not outcome.executed and outcome.reason.startswith("failed") and no_user(rig, "Eve")
    assert remote_records(rig)[-1].outcome == "refused"


@pytest.mark.parametrize("case", ["unsigned", "replayed", "forged", "retargeted"])
def test_unsigned_replayed_forged_or_retargeted_add_user_is_refused_and_audited(rig: LockRig, case: str) -> None:
    rig.verifier.cloud_may_lock = True  # even a cloud allowed to lock may not add people
    if case == "replayed":
        first = rig.signed(Action.ADD_USER, name="Mallory")
        assert rig.send(first).executed
        rig.store.remove_user("Mallory", rig.owner, rig.clock.now())  # removed at the lock: a replay re-adds?
        payload = first
        expected = Refusal.REPLAYED
    elif case == "unsigned":
        payload = SignedCommand(rig.command(Action.ADD_USER, name="Mallory").body(), None).to_bytes()
        expected = Refusal.UNSIGNED
    elif case == "forged":
        payload = rig.signed(Action.ADD_USER, key=Ed25519PrivateKey.generate(), name="Mallory")
        expected = Refusal.BAD_SIGNATURE
    else:
        payload = rig.signed(Action.ADD_USER, lock="back-door", name="Mallory")
        expected = Refusal.WRONG_LOCK
    before = len(remote_records(rig))
    outcome = rig.send(payload)
    assert not outcome.executed and outcome.reason == expected.value
    assert no_user(rig, "Mallory")
    refused = remote_records(rig)[before:]
    assert len(refused) == 1 and refused[0].outcome == "refused" and refused[0].reason == expected.value


def test_add_user_is_in_the_signed_body(rig: LockRig) -> None:
    command: Command = rig.command(Action.ADD_USER, name="Max")
    assert b'"action":"add_user"' in command.body() and b'"name":"Max"' in command.body()
