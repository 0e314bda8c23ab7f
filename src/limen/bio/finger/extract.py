"""The fingerprint extractor: a straight line of stages, each named after what it produces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen import thresholds, trace
from limen.bio.finger import iso
from limen.bio.finger.binarization import binary_ridges
from limen.bio.finger.enhancement import enhanced_image
from limen.bio.finger.field import block_field
from limen.bio.finger.filtering import true_minutiae
from limen.bio.finger.frequency import ridge_period
from limen.bio.finger.image import check_resolution, checked_image, load_image
from limen.bio.finger.minutiae import raw_minutiae
from limen.bio.finger.orientation import orientation_field
from limen.bio.finger.segmentation import area_reason, normalized, print_area, segmentation_mask
from limen.bio.finger.template import FingerTemplate
from limen.bio.finger.thinning import skeleton
from limen.bio.finger.versions import EXTRACTOR_VERSION
from limen.errors import BadImage, BadRequest


def extract(image: np.ndarray, dpi: int = 500, source: str | Path = "<image>") -> FingerTemplate:
    """Minutiae of a 500 dpi grey fingerprint image; `BadImage` for a capture unfit to enrol or match."""
    grey = checked_image(image, source)
    norm = normalized(grey)
    mask = segmentation_mask(norm)
    area = min(float(mask.mean()), print_area(grey))
    if area < thresholds.FINGER_MIN_AREA_FRACTION:
        raise BadImage(source, f"partial print: {area_reason(area)}")
    orientation, coherence = orientation_field(norm)
    period = ridge_period(norm, mask)
    enhanced = enhanced_image(norm, orientation, period)
    ridges = binary_ridges(enhanced, mask)
    skel = skeleton(ridges)
    candidates = raw_minutiae(skel, orientation, period)
    minutiae = true_minutiae(candidates, mask, coherence)
    field = block_field(orientation, coherence, mask, skel)
    check_resolution(field, source)  # wrong resolution (250 / 1000 dpi, …)
    trace.emit("finger.mask", mask, biometric=True)
    trace.emit("finger.enhanced", enhanced, biometric=True)
    trace.emit("finger.skeleton", skel, biometric=True)
    if len(minutiae) < thresholds.FINGER_MIN_MINUTIAE:
        raise BadImage(source, f"only {len(minutiae)} reliable minutiae; capture again")
    h, w = grey.shape
    return FingerTemplate(width=w, height=h, dpi=dpi, minutiae=minutiae, field=field, extractor=EXTRACTOR_VERSION)


def extract_file(path: str | Path, dpi: int = 500) -> FingerTemplate:
    """`extract` on an image file."""
    return extract(load_image(path), dpi=dpi, source=path)


def template_file(path: str | Path) -> FingerTemplate:
    """A fingerprint image file, or an ISO/IEC 19794-2:2005 finger minutiae record (`FMR\\0`, e.g. a `.fmr` file
    exported by another system or by `iso.encode`), as a template; `BadImage` for either kind unfit to use."""
    p = Path(path)
    if p.is_file() and p.stat().st_size <= thresholds.MAX_IMAGE_BYTES:
        with p.open("rb") as f:
            if f.read(len(iso.FORMAT_ID)) == iso.FORMAT_ID:
                return record_template(p.read_bytes(), p)
    return extract_file(p)


def template_files(path: str | Path) -> list[FingerTemplate]:
    """As `template_file`, but every view of a record (an enrolled finger exported by `limen finger export`
    holds its impressions as views of one record), each held to the same checks; an image gives one."""
    p = Path(path)
    if p.is_file() and p.stat().st_size <= thresholds.MAX_IMAGE_BYTES:
        with p.open("rb") as f:
            if f.read(len(iso.FORMAT_ID)) == iso.FORMAT_ID:
                try:
                    views = iso.decode_views(p.read_bytes())
                except BadRequest as exc:
                    raise BadImage(p, f"not a usable ISO/IEC 19794-2 record: {exc.reason}") from exc
                return [_usable(t, p) for t in views]
    return [extract_file(p)]


def record_template(record: bytes, source: str | Path = "<record>") -> FingerTemplate:
    """The template in an ISO/IEC 19794-2 record, held to what an extracted one must meet: a resolution the matcher
    works at, and enough minutiae to match on."""
    try:
        template = iso.decode(record)
    except BadRequest as exc:
        raise BadImage(source, f"not a usable ISO/IEC 19794-2 record: {exc.reason}") from exc
    return _usable(template, source)


def _usable(template: FingerTemplate, source: str | Path) -> FingerTemplate:
    low, high = thresholds.FINGER_DPI_RANGE
    if not low <= template.dpi <= high:
        raise BadImage(source, f"the record is at {template.dpi} dpi; only {low}-{high} dpi records are matched")
    if len(template.minutiae) < thresholds.FINGER_MIN_MINUTIAE:
        raise BadImage(source, f"the record holds {len(template.minutiae)} minutiae; at least "
                               f"{thresholds.FINGER_MIN_MINUTIAE} are needed")
    return template
