"""ISO/IEC 19794-2:2005 finger minutiae record ('FMR\\0', version ' 20\\0'): import and export.

Layout (big-endian): 24-byte record header — format id, version, record length
(4 bytes), capture equipment (4-bit compliance + 12-bit id), image width and
height, x/y resolution in pixels per cm, number of finger views, reserved —
then per view: finger position, view number and impression type, finger
quality, minutia count, 6 bytes per minutia (2-bit type + 14-bit x, 2 reserved
bits + 14-bit y, angle in 360/256° steps counter-clockwise from the x axis,
quality 0–100), and a 2-byte extended-data length followed by that many bytes
of extension areas (2-byte type, 2-byte data length, data).  Limen writes one
view and, when the template has one, its block field (`template.BlockField`) in
a vendor-defined area (type 0x4C46, 'LF': block size, rows, cols, then the
orientation, coherence and frequency bytes) and, when the template came from
Limen's extractor, its version in a second one (type 0x4C56, 'LV': one byte,
`versions.EXTRACTOR_VERSION`); on import it reads the first view and those
areas, skips every other area, and a record without them (written by another
system or by Limen before the field or the version was kept) gives a template
whose field or extractor is None (unknown).  An 'LF' or 'LV' area of the wrong
size, or given twice, is refused (`BadRequest`).

Direction convention: Limen's minutia angle points from the minutia into its
ridge, in image coordinates (y down).  ISO angles point away from the ridge,
counter-clockwise with y up: `iso = (π − limen) mod 2π` then quantised.
"""

from __future__ import annotations

import math
import struct

from limen.bio.finger.template import BlockField, FingerTemplate, Minutia, MinutiaType
from limen.errors import BadRequest

FORMAT_ID = b"FMR\x00"
VERSION = b" 20\x00"
_HEADER = struct.Struct(">4s4sIHHHHHBB")
_VIEW = struct.Struct(">BBBB")
_MINUTIA = struct.Struct(">HHBB")
_CM_PER_INCH = 2.54
_TYPE_BITS = {MinutiaType.OTHER: 0, MinutiaType.ENDING: 1, MinutiaType.BIFURCATION: 2}
_MAX_MINUTIAE = 255
FIELD_AREA_TYPE = 0x4C46            # vendor-defined extension area ('LF'): the block field
VERSION_AREA_TYPE = 0x4C56          # vendor-defined extension area ('LV'): the extractor version, one byte
_AREA = struct.Struct(">HH")
_FIELD_HEADER = struct.Struct(">BBB")


def _iso_angle(angle: float) -> int:
    return int(round(((math.pi - angle) % (2 * math.pi)) / (2 * math.pi) * 256)) % 256


def _limen_angle(code: int) -> float:
    return (math.pi - code / 256 * 2 * math.pi) % (2 * math.pi)


def encode(template: FingerTemplate, finger_position: int = 0, impression_type: int = 0) -> bytes:
    """The ISO/IEC 19794-2:2005 record of `template` (one finger view)."""
    if len(template.minutiae) > _MAX_MINUTIAE:
        raise BadRequest("template", f"at most {_MAX_MINUTIAE} minutiae fit one ISO view")
    res = int(round(template.dpi / _CM_PER_INCH))
    body = _view(template, finger_position, 0, impression_type)
    length = _HEADER.size + len(body)
    header = _HEADER.pack(FORMAT_ID, VERSION, length, 0, template.width, template.height, res, res, 1, 0)
    return header + body


def encode_views(templates: list[FingerTemplate], finger_position: int = 0, impression_type: int = 0) -> bytes:
    """One record holding `templates` as views 0, 1, … of one finger (an enrolled finger's impressions, as
    `limen finger export` writes it): the record's image size is the largest view's, its resolution the views'
    common one (impressions at different resolutions do not fit one record: `BadRequest`)."""
    if not 1 <= len(templates) <= 16:                    # the view number is 4 bits
        raise BadRequest("templates", "1-16 views of one finger fit one ISO record")
    if len({t.dpi for t in templates}) != 1:
        raise BadRequest("templates", "the impressions are at different resolutions: one ISO record has one")
    for t in templates:
        if len(t.minutiae) > _MAX_MINUTIAE:
            raise BadRequest("template", f"at most {_MAX_MINUTIAE} minutiae fit one ISO view")
    res = int(round(templates[0].dpi / _CM_PER_INCH))
    body = b"".join(_view(t, finger_position, k, impression_type) for k, t in enumerate(templates))
    length = _HEADER.size + len(body)
    header = _HEADER.pack(FORMAT_ID, VERSION, length, 0, max(t.width for t in templates),
                          max(t.height for t in templates), res, res, len(templates), 0)
    return header + body


