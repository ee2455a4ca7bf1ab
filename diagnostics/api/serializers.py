"""How a scan reads in the API, for the member who asks.

A patient whose hospital shows AI results only after review sees the scan's progress but no label,
probability or image derived from the model until a doctor has reviewed it.
"""

from django.urls import reverse
from rest_framework import serializers

from diagnostics.access import may_see_ai_result, may_see_heatmap, may_see_outline
from diagnostics.advice import advice_for, advice_while_waiting
from diagnostics.identity import BIRTH_DATE, PATIENT_ID, file_identity
from diagnostics.ml.readers import CLASS_NAMES
from diagnostics.models.scans import DoctorOutline, ReviewState, ScanKind, ScanStatus
from hospitals.access import STAFF_ROLES
from hospitals.accounts import display_name


class ReviewInputSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=CLASS_NAMES)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10000, default="")
    mask = serializers.FileField(required=False, allow_empty_file=False)
    # Optional, and worth sending: the id of the newest review shown when the doctor decided ("" for
    # none). A review saved by a colleague since then makes this one a 409 instead of silently replacing it.
    last_review_seen = serializers.CharField(required=False, allow_blank=True, max_length=64)
    # Optional, and worth sending with a mask: the id of the review whose outline the mask corrects ("" for
    # the software's). Unless that outline still stands, the mask is a 409 (outline_conflict).
    outline_based_on = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ScanRemovalSerializer(serializers.Serializer):
    # Required of an admin, optional for the patient; remove_scan decides, and words the refusal.
    reason = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=True)


class ScanSearchSerializer(serializers.Serializer):
    mrn = serializers.CharField(max_length=64, trim_whitespace=True,
                                help_text="The patient's medical record number, exact; case does not matter.")



class ScanUploadSerializer(serializers.Serializer):
    """The upload's multipart form, for the schema (ScanListView.post reads the form itself)."""

    file = serializers.FileField(help_text="The scan: DICOM, a zipped DICOM series, NIfTI, PNG or JPEG.")
    patient = serializers.CharField(required=False, help_text="The patient's id; staff only (a patient's upload "
                                                              "is filed under their own record).")


# The shape scan_data() answers in, for the schema only: scan_data builds the body itself, because what it
# holds depends on who asks. tests/diagnostics/test_scans_api_schema.py keeps the two in step.

class _FailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    reason = serializers.CharField()


class _ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    task = serializers.CharField()
    version = serializers.CharField()
    source = serializers.CharField()


class _SliceReadingSerializer(serializers.Serializer):
    slice = serializers.IntegerField()
    label = serializers.ChoiceField(choices=CLASS_NAMES)
    tumour_probability = serializers.FloatField()
    tumour_area_mm2 = serializers.FloatField(allow_null=True)


class ScanResultSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=CLASS_NAMES)
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="class name -> probability")
    confidence = serializers.FloatField()
    model_version = _ModelVersionSerializer(allow_null=True)
    segmenter_version = _ModelVersionSerializer(allow_null=True)
    slice_index = serializers.IntegerField(help_text="The analysed slice (the image endpoint's default slice).")
    slices_analysed = serializers.IntegerField()
    tumour_area_px = serializers.FloatField(allow_null=True)
    tumour_area_mm2 = serializers.FloatField(allow_null=True)
    tumour_volume_mm3 = serializers.FloatField(allow_null=True)
    bbox = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                 help_text="top, left, height, width in image pixels")
    timings_ms = serializers.DictField(child=serializers.FloatField())
    mask_url = serializers.CharField(allow_null=True)
    heatmap_url = serializers.CharField(allow_null=True)
    input_distance = serializers.FloatField(required=False, allow_null=True,
                                            help_text="Staff only: how far the slice lies from the training images.")
    per_slice = _SliceReadingSerializer(many=True, required=False,
                                        help_text="Staff only, on a single scan: the reading of each slice.")


