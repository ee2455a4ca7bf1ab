"""Writes on scans, one verb each, and the one place that knows the scan state machine.

    queued ──► processing ──► done
     ▲ │           │  ▲
     │ │           │  └── processing (a redelivered task picks up a scan its dead worker left)
     │ └───────────┴────► failed (with a code and a reason)
     └────────────────────── failed (the same file uploaded again: analysed afresh)

and from any state a scan can be removed (remove_scan): its rows and files go, its audit events stay.

Uploads are decoded here, in the web process, with numpy/pydicom/nibabel/PIL only: a bad file is
refused before anything is stored, and the web process never imports TensorFlow.
"""

import functools
import hashlib
import hmac
import io
import logging
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial, update_wrapper
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from PIL import Image

from diagnostics import notify, patient_mail
from diagnostics.limits import pixel_count_words, too_large_sentence
from diagnostics.ml.gate import InputGate
from diagnostics.ml.readers import CLASS_NAMES, ScanDecodeError, decode_scan, has_content, sniff_type
from diagnostics.models.scans import Diagnosis, DoctorOutline, Review, ReviewState, Scan, ScanSource, ScanStatus
from hospitals.audit import record_audit
from hospitals.crypto import DecryptionError
from hospitals.keys import hospital_data_key
from hospitals.errors import DomainError
from hospitals.models import AuditEvent, Hospital, Role
from hospitals.storage import delete_blob, named_blob_paths, read_blob, store_blob

logger = logging.getLogger(__name__)

SCAN_BLOB = "scan"
MASK_BLOB = "mask"
HEATMAP_BLOB = "heatmap"
REVIEW_MASK_BLOB = "review_mask"

# Which status may follow which. PROCESSING -> PROCESSING is a redelivery after a worker died.
TRANSITIONS = {
    ScanStatus.QUEUED: {ScanStatus.PROCESSING, ScanStatus.FAILED},
    ScanStatus.PROCESSING: {ScanStatus.PROCESSING, ScanStatus.DONE, ScanStatus.FAILED},
    ScanStatus.DONE: set(),
    ScanStatus.FAILED: {ScanStatus.QUEUED},
}
TERMINAL = {ScanStatus.DONE, ScanStatus.FAILED}


class UploadRejected(Exception):
    """An upload or review refused with a reason a person can act on; nothing has been stored."""

    def __init__(self, code: str, detail: str, status: int = 422):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.status = code, detail, status


# Deliveries of one scan's task that neither finished nor asked for a retry: each was a worker that
# died on it (out of memory, a crash in a decoder). Past this, redelivering would only kill more workers.
MAX_ANALYSIS_ATTEMPTS = 3

# HTTP status per decoder error: limits are 413, a format we do not take is 415, the rest 422.
_DECODE_STATUS = {"too_large": 413, "too_many_pixels": 413, "too_many_frames": 413, "unsupported_type": 415,
                  "unsupported_compression": 415}


def _on_commit_robust(func, *args, **kwargs) -> None:
    """Run ``func(*args, **kwargs)`` after the commit; if it raises, log it and go on with the next callback.

    Django names a failed robust callback by its ``__qualname__``, which a bare partial lacks: without
    the wrapper the logging itself would raise and the callbacks after it would never run.
    """
    transaction.on_commit(update_wrapper(partial(func, *args, **kwargs), func), robust=True)


def _discard_unstored(paths) -> None:
    """The clean-up of a write that raised: delete each of its files that no committed row names.

    The exception may come after the commit, from an on-commit follow-up: robust callbacks catch only
    Exception, and an interrupt (the SystemExit of a web worker's timeout, Ctrl-C) can arrive while one
    queues the analysis or mails the patient. The file of the scan or review that was stored must stay.
    Where the database cannot be asked, the file stays too: an orphan costs disk, a lost file a scan.
    """
    try:
        named = named_blob_paths(paths)
    except Exception as error:
        logger.warning("kept the files of a failed write, whose rows could not be checked (%s)",
                       type(error).__name__)
        return
    for path in paths:
        if path not in named:
            delete_blob(path)


def max_decompressed_bytes() -> int:
    # A gzip/zip may expand; bounded at twice the upload limit so a bomb stops early and the web
    # process stays within its memory budget.
    return getattr(settings, "UPLOAD_MAX_DECOMPRESSED_BYTES", 2 * settings.UPLOAD_MAX_BYTES)


def decode_upload(data: bytes):
    """Decode with the configured limits, refusing what is no brain MRI; a ScanDecodeError becomes an
    UploadRejected, and so does an input gate that cannot be loaded (503: nothing is let through unchecked)."""
    try:
        return decode_stored(data)
    except InputGateUnavailable:
        logger.exception("the input gate cannot be loaded; uploads are refused until it is back")
        raise UploadRejected("gate_unavailable", GATE_UNAVAILABLE, 503) from None


