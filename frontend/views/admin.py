"""Hospital admin pages: members and invitations, hospital settings (the audit log: frontend/views/audit.py).

Plain HTML forms posting back to the page (they work without JavaScript); each POST calls one
hospitals service and redirects, so a reload never repeats a change.
"""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from frontend.forms import InviteForm
from frontend.views.base import ADMIN, hospital_page, render_page, replaced_sentence, report_invitation_mail
from hospitals import services
from hospitals.access import access_invitation, access_member
from hospitals.errors import DomainError
from hospitals.models import AIResultVisibility, Invitation, Membership, Patient, Role, time_zone_names

MEMBERS_PAGE_SIZE = 50
# The members list's email filter, per hospital, is kept in the session and never put in an address:
# what is typed is part of a member's address, often a patient's, and access logs, proxies and the
# browser's history keep addresses (the role, not personal, stays in the query string).
EMAIL_FILTER_SESSION = "members_email_filter"

# An invitation refused because of one value is shown beside that field; the others above the form.
INVITE_REFUSAL_FIELDS = {
    "already_member": "email",
    "invalid_email": "email",
    "operator_account": "email",
    "invalid_role": "role",
    "name_required": "full_name",
    "invalid_date_of_birth": "date_of_birth",
    "mrn_mismatch": "medical_record_number",
    "duplicate_mrn": "medical_record_number",
}


@hospital_page(roles=ADMIN)
def members(request, membership):
    hospital = membership.hospital
    if request.method == "POST" and "filter" in request.POST:
        return _filter_members(request, hospital)
    form = InviteForm(request.POST if request.method == "POST" else None, initial={"role": Role.DOCTOR})
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["role"] == Role.PATIENT:
                invitation, _token = services.invite_patient(
                    hospital=hospital, email=data["email"], full_name=data["full_name"],
                    date_of_birth=data["date_of_birth"], medical_record_number=data["medical_record_number"],
                    actor=request.user, request=request,
                )
            else:
                invitation, _token = services.invite_member(
                    hospital=hospital, email=data["email"], role=data["role"], actor=request.user, request=request,
                )
        except DomainError as refused:
            form.add_error(INVITE_REFUSAL_FIELDS.get(refused.code), refused.detail)
        else:
            sent = f"Invitation sent to {invitation.email}."
            if invitation.replaced_sent_at is not None:
                sent += f" {replaced_sentence(invitation)}"
            report_invitation_mail(request, invitation, sent)
            return redirect("frontend:members", hospital.slug)
    listing = _member_filters(request, hospital, request.GET.get("role", ""))
    members = Membership.objects.filter(hospital=hospital).select_related("user").order_by("role", "user__email")
    if listing["role"]:
        members = members.filter(role=listing["role"])
    if listing["email"]:
        members = members.filter(user__email__icontains=listing["email"])
    page = Paginator(members, MEMBERS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "members": page.object_list,
        "page": page,
        "listing": listing,
        # The role and page travel with each row's form, so a change brings the admin back to the same rows
        # (the email filter stays in the session).
        "query": urlencode({"role": listing["role"]}) if listing["role"] else "",
        "here": urlencode({**({"role": listing["role"]} if listing["role"] else {}), "page": page.number}),
        "invitations": Invitation.objects.filter(hospital=hospital, accepted_at__isnull=True),
        "roles": Role.choices,
        "invitation_ttl_hours": settings.INVITATION_TTL_HOURS,
    }
    # A refused invitation is shown again with what the admin typed, instead of a redirect that loses it.
    status = 400 if form.is_bound else 200
    return render_page(request, "frontend/admin/members.html", context, membership=membership, status=status)


def _member_filters(request, hospital, role: str) -> dict:
    email = request.session.get(EMAIL_FILTER_SESSION, {}).get(str(hospital.pk), "")
    return {"role": role if role in Role.values else "", "email": email}


def _members_url(hospital, **kept) -> str:
    url = reverse("frontend:members", args=[hospital.slug])
    kept = {key: value for key, value in kept.items() if value}
    return f"{url}?{urlencode(kept)}" if kept else url


def _filter_members(request, hospital):
    """The filter form, posted: the email part goes to the session, the role to the address."""
    showing_everyone = request.POST["filter"] == "everyone"
    email = "" if showing_everyone else request.POST.get("email", "").strip()[:254]
    if "\x00" in email:
        # Kept in the session, it would fail every later showing of the page, the reset form with it.
        messages.error(request, "An email filter cannot contain a NUL character.")
        return redirect(_members_url(hospital))
    emails = {**request.session.get(EMAIL_FILTER_SESSION, {}), str(hospital.pk): email}
    request.session[EMAIL_FILTER_SESSION] = {key: value for key, value in emails.items() if value}
    role = "" if showing_everyone else request.POST.get("role", "")
    return redirect(_members_url(hospital, role=role if role in Role.values else ""))


def _back_to_members(hospital, posted):
    """The members page with the role and page the admin was looking at; only those keys, so no form
    field can turn this redirect into one to another site."""
    listing = QueryDict(posted.get("listing", ""))
    role = listing.get("role", "")
    kept = {"role": role} if role in Role.values else {}
    if listing.get("page", "").isdigit():
        kept["page"] = listing["page"]
    return redirect(_members_url(hospital, **kept))


