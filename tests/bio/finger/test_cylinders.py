"""The protected Minutia Cylinder-Code: keyed bit strings per minutia, compared without positions."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.finger import cylinders
from limen.bio.finger.cylinders import CylinderKey, ProtectedFingerCode, compare
from limen.bio.finger.extract import extract_file
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType
from limen.lab import finger_protection

GENUINE = ("101_2", "101_3", "101_4")
IMPOSTORS = ("102_1", "103_1", "104_1", "105_1", "106_1")


@pytest.fixture(scope="module")
def prints(fvc_db1: Path) -> dict[str, FingerTemplate]:
    return {n: extract_file(fvc_db1 / f"{n}.tif") for n in ("101_1", *GENUINE, *IMPOSTORS)}


def _shifted(t: FingerTemplate, dx: int, dy: int) -> FingerTemplate:
    return replace(t, minutiae=tuple(replace(m, x=m.x + dx, y=m.y + dy) for m in t.minutiae))


def test_a_key_is_a_function_and_the_code_holds_only_sorted_bit_strings(prints: dict[str, FingerTemplate]) -> None:
    t = prints["101_1"]
    key = CylinderKey(b"k" * 32)
    code = key.protect(t)
    assert len(code) > 10 and code.bits.dtype == bool
    assert np.array_equal(code.bits, CylinderKey(b"k" * 32).protect(t).bits)
    # nothing in the stored bytes depends on where the print lies or on the order minutiae were found in
    shuffled = list(t.minutiae)
    random.Random(1).shuffle(shuffled)
    stored = code.to_bytes()
    assert key.protect(_shifted(t, 37, -21)).to_bytes() == stored
    assert key.protect(replace(t, minutiae=tuple(shuffled))).to_bytes() == stored
    n, k = code.bits.shape
    assert len(stored) == 8 + n * k // 8                       # a header and the bits: no positions, no angles
    assert np.array_equal(ProtectedFingerCode.from_bytes(stored).bits, code.bits)


def test_the_same_finger_scores_above_other_fingers_under_one_key(prints: dict[str, FingerTemplate]) -> None:
    key = CylinderKey(b"device-one-secret")
    probe = key.protect(prints["101_1"])
    genuine = [compare(probe, key.protect(prints[n])) for n in GENUINE]
    impostor = [compare(probe, key.protect(prints[n])) for n in IMPOSTORS]
    assert float(np.mean(genuine)) > max(impostor)
    assert compare(probe, probe) == pytest.approx(1.0)


def test_another_key_gives_unlinkable_codes(prints: dict[str, FingerTemplate]) -> None:
    a, b = CylinderKey(b"a" * 32), CylinderKey(b"b" * 32)
    t = prints["101_1"]
    across = compare(a.protect(t), b.protect(t))               # the very same print under two keys
    impostor = [compare(a.protect(t), a.protect(prints[n])) for n in IMPOSTORS]
    genuine = [compare(a.protect(t), a.protect(prints[n])) for n in GENUINE]
    assert across < max(impostor) + 0.02 < min(genuine) + 0.02
    assert across < float(np.mean(genuine))
    assert 0.4 < float(np.mean(a.protect(t).bits == b.protect(t).bits)) < 0.6
    with pytest.raises(ValueError):
        CylinderKey(b"short")


def test_the_unprotected_cylinders_separate_the_same_prints(prints: dict[str, FingerTemplate]) -> None:
    c = cylinders.cylinders(prints["101_1"])
    assert c.values.shape[1:] == (256, 6) and c.valid.shape == (len(c), 256)
    assert cylinders.unprotected_similarity(c, c) == pytest.approx(1.0)
    assert np.array_equal(cylinders.turned(cylinders.turned(c)).values, c.values)
    genuine = [cylinders.unprotected_similarity(c, cylinders.cylinders(prints[n])) for n in GENUINE]
    impostor = [cylinders.unprotected_similarity(c, cylinders.cylinders(prints[n])) for n in IMPOSTORS]
    assert float(np.mean(genuine)) > max(impostor)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_minutiae_give_an_empty_code_that_matches_nothing(count: int) -> None:
    minutiae = tuple(Minutia(100 + 20 * i, 100, 0.5 * i, MinutiaType.ENDING, 60) for i in range(count))
    key = CylinderKey(b"k" * 32)
    code = key.protect(FingerTemplate(300, 300, 500, minutiae))
    assert len(code) == 0
    assert compare(code, code) == 0.0
    assert len(ProtectedFingerCode.from_bytes(code.to_bytes())) == 0


def test_serialisation_refuses_what_it_did_not_write() -> None:
    bits = np.random.default_rng(0).random((5, 64)) > 0.5
    code = ProtectedFingerCode(bits)
    assert np.array_equal(ProtectedFingerCode.from_bytes(code.to_bytes()).bits, bits)
    for bad in (b"", b"LMC1", b"XXXX" + code.to_bytes()[4:], code.to_bytes()[:-1], code.to_bytes() + b"\0"):
        with pytest.raises(ValueError):
            ProtectedFingerCode.from_bytes(bad)
    with pytest.raises(ValueError):
        compare(code, ProtectedFingerCode(np.zeros((3, 128), bool)))


def test_lab_figures_on_a_few_fingers(fvc_db1: Path, tmp_path: Path) -> None:
    for f in range(101, 106):
        for i in (1, 2, 3, 4):
            (tmp_path / f"{f}_{i}.tif").symlink_to(fvc_db1 / f"{f}_{i}.tif")
    templates, pairs = finger_protection.samples_of(tmp_path)
    usable = {n: t for n, t in templates.items() if t is not None}
    r = finger_protection.evaluate_cylinders(usable, pairs, 10.0, devices=2, inversion_targets=2,
                                             inversion_iterations=30)
    assert r.eer_protected_mean < 0.5 and r.eer_unprotected < 0.5
    link = r.unlinkability
    assert link["d_sys_two_devices"] < link["d_sys_estimator_floor_shuffled_labels"] + 0.2
    assert link["d_sys_control_same_device"] > link["d_sys_two_devices"] + 0.3
    assert link["d_sys_count_two_devices"] == 0.0                # every code holds FINGER_MCC_STRINGS strings
    assert r.inversion is not None and r.inversion.passes_minutiae == 0
    assert 0 < r.compare_ms[0] <= r.compare_ms[1] and 0 < r.encode_ms[0] <= r.encode_ms[1]


def test_a_bit_string_counts_once_in_the_comparison() -> None:
    # one probe string repeated in the reference must not fill the best pairs alone (the Local Similarity Sort,
    # which lets a string pair with several others, scores these two codes 1.0)
    rng = np.random.default_rng(3)
    probe = rng.random((3, 256)) > 0.5
    reference = np.concatenate([np.repeat(probe[:1], 6, axis=0), rng.random((6, 256)) > 0.5])
    a, b = ProtectedFingerCode(probe), ProtectedFingerCode(reference)
    assert cylinders.local_similarity_sort(cylinders.code_similarities(a, b)) == pytest.approx(1.0)
    assert compare(a, b) < 0.8
    assert compare(a, a) == pytest.approx(1.0)


def _few(t: FingerTemplate, count: int) -> FingerTemplate:
    """The `count` minutiae of `t` nearest its centre (a small print: few cylinders)."""
    xy, _, _ = t.arrays()
    near = np.argsort(((xy - xy.mean(0)) ** 2).sum(1))[:count]
    return replace(t, minutiae=tuple(t.minutiae[i] for i in sorted(near)))


def _decoys(key: CylinderKey, t: FingerTemplate) -> set[bytes]:
    """The stored strings that are no cylinder's of `t` (what the key added)."""
    real = {r.tobytes() for r in np.packbits(key.probe(t).bits, axis=1)}
    return {r.tobytes() for r in np.packbits(key.protect(t).bits, axis=1)} - real