def decode_stored(data: bytes):
    """decode_upload for a scan already stored (the worker): an unloadable gate raises InputGateUnavailable."""
    decoded = _decode_within_limits(data)
    refuse_what_is_no_brain_mri(decoded)
    return decoded


def decode_on_record(data: bytes):
    """Decode a stored scan to show it or to train on it: the limits, but not the input gate.

    The gate judged the file when it was uploaded, and a doctor has read a reviewed one since; a gate
    file missing now, or a newer gate that would refuse it, must neither keep a scan on record from
    the people who read it nor stop its hospital's federated training.
    """
    return _decode_within_limits(data)


def _decode_within_limits(data: bytes):
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected("too_large", too_large_sentence(settings.UPLOAD_MAX_BYTES), 413)
    try:
        return decode_scan(
            data,
            max_pixels=settings.UPLOAD_MAX_PIXELS,
            max_frames=settings.UPLOAD_MAX_FRAMES,
            max_decompressed_bytes=max_decompressed_bytes(),
        )
    except ScanDecodeError as error:
        raise UploadRejected(error.code, error.detail, _DECODE_STATUS.get(error.code, 422)) from None
    except Image.DecompressionBombError:
        # PIL's own bomb guard fires on absurd dimensions before the decoder's pixel check can.
        raise UploadRejected("too_many_pixels", "The image declares more pixels than the limit of "
                                                f"{pixel_count_words(settings.UPLOAD_MAX_PIXELS)}.", 413) from None
    except Exception as error:
        # Hostile files find corners of the decoders; whatever they hit, the answer is "unreadable", not a
        # 500. Logged by type and place only: a decoder's message may quote header values (PHI).
        where = traceback.extract_tb(error.__traceback__)[-1]
        logger.warning("decoder raised %s at %s:%d on an upload", type(error).__name__,
                       Path(where.filename).name, where.lineno)
        raise UploadRejected("unreadable", "The file could not be decoded.") from None


# Slices of a volume the gate looks at: enough to find the brain in it, few enough for an upload request.
GATE_SAMPLE_SLICES = 16


@functools.lru_cache(maxsize=2)
def _load_input_gate(path: str, modified: float) -> InputGate:
    return InputGate.load(Path(path))


class InputGateUnavailable(RuntimeError):
    """The input gate's file is missing or unreadable: a deployment fault, not the upload's."""


def input_gate() -> InputGate:
    """The gate of settings.INPUT_GATE_PATH, read again when the file changes."""
    path = Path(settings.INPUT_GATE_PATH)
    try:
        return _load_input_gate(str(path), path.stat().st_mtime)
    except (OSError, ValueError, KeyError) as error:
        raise InputGateUnavailable(f"the input gate {path} cannot be loaded: {type(error).__name__}") from error


GATE_UNAVAILABLE = ("Uploads cannot be checked at the moment, so nothing was stored; the team has been told. "
                    "Try again later.")


def refuse_what_is_no_brain_mri(decoded) -> None:
    """Refuse a scan in which no slice comes near the brain MRIs the models learnt from.

    Only the gate's refusal tier refuses; an image that is merely unusual is analysed and flagged
    (gate_verdict). For a volume, slices spread over it are checked, and one brain-like slice is enough.
    """
    slices = [s for s in decoded.slices if has_content(s)]
    picks = sorted({int(i) for i in np.linspace(0, len(slices) - 1, min(len(slices), GATE_SAMPLE_SLICES))})
    gate = input_gate()
    if picks and all(gate.judge(slices[i]).refused for i in picks):
        raise UploadRejected("not_brain_mri", "The picture does not look like a brain MRI, so the software cannot "
                                              "read it. Upload the MRI image or file you were given.")


def gate_verdict(slice2d):
    """The gate's verdict on the slice a result is about (distance, unusual, refused)."""
    return input_gate().judge(slice2d)


def content_digest(hospital, data: bytes) -> str:
    """Keyed digest of an upload, per hospital.

    HMAC under a key derived from the hospital's data key rather than a plain SHA-256: a plain hash
    column would show anyone who reads the database that two hospitals hold the same file, and would
    let a known image be confirmed by hashing it. Only the hospital's key can produce its digests.
    """
    key = hmac.new(hospital_data_key(hospital), b"neurofed:scan-content:v1", hashlib.sha256).digest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _source_identifiers(identifiers: dict) -> dict:
    return {
        "source_patient_name": identifiers.get("patient_name", "")[:200],
        "source_patient_id": identifiers.get("patient_id", "")[:64],
        "source_birth_date": identifiers.get("birth_date", "")[:16],
    }


