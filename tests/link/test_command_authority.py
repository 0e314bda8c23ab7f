"""A paired device acts only while its owner is an enabled owner of the lock (review H12)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.access.model import PermissionLevel, UserStatus
from limen.link.commands import Action, sign

from .conftest import LockRig


def _reply_key() -> str:
    public = X25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


@pytest.mark.parametrize("how", ["disabled", "demoted", "removed"])
def test_a_revoked_owners_paired_phone_can_no_longer_issue_codes_or_act(rig: LockRig, how: str) -> None:
    at = rig.clock.now()
    bob = rig.store.add_user("Bob", rig.owner, at, pin="864213", permission=PermissionLevel.OWNER).user_id
    tablet = Ed25519PrivateKey.generate()
    rig.devices.pair("tablet", tablet.public_key(), bob, bob, at)
    if how == "disabled":
        rig.store.set_status("Bob", UserStatus.DISABLED, rig.owner, at)
    elif how == "demoted":
        rig.store.modify_user("Bob", rig.owner, at, permission=PermissionLevel.MEMBER)
    else:
        rig.store.remove_user("Bob", rig.owner, at)
    for action, args in ((Action.ADD_CODE, {"reply_key": _reply_key()}), (Action.REVOKE_USER, {"user": "Olga"}),
                         (Action.LOCKDOWN, {}), (Action.UNLOCK, {}), (Action.ERASE, {"user": "Olga"})):
        outcome = rig.send(sign(rig.command(action, device="tablet", **args), tablet))
        assert not outcome.executed and "sealed_code" not in outcome.data, (action, outcome)
    assert rig.store.is_enabled_owner(rig.owner) and not rig.store.load_state().lockdown and rig.erased == []
    assert all(r.outcome == "refused" for r in rig.sink.events[-5:])
    mine = rig.send(rig.signed(Action.ADD_CODE, reply_key=_reply_key()))
    assert mine.executed and "sealed_code" in mine.data  # Olga's own phone still acts