class _AdviceSourceSerializer(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.URLField()


class AdviceSerializer(serializers.Serializer):
    label = serializers.CharField(allow_null=True)
    reviewed = serializers.BooleanField()
    title = serializers.CharField()
    meaning = serializers.CharField()
    next_steps = serializers.ListField(child=serializers.CharField())
    emergency_symptoms = serializers.ListField(child=serializers.CharField())
    emergency_action = serializers.CharField()
    sources = _AdviceSourceSerializer(many=True)
    reminder = serializers.CharField()
    preliminary = serializers.BooleanField()
    preliminary_notice = serializers.CharField(allow_blank=True)


class ReviewSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reviewer = serializers.IntegerField(allow_null=True)
    reviewer_name = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()
    previous_label = serializers.CharField(allow_null=True)
    label = serializers.CharField()
    label_changed = serializers.BooleanField()
    mask_changed = serializers.BooleanField()
    notes = serializers.CharField(allow_blank=True)


class _FileIdentitySerializer(serializers.Serializer):
    patient_name = serializers.CharField(allow_blank=True)
    patient_id = serializers.CharField(allow_blank=True)
    birth_date = serializers.CharField(allow_blank=True, help_text="YYYY-MM-DD, or as the file writes it when "
                                                                   "that is not a date.")
    differs_from_record = serializers.ListField(
        child=serializers.ChoiceField(choices=[PATIENT_ID, BIRTH_DATE]),
        help_text="What differs from the scan's patient record: the file's patient ID from the record's "
                  "medical record number, its birth date from the record's. Check that the scan is this "
                  "patient's; a file from another hospital carries that hospital's patient ID.")


class ScanSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    patient = serializers.UUIDField(allow_null=True)
    status = serializers.ChoiceField(choices=ScanStatus.choices)
    failure = _FailureSerializer(allow_null=True)
    kind = serializers.ChoiceField(choices=ScanKind.choices)
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    slice_count = serializers.IntegerField()
    pixel_spacing_mm = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                             help_text="row, column spacing")
    created_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    review_state = serializers.ChoiceField(choices=ReviewState.choices)
    reviewed_label = serializers.CharField(allow_null=True)
    label = serializers.CharField(allow_null=True,
                                  help_text="A doctor's label, else the software's once it may be shown.")
    result_available = serializers.BooleanField()
    awaiting_review = serializers.BooleanField()
    preliminary = serializers.BooleanField()
    unusual_image = serializers.BooleanField()
    image_url = serializers.CharField()
    result = ScanResultSerializer(allow_null=True, help_text="null until this member may see the software's result.")
    identity_differs = serializers.BooleanField(
        required=False, help_text="Staff only. The scan's file names a patient ID or birth date other than its "
                                  "patient record's: see file_identity.")


