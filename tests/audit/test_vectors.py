"""Known-answer vectors for the chain format (v1) and the attempt-event helper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen.audit import AuditLog, attempt_event, verify_export
from limen.audit.chain import checkpoint_valid, record_hash, verify_chain
from limen.audit.keys import load_public_b64
from limen.decision import Assurance, reject
from limen.decision import Reason as R
from limen.errors import ChainBroken

from .conftest import T0
from .make_vectors import build

VECTORS = json.loads((Path(__file__).with_name("vectors") / "chain_v1.json").read_text())


def test_vectors_are_reproduced_by_the_current_code() -> None:
    assert build() == VECTORS


def test_vector_hashes_and_signature_verify() -> None:
    public = load_public_b64(VECTORS["public_key"])
    assert all(record_hash(r) == r["hash"] for r in VECTORS["records"])
    assert checkpoint_valid(VECTORS["checkpoint"], public)
    summary = verify_chain(VECTORS["records"], [VECTORS["checkpoint"]], {VECTORS["key_id"]: public}, 32)
    assert summary.records == 3 and summary.last_hash == VECTORS["records"][-1]["hash"]


def test_vector_with_one_changed_score_fails_at_that_record() -> None:
    records = json.loads(json.dumps(VECTORS["records"]))
    records[1]["data"]["scores"]["pad.depth"] = 0.9
    public = load_public_b64(VECTORS["public_key"])
    with pytest.raises(ChainBroken) as err:
        verify_chain(records, [VECTORS["checkpoint"]], {VECTORS["key_id"]: public}, 32)
    assert err.value.index == 1


def test_attempt_event_keeps_ids_scores_and_reasons_only(audit: AuditLog, tmp_path: Path) -> None:
    decision = reject(R.PAD_FAILED, user_id="u-1", user_name="Alice Example", credential_id="c-1", score=0.41,
                      threshold=0.45, assurance=Assurance.LOW, scores={"pad.texture": 0.2}, detail="free text")
    event = attempt_event(decision, T0, "face", "camera", pad="attack")
    assert event.actor == "u-1" and event.subject == "c-1" and event.reason == "pad_failed"
    assert event.data == {"method": "face", "score": 0.41, "threshold": 0.45, "assurance": "low",
                          "scores": {"pad.texture": 0.2}, "pad": "attack"}
    audit.append(event)
    out = tmp_path / "t.jsonl"
    audit.export(out)
    assert "Alice" not in out.read_text() and "free text" not in out.read_text()
    assert verify_export(out).records >= 1
