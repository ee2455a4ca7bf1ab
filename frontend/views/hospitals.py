"""The platform operator's hospitals page: every tenant, and onboarding a new one with its first admin.

The operator sees counts of members, never a patient, a scan or a name of a member (DESIGN §2).
"""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from frontend.forms import NewHospitalForm
from frontend.views.base import operator_page, render_page
from hospitals.errors import DomainError
from hospitals.models import Hospital, Invitation, Role
from hospitals.services import invite_first_admin, open_hospital

# A refusal about one value is shown beside that field, marked invalid; the others above the form.
OPEN_REFUSAL_FIELDS = {
    "invalid_slug": "slug",
    "slug_taken": "slug",
    "invalid_name": "name",
    "name_taken": "name",
    "invalid_email": "admin_email",
    "operator_account": "admin_email",
}


@operator_page
def hospitals(request):
    form = NewHospitalForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            hospital, invitation, _token = open_hospital(actor=request.user, request=request, **form.cleaned_data)
        except DomainError as refused:
            form.add_error(OPEN_REFUSAL_FIELDS.get(refused.code), refused.detail)
        else:
            messages.success(request, f"{hospital.name} is open at /h/{hospital.slug}/; its first admin, "
                                      f"{invitation.email}, has been sent an invitation.")
            return redirect("frontend:operator-hospitals")
    listed = list(Hospital.objects.annotate(
        **{f"{role}_count": Count("memberships", filter=Q(memberships__role=role)) for role in Role.values},
        active_admin_count=Count("memberships", filter=Q(memberships__role=Role.ADMIN,
                                                         memberships__user__is_active=True)),
    ).order_by("name"))
    # Until a hospital has an admin who can sign in, the operator sees the invitation that should make one,
    # and can send it again: a lost mail, or an admin who left, must not leave a hospital nobody can manage.
    pending = {}
    for invitation in Invitation.objects.filter(hospital__in=[h for h in listed if not h.active_admin_count],
                                                role=Role.ADMIN, accepted_at__isnull=True).order_by("created_at"):
        pending[invitation.hospital_id] = invitation
    for hospital in listed:
        hospital.pending_admin = pending.get(hospital.pk)
    context = {"form": form, "hospitals": listed, "now": timezone.now()}
    return render_page(request, "frontend/operator_hospitals.html", context, status=400 if form.is_bound else 200)


@require_POST
@operator_page
def invite_admin(request, slug):
    hospital = get_object_or_404(Hospital, slug=slug)
    try:
        invitation, _token = invite_first_admin(hospital=hospital, email=request.POST.get("email", ""),
                                                actor=request.user, request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
    else:
        messages.success(request, f"{invitation.email} has been sent a new invitation to be {hospital.name}'s "
                                  "first admin; the link in any earlier one no longer works.")
    return redirect("frontend:operator-hospitals")