def upload_scan(*, hospital, patient, data: bytes, uploaded_by=None, request=None) -> tuple[Scan, bool]:
    """Store an upload as a queued scan of `patient` and schedule its analysis.

    Returns (scan, created). The same file uploaded again for the same patient returns the existing
    scan, analysed afresh if its analysis had failed. Raises UploadRejected, leaving no row and no file,
    when the file cannot be used.
    """
    if patient.hospital_id != hospital.id:
        raise ValueError("patient belongs to another hospital")
    digest = content_digest(hospital, data)
    existing = Scan.objects.filter(hospital=hospital, patient=patient, content_digest=digest).first()
    if existing is not None and existing.status != ScanStatus.FAILED:
        return existing, False
    _refuse_when_too_many_waiting(hospital, uploaded_by)
    if existing is not None:
        try:
            return requeue_failed_scan(existing, data, actor=uploaded_by, request=request), False
        except ScanGone:
            pass  # removed since it was looked up: this upload is a new scan
    decoded = decode_upload(data)
    first = decoded.slices[0]
    spacing = decoded.pixel_spacing_mm or (None, None)
    scan_id = uuid.uuid4()
    # The id exists before the blob: the blob's associated data binds it to this record.
    stored = store_blob(hospital, data, record_type=SCAN_BLOB, record_id=scan_id)
    try:
        with transaction.atomic():
            scan = Scan.objects.create(
                id=scan_id, hospital=hospital, patient=patient, uploaded_by=uploaded_by,
                blob_path=stored.path, blob_sha256=stored.sha256, blob_size=stored.size, content_digest=digest,
                kind=decoded.kind, height=int(first.shape[0]), width=int(first.shape[1]),
                slice_count=len(decoded.slices), pixel_spacing_row_mm=spacing[0], pixel_spacing_col_mm=spacing[1],
                **_source_identifiers(decoded.patient_identifiers),
            )
            record_audit(actor=uploaded_by, hospital=hospital, action="scan.upload", obj=scan, request=request)
            notify.scan_changed_on_commit(scan, event="scan.created")
            # Robust: the callback runs once the row has committed, still inside this try; whatever it
            # raises must not reach the clean-up below, which would delete the file of a stored scan.
            _on_commit_robust(enqueue_analysis, scan.id)
    except IntegrityError:
        # Two uploads of the same file raced; the other one won.
        delete_blob(stored.path)
        existing = Scan.objects.filter(hospital=hospital, patient=patient, content_digest=digest).first()
        if existing is None:
            raise
        return existing, False
    except BaseException:
        _discard_unstored([stored.path])
        raise
    logger.info("scan %s uploaded to %s (%s, %d slices)", scan.id, hospital.slug, scan.kind, scan.slice_count)
    return scan, True


def _forget_shown_slices(scan_id) -> None:
    from diagnostics import shown_slices  # it decodes through this module

    shown_slices.forget(scan_id)


def _refuse_when_too_many_waiting(hospital, uploaded_by) -> None:
    """One account has at most UPLOAD_MAX_WAITING of its uploads waiting for their analysis at a hospital.

    Every hospital's analyses share the workers' queue, each may take minutes, and an upload costs its
    decoding here and a stored file: without a bound, one account uploading in a loop would hold every
    other hospital's diagnoses back. A patient has a scan or two at a time, a doctor a patient's series.
    """
    limit = settings.UPLOAD_MAX_WAITING
    if uploaded_by is None or not limit:
        return
    waiting = Scan.objects.filter(hospital=hospital, uploaded_by=uploaded_by,
                                  status__in=[ScanStatus.QUEUED, ScanStatus.PROCESSING]).count()
    if waiting >= limit:
        raise UploadRejected("too_many_waiting", f"{waiting} scans you uploaded are still waiting for their "
                                                 "analysis; upload more once some of them are analysed.", 409)


def _stored_blob_intact(scan: Scan) -> bool:
    try:
        read_blob(scan.hospital, scan.blob_path, record_type=SCAN_BLOB, record_id=scan.id, sha256=scan.blob_sha256)
    except (DecryptionError, ValueError, OSError):
        return False
    return True


