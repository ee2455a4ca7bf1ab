"""Diagnostics tables, one module per concern; Django finds them all through this package."""
from diagnostics.models.scans import Diagnosis, Review, ReviewState, Scan, ScanKind, ScanSource, ScanStatus  # noqa: F401
from .registry import ModelVersion  # noqa: F401
