"""`limen codes revoke`: a code's digits or a well-formed code id, nothing else recorded as a revocation."""

from __future__ import annotations

import json
from pathlib import Path

from .test_access_cli import OWNER_PIN, cheap_argon2, limen  # noqa: F401 - the fixture, autouse here too


def test_revoke_refuses_what_is_neither_digits_nor_a_code_id(tmp_path: Path) -> None:
    """A typo (`limited-498930`, a code with its star, a note) was recorded as a revocation matching no code: the
    owner read 'revoked' and the code still opened the door."""
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    issued = json.loads(limen(d, "--json", "codes", "issue", "--as", "Olga", "--kind", "limited").stdout)
    for typo in ("*" + issued["code"], issued["code_id"].replace(":", "-"), issued["code_id"] + "x",
                 "the garage code", "limited:1:1", "١٢٣٤"):
        refused = limen(d, "codes", "revoke", typo, "--as", "Olga")
        assert refused.exit_code != 0 and "neither a code's digits" in str(refused.exception), (typo, refused)
    listed = json.loads(limen(d, "--json", "codes", "list", "--as", "Olga").stdout)
    assert [c["revoked"] for c in listed] == [False]
    assert limen(d, "unlock", "--code", issued["code"]).exit_code == 0  # nothing was revoked
    by_id = limen(d, "--json", "codes", "revoke", issued["code_id"], "--as", "Olga")
    assert by_id.exit_code == 0 and json.loads(by_id.stdout) == {"revoked": issued["code_id"]}
    elsewhere = limen(d, "--json", "codes", "revoke", "period_quota:20788:00710", "--as", "Olga")  # the app's
    assert elsewhere.exit_code == 0, elsewhere.output
    assert limen(d, "unlock", "--code", issued["code"]).exit_code == 3