def requeue_failed_scan(scan: Scan, data: bytes, *, actor=None, request=None) -> Scan:
    """Analyse a failed scan afresh, its file uploaded again: the failure message asks for just that.

    The stored file is kept when it is intact; when it is missing or damaged (the cause of an
    "unreadable_blob" failure) the upload replaces it. The file is decoded again first, so a file that
    the limits refuse now is refused here too, leaving the failed scan as it was. Raises ScanGone, having
    stored nothing, when the scan was removed meanwhile.
    """
    decode_upload(data)
    replacement = None
    if not _stored_blob_intact(scan):
        replacement = store_blob(scan.hospital, data, record_type=SCAN_BLOB, record_id=scan.id)
    # Every follow-up runs robust, after the commit: one that fails must neither skip the next nor
    # reach the clean-up below, which is for a replacement that no committed row points at (so only an
    # error before or at the commit gets there).
    try:
        with transaction.atomic():
            locked = Scan.objects.select_for_update().filter(pk=scan.pk).first()
            if locked is None:
                raise ScanGone(scan.pk)
            requeued = locked.status == ScanStatus.FAILED  # else another upload re-queued it first
            if not requeued:
                if replacement:
                    _on_commit_robust(delete_blob, replacement.path)
            else:
                fields = dict(failure_code="", failure_reason="", attempts=0, crashes=0, started_retries=None,
                              started_at=None, finished_at=None, queued_at=timezone.now())
                if replacement:
                    fields.update(blob_path=replacement.path, blob_sha256=replacement.sha256,
                                  blob_size=replacement.size)
                    _on_commit_robust(delete_blob, locked.blob_path)
                _transition(locked, ScanStatus.QUEUED, **fields)
                record_audit(actor=actor, hospital=locked.hospital, action="scan.requeue", obj=locked,
                             request=request)
                _on_commit_robust(enqueue_analysis, locked.id)
    except BaseException:
        if replacement:
            _discard_unstored([replacement.path])
        raise
    if requeued:
        logger.info("scan %s re-queued in %s after a failure", locked.id, locked.hospital.slug)
    return locked


def enqueue_analysis(scan_id) -> bool:
    """Schedule the analysis of a stored scan; False when the task queue could not take it.

    A broker outage must not lose the upload: the scan stays queued with its file, and `requeue_scans`
    (from cron, every 10 minutes) schedules it again. Uploading the same file again does not: it returns
    the queued scan, which may be waiting its turn, and a second task for it would only be redundant.
    """
    from diagnostics.tasks import ANALYSIS_HARD_LIMIT_GRACE_S, analyse_scan  # the task module imports this one

    limit = settings.ANALYSIS_TIME_LIMIT_S  # the limits travel with the task: read at each send
    try:
        analyse_scan.apply_async((str(scan_id),), soft_time_limit=limit, time_limit=limit + ANALYSIS_HARD_LIMIT_GRACE_S)
    except Exception as error:
        logger.error("scan %s stays queued: the task queue could not take it (%s)", scan_id, type(error).__name__)
        return False
    return True


def stalled_scans(*, hospital: Hospital | None, older_than: timedelta):
    """Scans still queued ``older_than`` after upload (the task queue lost them or never took them), and
    scans still processing ``older_than`` after their analysis started: an analysis takes seconds, so
    its task is gone (a worker whose retries ran out while the database was down, a broker that lost
    its unacknowledged messages), and nothing else would ever finish the scan."""
    cutoff = timezone.now() - older_than
    # A failed scan queued again is measured from then, not from its first upload.
    scans = (Scan.objects.alias(queued_since=Coalesce("queued_at", "created_at"))
             .filter(Q(status=ScanStatus.QUEUED, queued_since__lt=cutoff)
                     | Q(status=ScanStatus.PROCESSING, started_at__lt=cutoff)))
    if hospital is not None:
        scans = scans.filter(hospital=hospital)
    return scans.order_by("created_at")


def requeue_stalled_scans(*, hospital: Hospital | None, older_than: timedelta, progress=None) -> tuple[int, int]:
    """Schedule every stalled scan again; (scheduled, refused by the queue).

    Safe beside a task that is merely slow to arrive or slow to finish: a second delivery finds the scan
    processing or finished under its row lock and records at most one diagnosis.
    """
    scheduled = refused = 0
    for scan_id in stalled_scans(hospital=hospital, older_than=older_than).values_list("id", flat=True):
        if enqueue_analysis(scan_id):
            scheduled += 1
        else:
            refused += 1
        if progress is not None:
            progress(scan_id)
    return scheduled, refused


# --- the worker's side of the state machine ---------------------------------------------------------


def _transition(scan: Scan, to: str, **fields) -> None:
    if to not in TRANSITIONS[ScanStatus(scan.status)]:
        raise ValueError(f"scan {scan.id} cannot go from {scan.status} to {to}")
    scan.status = to
    for name, value in fields.items():
        setattr(scan, name, value)
    scan.save(update_fields=["status", *fields])
    notify.scan_changed_on_commit(scan)


