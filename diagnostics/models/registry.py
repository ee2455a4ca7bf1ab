"""The model registry: every trained classifier/segmenter bundle, where it came from, and which one
serves predictions.

A ``ModelVersion`` points at a bundle file (the JSON that names the TFLite and weight files next to
it) and records the SHA-256 of that JSON and of every file it names, so a loader can refuse an artefact
that changed after registration. At most one version per task is ``active``; promotion and rollback
live in ``diagnostics.registry`` so they happen in one transaction.
"""
from django.db import models


class ModelTask(models.TextChoices):
    CLASSIFY = "classify", "Classification"
    SEGMENT = "segment", "Segmentation"


class ModelSource(models.TextChoices):
    CENTRALISED = "centralised", "Centralised training"
    FEDERATED = "federated", "Federated run"
    BASELINE = "baseline", "Committed baseline"


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    task = models.CharField(max_length=16, choices=ModelTask.choices)
    version = models.CharField(max_length=64)
    artifact_path = models.CharField(max_length=500, help_text="bundle JSON; absolute, or relative to MODEL_DIR")
    artifact_sha256 = models.CharField(max_length=64, help_text="SHA-256 over the bundle JSON and every file it names")
    metrics = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=ModelSource.choices, default=ModelSource.CENTRALISED)
    # The federation app links its runs by this id; a foreign key would point diagnostics at federation,
    # against the dependency direction.
    federated_run_id = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["task"], condition=models.Q(status="active"),
                                    name="one_active_model_version_per_task"),
            models.UniqueConstraint(fields=["task", "version"], name="unique_model_version_per_task"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.version} ({self.status})"
