"""Scans, their diagnosis and the doctors' reviews (DESIGN §4).

Every row carries a non-null hospital key. Pixels never live in the database: the scan as uploaded,
and every derived image, is an AES-GCM blob under the hospital's data key (hospitals.storage), whose
associated data names the hospital and the record, so the record id exists before the blob is written.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from encrypted_model_fields.fields import EncryptedCharField, EncryptedTextField


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReviewState(models.TextChoices):
    UNREVIEWED = "unreviewed", "Awaiting a doctor"
    CONFIRMED = "confirmed", "Confirmed by a doctor"
    CORRECTED = "corrected", "Changed by a doctor"


class DoctorOutline(models.TextChoices):
    """The outline a doctor's latest correction stored, which replaces the software's."""

    NONE = "", "No correction"
    DRAWN = "drawn", "Drawn by a doctor"
    # Erased and not redrawn (or imported empty): no outline of a tumour, and nothing to show a patient.
    EMPTY = "empty", "Erased by a doctor"


class ScanKind(models.TextChoices):
    JPEG = "jpeg", "JPEG"
    PNG = "png", "PNG"
    DICOM = "dicom", "DICOM"
    DICOM_SERIES = "dicom_series", "DICOM series (zip)"
    NIFTI = "nifti", "NIfTI"


class ScanSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded for a patient"
    # Cases imported as reviewed training data (e.g. a public set seeded into a hospital): no patient,
    # no model run, never on a worklist.
    IMPORT = "import", "Imported training case"


class Scan(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.CASCADE, related_name="scans")
    patient = models.ForeignKey(
        "hospitals.Patient", null=True, blank=True, on_delete=models.CASCADE, related_name="scans"
    )
    source = models.CharField(max_length=8, choices=ScanSource.choices, default=ScanSource.UPLOAD, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="uploaded_scans"
    )
    status = models.CharField(max_length=12, choices=ScanStatus.choices, default=ScanStatus.QUEUED, db_index=True)
    failure_code = models.CharField(max_length=40, blank=True, default="")
    failure_reason = models.CharField(max_length=300, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Starts whose delivery neither finished nor asked for a retry (its worker died, or its task was lost),
    # and the retry count of the delivery that started the scan last: services.start_analysis.
    crashes = models.PositiveSmallIntegerField(default=0)
    started_retries = models.PositiveSmallIntegerField(null=True, blank=True)
    # When a failed scan was queued again (None: as uploaded, created_at): what requeue_scans measures from.
    queued_at = models.DateTimeField(null=True, blank=True)

    BLOB_PATH_FIELDS = ("blob_path",)  # the columns naming a stored blob (hospitals.storage.blob_path_fields)
    # The file exactly as uploaded (it is the clinical record), encrypted.
    blob_path = models.CharField(max_length=255)
    blob_sha256 = models.CharField(max_length=64)
    blob_size = models.PositiveBigIntegerField()
    # HMAC-SHA256 of the upload under a key derived from the hospital's data key: finds a repeated
    # upload within the hospital, while equal files in two hospitals give unrelated digests.
    content_digest = models.CharField(max_length=64, editable=False)

    kind = models.CharField(max_length=16, choices=ScanKind.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    slice_count = models.PositiveIntegerField(default=1)
    pixel_spacing_row_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_col_mm = models.FloatField(null=True, blank=True)
    # Identifiers found in a DICOM header: PHI, so encrypted, never shown to the model or logged.
    source_patient_name = EncryptedCharField(max_length=200, blank=True, default="")
    source_patient_id = EncryptedCharField(max_length=64, blank=True, default="")
    source_birth_date = EncryptedCharField(max_length=16, blank=True, default="")

    review_state = models.CharField(
        max_length=12, choices=ReviewState.choices, default=ReviewState.UNREVIEWED, db_index=True
    )
    # The label a doctor settled on (empty until reviewed); the model's own stays on the Diagnosis.
    reviewed_label = models.CharField(max_length=20, blank=True, default="")
    # What the latest outline correction stored (none, drawn, or erased), read off its pixels when the
    # review is saved: training counts and scan lists ask it of every row, and the pixels are encrypted.
    doctor_outline = models.CharField(max_length=8, choices=DoctorOutline.choices, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Scoped to the patient as well: a second patient uploading the same file must not be
            # handed the first patient's scan.
            models.UniqueConstraint(
                fields=["hospital", "patient", "content_digest"], name="one_scan_per_file_per_patient"
            ),
            models.UniqueConstraint(
                fields=["hospital", "content_digest"], condition=Q(patient__isnull=True),
                name="one_imported_case_per_file",
            ),
            models.CheckConstraint(
                condition=Q(patient__isnull=False) | Q(source="import"), name="uploaded_scan_has_patient"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ScanStatus]), name="scan_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["hospital", "status", "-created_at"]),
            # The orphan sweep and the clean-up after a failed write look rows up by the file they name.
            models.Index(fields=["blob_path"], name="scan_blob_path_idx"),
        ]

    def __str__(self):
        return f"scan {self.id}"

    @property
    def pixel_spacing_mm(self):
        if self.pixel_spacing_row_mm and self.pixel_spacing_col_mm:
            return (self.pixel_spacing_row_mm, self.pixel_spacing_col_mm)
        return None


class Diagnosis(models.Model):
    """What the models said about one scan. One per scan, so a redelivered task cannot add a second."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.CASCADE, related_name="diagnoses")
    scan = models.OneToOneField(Scan, on_delete=models.CASCADE, related_name="diagnosis")
    # The classifier that decided the label, and the segmenter that drew the mask (the registry keeps
    # one active version per task).
    model_version = models.ForeignKey(
        "diagnostics.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="diagnoses"
    )
    segmenter_version = models.ForeignKey(
        "diagnostics.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="segmentations"
    )
    label = models.CharField(max_length=20)
    probabilities = models.JSONField()  # calibrated, class name -> probability
    confidence = models.FloatField(db_index=True)  # the largest probability, kept for filtering
    # The slice the result is about: the most suspicious one of a volume, 0 for a single image.
    slice_index = models.PositiveIntegerField(default=0)
    # Keyed digest of that slice as shown (diagnostics/decode_check.py): the outline, heatmap and slice number
    # hold for the image the stored file decodes to now only while this still matches. Empty for a
    # diagnosis recorded before it was kept.
    slice_digest = models.CharField(max_length=64, blank=True, default="")
    slices_analysed = models.PositiveIntegerField(default=1)
    per_slice = models.JSONField(default=list, blank=True)
    tumour_area_px = models.FloatField(null=True, blank=True)
    tumour_area_mm2 = models.FloatField(null=True, blank=True)
    tumour_volume_mm3 = models.FloatField(null=True, blank=True)
    bbox = models.JSONField(null=True, blank=True)  # {"top", "left", "height", "width"} in image pixels
    timings = models.JSONField(default=dict, blank=True)  # milliseconds per stage
    BLOB_PATH_FIELDS = ("mask_path", "heatmap_path")
    mask_path = models.CharField(max_length=255, blank=True, default="")
    mask_sha256 = models.CharField(max_length=64, blank=True, default="")
    heatmap_path = models.CharField(max_length=255, blank=True, default="")
    heatmap_sha256 = models.CharField(max_length=64, blank=True, default="")
    # How far the analysed slice lies from the brain MRIs the models learnt from (diagnostics/ml/gate.py),
    # and whether that is far enough to call the image unusual: then its patient sees no result before a
    # doctor has read it, and the doctor is warned.
    input_distance = models.FloatField(null=True, blank=True)
    unusual_image = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["mask_path"], name="diagnosis_mask_path_idx"),
                   models.Index(fields=["heatmap_path"], name="diagnosis_heatmap_path_idx")]

    def __str__(self):
        return f"diagnosis of scan {self.scan_id}: {self.label}"


class Review(models.Model):
    """One doctor's review of a scan. Every review is kept; the latest decides the scan's label."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.CASCADE, related_name="reviews")
    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    previous_label = models.CharField(max_length=20, blank=True, default="")
    label = models.CharField(max_length=20)
    label_changed = models.BooleanField(default=False)
    mask_changed = models.BooleanField(default=False)
    notes = EncryptedTextField(blank=True, default="")
    # A corrected tumour outline (PNG, 0 = background), encrypted like every derived image.
    BLOB_PATH_FIELDS = ("mask_path",)
    mask_path = models.CharField(max_length=255, blank=True, default="")
    mask_sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["mask_path"], name="review_mask_path_idx")]

    def __str__(self):
        return f"review {self.id} of scan {self.scan_id}"