def start_analysis(scan_id, retries: int = 0) -> Scan | None:
    """Mark a scan processing and return it; None when it is finished already (a redelivered task).

    `retries` is how often this delivery's task asked to be retried (a transient error). A scan found
    processing was started by a delivery that did not finish: when that one's retry count is not below
    this one's, it did not ask for a retry either, so its worker died or its task was lost (requeue_scans
    sends a new task, whose count starts again at 0). Those are counted as crashes, per scan rather than
    per task, and after MAX_ANALYSIS_ATTEMPTS of them the scan fails instead of killing another worker.
    A duplicate delivery (requeue_scans beside a slow task) counts as one too, erring towards patience.
    """
    with transaction.atomic():
        scan = Scan.objects.select_for_update().filter(pk=scan_id).first()
        if scan is None or scan.status in TERMINAL:
            return None
        crashes = scan.crashes
        if scan.status == ScanStatus.PROCESSING and (scan.started_retries is None or retries <= scan.started_retries):
            crashes += 1
        if crashes >= MAX_ANALYSIS_ATTEMPTS:
            _transition(scan, ScanStatus.FAILED, failure_code="analysis_crashed", finished_at=timezone.now(),
                        crashes=crashes, failure_reason="The analysis of this scan stopped unexpectedly several "
                                                        "times; the team has been told.")
            logger.error("scan %s failed: its analysis was interrupted %d times", scan.id, crashes)
            return None
        _transition(scan, ScanStatus.PROCESSING, started_at=timezone.now(), attempts=scan.attempts + 1,
                    crashes=crashes, started_retries=retries)
    return scan


def fail_scan(scan_id, code: str, reason: str) -> Scan | None:
    """Finish a scan as failed, with a reason a person can read. A finished scan is left alone."""
    with transaction.atomic():
        scan = Scan.objects.select_for_update().filter(pk=scan_id).first()
        if scan is None or scan.status in TERMINAL:
            return scan
        _transition(scan, ScanStatus.FAILED, failure_code=code[:40], failure_reason=reason[:300],
                    finished_at=timezone.now())
    logger.warning("scan %s failed: %s", scan_id, code)
    return scan


@dataclass
class AnalysisResult:
    """What the worker found, in the scan's own pixel grid (see diagnostics.analysis)."""

    label: str
    probabilities: dict
    model_version_id: int | None
    segmenter_version_id: int | None = None
    slice_index: int = 0
    slices_analysed: int = 1
    per_slice: list | None = None
    tumour_area_px: float | None = None
    tumour_area_mm2: float | None = None
    tumour_volume_mm3: float | None = None
    bbox: dict | None = None
    timings: dict | None = None
    mask_png: bytes | None = None
    heatmap_png: bytes | None = None
    # The input gate on the analysed slice (diagnostics/ml/gate.py): an unusual image's patient sees
    # no result before a doctor has read it.
    input_distance: float | None = None
    unusual_image: bool = False
    slice_digest: str = ""  # decode_check.slice_digest of the analysed slice


def record_diagnosis(scan_id, result: AnalysisResult) -> Diagnosis:
    """Store the result and finish the scan. Exactly one Diagnosis per scan, however often this runs.

    The scan row is locked first, so a redelivered task that finished concurrently waits and then
    finds the diagnosis already there; the one-to-one key is the backstop.
    """
    diagnosis_id = uuid.uuid4()
    written = []
    # The clean-up wraps the transaction, not the other way round: a commit that fails (a deferred
    # constraint, a lost connection) must take the mask and heatmap files with it, or every retry of
    # the task would leave another pair behind.
    try:
        with transaction.atomic():
            scan = Scan.objects.select_related("hospital").select_for_update(of=("self",)).filter(pk=scan_id).first()
            if scan is None:
                raise ScanGone(scan_id)
            existing = Diagnosis.objects.filter(scan=scan).first()
            if existing is not None:
                return existing
            if scan.status != ScanStatus.PROCESSING:
                raise ValueError(f"scan {scan.id} is {scan.status}, not processing")
            blobs = {}
            for name, png, record_type in (("mask", result.mask_png, MASK_BLOB),
                                           ("heatmap", result.heatmap_png, HEATMAP_BLOB)):
                if png:
                    stored = store_blob(scan.hospital, png, record_type=record_type, record_id=diagnosis_id)
                    written.append(stored.path)
                    blobs[f"{name}_path"], blobs[f"{name}_sha256"] = stored.path, stored.sha256
            diagnosis = Diagnosis.objects.create(
                id=diagnosis_id, hospital=scan.hospital, scan=scan, model_version_id=result.model_version_id,
                segmenter_version_id=result.segmenter_version_id,
                label=result.label, probabilities=result.probabilities, confidence=max(result.probabilities.values()),
                slice_index=result.slice_index, slice_digest=result.slice_digest,
                slices_analysed=result.slices_analysed, per_slice=result.per_slice or [], tumour_area_px=result.tumour_area_px,
                tumour_area_mm2=result.tumour_area_mm2, tumour_volume_mm3=result.tumour_volume_mm3,
                bbox=result.bbox, timings=result.timings or {}, input_distance=result.input_distance,
                unusual_image=result.unusual_image, **blobs,
            )
            _transition(scan, ScanStatus.DONE, finished_at=timezone.now())
            record_audit(actor=None, hospital=scan.hospital, action="scan.diagnose", obj=scan)
    except BaseException:
        _discard_unstored(written)
        raise
    # Not the class found: beside the scan's id, which leads to the patient, a result is health data, and
    # logs are kept longer and read by more people than the record, with no audit of who read them.
    logger.info("scan %s diagnosed in %s", scan.id, scan.hospital.slug)
    return diagnosis


