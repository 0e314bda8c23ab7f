"""Owner-signed commands: forged, replayed, expired, re-targeted and unsigned ones are refused and audited."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen import thresholds
from limen.audit.anomaly import AnomalyDetector, Rule
from limen.audit.event import EventKind
from limen.audit.keys import SigningKey
from limen.errors import BadRequest, Conflict
from limen.link.commands import Action, Command, CommandVerifier, Refusal, SignedCommand, sign
from limen.link.execute import LinkCommands, open_reply, seal_pin, seal_reply, verify_receipt

from .conftest import LOCK_ID, OWNER_PIN, LockRig


def unsigned(command: Command) -> SignedCommand:
    """A request without an owner's signature (what the cloud can send on its own)."""
    return SignedCommand(command.body(), None)


def remote_records(rig: LockRig) -> list:
    return [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND]


def test_signed_unlock_opens_the_door_through_the_controller(rig: LockRig) -> None:
    outcome = rig.send(rig.signed(Action.UNLOCK))
    rig.settle()
    assert outcome.executed and outcome.reason == "granted"
    assert not rig.door.is_locked
    attempts = [e for e in rig.sink.events if e.kind is EventKind.UNLOCK_ATTEMPT]
    assert attempts[-1].outcome == "accept" and attempts[-1].data["method"] == "remote"


def test_policy_still_applies_pin_rule_to_signed_unlock(rig: LockRig) -> None:
    rig.store.set_config(rig.owner, rig.clock.now(), require_pin_for_remote=True)
    outcome = rig.send(rig.signed(Action.UNLOCK))
    rig.settle()
    assert not outcome.executed and rig.door.is_locked


@pytest.mark.parametrize("sealed", ["right", "wrong", "other_lock", "clear", "not_a_pin"])
def test_a_signed_unlock_carries_the_owners_pin_sealed_to_the_lock(rig: LockRig, sealed: str) -> None:
    """`require_pin_for_remote` on: the phone seals the PIN to the lock's restore key (the cloud cannot read it)."""
    lock_key = X25519PrivateKey.generate()
    link = LinkCommands(rig.verifier, rig.controller, rig.store, rig.sink, lambda *a: 0, restore_key=lock_key)
    rig.store.set_config(rig.owner, rig.clock.now(), require_pin_for_remote=True)
    pin = {"right": seal_pin(lock_key.public_key(), OWNER_PIN),
           "wrong": seal_pin(lock_key.public_key(), "135799"),
           "other_lock": seal_pin(X25519PrivateKey.generate().public_key(), OWNER_PIN),
           "clear": OWNER_PIN,
           "not_a_pin": seal_reply(lock_key.public_key(), OWNER_PIN.encode())}[sealed]
    assert OWNER_PIN not in pin or sealed == "clear"
    outcome = link.handle(rig.signed(Action.UNLOCK, pin=pin), rig.clock.now())
    rig.settle()
    assert outcome.executed is (sealed == "right") and rig.door.is_locked is (sealed != "right")
    if sealed == "wrong":
        assert outcome.reason == "unknown_credential"
    elif sealed != "right":
        assert "pin" in outcome.reason


@pytest.mark.parametrize("case", ["forged", "unknown_device", "replayed", "expired", "retargeted", "too_long",
                                  "unsigned", "tampered_body", "malformed", "oversized", "nested_wire",
                                  "nested_body"])
