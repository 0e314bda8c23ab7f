"""ISO/IEC 19794-2:2005 records with several views of one finger (`limen finger export`): layout, round trip with
each view's block field, refusal of records whose views do not add up."""

from __future__ import annotations

import math
import struct

import pytest

from limen.bio.finger import iso
from limen.bio.finger.template import BlockField, FingerTemplate, Minutia, MinutiaType
from limen.errors import BadRequest


def _view(shift: int, field: bool) -> FingerTemplate:
    minutiae = tuple(Minutia(10 + shift + 7 * k, 20 + 5 * k, (k * 0.7) % (2 * math.pi), MinutiaType(1 + k % 2), 60)
                     for k in range(5 + shift))
    f = BlockField(16, 2, 3, bytes(range(6)), bytes(range(10, 16)), bytes(range(20, 26))) if field else None
    return FingerTemplate(width=388, height=374, dpi=500, minutiae=minutiae, field=f)


def test_views_round_trip_in_order_each_with_its_field() -> None:
    views = [_view(0, True), _view(1, False), _view(2, True)]
    record = iso.encode_views(views, finger_position=7)
    assert record[22] == 3                                              # three finger views
    assert record[24] == 7 and record[25] >> 4 == 0                     # view 0 of finger 7
    back = iso.decode_views(record)
    assert [len(v.minutiae) for v in back] == [5, 6, 7]
    assert [v.field for v in back] == [views[0].field, None, views[2].field]
    for a, b in zip(views, back, strict=True):
        assert [(m.x, m.y, m.kind) for m in a.minutiae] == [(m.x, m.y, m.kind) for m in b.minutiae]
    assert iso.decode(record).minutiae == back[0].minutiae             # a one-view reader sees the first


def test_a_one_view_record_is_one_view() -> None:
    record = iso.encode(_view(0, True))
    assert iso.decode_views(record) == [iso.decode(record)]


def test_views_that_do_not_fill_the_record_are_refused() -> None:
    record = bytearray(iso.encode_views([_view(0, False), _view(1, False)]))
    record[22] = 3                                                      # a third view that is not there
    with pytest.raises(BadRequest):
        iso.decode_views(bytes(record))
    record[22] = 1                                                      # one view, the second left over
    with pytest.raises(BadRequest):
        iso.decode_views(bytes(record))
    padded = bytearray(iso.encode_views([_view(0, False)])) + b"\x00\x00"
    padded[8:12] = struct.pack(">I", len(padded))
    with pytest.raises(BadRequest):
        iso.decode_views(bytes(padded))


def test_impressions_at_different_resolutions_do_not_fit_one_record() -> None:
    other = FingerTemplate(width=388, height=374, dpi=569, minutiae=_view(0, False).minutiae)
    with pytest.raises(BadRequest):
        iso.encode_views([_view(0, False), other])
    with pytest.raises(BadRequest):
        iso.encode_views([])