# --- doctors' reviews --------------------------------------------------------------------------------


def _mask_png_from_upload(data: bytes, scan: Scan) -> tuple[bytes, bool]:
    """Validate a corrected mask (a PNG of the scan's size) and re-encode it as 0/255; with whether it
    outlines anything (an erased outline is stored too: it replaces the software's)."""
    if sniff_type(data) != "png":
        raise UploadRejected("invalid_mask", "The corrected mask must be a PNG image.", 415)
    try:
        image = Image.open(io.BytesIO(data))
        if image.size != (scan.width, scan.height):
            raise UploadRejected(
                "invalid_mask",
                f"The mask is {image.size[0]}x{image.size[1]} pixels; the scan is {scan.width}x{scan.height}.",
            )
        mask = np.asarray(image.convert("L")) > 0
    except UploadRejected:
        raise
    except Image.DecompressionBombError:
        # PIL refuses a header declaring hundreds of millions of pixels before any size check of ours.
        raise UploadRejected("invalid_mask", f"The mask declares far more pixels than the scan's "
                                             f"{scan.width}x{scan.height}.", 400) from None
    except (OSError, ValueError, SyntaxError):
        raise UploadRejected("invalid_mask", "The corrected mask is not a readable PNG image.") from None
    return encode_png(mask.astype(np.uint8) * 255), bool(mask.any())


def review_scan(*, hospital, scan: Scan, reviewer, label: str, notes: str = "", mask_png: bytes | None = None,
                last_review_seen: str | None = None, outline_based_on: str | None = None, request=None) -> Review:
    """A doctor confirms or changes a scan's label, optionally with a corrected mask and notes.

    `last_review_seen` is the id of the newest review the doctor was shown ("" for none); when a
    colleague has saved one since, the review is refused (409) rather than replacing theirs unseen: the
    latest review decides the label, and an outline drawn over the model's would undo the colleague's.
    `outline_based_on`, sent with a mask, is the id of the review whose outline the doctor corrected (""
    for the software's); unless that outline still stands, the mask is refused (409 outline_conflict):
    a doctor may have read a colleague's review and kept drawing over the outline it replaced.
    None skips either check.
    """
    if label not in CLASS_NAMES:
        raise UploadRejected("invalid_label", f"The label must be one of: {', '.join(CLASS_NAMES)}.", 400)
    if scan.hospital_id != hospital.id:
        raise ValueError("scan belongs to another hospital")
    mask, drawn = _mask_png_from_upload(mask_png, scan) if mask_png else (None, False)
    review_id = uuid.uuid4()
    stored = store_blob(hospital, mask, record_type=REVIEW_MASK_BLOB, record_id=review_id) if mask else None
    try:
        with transaction.atomic():
            locked = Scan.objects.select_for_update().filter(pk=scan.pk, hospital=hospital).first()
            if locked is None:  # removed since the doctor opened it
                raise DomainError("not_found", "This scan has been removed; there is nothing left to review.",
                                  status=404)
            if locked.status != ScanStatus.DONE:
                raise UploadRejected("not_ready", "Only a scan whose analysis is finished can be reviewed.", 409)
            if last_review_seen is not None:
                latest = locked.reviews.order_by("-created_at").values_list("id", flat=True).first()
                if str(latest or "") != last_review_seen.strip():
                    raise UploadRejected("review_conflict", "Another doctor reviewed this scan after you opened it; "
                                                            "look at their review, then save yours again.", 409)
            if stored is not None and outline_based_on is not None:
                standing = standing_outline_correction(locked)
                if str(standing.id if standing else "") != outline_based_on.strip():
                    raise UploadRejected("outline_conflict", "The outline you corrected is no longer the one that "
                                                             "stands: a review saved since corrected it; load their "
                                                             "outline, then correct it again if you need to.", 409)
            diagnosis = Diagnosis.objects.filter(scan=locked).first()
            model_label = diagnosis.label if diagnosis else ""
            previous = locked.reviewed_label or model_label
            review = Review.objects.create(
                id=review_id, hospital=hospital, scan=locked, reviewer=reviewer, previous_label=previous,
                label=label, label_changed=label != previous, mask_changed=stored is not None, notes=notes or "",
                mask_path=stored.path if stored else "", mask_sha256=stored.sha256 if stored else "",
            )
            first_review = locked.review_state == ReviewState.UNREVIEWED
            agrees = label == model_label and not outline_corrections(hospital).filter(scan=locked).exists()
            locked.review_state = ReviewState.CONFIRMED if agrees else ReviewState.CORRECTED
            locked.reviewed_label = label
            if stored is not None:  # the latest correction stands, until a later one
                locked.doctor_outline = DoctorOutline.DRAWN if drawn else DoctorOutline.EMPTY
            locked.save(update_fields=["review_state", "reviewed_label", "doctor_outline"])
            record_audit(actor=reviewer, hospital=hospital, action="scan.review", obj=locked, request=request)
            notify.scan_changed_on_commit(locked, event="scan.reviewed")
            if first_review and locked.source == ScanSource.UPLOAD:
                _on_commit_robust(patient_mail.tell_patient_scan_reviewed, locked, request)
    except BaseException:
        if stored:
            _discard_unstored([stored.path])
        raise
    logger.info("scan %s reviewed in %s (label changed: %s)", scan.pk, hospital.slug, review.label_changed)
    return review