def test_bad_commands_are_refused_audited_and_leave_the_door_shut(rig: LockRig, case: str) -> None:
    good = rig.signed(Action.UNLOCK)
    if case == "forged":
        payload = rig.signed(Action.UNLOCK, key=Ed25519PrivateKey.generate())
    elif case == "unknown_device":
        payload = rig.signed(Action.UNLOCK, device="stolen-tablet")
    elif case == "replayed":
        assert rig.send(good).executed
        rig.settle()
        rig.controller.lock()
        rig.settle()
        payload = good
    elif case == "expired":
        payload = rig.signed(Action.UNLOCK, expires_in=-(thresholds.LINK_CLOCK_SKEW_S + 1))
    elif case == "retargeted":
        payload = rig.signed(Action.UNLOCK, lock="back-door")
    elif case == "too_long":
        payload = rig.signed(Action.UNLOCK, expires_in=thresholds.LINK_COMMAND_MAX_VALIDITY_S + 60)
    elif case == "unsigned":
        payload = unsigned(rig.command(Action.UNLOCK)).to_bytes()
    elif case == "tampered_body":
        wire = json.loads(good)
        wire["body"] = wire["body"].replace('"lock":"front-door"', '"lock":"front-door" ')
        payload = json.dumps(wire).encode()
    elif case == "malformed":
        payload = b'{"v":1,"body":"{not json"}'
    elif case == "nested_wire":  # deeply nested JSON raised RecursionError: refused as "internal_error" before
        payload = b"[" * 5000
    elif case == "nested_body":  # parsed before the signature is checked: anyone on the command topic
        payload = json.dumps({"v": 1, "body": "[" * 5000}).encode()
    else:
        payload = b"x" * (thresholds.LINK_MAX_PAYLOAD_BYTES + 1)
    before = len(remote_records(rig))
    outcome = rig.send(payload)
    rig.settle()
    assert not outcome.executed
    assert rig.door.is_locked
    refused = remote_records(rig)[before:]
    assert len(refused) == 1 and refused[0].outcome == "refused" and refused[0].reason == outcome.reason
    expected = {"forged": Refusal.BAD_SIGNATURE, "unknown_device": Refusal.UNKNOWN_DEVICE,
                "replayed": Refusal.REPLAYED, "expired": Refusal.EXPIRED, "retargeted": Refusal.WRONG_LOCK,
                "too_long": Refusal.TOO_LONG, "unsigned": Refusal.UNSIGNED, "tampered_body": Refusal.BAD_SIGNATURE,
                "malformed": Refusal.MALFORMED, "oversized": Refusal.OVERSIZED, "nested_wire": Refusal.MALFORMED,
                "nested_body": Refusal.MALFORMED}[case]
    assert outcome.reason == expected.value


def test_counter_survives_a_restart_of_the_verifier(rig: LockRig) -> None:
    first = rig.signed(Action.LOCK, counter=10)
    assert rig.send(first).executed
    fresh = CommandVerifier(type(rig.devices)(rig.devices.conn), LOCK_ID)
    with pytest.raises(Exception, match="replayed"):
        fresh.verify(SignedCommand.from_bytes(rig.signed(Action.LOCK, counter=9)), rig.clock.now())
    assert fresh.verify(SignedCommand.from_bytes(rig.signed(Action.LOCK, counter=11)), rig.clock.now())[1]


def test_unknown_device_and_forgery_raise_the_remote_anomaly(rig: LockRig) -> None:
    monitor = AnomalyDetector()
    rig.send(rig.signed(Action.UNLOCK, device="stolen-tablet"))
    rig.send(rig.signed(Action.UNLOCK, key=Ed25519PrivateKey.generate()))
    findings = [f for i, e in enumerate(remote_records(rig)) for f in monitor.observe(i, e)]
    assert [f.rule for f in findings] == [Rule.REMOTE_UNKNOWN, Rule.REMOTE_UNKNOWN]


def test_cloud_may_lock_only_when_the_owner_allowed_it_and_never_unlock(rig: LockRig) -> None:
    rig.send(rig.signed(Action.UNLOCK))
    rig.settle()
    request = unsigned(rig.command(Action.LOCK)).to_bytes()
    assert rig.send(request).reason == Refusal.UNSIGNED.value
    rig.verifier.cloud_may_lock = True
    outcome = rig.send(unsigned(rig.command(Action.LOCK)).to_bytes())
    rig.settle()
    assert outcome.executed and rig.door.is_locked
    assert remote_records(rig)[-1].actor == "remote:cloud"
    assert rig.send(unsigned(rig.command(Action.UNLOCK)).to_bytes()).reason == Refusal.UNSIGNED.value
    assert rig.send(unsigned(rig.command(Action.ERASE, user="Olga")).to_bytes()).reason == Refusal.UNSIGNED.value


