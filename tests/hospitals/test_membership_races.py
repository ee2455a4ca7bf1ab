"""A member or an invitation changed by someone else between an admin's page and their click.

Two admins act on the same row, or an invitee accepts while the admin revokes: the second write must
see what the first did (under a lock), and answer with a sentence instead of a 500 or a false success.
"""

import pytest

from hospitals import services
from hospitals.access import access_invitation, access_member
from hospitals.errors import DomainError
from hospitals.models import AuditEvent, Invitation, Membership, Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def own(user, hospital):
    return Membership.objects.get(user=user, hospital=hospital)


def test_an_invitation_accepted_while_the_admin_revokes_it_is_not_reported_revoked(world):
    """The admin fetched the invitation while it was pending; the invitee accepted before the revoke ran.

    Before, the revoke deleted the accepted invitation, logged "invitation.revoke" and told the admin the
    link no longer works, while the invitee stayed a member.
    """
    invitation, token = services.invite_member(
        hospital=world.a, email="new.doctor@st-anne.example", role=Role.DOCTOR, actor=world.admin_a
    )
    seen_pending = access_invitation(world.admin_a, world.a, invitation.pk, membership=own(world.admin_a, world.a))
    services.accept_invitation(token=token, password=PASSWORD)

    with pytest.raises(DomainError) as refused:
        services.revoke_invitation(invitation=seen_pending, actor=world.admin_a)

    assert refused.value.code == "invitation_used"
    assert Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="invitation.revoke").exists()


def test_an_invitation_revoked_by_another_admin_meanwhile_is_not_found(world):
    invitation, _token = services.invite_member(
        hospital=world.a, email="new.doctor@st-anne.example", role=Role.DOCTOR, actor=world.admin_a
    )
    seen = access_invitation(world.admin_a, world.a, invitation.pk, membership=own(world.admin_a, world.a))
    services.revoke_invitation(invitation=Invitation.objects.get(pk=invitation.pk), actor=world.admin_a)

    with pytest.raises(DomainError) as refused:
        services.revoke_invitation(invitation=seen, actor=world.admin_a)

    assert refused.value.status == 404
    assert AuditEvent.objects.filter(action="invitation.revoke").count() == 1


@pytest.mark.parametrize("second", ["remove", "change_role"])
def test_a_member_removed_by_another_admin_meanwhile_is_not_found(world, second):
    """Two admins remove the same doctor at once: the second finds no member (404), not a server error."""
    admin = own(world.admin_a, world.a)
    seen = access_member(world.admin_a, world.a, own(world.doctor_a, world.a).pk, membership=admin)
    services.remove_member(hospital=world.a, membership=own(world.doctor_a, world.a), actor=world.admin_a)

    with pytest.raises(DomainError) as refused:
        if second == "remove":
            services.remove_member(hospital=world.a, membership=seen, actor=world.admin_a)
        else:
            services.change_role(hospital=world.a, membership=seen, role=Role.ADMIN, actor=world.admin_a)

    assert refused.value.code == "invalid_member" and refused.value.status == 404
    assert AuditEvent.objects.filter(action="membership.remove").count() == 1
    assert not Membership.objects.filter(user=world.doctor_a, hospital=world.a).exists()
