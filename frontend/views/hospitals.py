"""The platform operator's hospitals page: every tenant, and onboarding a new one with its first admin.

The operator sees counts of members, never a patient, a scan or a name of a member (DESIGN §2).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from frontend.forms import NewHospitalForm
from frontend.views.base import operator_page, render_page, report_invitation_mail
from hospitals.errors import DomainError
from hospitals.models import Hospital
from hospitals.services import hospitals_for_operator, invite_first_admin, open_hospital, open_hospital_problems

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
    if form.is_bound:
        # Every field's refusal at once, the form's own and the service's, not one per submit.
        data = {field: form.data.get(field, "") for field in ("slug", "name", "admin_email")}
        for problem in open_hospital_problems(**data):
            if OPEN_REFUSAL_FIELDS[problem.code] not in form.errors:
                form.add_error(OPEN_REFUSAL_FIELDS[problem.code], problem.detail)
    if form.is_valid():
        try:
            hospital, invitation, _token = open_hospital(actor=request.user, request=request, **form.cleaned_data)
        except DomainError as refused:
            form.add_error(OPEN_REFUSAL_FIELDS.get(refused.code), refused.detail)
        else:
            if invitation.mail_sent is False:
                messages.success(request, f"{hospital.name} is open at /h/{hospital.slug}/.")
            report_invitation_mail(request, invitation, f"{hospital.name} is open at /h/{hospital.slug}/; its first "
                                                        f"admin, {invitation.email}, has been sent an invitation.")
            return redirect("frontend:operator-hospitals")
    context = {"form": form, "hospitals": hospitals_for_operator(), "now": timezone.now()}
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
        report_invitation_mail(request, invitation, f"{invitation.email} has been sent a new invitation to be "
                                                    f"{hospital.name}'s first admin; the link in any earlier one no "
                                                    "longer works.")
    return redirect("frontend:operator-hospitals")
