"""diagnostics/access.py: a membership handed to the scan helpers must be the user's own, in that hospital."""

import pytest
from django.http import Http404

from diagnostics import services
from diagnostics.access import access_scan, visible_scans
from hospitals.models import Membership
from tests.diagnostics import samples
from tests.diagnostics.helpers import patient_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan(world):
    stored, _ = services.upload_scan(hospital=world.a, patient=patient_of(world.owner, world.a),
                                     data=samples.jpeg_bytes("glioma", 4), uploaded_by=world.owner)
    return stored


def membership(user, hospital):
    return Membership.objects.get(user=user, hospital=hospital)


def test_owner_and_colleague_reach_the_scan_with_their_own_membership(world, scan):
    for user in (world.owner, world.colleague):
        assert access_scan(user, world.a, scan.id, membership(user, world.a)) == scan
        assert list(visible_scans(user, world.a, membership(user, world.a))) == [scan]


def test_an_outsiders_membership_of_their_own_hospital_does_not_open_another(world, scan):
    # B's doctor with B's (staff) membership, asking about hospital A.
    with pytest.raises(Http404):
        visible_scans(world.outsider, world.a, membership(world.outsider, world.b))
    with pytest.raises(Http404):
        access_scan(world.outsider, world.a, scan.id, membership(world.outsider, world.b))


def test_a_colleagues_membership_does_not_serve_another_user(world, scan):
    # Patient A2 holding doctor A1's membership: a mix-up in a caller must not widen what A2 sees.
    with pytest.raises(Http404):
        visible_scans(world.patient_a2, world.a, membership(world.colleague, world.a))
    with pytest.raises(Http404):
        access_scan(world.patient_a2, world.a, scan.id, membership(world.colleague, world.a))
