"""Hospital admin pages: members and invitations, hospital settings, the audit log.

Plain HTML forms posting back to the page (they work without JavaScript); each POST calls one
hospitals service and redirects, so a reload never repeats a change.
"""

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from diagnostics.models import Scan
from frontend.forms import AuditFilterForm, InviteForm
from frontend.views.base import hospital_page, render_page
from hospitals import services
from hospitals.access import access_invitation, access_member
from hospitals.audit import actor_names, audit_actions, audit_csv_lines, audit_trail, patient_actors, record_audit
from hospitals.errors import DomainError
from hospitals.models import AIResultVisibility, AuditEvent, Invitation, Membership, Patient, Role

ADMIN = (Role.ADMIN,)
AUDIT_PAGE_SIZE = 50
MEMBERS_PAGE_SIZE = 50

# The audit log in words. An action missing here (a new one) is shown by its code rather than hidden.
ACTION_WORDS = {
    "hospital.create": "Hospital created",
    "hospital.settings_update": "Settings changed",
    "hospital.key_rewrap": "Data key re-wrapped",
    "hospital.delete": "Hospital deleted",
    "membership.create": "Member added",
    "membership.role_change": "Role changed",
    "membership.remove": "Member removed",
    "invitation.create": "Invitation sent",
    "invitation.revoke": "Invitation revoked",
    "invitation.accept": "Invitation accepted",
    "patient.create": "Patient record created",
    "patient.update": "Patient record corrected",
    "patient.read": "Patient record read",
    "patient.list": "Patient list read",
    "patient.invite": "Patient record read to invite the patient",
    "patient.find_by_mrn": "Patient looked up by record number",
    "scan.upload": "Scan uploaded",
    "scan.diagnose": "Scan analysed",
    "scan.requeue": "Scan queued again",
    "scan.review": "Scan reviewed",
    "scan.delete": "Scan removed",
    "scan.read": "Scan read",
    "scan.view": "Scan opened",
    "scan.watch": "Scan followed live",
    "scan.image": "Scan image shown",
    "scan.mask": "Outline shown",
    "scan.heatmap": "Heatmap shown",
    "audit.export": "Audit log exported",
    "federation.run_start": "Federated run started",
    "federation.run_stop": "Federated run stopped",
    "federation.node_enrol": "Federation node enrolled",
    "federation.model_promote": "Federated model promoted",
}
OBJECT_WORDS = {
    "hospital": "Hospital", "membership": "Member", "invitation": "Invitation", "patient": "Patient record",
    "scan": "Scan", "federatedrun": "Federated run", "nodeenrolment": "Federation node",
}


@hospital_page(roles=ADMIN)
def members(request, membership):
    hospital = membership.hospital
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
            form.add_error(None, refused.detail)
        else:
            sent = f"Invitation sent to {invitation.email}."
            if invitation.replaced_sent_at is not None:
                earlier = date_format(timezone.localtime(invitation.replaced_sent_at), "j M Y, H:i T")
                sent += (f" It replaces the invitation sent on {earlier}: "
                         "the link in that earlier email no longer works.")
            messages.success(request, sent)
            return redirect("frontend:members", hospital.slug)
    listing = _member_filters(request.GET)
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
        # The filters and page travel with each row's form, so a change brings the admin back to the same rows.
        "query": urlencode({key: value for key, value in listing.items() if value}),
        "here": urlencode({**{key: value for key, value in listing.items() if value}, "page": page.number}),
        "invitations": Invitation.objects.filter(hospital=hospital, accepted_at__isnull=True),
        "roles": Role.choices,
        "invitation_ttl_hours": settings.INVITATION_TTL_HOURS,
    }
    # A refused invitation is shown again with what the admin typed, instead of a redirect that loses it.
    status = 400 if form.is_bound else 200
    return render_page(request, "frontend/admin/members.html", context, membership=membership, status=status)


def _member_filters(params) -> dict:
    role = params.get("role", "")
    return {"role": role if role in Role.values else "", "email": params.get("email", "").strip()[:254]}


