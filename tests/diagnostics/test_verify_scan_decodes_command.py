"""manage.py verify_scan_decodes: each diagnosed scan still decodes to the image it was analysed on
(diagnostics/decode_check.py)."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from diagnostics import services
from diagnostics.decode_check import slice_digest
from diagnostics.models.scans import Diagnosis, Scan
from diagnostics.tasks import analyse_scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import upload

pytestmark = pytest.mark.django_db


def analysed(client, hospital, data: bytes, name: str) -> Scan:
    scan = Scan.objects.get(pk=upload(client, hospital, data, name).json()["id"])
    assert analyse_scan.apply(args=[str(scan.id)]).get() == "done"
    return scan


def verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_scan_decodes", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def scans(world, api, active_model):
    client = api(world.owner)
    return {"jpeg": analysed(client, world.a, samples.jpeg_bytes("glioma", 41), "scan.jpg"),
            "nifti": analysed(client, world.a, samples.nifti_bytes("meningioma", 3), "scan.nii"),
            "other hospital": analysed(api(world.patient_b), world.b, samples.jpeg_bytes("pituitary", 42), "b.jpg")}


def test_the_worker_keeps_the_digest_of_the_slice_it_analysed(scans, world):
    nifti = Diagnosis.objects.get(scan=scans["nifti"])
    volume = services.decode_on_record(samples.nifti_bytes("meningioma", 3)).slices
    assert nifti.slice_digest == slice_digest(world.a, volume[nifti.slice_index])
    assert nifti.slice_digest != slice_digest(world.a, volume[(nifti.slice_index + 1) % 3])
    assert Diagnosis.objects.get(scan=scans["jpeg"]).slice_digest == slice_digest(
        world.a, services.decode_on_record(samples.jpeg_bytes("glioma", 41)).slices[0])


def test_the_digest_is_keyed_per_hospital_like_the_content_digest(scans, world, api):
    """A plain hash of the slice would show a reader of the database that two hospitals hold the same image,
    and let anyone holding a known image confirm it is there (services.content_digest)."""
    same_image = analysed(api(world.patient_b), world.b, samples.jpeg_bytes("glioma", 41), "same.jpg")
    at_a = Diagnosis.objects.get(scan=scans["jpeg"]).slice_digest
    at_b = Diagnosis.objects.get(scan=same_image).slice_digest
    assert at_a and at_b and at_a != at_b
    pixels = services.to_uint8(services.decode_on_record(samples.jpeg_bytes("glioma", 41)).slices[0])
    plain = hashlib.sha256(f"{pixels.shape[0]}x{pixels.shape[1]}\n".encode() + pixels.tobytes()).hexdigest()
    assert plain not in (at_a, at_b)


def test_scans_that_decode_as_analysed_pass(scans, world):
    assert "3 diagnosed scan(s) at every hospital decode as when they were analysed." in verify()
    assert "2 diagnosed scan(s) at st-anne decode" in verify("--hospital", "st-anne")


def test_a_scan_that_decodes_to_another_image_is_named_and_fails_the_check(scans, monkeypatch):
    decode = services.decode_on_record

    def turned(data):  # a decoder rule that now turns JPEGs a quarter (an EXIF orientation, say)
        decoded = decode(data)
        if data[:2] == b"\xff\xd8":
            decoded.slices = [np.rot90(s) for s in decoded.slices]
        return decoded

    monkeypatch.setattr(services, "decode_on_record", turned)
    with pytest.raises(CommandError, match=r"^2 scan\(s\) decode to another image") as failed:
        verify()
    assert str(scans["jpeg"].id) in str(failed.value) and str(scans["other hospital"].id) in str(failed.value)
    assert str(scans["nifti"].id) not in str(failed.value)
    with pytest.raises(CommandError, match=str(scans["jpeg"].id)):
        verify("--hospital", "st-anne")


def test_a_scan_whose_file_no_longer_opens_is_named(scans):
    blob = Path(settings.MEDIA_ROOT) / scans["jpeg"].blob_path
    blob.write_bytes(b"not the stored scan")
    with pytest.raises(CommandError, match=rf"1 scan\(s\) no longer decode or open: {scans['jpeg'].id}"):
        verify()


def test_diagnoses_from_before_digests_are_reported_then_recorded_on_request(scans):
    Diagnosis.objects.filter(scan=scans["nifti"]).update(slice_digest="")
    out = verify()
    assert "2 diagnosed scan(s)" in out and "1 diagnosis(es) from before digests were kept were not checked" in out
    out = verify("--record-missing")
    assert "1 diagnosis(es) from before digests were kept now hold the digest" in out
    assert Diagnosis.objects.get(scan=scans["nifti"]).slice_digest
    assert "3 diagnosed scan(s) at every hospital decode as when they were analysed." in verify()


def test_an_unknown_hospital_is_refused(db):
    with pytest.raises(CommandError, match="No hospital with the slug 'nowhere'"):
        verify("--hospital", "nowhere")


def test_at_verbosity_0_no_progress_bar(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("verify_scan_decodes", verbosity=0, stdout=out, stderr=err)
    assert "0 diagnosed scan(s) at every hospital decode as when they were analysed." in out.getvalue()
    assert err.getvalue() == ""


def test_a_copy_without_a_hospitals_master_key_is_a_sentence_naming_it(scans, world, settings):
    from tests.hospitals.conftest import new_key

    settings.MASTER_KEY, settings.MASTER_KEY_FILE = new_key(), ""
    settings.PREVIOUS_MASTER_KEY, settings.PREVIOUS_MASTER_KEY_FILE = "", ""
    with pytest.raises(CommandError, match=r"no configured master key wraps the data key of north-general .*st-anne"):
        verify()


def test_a_scan_whose_file_cannot_be_opened_is_named_and_the_others_are_checked(scans, world, monkeypatch):
    """Run as another OS user than the one that wrote the blobs (they are 0600)."""
    denied = Path(scans["jpeg"].blob_path).name
    read_bytes = Path.read_bytes

    def refuse_one(self):
        if self.name == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse_one)
    with pytest.raises(CommandError, match=f"1 scan\\(s\\) no longer decode or open: {scans['jpeg'].id}") as failed:
        verify()
    assert str(scans["nifti"].id) not in str(failed.value)
