"""Whether each stored scan still decodes to the image it was analysed on.

A diagnosis's outline, heatmap and slice number belong to the pixels the worker decoded at the time. A
changed decoder rule (docs/pipeline.md) or an upgraded imaging library (pydicom, nibabel, Pillow) can
make the same stored file decode to another picture: turned, its slices in another order, stretched
otherwise. Nothing would look wrong, yet the outline would lie beside the tumour and a doctor's
correction would train the segmenter on the wrong pixels. So each diagnosis keeps a digest of its slice
as shown, and `manage.py verify_scan_decodes` compares it with what the stored file decodes to now.
"""

import hashlib
import hmac
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from diagnostics import services
from diagnostics.models.scans import Diagnosis
from hospitals.crypto import DecryptionError
from hospitals.keys import hospital_data_key
from hospitals.storage import read_blob


def slice_digest(hospital, image) -> str:
    """Keyed digest of a slice as the viewer shows it (``services.to_uint8``), its size included.

    HMAC under a key derived from the hospital's data key, as ``services.content_digest``: a plain hash
    would show anyone who reads the database that two hospitals hold the same image, and would let a known
    image be confirmed by hashing it.
    """
    pixels = np.ascontiguousarray(services.to_uint8(image))
    key = hmac.new(hospital_data_key(hospital), b"neurofed:slice-digest:v1", hashlib.sha256).digest()
    digest = hmac.new(key, f"{pixels.shape[0]}x{pixels.shape[1]}\n".encode(), hashlib.sha256)
    digest.update(pixels.tobytes())
    return digest.hexdigest()


@dataclass
class DecodeReport:
    unchanged: int = 0
    changed: list = field(default_factory=list)  # ids of scans whose analysed slice decodes otherwise now
    unreadable: list = field(default_factory=list)  # ids of scans whose stored file no longer decodes
    # Diagnoses recorded before digests were kept: left unchecked, or given the digest of what their file
    # decodes to now (record_missing).
    unrecorded: int = 0
    recorded: int = 0


def diagnoses_to_check(hospital=None):
    diagnoses = Diagnosis.objects.select_related("scan", "hospital").order_by("created_at", "pk")
    return diagnoses if hospital is None else diagnoses.filter(hospital=hospital)


def verify_decodes(*, hospital=None, record_missing: bool = False, progress=None) -> DecodeReport:
    """Decode every diagnosed scan (of ``hospital``, else of all) and compare its analysed slice with the
    digest its diagnosis keeps. ``progress`` is called once per diagnosis."""
    report = DecodeReport()
    for diagnosis in diagnoses_to_check(hospital).iterator(chunk_size=100):
        if diagnosis.slice_digest or record_missing:
            _check(diagnosis, report)
        else:
            report.unrecorded += 1
        if progress is not None:
            progress(1)
    return report


def _check(diagnosis: Diagnosis, report: DecodeReport) -> None:
    scan = diagnosis.scan
    try:
        data = read_blob(diagnosis.hospital, scan.blob_path, record_type=services.SCAN_BLOB, record_id=scan.id,
                         sha256=scan.blob_sha256)
        slices = services.decode_on_record(data).slices
    except (DecryptionError, services.UploadRejected, ImproperlyConfigured, OSError, ValueError):
        # Listed rather than ending the run: a key not configured (checked up front by the command), a file
        # this user may not read, a path that is not the platform's. Other scans still get checked.
        if services.scan_exists(scan.id):
            report.unreadable.append(scan.id)
        return  # else removed since the list was read (services.remove_scan)
    if diagnosis.slice_index >= len(slices):
        report.changed.append(scan.id)  # fewer slices than when it was analysed
        return
    now = slice_digest(diagnosis.hospital, slices[diagnosis.slice_index])
    if not diagnosis.slice_digest:
        # Only a diagnosis still without one: a worker may not write it twice, but an operator may run
        # this twice at once.
        report.recorded += Diagnosis.objects.filter(pk=diagnosis.pk, slice_digest="").update(slice_digest=now)
    elif now == diagnosis.slice_digest:
        report.unchanged += 1
    else:
        report.changed.append(scan.id)
