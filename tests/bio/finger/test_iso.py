"""ISO/IEC 19794-2:2005 records: byte layout, round trip, refusal of malformed records."""

from __future__ import annotations

import math
import struct

import pytest

from limen.bio.finger import iso
from limen.bio.finger.template import BlockField, FingerTemplate, Minutia, MinutiaType
from limen.errors import BadRequest


def _template() -> FingerTemplate:
    minutiae = (
        Minutia(10, 20, 0.0, MinutiaType.ENDING, 90),
        Minutia(300, 5, math.pi / 2, MinutiaType.BIFURCATION, 40),
        Minutia(0, 399, 5.5, MinutiaType.OTHER, 0),
    )
    return FingerTemplate(width=388, height=400, dpi=500, minutiae=minutiae)


def test_header_fields_follow_the_2005_layout() -> None:
    record = iso.encode(_template(), finger_position=2)
    assert record[:4] == b"FMR\x00" and record[4:8] == b" 20\x00"
    assert struct.unpack(">I", record[8:12])[0] == len(record) == 24 + 4 + 3 * 6 + 2
    assert struct.unpack(">HH", record[14:18]) == (388, 400)
    assert struct.unpack(">HH", record[18:22]) == (197, 197)          # 500 dpi in px/cm
    assert record[22] == 1                                           # one finger view
    assert record[24] == 2 and record[27] == 3                      # finger position, minutia count
    first = struct.unpack(">HHBB", record[28:34])
    assert first[0] >> 14 == 1 and first[0] & 0x3FFF == 10 and first[1] == 20 and first[3] == 90


def test_round_trip_keeps_positions_types_quality_and_angles_to_one_step() -> None:
    t = _template()
    back = iso.decode(iso.encode(t))
    assert (back.width, back.height, back.dpi) == (t.width, t.height, t.dpi)
    for a, b in zip(t.minutiae, back.minutiae, strict=True):
        assert (a.x, a.y, a.kind, a.quality) == (b.x, b.y, b.kind, b.quality)
        diff = abs((a.angle - b.angle + math.pi) % (2 * math.pi) - math.pi)
        assert diff <= math.pi / 256 + 1e-9


def test_iso_angle_is_counter_clockwise_and_points_away_from_the_ridge() -> None:
    # a ridge running to the right of an ending (Limen angle 0) → ISO direction points left: 180°
    t = FingerTemplate(100, 100, 500, (Minutia(5, 5, 0.0, MinutiaType.ENDING, 50),))
    assert iso.encode(t)[32] == 128


@pytest.mark.parametrize("mutate, reason", [
    (lambda r: b"XXX\x00" + r[4:], "format id"),
    (lambda r: r[:4] + b" 30\x00" + r[8:], "version"),
    (lambda r: r[:-1], "length"),
    (lambda r: r[:27] + bytes([200]) + r[28:], "past the end"),
    (lambda r: r[:12], "too short"),
])
def test_malformed_records_are_refused_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest, match=reason):
        iso.decode(mutate(iso.encode(_template())))


def test_a_minutia_outside_the_image_is_refused() -> None:
    record = bytearray(iso.encode(_template()))
    record[28:30] = struct.pack(">H", (1 << 14) | 1000)
    with pytest.raises(BadRequest, match="outside"):
        iso.decode(bytes(record))


def _with_field() -> FingerTemplate:
    t = _template()
    field = BlockField(16, 2, 3, bytes([0, 64, 128, 192, 255, 1]), bytes([0, 50, 100, 150, 200, 255]),
                       bytes([0, 0, 90, 110, 130, 255]))
    return FingerTemplate(t.width, t.height, t.dpi, t.minutiae, field)


def test_the_block_field_travels_in_a_vendor_extension_area() -> None:
    t = _with_field()
    record = iso.encode(t)
    end = 24 + 4 + 3 * 6
    assert struct.unpack(">H", record[end:end + 2])[0] == 4 + 3 + 18 == len(record) - end - 2
    assert struct.unpack(">HH", record[end + 2:end + 6]) == (iso.FIELD_AREA_TYPE, 3 + 18)
    back = iso.decode(record)
    assert back.field == t.field and back.minutiae == iso.decode(iso.encode(_template())).minutiae


def test_a_record_without_the_field_still_loads_with_no_field() -> None:
    # the records Limen wrote before the field was kept (extended data length 0), and other systems' records
    assert iso.decode(iso.encode(_template())).field is None


def test_other_extension_areas_are_skipped() -> None:
    plain = iso.encode(_template())
    area = struct.pack(">HH", 0x0002, 3) + b"\x00\x00\x00"          # a core-and-delta area Limen does not read
    record = bytearray(plain[:-2] + struct.pack(">H", len(area)) + area)
    record[8:12] = struct.pack(">I", len(record))
    assert iso.decode(bytes(record)).field is None


@pytest.mark.parametrize("cut, reason", [(1, "past the extended data|extension area"),
                                         (5, "past the extended data|extension area")])
def test_a_truncated_extension_area_is_refused(cut: int, reason: str) -> None:
    record = bytearray(iso.encode(_with_field()))
    end = 24 + 4 + 3 * 6
    total = struct.unpack(">H", record[end:end + 2])[0]
    record[end:end + 2] = struct.pack(">H", total - cut)
    record = record[:len(record) - cut]
    record[8:12] = struct.pack(">I", len(record))
    with pytest.raises(BadRequest, match=reason):
        iso.decode(bytes(record))


def test_a_field_of_inconsistent_size_is_refused() -> None:
    record = bytearray(iso.encode(_with_field()))
    record[24 + 4 + 18 + 2 + 4 + 1] = 3                              # rows 2 → 3: the bytes no longer add up
    with pytest.raises(BadRequest, match="inconsistent"):
        iso.decode(bytes(record))
