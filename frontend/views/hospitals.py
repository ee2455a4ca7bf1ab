"""The platform operator's hospitals page: every tenant, and onboarding a new one with its first admin.

The operator sees counts of members, never a patient, a scan or a name of a member (DESIGN §2).
"""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import redirect

from frontend.forms import NewHospitalForm
from frontend.views.base import operator_page, render_page
from hospitals.errors import DomainError
from hospitals.models import Hospital, Role
from hospitals.services import open_hospital


@operator_page
def hospitals(request):
    form = NewHospitalForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            hospital, invitation, _token = open_hospital(actor=request.user, request=request, **form.cleaned_data)
        except DomainError as refused:
            form.add_error(None, refused.detail)
        else:
            messages.success(request, f"{hospital.name} is open at /h/{hospital.slug}/; its first admin, "
                                      f"{invitation.email}, has been sent an invitation.")
            return redirect("frontend:operator-hospitals")
    listed = Hospital.objects.annotate(
        **{f"{role}_count": Count("memberships", filter=Q(memberships__role=role)) for role in Role.values}
    ).order_by("name")
    context = {"form": form, "hospitals": listed}
    return render_page(request, "frontend/operator_hospitals.html", context, status=400 if form.is_bound else 200)
