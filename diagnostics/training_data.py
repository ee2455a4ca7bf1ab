"""Reviewed cases as training data, for their own hospital only (DESIGN §5).

The federation's Flower client calls `reviewed_cases(hospital)` inside the hospital's node process; it
decrypts with that hospital's data key, so the pixels never leave the node.
"""

from collections.abc import Iterator

import numpy as np
from django.db.models import Q
from PIL import Image

from diagnostics import services
from diagnostics.models.scans import Diagnosis, DoctorOutline, ReviewState, Scan, ScanStatus
from hospitals.crypto import DecryptionError
from hospitals.storage import read_blob

__all__ = ["reviewed_cases", "count_reviewed_cases", "count_segmenter_cases", "create_reviewed_case"]

create_reviewed_case = services.create_reviewed_case


def _reviewed(hospital):
    return (
        Scan.objects.filter(hospital=hospital, status=ScanStatus.DONE)
        .exclude(review_state=ReviewState.UNREVIEWED)
        .exclude(reviewed_label="")
        .order_by("created_at", "id")
    )


def count_reviewed_cases(hospital, *, outlined: bool = False) -> int:
    """How many cases `reviewed_cases(hospital)` yields; with `outlined`, only the tumours whose outline a
    doctor drew or corrected: what the segmenter needs to learn from ("No tumour" cases, with their
    empty outlines, teach it only to find nothing). A tumour whose latest correction erased the outline
    is not one: `reviewed_cases` gives it no mask. Only counts, read off the scan rows: no pixels."""
    reviewed = _reviewed(hospital)
    if outlined:
        reviewed = reviewed.exclude(reviewed_label="notumor").filter(doctor_outline=DoctorOutline.DRAWN)
    return reviewed.count()


def count_segmenter_cases(hospital) -> int:
    """How many of `reviewed_cases(hospital)` come with an outline the segmenter trains on: the tumours
    counted by ``count_reviewed_cases(outlined=True)`` and every "No tumour" case (an empty outline)."""
    return _reviewed(hospital).filter(Q(reviewed_label="notumor") | Q(doctor_outline=DoctorOutline.DRAWN)).count()


def _decode_png(data: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def reviewed_cases(hospital) -> Iterator[tuple[np.ndarray, str, np.ndarray | None]]:
    """Yield (image, label, mask) for every reviewed scan of `hospital`, oldest first.

    `image` is the 2-D slice the doctor reviewed (uint8 for JPEG/PNG, float32 for DICOM/NIfTI values);
    `label` is the doctor's; `mask` is the doctor's corrected outline (bool, same shape) or None. A
    model-drawn mask that a doctor only confirmed the label of is not ground truth, so it is not given;
    nor is an outline a doctor erased on a scan whose diagnosis is a tumour (no outline of it was drawn).
    A scan the doctor calls "notumor" has an empty outline, whatever was drawn on it before or with that
    review: the segmenter must learn to say "nothing here", never a tumour on a scan that has none.
    """
    masks = {review.scan_id: review for review in services.outline_corrections(hospital)}  # the latest wins
    slice_of = dict(Diagnosis.objects.filter(hospital=hospital).values_list("scan_id", "slice_index"))
    for scan in _reviewed(hospital).iterator(chunk_size=200):
        try:
            case = _case(hospital, scan, slice_of.get(scan.id, 0), masks.get(scan.id))
        except DecryptionError:
            if services.scan_exists(scan.id):
                raise
            continue  # removed since the list was read (services.remove_scan): no longer training data
        yield case


def _case(hospital, scan, slice_index: int, review) -> tuple[np.ndarray, str, np.ndarray | None]:
    data = read_blob(hospital, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                     sha256=scan.blob_sha256)
    # The decoder the upload or import was checked with (EXIF turned, 16 bits kept), so the image is the
    # one the doctor's or importer's outline was drawn on.
    slices = services.decode_on_record(data).slices
    image = slices[min(slice_index, len(slices) - 1)]
    if scan.reviewed_label == "notumor":
        return image, scan.reviewed_label, np.zeros(image.shape[:2], bool)
    mask = None
    # An outline erased (with this label, or with an earlier "No tumour" that this one overrules) and none
    # drawn is no outline of the tumour: an empty one would teach the segmenter "nothing here" on it.
    if review is not None and scan.doctor_outline == DoctorOutline.DRAWN:
        png = read_blob(hospital, review.mask_path, record_type=services.REVIEW_MASK_BLOB, record_id=review.id,
                        sha256=review.mask_sha256)
        mask = _decode_png(png) > 0
    return image, scan.reviewed_label, mask
