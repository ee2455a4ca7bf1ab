"""The platform operator (a superuser) is a member of no hospital and never reads its data (DESIGN §2)."""

import pytest
from django.core.management import CommandError, call_command

from hospitals.errors import DomainError
from hospitals.models import Hospital, Membership, Role
from hospitals.services import accept_invitation, add_member, invite_member
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

OPERATOR = "operator@neurofed.example"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(OPERATOR, OPERATOR, PASSWORD)


def test_an_admin_cannot_invite_the_operators_address(world, operator):
    with pytest.raises(DomainError) as refused:
        invite_member(hospital=world.a, email=OPERATOR.upper(), role=Role.DOCTOR, actor=world.admin_a)
    assert refused.value.code == "operator_account" and refused.value.status == 409


def test_an_invitation_sent_before_the_address_became_the_operators_is_refused(world, django_user_model):
    _invitation, token = invite_member(hospital=world.a, email=OPERATOR, role=Role.DOCTOR, actor=world.admin_a)
    operator = django_user_model.objects.create_superuser(OPERATOR, OPERATOR, PASSWORD)
    with pytest.raises(DomainError) as refused:
        accept_invitation(token=token, user=operator)
    assert refused.value.code == "operator_account"
    assert not Membership.objects.filter(user=operator).exists()


def test_the_operator_cannot_open_a_hospital_for_themselves(operator):
    with pytest.raises(CommandError, match="platform operator"):
        call_command("create_hospital", "op-h", "Op", "--admin-email", OPERATOR, "--site-url", "https://x.example")
    assert not Hospital.objects.filter(slug="op-h").exists()


def test_a_membership_made_anyway_opens_nothing(world, api, client, operator):
    scan = upload(api(world.owner), world.a, jpeg_bytes("glioma", 1)).json()["id"]
    from diagnostics.models import Scan

    finish(Scan.objects.get(pk=scan))
    add_member(hospital=world.a, user=operator, role=Role.DOCTOR)  # a row made behind the services' back
    client.force_login(operator)
    assert client.get(f"/h/st-anne/scans/{scan}/").status_code == 404
    assert api(operator).get(f"/api/v1/hospitals/st-anne/scans/{scan}/").status_code == 404
