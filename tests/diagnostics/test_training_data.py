"""Reviewed cases as training data (diagnostics/training_data.py), per hospital only."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnostics.models.scans import Scan
from diagnostics.training_data import count_reviewed_cases, create_reviewed_case, reviewed_cases
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, stored_files, upload

pytestmark = pytest.mark.django_db


def test_imported_cases_round_trip_with_masks(world):
    image, mask, label = samples.figshare_case(1)
    scan = create_reviewed_case(world.a, image, label, mask=mask, reviewer=world.doctor_a)
    assert scan.source == "import" and scan.patient is None and scan.review_state == "confirmed"
    [(got_image, got_label, got_mask)] = list(reviewed_cases(world.a))
    assert got_label == label
    assert np.array_equal(got_image, image)
    assert got_mask.dtype == bool and np.array_equal(got_mask, mask)
    # Blobs are encrypted like any scan.
    assert all(path.read_bytes()[:3] == b"NF1" for path in stored_files())


def test_import_is_idempotent_and_accepts_file_bytes(world):
    image, _, label = samples.figshare_case(2)
    first = create_reviewed_case(world.a, image, label)
    assert create_reviewed_case(world.a, image, label).pk == first.pk
    from_bytes = create_reviewed_case(world.a, samples.jpeg_bytes("pituitary", 4), "pituitary")
    assert from_bytes.kind == "jpeg"
    cases = list(reviewed_cases(world.a))
    assert [c[1] for c in cases] == [label, "pituitary"] and cases[1][2] is None
    assert np.array_equal(cases[1][0], samples.slice_array("pituitary", 4))
    with pytest.raises(ValueError):
        create_reviewed_case(world.a, image, "tumour")


def _png(array, **options) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def test_an_imported_16_bit_png_trains_as_its_values_not_a_saturated_copy(world):
    eight_bits = samples.slice_array("glioma", 3)
    create_reviewed_case(world.a, _png(eight_bits.astype(np.uint16) * 16), "glioma")  # a 12-bit slice
    [(image, _, _)] = list(reviewed_cases(world.a))
    # Cut to 8 bits, half the slice had come out pure white.
    assert np.array_equal(image, eight_bits.astype(np.float32) * 16)


def test_an_imported_png_turned_by_its_exif_trains_on_the_image_its_outline_was_drawn_on(world):
    from PIL import Image

    from diagnostics import services

    square = samples.slice_array("glioma", 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    data = _png(square, exif=exif.tobytes())
    shown = services.decode_upload(data).slices[0]
    outline = shown > np.percentile(shown, 99)
    create_reviewed_case(world.a, data, "glioma", mask=outline)
    [(image, _, mask)] = list(reviewed_cases(world.a))
    assert not np.array_equal(shown, square)  # the case is a real test of the turn
    assert np.array_equal(image, shown) and np.array_equal(mask, outline)


def test_reviewed_uploads_are_training_data_of_their_own_hospital_only(world, api):
    mine = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 11)).json()["id"])
    unreviewed = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 12)).json()["id"])
    theirs = Scan.objects.get(pk=upload(api(world.patient_b), world.b, samples.jpeg_bytes("glioma", 13)).json()["id"])
    for scan in (mine, unreviewed, theirs):
        finish(scan, "glioma")
    for scan, doctor in ((mine, world.doctor_a), (theirs, world.doctor_b)):
        response = api(doctor).post(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/review/",
                                    {"label": "meningioma"}, format="json")
        assert response.status_code == 201
    cases_a = list(reviewed_cases(world.a))
    assert count_reviewed_cases(world.a) == 1 and len(cases_a) == 1
    image, label, mask = cases_a[0]
    assert label == "meningioma" and mask is None
    assert np.array_equal(image, samples.slice_array("glioma", 11))
    assert count_reviewed_cases(world.b) == 1


def test_reviewed_uploads_stay_training_data_when_the_input_gate_file_is_gone(world, api, settings, tmp_path):
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 14)).json()["id"])
    finish(scan, "glioma")
    assert api(world.doctor_a).post(f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/review/",
                                    {"label": "glioma"}, format="json").status_code == 201
    # The gate judged the file at upload and a doctor has read it since: a node whose gate file is
    # missing (or newer and stricter) still trains on it.
    settings.INPUT_GATE_PATH = tmp_path / "missing.json"
    [(image, label, _)] = list(reviewed_cases(world.a))
    assert label == "glioma" and np.array_equal(image, samples.slice_array("glioma", 14))


def _review(api, doctor, scan, label, mask=None):
    body = {"label": label}
    if mask is not None:
        body["mask"] = SimpleUploadedFile("mask.png", samples.array_png(mask.astype(np.uint8) * 255))
    response = api(doctor).post(f"/api/v1/hospitals/{scan.hospital.slug}/scans/{scan.id}/review/", body,
                                format="multipart" if mask is not None else "json")
    assert response.status_code == 201, response.content


def test_a_scan_the_doctor_calls_no_tumour_trains_the_segmenter_on_an_empty_outline(world, api):
    drawn = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("notumor", 15)).json()["id"])
    overruled = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 16)).json()["id"])
    for scan in (drawn, overruled):
        finish(scan, "glioma")
    outline = np.zeros((drawn.height, drawn.width), bool)
    outline[40:90, 60:120] = True
    # An outline sent with "No tumour", and one corrected first and overruled by a later "No tumour".
    _review(api, world.doctor_a, drawn, "notumor", outline)
    _review(api, world.doctor_a, overruled, "glioma", outline)
    _review(api, world.doctor_a2, overruled, "notumor")
    cases = list(reviewed_cases(world.a))
    assert [label for _, label, _ in cases] == ["notumor", "notumor"]
    for image, _, mask in cases:
        assert mask is not None and mask.shape == image.shape[:2] and not mask.any()


def test_an_erased_outline_is_no_outline_of_a_tumour(world, api):
    """A doctor who erases the software's outline and keeps a tumour's diagnosis has not outlined the
    tumour: the segmenter must not learn "nothing here" on a scan that has one. Nor when the outline was
    erased with "No tumour" and a second opinion calls it a tumour without drawing one."""
    erased = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 17)).json()["id"])
    overruled = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 18)).json()["id"])
    for scan in (erased, overruled):
        finish(scan, "glioma")
    nothing = np.zeros((erased.height, erased.width), bool)
    _review(api, world.doctor_a, erased, "glioma", nothing)
    _review(api, world.doctor_a, overruled, "notumor", nothing)
    _review(api, world.doctor_a2, overruled, "meningioma")
    cases = list(reviewed_cases(world.a))
    assert [(label, mask) for _, label, mask in cases] == [("glioma", None), ("meningioma", None)]


def test_an_erased_outline_does_not_count_as_an_outlined_tumour(world, api):
    """The count a segmenter run is admitted on (federation.services) agrees with the cases a node gets: a
    tumour whose latest outline correction is empty has no outline to learn from, even after an earlier
    correction drew one; one erased and then drawn again has."""
    erased, redrawn, drawn_then_erased = (
        Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", n)).json()["id"])
        for n in (19, 20, 21))
    for scan in (erased, redrawn, drawn_then_erased):
        finish(scan, "glioma")
    nothing = np.zeros((erased.height, erased.width), bool)
    outline = nothing.copy()
    outline[40:90, 60:120] = True
    _review(api, world.doctor_a, erased, "glioma", nothing)
    assert count_reviewed_cases(world.a, outlined=True) == 0
    _review(api, world.doctor_a, redrawn, "glioma", nothing)
    _review(api, world.doctor_a2, redrawn, "glioma", outline)
    _review(api, world.doctor_a, drawn_then_erased, "glioma", outline)
    _review(api, world.doctor_a2, drawn_then_erased, "glioma", nothing)
    cases = list(reviewed_cases(world.a))
    assert count_reviewed_cases(world.a, outlined=True) == sum(mask is not None for _, _, mask in cases) == 1
    assert count_reviewed_cases(world.a) == len(cases) == 3


def test_an_imported_tumour_with_an_empty_outline_is_not_an_outlined_case(world):
    image, _, _ = samples.figshare_case(3)
    create_reviewed_case(world.a, image, "glioma", mask=np.zeros(image.shape[:2], bool))
    assert count_reviewed_cases(world.a, outlined=True) == 0
    assert [mask for _, _, mask in reviewed_cases(world.a)] == [None]
