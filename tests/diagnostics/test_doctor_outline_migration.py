"""Migration 0005 records, for the scans reviewed before it, whether their standing outline correction
has a pixel: read from the encrypted outline, as review_scan reads it when a review is saved."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from diagnostics.models.scans import Review, Scan
from diagnostics.training_data import count_reviewed_cases
from hospitals.storage import _absolute
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload
from tests.factories import add_reviewed_case

BEFORE = [("diagnostics", "0003_diagnosis_input_gate")]
AFTER = [("diagnostics", "0005_record_doctor_outlines")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_existing_reviews_get_their_outline_read_once(world):
    def client(user):
        api = APIClient()
        api.force_authenticate(user)
        return api

    def scan(n):
        found = Scan.objects.get(pk=upload(client(world.owner), world.a, samples.jpeg_bytes("glioma", n)).json()["id"])
        finish(found, "glioma")
        return found

    def review(found, doctor, mask=None):
        body = {"label": "glioma"}
        if mask is not None:
            body["mask"] = SimpleUploadedFile("mask.png", samples.array_png(mask.astype(np.uint8) * 255))
        assert client(doctor).post(f"/api/v1/hospitals/{world.a.slug}/scans/{found.id}/review/", body,
                                   format="multipart" if mask is not None else "json").status_code == 201

    erased, drawn, drawn_then_erased, label_only, unreadable = (scan(n) for n in range(50, 55))
    nothing = np.zeros((erased.height, erased.width), bool)
    outline = nothing.copy()
    outline[40:90, 60:120] = True
    review(erased, world.doctor_a, nothing)
    review(drawn, world.doctor_a, nothing)
    review(drawn, world.doctor_a2, outline)
    review(drawn_then_erased, world.doctor_a, outline)
    review(drawn_then_erased, world.doctor_a2, nothing)
    review(label_only, world.doctor_a)
    review(unreadable, world.doctor_a, nothing)
    _absolute(Review.objects.get(scan=unreadable).mask_path).unlink()
    imported_empty = add_reviewed_case(world.a, "meningioma", mask=np.zeros((64, 64), bool))
    try:
        migrate(BEFORE)
        migrate(AFTER)
        outlines = dict(Scan.objects.values_list("id", "doctor_outline"))
        assert {name: outlines[s.id] for name, s in (
            ("erased", erased), ("drawn", drawn), ("drawn_then_erased", drawn_then_erased),
            ("label_only", label_only), ("unreadable", unreadable), ("imported_empty", imported_empty),
        )} == {"erased": "empty", "drawn": "drawn", "drawn_then_erased": "empty", "label_only": "",
               # As it counted before: a node that cannot read it fails its run saying so.
               "unreadable": "drawn", "imported_empty": "empty"}
        assert count_reviewed_cases(world.a, outlined=True) == 2
    finally:
        migrate(latest())