def _view(template: FingerTemplate, finger_position: int, view: int, impression_type: int) -> bytes:
    body = bytearray()
    quality = int(sum(m.quality for m in template.minutiae) / max(len(template.minutiae), 1))
    body += _VIEW.pack(finger_position, (view & 0x0F) << 4 | impression_type & 0x0F, quality,
                       len(template.minutiae))
    for m in template.minutiae:
        if not (0 <= m.x < 1 << 14 and 0 <= m.y < 1 << 14):
            raise BadRequest("template", "minutia position outside the 14-bit ISO range")
        body += _MINUTIA.pack((_TYPE_BITS[m.kind] << 14) | m.x, m.y, _iso_angle(m.angle),
                              max(0, min(100, m.quality)))
    extension = _field_area(template.field) + _version_area(template.extractor)
    body += struct.pack(">H", len(extension)) + extension
    return bytes(body)


def decode(record: bytes) -> FingerTemplate:
    """The template in an ISO/IEC 19794-2:2005 record; `BadRequest` for anything malformed."""
    if len(record) < _HEADER.size + _VIEW.size + 2:
        raise BadRequest("iso_record", "too short for an ISO/IEC 19794-2 record")
    fid, version, length, _, width, height, xres, _, views, _ = _HEADER.unpack_from(record)
    if fid != FORMAT_ID:
        raise BadRequest("iso_record", "not a finger minutiae record (format id)")
    if version != VERSION:
        raise BadRequest("iso_record", f"unsupported version {version!r}; only ' 20' (2005)")
    if length != len(record):
        raise BadRequest("iso_record", f"record length field {length} ≠ {len(record)} bytes")
    if views < 1:
        raise BadRequest("iso_record", "no finger view")
    if xres == 0:
        raise BadRequest("iso_record", "zero resolution")
    _, _, _, count = _VIEW.unpack_from(record, _HEADER.size)
    offset = _HEADER.size + _VIEW.size
    if offset + count * _MINUTIA.size + 2 > len(record):
        raise BadRequest("iso_record", "minutia count runs past the end of the record")
    minutiae = []
    for k in range(count):
        tx, ry, angle, quality = _MINUTIA.unpack_from(record, offset + k * _MINUTIA.size)
        bits = tx >> 14
        kind = {0: MinutiaType.OTHER, 1: MinutiaType.ENDING, 2: MinutiaType.BIFURCATION}.get(bits)
        if kind is None:
            raise BadRequest("iso_record", f"minutia {k}: reserved type bits")
        x, y = tx & 0x3FFF, ry & 0x3FFF
        if x >= width or y >= height or quality > 100:
            raise BadRequest("iso_record", f"minutia {k}: outside the image or quality > 100")
        minutiae.append(Minutia(x, y, _limen_angle(angle), kind, quality))
    dpi = int(round(xres * _CM_PER_INCH))
    field, extractor = _read_extensions(record, offset + count * _MINUTIA.size, views)
    return FingerTemplate(width=width, height=height, dpi=dpi, minutiae=tuple(minutiae), field=field,
                          extractor=extractor)