def _back_to_members(hospital, posted):
    """The members page with the filters and page the admin was looking at; only those keys, so no form
    field can turn this redirect into one to another site."""
    listing = QueryDict(posted.get("listing", ""))
    kept = {key: value for key, value in _member_filters(listing).items() if value}
    if listing.get("page", "").isdigit():
        kept["page"] = listing["page"]
    url = reverse("frontend:members", args=[hospital.slug])
    return redirect(f"{url}?{urlencode(kept)}" if kept else url)


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
    try:
        services.remove_member(hospital=hospital, membership=member, actor=request.user, request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
        return _back_to_members(hospital, request.POST)
    messages.success(request, f"{member.user.email} is no longer a member of {hospital.name}.")
    # An admin who removed themselves can no longer open this hospital's pages.
    if member.pk == membership.pk:
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


@hospital_page(roles=ADMIN)
def hospital_settings(request, membership):
    """The hospital's settings. A refused value is shown again as submitted, its sentence beside its
    field, and nothing is saved; a saved form redirects, so a reload never repeats it."""
    hospital = membership.hospital
    values = {name: getattr(hospital, name) for name in services.SETTINGS_FIELDS}
    errors, refused = {}, ""
    if request.method == "POST":
        values = {
            "patients_see_ai_results": request.POST.get("patients_see_ai_results", ""),
            "federation_opt_in": request.POST.get("federation_opt_in") == "on",
            "emergency_phone": request.POST.get("emergency_phone", "").strip(),
        }
        errors = services.settings_refusals(hospital, **values)
        if values["patients_see_ai_results"] not in AIResultVisibility.values:
            errors["patients_see_ai_results"] = "Choose when patients see AI results."
        if not errors:
            try:
                services.update_hospital_settings(hospital=hospital, actor=request.user, request=request, **values)
            except DomainError as refusal:
                refused = refusal.detail
            else:
                messages.success(request, "Settings saved.")
                return redirect("frontend:settings", hospital.slug)
    context = {
        "visibility_choices": AIResultVisibility.choices,
        "values": values,
        "errors": errors,
        "refused": refused,
    }
    status = 400 if errors or refused else 200
    return render_page(request, "frontend/admin/settings.html", context, membership=membership, status=status)


def _audit_rows(hospital, events):
    people = actor_names(events)
    patients = patient_actors(hospital, events)
    existing = _existing_objects(hospital, events)
    # A member is named by their email, as on the members page; only this hospital's memberships are looked up.
    member_ids = [e.object_id for e in events if e.object_type == "membership" and e.object_id.isdigit()]
    member_emails = {
        str(pk): email for pk, email in
        Membership.objects.filter(hospital=hospital, pk__in=member_ids).values_list("pk", "user__email")
    }
    rows = []
    for event in events:
        actor_url = ""
        if event.actor_id is None:
            actor = "system"
        elif event.actor_id in patients:
            # A patient is named by their record, not by name or email (patient details).
            record = patients[event.actor_id]
            actor = f"Patient {str(record)[:8]}…" if record else f"Patient (account {event.actor_id})"
            actor_url = reverse("frontend:patient", args=[hospital.slug, record]) if record else ""
        else:
            actor = people.get(event.actor_id) or event.actor_label or f"account {event.actor_id}"
        object_id = event.object_id
        if event.object_type == "membership":
            object_id = member_emails.get(object_id, object_id)
        linked = event.object_type in OBJECT_PAGES
        rows.append({
            "at": event.at,
            "actor": actor,
            "actor_url": actor_url,
            "action": ACTION_WORDS.get(event.action, event.action),
            "object": OBJECT_WORDS.get(event.object_type, event.object_type),
            "object_id": object_id,
            "object_url": _object_url(hospital, event.object_type, object_id, existing),
            "object_removed": linked and bool(object_id) and object_id not in existing[event.object_type],
            "detail": event.detail,
        })
    return rows


# The objects the audit log links to their page, by the model that holds them.
OBJECT_PAGES = {"scan": ("frontend:scan", Scan), "patient": ("frontend:patient", Patient)}


def _existing_objects(hospital, events) -> dict:
    """The ids of the events' scans and patient records that this hospital still holds, by object type.

    One query per type for the whole page; an id that is not a UUID names nothing that exists.
    """
    existing = {}
    for object_type, (_page, model) in OBJECT_PAGES.items():
        ids = set()
        for event in events:
            if event.object_type == object_type:
                try:
                    ids.add(uuid.UUID(event.object_id))
                except ValueError:
                    pass
        held = model.objects.filter(hospital=hospital, pk__in=ids).values_list("pk", flat=True) if ids else []
        existing[object_type] = {str(pk) for pk in held}
    return existing


def _object_url(hospital, object_type: str, object_id: str, existing: dict) -> str:
    """The page of the scan or patient record the event is about, while it exists: a removed one's page
    answers "not found"."""
    if object_type not in OBJECT_PAGES or object_id not in existing[object_type]:
        return ""
    return reverse(OBJECT_PAGES[object_type][0], args=[hospital.slug, object_id])


@hospital_page(roles=ADMIN)
def audit(request, membership):
    """Who read or changed what, newest first: ids and the PHI-free detail; staff by name, a patient by
    their record's id, never a patient's name or record number."""
    hospital = membership.hospital
    filters = AuditFilterForm(request.GET)
    valid = filters.is_valid()
    events = audit_trail(hospital, **filters.trail_filters()) if valid else AuditEvent.objects.none()
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    chosen = {key: request.GET.get(key, "") for key in ("action", "since", "until") if request.GET.get(key)}
    context = {
        "rows": _audit_rows(hospital, list(page.object_list)),
        "page": page,
        "filters": filters,
        "filtered": bool(chosen),
        "action": request.GET.get("action", ""),
        "actions": [(code, ACTION_WORDS.get(code, code)) for code in audit_actions(hospital)],
        "query": urlencode(chosen),
        "export_url": reverse("frontend:audit-export", args=[hospital.slug]) + (f"?{urlencode(chosen)}" if chosen else ""),
    }
    return render_page(request, "frontend/admin/audit.html", context, membership=membership,
                       status=200 if valid else 400)


@hospital_page(roles=ADMIN)
def audit_export(request, membership):
    """The audit log as CSV, with the page's filters, for whoever audits the hospital; the export is audited."""
    hospital = membership.hospital
    filters = AuditFilterForm(request.GET)
    if not filters.is_valid():
        return HttpResponse(" ".join(str(e) for errors in filters.errors.values() for e in errors),
                            status=400, content_type="text/plain; charset=utf-8")
    # The file holds the events up to the moment it was asked for; those written while it streams (its
    # own record among them) are in the next export.
    events = audit_trail(hospital, **filters.trail_filters()).filter(at__lte=timezone.now())
    described = ", ".join(f"{key} {value}" for key, value in request.GET.items() if key in filters.fields and value)
    record_audit(actor=request.user, hospital=hospital, action="audit.export", object_type="hospital",
                 object_id=hospital.pk, request=request,
                 detail=(f"{events.count()} events" + (f"; {described}" if described else ""))[:200])
    response = StreamingHttpResponse(audit_csv_lines(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{hospital.slug}-{timezone.localdate():%Y%m%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response
