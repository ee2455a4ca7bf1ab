"""What the diagnostics app writes to its log: ids, codes and counts, never a scan's clinical result.

A scan's id leads to its patient for anyone who can read the database, and logs are kept longer, and
read by more people, than the records: a line naming the class the software found is health data about
that patient, outside the access checks and the audit trail.
"""

import logging

import pytest

from diagnostics.models.scans import Scan
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

pytestmark = pytest.mark.django_db


def test_the_log_says_a_scan_was_diagnosed_but_not_what_was_found(world, api, caplog):
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 3)).json()["id"])
    caplog.set_level(logging.DEBUG)
    finish(scan, label="meningioma")
    assert f"scan {scan.id} diagnosed" in caplog.text
    assert "meningioma" not in caplog.text.lower()