@require_POST
@hospital_page(roles=ADMIN)
def member_role(request, membership, member_id):
    hospital = membership.hospital
    member = access_member(request.user, hospital, member_id, membership=membership)
    had_record = Patient.objects.filter(hospital=hospital, user=member.user).exists()
    try:
        services.change_role(
            hospital=hospital, membership=member, role=request.POST.get("role", ""), actor=request.user, request=request
        )
    except DomainError as refused:
        messages.error(request, refused.detail)
    else:
        messages.success(request, f"{member.user.email} is now {member.get_role_display().lower()}.")
        if member.role == Role.PATIENT and not had_record:
            messages.info(request, f"{member.user.email} has a new patient record, named from their account; "
                                   "a doctor or admin can correct the name on the patient record page.")
        # An admin who gave up the role can no longer open this page: send them to their new start page.
        if member.pk == membership.pk and member.role != Role.ADMIN:
            messages.info(request, f"You are no longer an admin of {hospital.name}; another admin can make you one again.")
            return redirect("frontend:hospital-home", hospital.slug)
    return _back_to_members(hospital, request.POST)


@require_POST
@hospital_page(roles=ADMIN)
def member_remove(request, membership, member_id):
    hospital = membership.hospital
    member = access_member(request.user, hospital, member_id, membership=membership)
    # Asked before the removal: a deleted membership's pk is None.
    removing_self = member.pk == membership.pk
    try:
        services.remove_member(hospital=hospital, membership=member, actor=request.user, request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
        return _back_to_members(hospital, request.POST)
    messages.success(request, f"{member.user.email} is no longer a member of {hospital.name}.")
    # An admin who removed themselves can no longer open this hospital's pages.
    if removing_self:
        return redirect("frontend:home")
    return _back_to_members(hospital, request.POST)


@require_POST
@hospital_page(roles=ADMIN)
def invitation_revoke(request, membership, invitation_id):
    hospital = membership.hospital
    invitation = access_invitation(request.user, hospital, invitation_id, membership=membership)
    try:
        services.revoke_invitation(invitation=invitation, actor=request.user, request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
    else:
        messages.success(request, f"The invitation to {invitation.email} no longer works.")
    return _back_to_members(hospital, request.POST)


# Each setting's value as the page showed it travels back with the form under this prefix.
SHOWN_SETTING_PREFIX = "shown_"


def _settings_as_posted(values: dict) -> dict[str, str]:
    """Settings as the form posts them (the checkbox "on" or nothing), to compare a submission with what
    its page showed."""
    return {**{name: str(values[name] or "") for name in services.SETTINGS_FIELDS},
            "federation_opt_in": "on" if values["federation_opt_in"] else ""}


@hospital_page(roles=ADMIN)
def hospital_settings(request, membership):
    """The hospital's settings. A refused value is shown again as submitted, its sentence beside its
    field, and nothing is saved; a saved form redirects, so a reload never repeats it."""
    hospital = membership.hospital
    values = {name: getattr(hospital, name) for name in services.SETTINGS_FIELDS}
    shown = _settings_as_posted(values)
    errors, refused = {}, ""
    if request.method == "POST":
        posted = _settings_as_posted({
            "patients_see_ai_results": request.POST.get("patients_see_ai_results", ""),
            "federation_opt_in": request.POST.get("federation_opt_in") == "on",
            "emergency_phone": request.POST.get("emergency_phone", "").strip(),
            "time_zone": request.POST.get("time_zone", "").strip(),
        })
        values = {**posted, "federation_opt_in": posted["federation_opt_in"] == "on"}
        was_shown = {name: request.POST.get(SHOWN_SETTING_PREFIX + name) for name in posted}
        errors = services.settings_refusals(hospital, **values)
        if values["patients_see_ai_results"] not in AIResultVisibility.values:
            errors["patients_see_ai_results"] = "Choose when patients see AI results."
        # The form posts every setting, but only those the admin changed on it are saved: another admin's
        # change since the page was shown (here, or opting in on the Federation page) stands. A form
        # without what it showed (an older page) saves everything, as before.
        changes = {name: values[name] for name in posted
                   if was_shown[name] is None or posted[name] != was_shown[name]}
        shown = {name: shown[name] if was_shown[name] is None else was_shown[name] for name in shown}
        if not errors:
            try:
                services.update_hospital_settings(hospital=hospital, actor=request.user, request=request, **changes)
            except DomainError as refusal:
                refused = refusal.detail
            else:
                messages.success(request, "Settings saved.")
                return redirect("frontend:settings", hospital.slug)
    context = {
        "visibility_choices": AIResultVisibility.choices,
        "time_zones": time_zone_names(),
        "default_time_zone": settings.TIME_ZONE,
        "values": values,
        "shown": {SHOWN_SETTING_PREFIX + name: value for name, value in shown.items()},
        "errors": errors,
        "refused": refused,
    }
    status = 400 if errors or refused else 200
    return render_page(request, "frontend/admin/settings.html", context, membership=membership, status=status)