def test_every_stored_code_has_the_same_number_of_strings(prints: dict[str, FingerTemplate]) -> None:
    # the number of strings was the number of cylinders: it linked a person's codes across device keys
    key = CylinderKey(b"k" * 32)
    templates = [*prints.values(), _few(prints["101_1"], 12), _few(prints["102_1"], 6)]
    cylinder_counts = {len(cylinders.cylinders(t)) for t in templates}
    assert len(cylinder_counts) > 3 and min(cylinder_counts) < thresholds.FINGER_MCC_STRINGS < max(cylinder_counts)
    stored = [key.protect(t).to_bytes() for t in templates]
    assert {len(ProtectedFingerCode.from_bytes(s)) for s in stored} == {thresholds.FINGER_MCC_STRINGS}
    assert len({len(s) for s in stored}) == 1
    assert {len(key.probe(t)) for t in templates} == cylinder_counts    # a probe (never stored) keeps them all


def test_decoys_are_keyed_and_differ_from_print_to_print(prints: dict[str, FingerTemplate]) -> None:
    small, other = _few(prints["101_1"], 12), _few(prints["102_1"], 12)
    a, b = CylinderKey(b"a" * 32), CylinderKey(b"b" * 32)
    decoys = _decoys(a, small)
    assert len(decoys) >= thresholds.FINGER_MCC_STRINGS - len(cylinders.cylinders(small))
    assert _decoys(CylinderKey(b"a" * 32), small) == decoys            # a key is a function
    assert not decoys & _decoys(a, other)                               # no decoy shared by two codes of a device
    assert not decoys & _decoys(b, small)                               # renewal: another key, other decoys
    # decoys are sorted in among the real strings, not stored as a block
    rows = [r.tobytes() for r in np.packbits(a.protect(small).bits, axis=1)]
    where = [i for i, r in enumerate(rows) if r in decoys]
    assert where != list(range(where[0], where[0] + len(where)))


def test_decoys_barely_move_impostor_scores_and_keep_the_comparison(prints: dict[str, FingerTemplate]) -> None:
    # decoys look like another finger's cylinders (one that never scored would stand out to anyone holding two
    # codes of a device: `compare` needs no key), so against a small print, mostly decoys, an impostor gains a
    # little — far less than the gap between impostors (≈ 0.6) and genuine probes (≈ 0.75)
    key, variable = CylinderKey(b"k" * 32), CylinderKey(b"k" * 32, strings=0)
    small = _few(prints["101_1"], 15)
    padded, bare = key.protect(small), variable.protect(small)
    assert len(padded) == thresholds.FINGER_MCC_STRINGS > 2 * len(bare)
    impostor = [compare(key.probe(prints[n]), padded) - compare(key.probe(prints[n]), bare) for n in IMPOSTORS]
    assert max(impostor) <= 0.02
    genuine = [compare(key.probe(prints[n]), padded) for n in GENUINE]
    assert min(genuine) > max(compare(key.probe(prints[n]), padded) for n in IMPOSTORS)
    assert compare(key.probe(small), padded) == pytest.approx(1.0)
