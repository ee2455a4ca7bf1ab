"""The one way to fetch tenant data (DESIGN §2).

Every helper takes the user and the hospital explicitly. Someone outside the hospital gets the same
404 whether the object exists or not, so no URL can be used as an existence oracle. A member whose role
does not allow the action gets 403: they already know the hospital exists.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from hospitals.audit import record_audit
from hospitals.models import Invitation, Membership, Patient, Role

STAFF_ROLES = (Role.DOCTOR, Role.ADMIN)
ALL_ROLES = (Role.PATIENT, Role.DOCTOR, Role.ADMIN)
ADMIN_ROLES = (Role.ADMIN,)


def access_membership(user, hospital_slug: str, *, roles=None) -> Membership:
    """The user's membership of the hospital named in the URL; 404 when there is none."""
    if user is None or not user.is_authenticated:
        raise Http404("No such hospital")
    # The platform operator is a member of no hospital and never reads its data (DESIGN §2), even if a
    # membership row for that account were made somehow: every hospital answers "not found" to them.
    if user.is_superuser:
        raise Http404("No such hospital")
    membership = (
        Membership.objects.select_related("hospital").filter(user=user, hospital__slug=hospital_slug).first()
    )
    if membership is None:
        raise Http404("No such hospital")
    if roles is not None and membership.role not in roles:
        raise PermissionDenied(f"Your role ({membership.role}) does not allow this")
    return membership


def access_hospital(user, hospital_slug: str, *, roles=None):
    return access_membership(user, hospital_slug, roles=roles).hospital


def _require_own_membership(user, hospital, membership: Membership, roles=None) -> None:
    # A membership handed in by a caller must be this user's, in this hospital: a mix-up here would
    # otherwise let one hospital's role open another hospital's rows.
    if membership is None or membership.user_id != getattr(user, "pk", None) or membership.hospital_id != hospital.pk:
        raise Http404("No such hospital")
    if roles is not None and membership.role not in roles:
        raise PermissionDenied(f"Your role ({membership.role}) does not allow this")


def visible_patients(user, hospital, membership: Membership):
    """Patients of this hospital the member may see: all for staff, only their own record for a patient."""
    _require_own_membership(user, hospital, membership)
    patients = Patient.objects.filter(hospital=hospital)
    if membership.role in STAFF_ROLES:
        return patients
    return patients.filter(user=user)


def access_patient(user, hospital, patient_id, *, membership: Membership, request=None, action="patient.read"):
    try:
        patient = visible_patients(user, hospital, membership).get(pk=patient_id)
    except (Patient.DoesNotExist, ValidationError, ValueError, TypeError):
        # A malformed id is "not found" too, never a 500 or a 400 that tells it apart.
        raise Http404("No such patient") from None
    record_audit(actor=user, hospital=hospital, action=action, obj=patient, request=request)
    return patient


def _lookup(queryset, object_id, message: str):
    try:
        return queryset.get(pk=object_id)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404(message) from None


def access_member(user, hospital, membership_id, *, membership: Membership) -> Membership:
    """Another membership of this hospital, for its admin to manage."""
    _require_own_membership(user, hospital, membership, roles=ADMIN_ROLES)
    queryset = Membership.objects.select_related("user", "hospital").filter(hospital=hospital)
    return _lookup(queryset, membership_id, "No such member")


def access_invitation(user, hospital, invitation_id, *, membership: Membership) -> Invitation:
    """An invitation of this hospital, for its admin to inspect or revoke."""
    _require_own_membership(user, hospital, membership, roles=ADMIN_ROLES)
    return _lookup(Invitation.objects.filter(hospital=hospital), invitation_id, "No such invitation")
