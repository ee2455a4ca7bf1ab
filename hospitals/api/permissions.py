"""DRF permission classes per role. The hospital comes from the URL slug, through the access helpers.

Order of answers: anonymous -> 401, not a member of the hospital -> 404 (the same as a hospital that
does not exist), a member whose role may not do this -> 403. The resolved membership is left on the
view as `view.membership`, so a view never looks it up a second time.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from hospitals.access import ADMIN_ROLES, ALL_ROLES, STAFF_ROLES, access_membership


class HospitalRolePermission(BasePermission):
    read_roles = ALL_ROLES
    write_roles = ALL_ROLES
    slug_kwarg = "slug"

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        roles = self.read_roles if request.method in SAFE_METHODS else self.write_roles
        # Refused in DRF's own terms (the same answer through the exception handler): the browsable API
        # asks again for each form it could draw, and takes only DRF's refusals as "no form" there.
        try:
            view.membership = access_membership(request.user, view.kwargs[self.slug_kwarg], roles=roles)
        except PermissionDenied as refused:
            raise exceptions.PermissionDenied(*refused.args) from None
        except Http404 as missing:
            raise exceptions.NotFound(*missing.args) from None
        return True

    def refuses_some_roles(self, method: str) -> bool:
        """Whether a member may be answered 403 for ``method`` (the API schema documents it then)."""
        return set(self.read_roles if method in SAFE_METHODS else self.write_roles) != set(ALL_ROLES)


class IsHospitalMember(HospitalRolePermission):
    pass


class IsHospitalStaff(HospitalRolePermission):
    read_roles = write_roles = STAFF_ROLES


class IsHospitalAdmin(HospitalRolePermission):
    read_roles = write_roles = ADMIN_ROLES


class MembersReadAdminsWrite(HospitalRolePermission):
    read_roles = ALL_ROLES
    write_roles = ADMIN_ROLES


class MembersReadStaffWrite(HospitalRolePermission):
    read_roles = ALL_ROLES
    write_roles = STAFF_ROLES