# --- removing a scan ---------------------------------------------------------------------------------

# The reason is kept as the audit event's detail, so it fits that column.
REMOVAL_REASON_MAX = AuditEvent._meta.get_field("detail").max_length


def outline_corrections(hospital):
    """The reviews of ``hospital`` that stored an outline (drawn, or erased to nothing), oldest first: the
    latest of a scan's stands for it, until a later one."""
    return Review.objects.filter(hospital=hospital, mask_changed=True).order_by("created_at")


def standing_outline_correction(scan: Scan) -> Review | None:
    """The review whose outline stands for ``scan``, or None when no doctor has corrected it."""
    return outline_corrections(scan.hospital_id).filter(scan=scan).last()


class ScanGone(Exception):
    """The scan was removed while its analysis ran: there is nothing left to record."""


def scan_exists(scan_id) -> bool:
    return Scan.objects.filter(pk=scan_id).exists()


def _stored_files(scan: Scan) -> list[str]:
    """Every file kept for the scan: the upload, the model's mask and heatmap, doctors' outlines."""
    paths = [scan.blob_path]
    diagnosis = Diagnosis.objects.filter(scan=scan).first()
    if diagnosis is not None:
        paths += [diagnosis.mask_path, diagnosis.heatmap_path]
    paths += list(Review.objects.filter(scan=scan).values_list("mask_path", flat=True))
    return [path for path in paths if path]


def may_remove_scan(scan: Scan, membership) -> bool:
    """remove_scan's rule, for pages deciding whether to offer it: an admin always, the patient their own
    upload until a doctor has reviewed it, a doctor never."""
    if membership.role == Role.ADMIN:
        return True
    return (membership.role == Role.PATIENT and scan.uploaded_by_id == membership.user_id
            and scan.review_state == ReviewState.UNREVIEWED)


def remove_scan(*, hospital, scan: Scan, membership, reason: str = "", request=None) -> None:
    """Remove a scan with its result, reviews and every file: a wrong file, or one of the wrong person.

    A patient may remove their own upload until a doctor has reviewed it; after that it is part of
    their record, and only the hospital's admin removes it, saying why (the reason goes to the audit
    trail, which keeps the event after the scan is gone). Doctors review; they do not remove. A scan
    gone is gone from the hospital's training data too, though a model trained on it earlier keeps
    what it learnt. The files are deleted once the rows are, so a failure leaves both in place.
    """
    if scan.hospital_id != hospital.id or membership.hospital_id != hospital.id:
        raise ValueError("scan or membership belongs to another hospital")
    reason = " ".join(reason.split())
    if membership.role == Role.DOCTOR:
        raise DomainError("forbidden", "A doctor cannot remove a scan; ask an admin of this hospital.", status=403)
    if membership.role == Role.ADMIN and not reason:
        raise DomainError("reason_required", "Say why the scan is removed (for example: uploaded for the "
                                             "wrong patient). The reason is kept in the audit log.")
    if len(reason) > REMOVAL_REASON_MAX:
        raise DomainError("reason_too_long", f"Keep the reason to {REMOVAL_REASON_MAX} characters at most.")
    with transaction.atomic():
        # Locked before its files are listed: a worker finishing the analysis meanwhile has either
        # committed its mask and heatmap, which are then listed, or waits and finds the scan gone.
        locked = Scan.objects.select_for_update().filter(pk=scan.pk, hospital=hospital).first()
        if locked is None:
            raise DomainError("not_found", "This scan has already been removed.", status=404)
        if membership.role == Role.PATIENT and locked.uploaded_by_id != membership.user_id:
            # Staff uploaded it for the patient: a clinical image the hospital chose to keep on the record.
            raise DomainError("uploaded_by_hospital", "The hospital uploaded this scan for you, so only the "
                                                      "hospital can remove it; ask them if it is wrong.", status=403)
        if membership.role == Role.PATIENT and locked.review_state != ReviewState.UNREVIEWED:
            raise DomainError("reviewed", "A doctor has reviewed this scan, so it is part of your record; "
                                          "ask the hospital to remove it.", status=409)
        paths = _stored_files(locked)
        # The patient removing their own upload knows; one whose scan the hospital removes is told.
        told = patient_mail.patient_account(locked) if membership.role != Role.PATIENT else None
        record_audit(actor=membership.user, hospital=hospital, action="scan.delete", obj=locked, request=request,
                     note=reason)
        notify.scan_changed_on_commit(locked, event="scan.deleted")
        locked.delete()
        for path in paths:
            _on_commit_robust(delete_blob, path)
        _on_commit_robust(_forget_shown_slices, scan.pk)
        if told is not None:
            _on_commit_robust(patient_mail.tell_patient_scan_removed, hospital=hospital, scan_id=scan.pk,
                              uploaded_at=locked.created_at, user=told)
    logger.info("scan %s removed from %s by a %s", scan.pk, hospital.slug, membership.role)


