"""Plain factory functions with defaults (no factory library): what a test needs, spelled out."""

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from hospitals.models import Role
from hospitals.services import add_member, create_hospital, create_patient

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


_hashes = {}


def _password_hash(password):
    # A real Argon2 hash, computed once per password: Argon2 is slow on purpose (~0.3 s), and a fixture
    # that makes eight users would otherwise spend seconds hashing the same password.
    if password not in _hashes:
        _hashes[password] = make_password(password)
    return _hashes[password]


def make_user(email=None, password=PASSWORD, **extra):
    n = next(_counter)
    email = email or f"user{n}@example.org"
    user = get_user_model()(username=email, email=email, **extra)
    user.password = _password_hash(password) if password is not None else make_password(None)
    user.save()
    return user


def make_hospital(slug=None, name=None):
    n = next(_counter)
    slug = slug or f"hospital-{n}"
    return create_hospital(slug=slug, name=name or f"Hospital {n}")


def make_member(hospital, role, email=None):
    user = make_user(email)
    add_member(hospital=hospital, user=user, role=role)
    if role == Role.PATIENT:
        create_patient(hospital=hospital, full_name=f"Patient {user.pk}", user=user)
    return user


def make_patient(hospital, full_name="Ada Lovelace", **kwargs):
    return create_patient(hospital=hospital, full_name=full_name, **kwargs)


def add_reviewed_case(hospital, label="glioma", mask=None):
    """One doctor-reviewed case of `hospital`: what each node of a federated run needs to train on."""
    import numpy as np

    from diagnostics.services import create_reviewed_case

    image = np.tile(np.arange(64, dtype=np.uint8) * 3, (64, 1))
    image[0, :2] = divmod(next(_case_numbers), 256)  # a new image each time: the same one is imported once
    return create_reviewed_case(hospital, image, label, mask=mask)


_case_numbers = itertools.count()


def make_scan(hospital, patient, *, label="glioma", reviewed_by=None, reviews=1, model_version=None,
              segmenter_version=None):
    """A finished scan of `patient` written straight to the tables, with the software's result, and
    `reviews` reviews by `reviewed_by` when given: for tests of listings, where how many rows there are
    matters and decoding an upload for each would only cost time. Its files are never read."""
    from diagnostics.models.scans import Diagnosis, Review, ReviewState, Scan, ScanStatus

    n = next(_counter)
    reviewed = reviewed_by is not None and reviews > 0
    scan = Scan.objects.create(
        hospital=hospital, patient=patient, uploaded_by=patient.user, status=ScanStatus.DONE,
        blob_path=f"scans/listing-{n}", blob_sha256="0" * 64, blob_size=1, content_digest=f"listing-{n}",
        kind="png", width=64, height=64,
        review_state=ReviewState.CONFIRMED if reviewed else ReviewState.UNREVIEWED,
        reviewed_label=label if reviewed else "",
    )
    probabilities = {name: 0.1 for name in ("glioma", "meningioma", "notumor", "pituitary")}
    probabilities[label] = 0.7
    Diagnosis.objects.create(
        hospital=hospital, scan=scan, model_version=model_version, segmenter_version=segmenter_version, label=label,
        probabilities=probabilities, confidence=0.7, mask_path=f"masks/listing-{n}", heatmap_path=f"heat/listing-{n}",
        tumour_area_px=600.0,
    )
    for _ in range(reviews if reviewed else 0):
        Review.objects.create(hospital=hospital, scan=scan, reviewer=reviewed_by, previous_label=label, label=label,
                              notes="Agreed.")
    return scan
