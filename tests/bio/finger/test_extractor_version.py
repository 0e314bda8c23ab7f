"""Which extractor made a template: Limen's version travels in its ISO records (vendor area 'LV'), a record
without it (another system's, or Limen's from before the bifurcation trace fix) reads as unknown, a damaged
area is refused; each enrolled finger's marker records the oldest version among its impressions, readable
without unsealing (`versions.outdated`)."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import pytest

from limen.bio.finger import iso, versions
from limen.bio.finger.extract import extract_file
from limen.bio.finger.references import FingerReferences, erase_references
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType
from limen.errors import BadRequest
from limen.vault.secrets import SecretBox

_END = 24 + 4 + 3 * 6          # header, view header, three minutiae: where the extended data length sits


def _template(extractor: int | None) -> FingerTemplate:
    minutiae = (Minutia(10, 20, 0.0, MinutiaType.ENDING, 90), Minutia(300, 5, math.pi / 2, MinutiaType.BIFURCATION, 40),
                Minutia(0, 399, 5.5, MinutiaType.OTHER, 0))
    return FingerTemplate(width=388, height=400, dpi=500, minutiae=minutiae, extractor=extractor)


def _with_extension(area: bytes) -> bytes:
    """The plain three-minutia record with `area` as its extended data (lengths fixed up)."""
    plain = iso.encode(_template(None))
    record = bytearray(plain[:-2] + struct.pack(">H", len(area)) + area)
    record[8:12] = struct.pack(">I", len(record))
    return bytes(record)


def test_a_record_from_this_extractor_carries_its_version() -> None:
    record = iso.encode(_template(versions.EXTRACTOR_VERSION))
    assert struct.unpack(">H", record[_END:_END + 2])[0] == 4 + 1
    assert struct.unpack(">HHB", record[_END + 2:]) == (iso.VERSION_AREA_TYPE, 1, versions.EXTRACTOR_VERSION)
    assert iso.decode(record).extractor == versions.EXTRACTOR_VERSION


def test_every_view_of_an_exported_finger_keeps_its_version() -> None:
    views = iso.decode_views(iso.encode_views([_template(versions.EXTRACTOR_VERSION), _template(None)]))
    assert [v.extractor for v in views] == [versions.EXTRACTOR_VERSION, None]


def test_a_foreign_record_without_the_area_parses_as_unknown() -> None:
    core_delta = struct.pack(">HH", 0x0002, 3) + b"\x00\x00\x00"      # another vendor's area, then none of ours
    for record in (iso.encode(_template(None)), _with_extension(core_delta)):
        back = iso.decode(record)
        assert back.extractor is None and len(back.minutiae) == 3


@pytest.mark.parametrize("area, reason", [
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 0), "extractor version area of 0 bytes"),
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 2) + b"\x01\x01", "extractor version area of 2 bytes"),
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 1) + b"\x00", "one non-zero byte"),
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 1) + b"\x01" + struct.pack(">HH", iso.VERSION_AREA_TYPE, 1) + b"\x02",
     "given twice"),
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 1), "runs past the extended data"),   # the version byte cut off
    (struct.pack(">HH", iso.VERSION_AREA_TYPE, 1) + b"\x01" + b"\x4c", "truncated extension area"),
])
def test_a_damaged_or_hostile_version_area_is_refused(area: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        iso.decode(_with_extension(area))


def test_a_record_cut_inside_the_version_area_is_refused() -> None:
    record = bytearray(iso.encode(_template(versions.EXTRACTOR_VERSION)))[:-1]   # extended data says 5, has 4
    record[8:12] = struct.pack(">I", len(record))
    with pytest.raises(BadRequest, match="extended data runs past the end"):
        iso.decode(bytes(record))


def test_an_extracted_template_carries_the_current_version(fvc_db1: Path) -> None:
    t = extract_file(fvc_db1 / "101_1.tif")
    assert t.extractor == versions.EXTRACTOR_VERSION
    assert iso.decode(iso.encode(t)).extractor == versions.EXTRACTOR_VERSION


def test_the_oldest_impression_marks_the_finger() -> None:
    assert versions.oldest([1, 1]) == 1
    assert versions.oldest([2, 1]) == 1
    assert versions.oldest([1, None]) is None
    assert versions.oldest([]) is None


def _refs(folder: Path) -> FingerReferences:
    key = bytearray(os.urandom(32))
    return FingerReferences(folder, SecretBox(lambda: key))


def test_enrolment_marks_each_finger_and_status_reads_it_without_unsealing(tmp_path: Path) -> None:
    folder = tmp_path / "fingerprints"
    refs = _refs(folder)
    current, old = "00aa", "00bb"
    refs.put(current, [_template(versions.EXTRACTOR_VERSION)] * 2, position=2)
    refs.put(old, [_template(versions.EXTRACTOR_VERSION), _template(None)], position=0)   # one imported impression
    refs.put(old, [_template(versions.EXTRACTOR_VERSION)] * 2, position=7)
    assert versions.read_marker(folder / "00aa.2.fmr") == versions.EXTRACTOR_VERSION
    assert not versions.marker_path(folder / "00bb.fmr").exists()
    assert versions.outdated(folder) == [(old, 0, None)]
    refs.put(old, [_template(versions.EXTRACTOR_VERSION)] * 2, position=0)                # re-enrolled
    assert versions.outdated(folder) == []
    refs.put(current, [_template(None)] * 2, position=2)                                  # replaced by an import
    assert versions.outdated(folder) == [(current, 2, None)]


def test_an_older_or_unreadable_marker_and_a_missing_one_are_outdated(tmp_path: Path) -> None:
    folder = tmp_path / "fingerprints"
    folder.mkdir()
    for name, marker in (("01.fmr", b"0\n"), ("02.3.fmr", b"lots"), ("03.fmr", None), ("04.fmr", b"1\n")):
        (folder / name).write_bytes(b"\x01sealed")
        if marker is not None:
            versions.marker_path(folder / name).write_bytes(marker)
    (folder / "05.fmr.extractor").write_bytes(b"1\n")                 # a marker without its finger: not listed
    assert versions.outdated(folder) == [("01", 0, None), ("02", 3, None), ("03", 0, None)]


def test_a_backup_import_marks_from_the_records(tmp_path: Path) -> None:
    source = _refs(tmp_path / "a" / "fingerprints")
    source.put("00aa", [_template(versions.EXTRACTOR_VERSION)] * 2)
    source.put("00bb", [_template(None)] * 2)
    fingers = [(u, p, bytes(plain)) for u, p, plain in source.export_for_backup()]
    target_folder = tmp_path / "b" / "fingerprints"
    assert _refs(target_folder).import_from_backup(fingers, {"00aa", "00bb"}) == 2
    assert versions.outdated(target_folder) == [("00bb", 0, None)]


def test_removing_a_finger_or_a_person_removes_the_markers(tmp_path: Path) -> None:
    folder = tmp_path / "fingerprints"
    refs = _refs(folder)
    for position in (0, 4):
        refs.put("00aa", [_template(versions.EXTRACTOR_VERSION)] * 2, position=position)
    refs.delete("00aa", 4)
    assert sorted(p.name for p in folder.iterdir()) == ["00aa.fmr", "00aa.fmr.extractor"]
    (folder / "00aa.9.fmr.extractor").write_bytes(b"1\n")            # left by an interrupted write
    assert erase_references(folder, "00aa") == 1
    assert list(folder.iterdir()) == []