# --- reviewed training cases -------------------------------------------------------------------------


def encode_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # compress_level 1: masks and previews are small, and the worker's latency matters more than bytes.
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A display/training copy of a grayscale slice: uint8 as is, anything else stretched to 0..255."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    if image.dtype == np.uint8:
        return image
    image = np.nan_to_num(image.astype(np.float32))
    low, high = np.percentile(image, [0.5, 99.5])
    if high - low <= 1e-6:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round(np.clip((image - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def create_reviewed_case(hospital, image, label: str, mask=None, reviewer=None) -> Scan:
    """Import a labelled case as reviewed training data of `hospital`: no patient, no model, no Celery.

    `image` is a 2-D array or the bytes of an image file; `mask` an array (nonzero = tumour) or None.
    The same image imported twice returns the first case.
    """
    if label not in CLASS_NAMES:
        raise ValueError(f"label must be one of {CLASS_NAMES}")
    if isinstance(image, (bytes, bytearray)):
        decoded = decode_upload(bytes(image))
        kind, array = decoded.kind, decoded.slices[0]
        data = bytes(image)
    else:
        array = to_uint8(image)
        kind, data = "png", encode_png(array)
    digest = content_digest(hospital, data)
    existing = Scan.objects.filter(hospital=hospital, patient=None, content_digest=digest).first()
    if existing is not None:
        return existing
    height, width = np.asarray(array).shape[:2]
    mask_png, outline = None, DoctorOutline.NONE
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:2] != (height, width):
            raise ValueError(f"mask shape {mask.shape} does not match image shape {(height, width)}")
        mask = (mask if mask.ndim == 2 else mask.max(axis=-1)) > 0
        mask_png = encode_png(mask.astype(np.uint8) * 255)
        outline = DoctorOutline.DRAWN if mask.any() else DoctorOutline.EMPTY
    scan_id, review_id = uuid.uuid4(), uuid.uuid4()
    written = []
    try:
        stored = store_blob(hospital, data, record_type=SCAN_BLOB, record_id=scan_id)
        written.append(stored.path)
        stored_mask = None
        if mask_png is not None:
            stored_mask = store_blob(hospital, mask_png, record_type=REVIEW_MASK_BLOB, record_id=review_id)
            written.append(stored_mask.path)
        with transaction.atomic():
            scan = Scan.objects.create(
                id=scan_id, hospital=hospital, patient=None, source=ScanSource.IMPORT, uploaded_by=reviewer,
                status=ScanStatus.DONE, blob_path=stored.path, blob_sha256=stored.sha256, blob_size=stored.size,
                content_digest=digest, kind=kind, height=height, width=width,
                review_state=ReviewState.CONFIRMED, reviewed_label=label, doctor_outline=outline,
                finished_at=timezone.now(),
            )
            Review.objects.create(
                id=review_id, hospital=hospital, scan=scan, reviewer=reviewer, label=label,
                mask_changed=stored_mask is not None,
                mask_path=stored_mask.path if stored_mask else "", mask_sha256=stored_mask.sha256 if stored_mask else "",
            )
    except IntegrityError:
        for path in written:
            delete_blob(path)
        return Scan.objects.get(hospital=hospital, patient=None, content_digest=digest)
    except BaseException:
        _discard_unstored(written)
        raise
    return scan