def test_lockdown_refuses_local_unlocks_afterwards(rig: LockRig) -> None:
    assert rig.send(rig.signed(Action.LOCKDOWN)).executed
    assert rig.store.load_state().lockdown
    rig.settle()
    assert rig.door.is_locked
    assert not rig.controller.keypad("246813").accepted


def test_revoke_user_erase_and_failures_are_recorded(rig: LockRig) -> None:
    max_id = rig.store.add_user("Max", rig.owner, rig.clock.now(), pin="135792").user_id
    assert rig.send(rig.signed(Action.REVOKE_USER, user="Max")).executed
    assert not rig.controller.keypad("135792").accepted
    assert rig.send(rig.signed(Action.ERASE, user="Max")).executed
    assert rig.erased == [max_id]
    missing = rig.send(rig.signed(Action.REVOKE_USER, user="Nobody"))
    assert not missing.executed and missing.reason.startswith("failed")
    assert remote_records(rig)[-1].outcome == "refused"


def test_added_code_is_sealed_to_the_owner_device_and_opens_the_door(rig: LockRig) -> None:
    reply = X25519PrivateKey.generate()
    reply_pub = base64.b64encode(reply.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    outcome = rig.send(rig.signed(Action.ADD_CODE, reply_key=reply_pub, kind="single_use"))
    assert outcome.executed and "sealed_code" in outcome.data
    code = open_reply(reply, outcome.data["sealed_code"]).decode()
    assert code not in json.dumps(outcome.to_dict())
    assert all(code not in json.dumps(e.data) for e in rig.sink.events)
    assert rig.controller.keypad("*" + code).accepted
    assert rig.send(rig.signed(Action.REVOKE_CODE, code=outcome.data["code_id"])).executed


def test_pairing_twice_is_a_conflict(rig: LockRig) -> None:
    with pytest.raises(Conflict):
        rig.devices.pair("phone", Ed25519PrivateKey.generate().public_key(), rig.owner, rig.owner,
                         rig.clock.now())
    with pytest.raises(Conflict):
        rig.devices.pair("other", rig.phone.public_key(), rig.owner, rig.owner, rig.clock.now())


def test_signature_covers_every_field(rig: LockRig) -> None:
    cmd = rig.command(Action.LOCK)
    signed = sign(cmd, rig.phone)
    longer = cmd.__class__(cmd.lock, cmd.action, cmd.counter, cmd.expires + timedelta(seconds=1), cmd.device)
    forged = SignedCommand(longer.body(), signed.signature)
    assert rig.send(forged).reason == Refusal.BAD_SIGNATURE.value


def test_an_erase_returns_a_receipt_signed_by_the_lock(rig: LockRig) -> None:
    lock_key = SigningKey(Ed25519PrivateKey.generate())
    rig.link.signer = lock_key
    max_id = rig.store.add_user("Max", rig.owner, rig.clock.now(), pin="135792").user_id
    outcome = rig.send(rig.signed(Action.ERASE, user="Max"))
    statement = verify_receipt(outcome.data["receipt"], lock_key.public)
    assert statement["user"] == max_id and statement["erased"] == {"lock": {"vault_templates": 1}}
    assert statement["lock"] == LOCK_ID and statement["audit_index"] == int(outcome.data["audit_index"])
    forged = json.loads(outcome.data["receipt"])
    forged["erased"]["lock"]["vault_templates"] = 5
    with pytest.raises(BadRequest, match="signature"):
        verify_receipt(json.dumps(forged), lock_key.public)
    with pytest.raises(BadRequest):
        verify_receipt(outcome.data["receipt"], Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize("how", ["unpair", "forget the owner's devices"])
def test_a_command_is_not_executed_again_after_the_device_is_paired_again(rig: LockRig, how: str) -> None:
    """Review: sign, execute, unpair, pair the same phone key again: the old command was DONE a second time."""
    from limen.link.commands import forget_devices

    old = rig.signed(Action.LOCK, counter=7)
    assert rig.send(old).executed
    assert not rig.send(old).executed
    if how == "unpair":
        rig.devices.unpair("phone")
    else:
        with rig.devices.conn:
            assert forget_devices(rig.devices.conn, rig.owner) == 1
    repaired = rig.devices.pair("phone", rig.phone.public_key(), rig.owner, rig.owner, rig.clock.now())
    assert repaired.counter == 7  # the key's floor, not 0
    replay = rig.send(old)
    assert not replay.executed and replay.reason == Refusal.REPLAYED.value
    assert rig.send(rig.signed(Action.LOCK, counter=8)).executed  # the phone goes on from its own counter
    other = rig.devices.pair("tablet", Ed25519PrivateKey.generate().public_key(), rig.owner, rig.owner,
                             rig.clock.now())
    assert other.counter == 0  # another key starts afresh


def test_a_flood_of_refused_payloads_is_counted_not_written_one_by_one(rig: LockRig) -> None:
    """The broker (or whoever publishes on the command topic) sends garbage as fast as it can: the first
    `LINK_REFUSALS_AUDITED_BURST` are audited, the rest counted by reason into the next record audited once the
    budget refills; a genuine signed command still runs and is audited meanwhile."""
    rig.link = LinkCommands(rig.verifier, rig.controller, rig.store, rig.sink, lambda *a: 0, clock=rig.clock)
    forged = rig.signed(Action.UNLOCK, key=Ed25519PrivateKey.generate())
    burst = thresholds.LINK_REFUSALS_AUDITED_BURST
    outcomes = [rig.send(b"\xff") for _ in range(burst + 500)] + [rig.send(forged) for _ in range(7)]
    assert all(not o.executed for o in outcomes) and outcomes[-1].reason == Refusal.BAD_SIGNATURE.value
    assert len(remote_records(rig)) == burst
    assert rig.send(rig.signed(Action.LOCK)).executed and len(remote_records(rig)) == burst + 1  # not a refusal
    rig.clock.advance(60.0 / thresholds.LINK_REFUSALS_AUDITED_PER_MIN)
    rig.send(b"\xff")
    last = remote_records(rig)[-1]
    assert last.reason == Refusal.MALFORMED.value
    assert last.data["not_recorded_before"] == {Refusal.MALFORMED.value: 500, Refusal.BAD_SIGNATURE.value: 7}
    rig.clock.advance(60.0 / thresholds.LINK_REFUSALS_AUDITED_PER_MIN)
    rig.send(b"\xff")
    assert "not_recorded_before" not in remote_records(rig)[-1].data  # handed over once


def test_a_flood_of_garbage_does_not_hide_the_refusal_of_a_paired_devices_signed_command(rig: LockRig) -> None:
    """Anyone on the command topic can exhaust the refusal budget with garbage; a replayed (or expired,
    re-targeted) command that a paired device signed still reaches the trail: it draws on a budget of its own."""
    rig.link = LinkCommands(rig.verifier, rig.controller, rig.store, rig.sink, lambda *a: 0, clock=rig.clock)
    captured = rig.signed(Action.LOCK)
    assert rig.send(captured).executed
    for _ in range(thresholds.LINK_REFUSALS_AUDITED_BURST + 50):
        rig.send(b"\xff")
    audited = len(remote_records(rig))
    replay = rig.send(captured)
    assert not replay.executed and replay.reason == Refusal.REPLAYED.value
    assert len(remote_records(rig)) == audited + 1 and remote_records(rig)[-1].reason == Refusal.REPLAYED.value
    rig.send(b"\xff")
    assert len(remote_records(rig)) == audited + 1  # garbage still counted, not written