def decode_views(record: bytes) -> list[FingerTemplate]:
    """Every view of a record (`decode` reads the first only), each with its own block field when it has one;
    `BadRequest` for anything malformed, including views that do not fill the record exactly."""
    first = decode(record)                                # the header's checks, and the first view's
    _, _, _, _, width, height, _, _, views, _ = _HEADER.unpack_from(record)
    out, offset = [], _HEADER.size
    for k in range(views):
        if offset + _VIEW.size + 2 > len(record):
            raise BadRequest("iso_record", f"view {k} runs past the end of the record")
        _, _, _, count = _VIEW.unpack_from(record, offset)
        offset += _VIEW.size
        if offset + count * _MINUTIA.size + 2 > len(record):
            raise BadRequest("iso_record", f"view {k}: minutia count runs past the end of the record")
        minutiae = []
        for j in range(count):
            tx, ry, angle, quality = _MINUTIA.unpack_from(record, offset + j * _MINUTIA.size)
            kind = {0: MinutiaType.OTHER, 1: MinutiaType.ENDING, 2: MinutiaType.BIFURCATION}.get(tx >> 14)
            x, y = tx & 0x3FFF, ry & 0x3FFF
            if kind is None or x >= width or y >= height or quality > 100:
                raise BadRequest("iso_record", f"view {k}, minutia {j}: reserved type bits, outside the image "
                                               "or quality > 100")
            minutiae.append(Minutia(x, y, _limen_angle(angle), kind, quality))
        offset += count * _MINUTIA.size
        field, extractor = _read_extensions(record, offset, 1)   # this view's extended data, as a one-view record's
        (total,) = struct.unpack_from(">H", record, offset)
        offset += 2 + total
        out.append(FingerTemplate(width=width, height=height, dpi=first.dpi, minutiae=tuple(minutiae), field=field,
                                  extractor=extractor))
    if offset != len(record):
        raise BadRequest("iso_record", "the views do not fill the record")
    return out


def _field_area(field: BlockField | None) -> bytes:
    if field is None:
        return b""
    cells = field.rows * field.cols
    if not (0 < field.block < 256 and 0 < field.rows < 256 and 0 < field.cols < 256):
        raise BadRequest("template", "block field too large for its ISO extension area")
    data = b"".join([_FIELD_HEADER.pack(field.block, field.rows, field.cols), field.orientation, field.coherence,
                     field.frequency])
    if len(data) != _FIELD_HEADER.size + 3 * cells or len(data) > 0xFFFF - _AREA.size:
        raise BadRequest("template", "block field of inconsistent size")
    return _AREA.pack(FIELD_AREA_TYPE, len(data)) + data


def _version_area(extractor: int | None) -> bytes:
    if extractor is None:
        return b""
    if not 0 < extractor < 256:
        raise BadRequest("template", "extractor version outside one byte")
    return _AREA.pack(VERSION_AREA_TYPE, 1) + bytes([extractor])


def _read_extensions(record: bytes, offset: int, views: int) -> tuple[BlockField | None, int | None]:
    """The block field and extractor version in the first view's extended data (None: absent, or more views
    follow, whose layout Limen does not read); `BadRequest` for extension areas that run past their block, and
    for a Limen area of the wrong size or given twice."""
    (total,) = struct.unpack_from(">H", record, offset)
    start, end = offset + 2, offset + 2 + total
    if end > len(record):
        raise BadRequest("iso_record", "extended data runs past the end of the record")
    if views != 1:
        return None, None
    field, extractor, seen = None, None, set()
    while start < end:
        if start + _AREA.size > end:
            raise BadRequest("iso_record", "truncated extension area")
        kind, size = _AREA.unpack_from(record, start)
        data = record[start + _AREA.size:start + _AREA.size + size]
        if len(data) != size or start + _AREA.size + size > end:
            raise BadRequest("iso_record", "extension area runs past the extended data")
        if kind in (FIELD_AREA_TYPE, VERSION_AREA_TYPE):
            if kind in seen:
                raise BadRequest("iso_record", f"Limen extension area {kind:#06x} given twice")
            seen.add(kind)
        if kind == FIELD_AREA_TYPE:
            field = _decode_field(data)
        elif kind == VERSION_AREA_TYPE:
            extractor = _decode_version(data)
        start += _AREA.size + size
    return field, extractor


def _decode_version(data: bytes) -> int:
    if len(data) != 1 or data[0] == 0:
        raise BadRequest("iso_record", f"extractor version area of {len(data)} bytes; one non-zero byte expected")
    return data[0]


def _decode_field(data: bytes) -> BlockField:
    if len(data) < _FIELD_HEADER.size:
        raise BadRequest("iso_record", "block field area too short")
    block, rows, cols = _FIELD_HEADER.unpack_from(data)
    cells = rows * cols
    if block == 0 or cells == 0 or len(data) != _FIELD_HEADER.size + 3 * cells:
        raise BadRequest("iso_record", "block field area of inconsistent size")
    body = data[_FIELD_HEADER.size:]
    return BlockField(block, rows, cols, body[:cells], body[cells:2 * cells], body[2 * cells:])
