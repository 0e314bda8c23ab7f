"""The controller's per-attempt stage times through `limen.trace` (`limen serve --trace FILE`): numbers only."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from limen import trace
from limen.access.attempt import FaceEvidence

from .test_controller import FRAME, MAX_PIN, Rig, cheap_argon2, pad  # noqa: F401 - cheap_argon2 is autouse


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "limen.db")
    yield r
    r.store.conn.close()


@pytest.fixture
def timings(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "trace.jsonl"
    previous = trace.set_sink(trace.TimingsFile(path))
    yield path
    trace.set_sink(previous).close()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_a_pin_attempt_is_one_line_of_stage_times_without_the_pin_person_or_outcome(rig: Rig, timings: Path) -> None:
    assert rig.controller.keypad(MAX_PIN + "#").accepted
    assert not rig.controller.keypad("999999#").accepted
    text = timings.read_text()
    first, second = lines(timings)
    assert first["stage"] == "attempt" and first["method"] == "pin"
    assert set(first["stages_ms"]) == {"decide", "audit", "door"}
    assert first["total_ms"] >= first["stages_ms"]["decide"] >= 0
    assert set(first) == set(second) == {"at", "stage", "method", "stages_ms", "total_ms"}
    for secret in (MAX_PIN, "999999", rig.max, "Max", "accepted", "wrong"):
        assert secret not in text
    assert stat.S_IMODE(timings.stat().st_mode) == 0o600


def test_a_face_attempt_carries_the_recognizers_stage_times(rig: Rig, timings: Path) -> None:
    # a distance no stage time can spell by chance (0.3 matched a "decide": 0.31 ms once)
    rig.faces.next = FaceEvidence(rig.max, 0.3141592, 0.45, pad(), timings={"detect": 12.5, "pad": 30.0})
    rig.controller.face(FRAME)
    (row,) = lines(timings)
    assert row["method"] == "face"
    assert row["stages_ms"]["evidence.detect"] == 12.5 and row["stages_ms"]["evidence.pad"] == 30.0
    assert row["total_ms"] >= row["stages_ms"]["evidence"]
    assert "0.314159" not in timings.read_text() and "distance" not in timings.read_text()


def test_biometric_values_and_other_stages_are_never_written(timings: Path) -> None:
    trace.emit("face.embedding", [0.1, 0.2], biometric=True)
    trace.emit("pad.verdict", lambda: {"scores": {"texture": 1.5}})
    trace.emit("attempt", {"method": "pin", "stages_ms": {}, "total_ms": 1.0})
    (row,) = lines(timings)
    assert row["method"] == "pin"


def test_without_a_sink_nothing_is_computed() -> None:
    called: list[int] = []
    trace.emit("attempt", lambda: called.append(1))
    assert not called
