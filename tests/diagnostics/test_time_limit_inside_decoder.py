"""The analysis time limit reached while a decoder runs: the decoders answer "unreadable" to whatever
they meet, so the interruption arrives wrapped in an UploadRejected. The scan still fails as timed out,
and its patient is not told that a sound file is damaged. In-process: the limit is raised by hand."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from diagnostics import services
from diagnostics.models.scans import Diagnosis, Scan, ScanStatus
from diagnostics.tasks import analyse_scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(world, api):
    return Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 30)).json()["id"])


def test_a_time_limit_reached_inside_the_decoder_fails_the_scan_as_timed_out(scan, monkeypatch):
    def hangs(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "decode_scan", hangs)

    assert analyse_scan.apply(args=[str(scan.id)]).get() == "failed"

    scan.refresh_from_db()
    assert scan.status == ScanStatus.FAILED
    assert scan.failure_code == "timed_out", scan.failure_code
    assert scan.failure_reason.startswith("The analysis took too long and was stopped")
    assert not Diagnosis.objects.filter(scan=scan).exists()


def test_a_damaged_file_is_still_unreadable(scan, monkeypatch):
    def damaged(*args, **kwargs):
        raise ValueError("bad header")

    monkeypatch.setattr(services, "decode_scan", damaged)

    assert analyse_scan.apply(args=[str(scan.id)]).get() == "failed"
    scan.refresh_from_db()
    assert scan.failure_code == "unreadable"
