"""Where a signed-in person lands: their hospital, a chooser when they belong to several, or the
operator pages for the platform operator."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from frontend.views.base import hospital_page, render_page
from hospitals.models import Membership, Role


@login_required
def home(request):
    memberships = list(Membership.objects.filter(user=request.user).select_related("hospital"))
    if len(memberships) == 1:
        return redirect("frontend:hospital-home", memberships[0].hospital.slug)
    # The platform operator belongs to no hospital: their work is the federation across all of them.
    if not memberships and request.user.is_superuser:
        return redirect("frontend:operator")
    return render_page(request, "frontend/choose_hospital.html", {"choices": memberships})


# Each role starts where its daily work is; admins manage from the worklist's header links.
_START_PAGE = {Role.PATIENT: "frontend:scans", Role.DOCTOR: "frontend:worklist", Role.ADMIN: "frontend:worklist"}


@hospital_page()
def hospital_home(request, membership):
    return redirect(_START_PAGE[membership.role], membership.hospital.slug)
