"""The protected fixed-length fingerprint code: spectral minutiae under a keyed sign projection."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from limen.bio.finger.extract import extract_file
from limen.bio.finger.fixed import SpectralKey, protected_similarity, spectral_minutiae, spectral_similarity
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType
from limen.lab import finger_protection


def _moved(t: FingerTemplate, degrees: float, dx: int, dy: int) -> FingerTemplate:
    a = math.radians(degrees)
    cx, cy = t.width / 2, t.height / 2
    out = []
    for m in t.minutiae:
        x, y = m.x - cx, m.y - cy
        out.append(replace(m, x=int(round(cx + dx + x * math.cos(a) - y * math.sin(a))),
                           y=int(round(cy + dy + x * math.sin(a) + y * math.cos(a))),
                           angle=(m.angle + a) % (2 * math.pi)))
    return replace(t, minutiae=tuple(out))


@pytest.fixture(scope="module")
def prints(fvc_db1: Path) -> dict[str, FingerTemplate]:
    return {n: extract_file(fvc_db1 / f"{n}.tif") for n in ("101_1", "101_2", "101_3", "102_1", "103_1", "104_1")}


def test_the_code_ignores_where_the_print_lies_and_follows_its_rotation(prints: dict[str, FingerTemplate]) -> None:
    t = prints["101_1"]
    s = spectral_minutiae(t)
    assert s.shape == (2, 64, 128) and np.allclose(np.linalg.norm(s, axis=(1, 2)), 1.0)
    assert spectral_similarity(s, spectral_minutiae(_moved(t, 0, 40, -25))) > 0.99   # translation invariant
    turned = spectral_similarity(s, spectral_minutiae(_moved(t, 20, 10, 5)))
    assert turned > 0.8 > spectral_similarity(s, spectral_minutiae(prints["102_1"]))
    key = SpectralKey(b"k" * 32)
    assert protected_similarity(key.protect(t), key.protect(_moved(t, 20, 10, 5))) > 0.8


def test_keys_make_unrelated_codes_and_one_key_separates_fingers(prints: dict[str, FingerTemplate]) -> None:
    a, b = SpectralKey(b"a" * 32), SpectralKey(b"b" * 32)
    t = prints["101_1"]
    assert np.array_equal(a.protect(t), SpectralKey(b"a" * 32).protect(t))      # a key is a function
    code = a.protect(t)
    assert code.shape == (2, 128, 128) and code.dtype == bool
    across = float(np.mean(code == b.protect(t)))
    assert 0.45 < across < 0.55                                                  # another key: chance agreement
    genuine = [protected_similarity(code, a.protect(prints[n])) for n in ("101_2", "101_3")]
    impostor = [protected_similarity(code, a.protect(prints[n])) for n in ("102_1", "103_1", "104_1")]
    assert min(genuine) > max(impostor)
    with pytest.raises(ValueError):
        SpectralKey(b"short")


def test_degenerate_templates_give_empty_spectra() -> None:
    lone = FingerTemplate(300, 300, 500, (Minutia(10, 10, 0.0, MinutiaType.ENDING, 50),))
    assert not spectral_minutiae(lone).any()


def test_lab_figures_on_a_few_fingers(fvc_db1: Path, tmp_path: Path) -> None:
    for f in range(101, 106):
        for i in (1, 2, 3, 4):
            (tmp_path / f"{f}_{i}.tif").symlink_to(fvc_db1 / f"{f}_{i}.tif")
    templates, pairs = finger_protection.samples_of(tmp_path)
    r = finger_protection.evaluate("DB1_B-subset", templates, pairs, devices=2, inversion_targets=2,
                                   inversion_iterations=40)
    assert r.fte == 0 and r.eer_minutiae <= r.eer_protected_mean < 0.5
    link = r.unlinkability
    # linkable under one key, not across two (beyond the estimator's noise on this small sample)
    assert link["d_sys_two_devices"] < link["d_sys_estimator_floor_shuffled_labels"] + 0.2
    assert link["d_sys_control_same_device"] > link["d_sys_two_devices"] + 0.3
    assert r.inversion is not None and r.inversion.passes_minutiae == 0