class ScanDetailSerializer(ScanSerializer):
    advice = AdviceSerializer(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    reviews = ReviewSerializer(many=True, required=False, help_text="Staff only.")
    file_identity = _FileIdentitySerializer(
        allow_null=True, required=False,
        help_text="Staff only. The patient the scan's DICOM header names; null for a file that names nobody.")


class ScanUploadedSerializer(ScanDetailSerializer):
    duplicate = serializers.BooleanField(help_text="The same file was uploaded before: this is that scan.")

def _url(name, scan, **extra):
    return reverse(f"diagnostics-api:{name}", kwargs={"slug": scan.hospital.slug, "scan_id": scan.id, **extra})


def _diagnosis(scan):
    try:
        return scan.diagnosis
    except scan._meta.model.diagnosis.RelatedObjectDoesNotExist:
        return None


def _outline_to_show(scan, diagnosis, membership) -> bool:
    """Whether the result comes with an outline for this member: only one the mask endpoint serves, a
    doctor's correction, else the software's (none when no segmenter ran). Staff get it even when it is
    empty (the doctor draws on it); a patient is offered an outline only where one was drawn."""
    if not may_see_outline(scan, membership):
        return False
    staff = membership.role in STAFF_ROLES
    if scan.doctor_outline:
        return staff or scan.doctor_outline == DoctorOutline.DRAWN
    return bool(diagnosis.mask_path and (staff or diagnosis.tumour_area_px))


def scan_data(scan, membership, *, detail: bool = False) -> dict:
    diagnosis = _diagnosis(scan)
    staff = membership.role in STAFF_ROLES
    identity = file_identity(scan) if staff else None
    visible = diagnosis is not None and may_see_ai_result(scan, membership)
    reviewed = scan.review_state != ReviewState.UNREVIEWED
    data = {
        "id": str(scan.id),
        "url": _url("scan-detail", scan),
        "patient": str(scan.patient_id) if scan.patient_id else None,
        "status": scan.status,
        "failure": {"code": scan.failure_code, "reason": scan.failure_reason}
        if scan.status == ScanStatus.FAILED else None,
        "kind": scan.kind,
        "width": scan.width,
        "height": scan.height,
        "slice_count": scan.slice_count,
        "pixel_spacing_mm": list(scan.pixel_spacing_mm) if scan.pixel_spacing_mm else None,
        "created_at": _when(scan.created_at),
        "finished_at": _when(scan.finished_at),
        "review_state": scan.review_state,
        "reviewed_label": scan.reviewed_label or None,
        # What the patient-facing result is: a doctor's label wins over the model's.
        "label": scan.reviewed_label or (diagnosis.label if visible else None),
        "result_available": visible,
        "awaiting_review": diagnosis is not None and not visible,
        "preliminary": visible and not reviewed,
        # The image does not look like the brain MRIs the software learnt from: a doctor reads it first.
        "unusual_image": diagnosis is not None and diagnosis.unusual_image,
        "image_url": _url("scan-image", scan),
    }
    if visible:
        # The tumour's size and place are the software's outline's: a patient whose scan a doctor read as
        # "no tumour" is shown neither, as the outline itself is withheld (access.may_see_outline), nor once a
        # doctor's outline has replaced the software's (they would measure an outline the doctor rejected).
        measured = may_see_outline(scan, membership) and (staff or not scan.doctor_outline)
        data["result"] = {
            "label": diagnosis.label,
            "probabilities": diagnosis.probabilities,
            "confidence": diagnosis.confidence,
            "model_version": _model_version(diagnosis.model_version),
            "segmenter_version": _model_version(diagnosis.segmenter_version),
            "slice_index": diagnosis.slice_index,
            "slices_analysed": diagnosis.slices_analysed,
            "tumour_area_px": diagnosis.tumour_area_px if measured else None,
            "tumour_area_mm2": diagnosis.tumour_area_mm2 if measured else None,
            "tumour_volume_mm3": diagnosis.tumour_volume_mm3 if measured else None,
            "bbox": diagnosis.bbox if measured else None,
            "timings_ms": diagnosis.timings,
            "mask_url": _url("scan-mask", scan) if _outline_to_show(scan, diagnosis, membership) else None,
            "heatmap_url": _url("scan-heatmap", scan)
            if diagnosis.heatmap_path and may_see_heatmap(scan, diagnosis, membership) else None,
        }
        if staff:
            # Squared Mahalanobis distance of the analysed slice from the training images (gate.py).
            data["result"]["input_distance"] = diagnosis.input_distance
        if detail and staff:
            data["result"]["per_slice"] = diagnosis.per_slice
    else:
        data["result"] = None
    if staff:
        data["identity_differs"] = bool(identity and identity.differences)
    if detail:
        shown_label = data["label"]
        if shown_label:
            data["advice"] = advice_for(shown_label, preliminary=data["preliminary"], hospital=scan.hospital)
        else:
            # No reading to explain yet, but a patient who waits for a doctor's review still needs the
            # emergency signs and the number to call.
            data["advice"] = advice_while_waiting(scan.hospital) if data["awaiting_review"] else None
        # When the reading the patient sees was last settled by a doctor (the printed result says so).
        last_review = scan.reviews.order_by("-created_at").values_list("created_at", flat=True).first() if reviewed else None
        data["reviewed_at"] = _when(last_review)
        if staff:
            data["reviews"] = [
                {
                    "id": str(review.id),
                    "reviewer": review.reviewer_id,
                    "reviewer_name": _person(review.reviewer),
                    "at": _when(review.created_at),
                    "previous_label": review.previous_label or None,
                    "label": review.label,
                    "label_changed": review.label_changed,
                    "mask_changed": review.mask_changed,
                    "notes": review.notes,
                }
                for review in scan.reviews.select_related("reviewer")
            ]
            data["file_identity"] = identity.as_dict() if identity else None
    return data


def _when(moment) -> str | None:
    """A time as every other body of the API writes it (DRF's DateTimeField: "...Z" in UTC)."""
    return serializers.DateTimeField().to_representation(moment) if moment else None


def _person(user) -> str | None:
    """How a colleague is named to staff: their name, else their email; None for a deleted account."""
    return None if user is None else display_name(user)


def _model_version(version):
    if version is None:
        return None
    return {"id": version.pk, "task": version.task, "version": version.version, "source": version.source}
