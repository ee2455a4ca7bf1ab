"""The hospital admin's audit log: who read or changed what, as a page with filters and as a CSV file.

Ids and PHI-free details only: staff by name, a patient by their record's id, never a patient's name or
record number; a scan or record is linked to its page while the hospital still holds it.
"""

import re
import uuid

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from diagnostics.models import Scan
from frontend.forms import AuditFilterForm
from frontend.views.base import ADMIN, hospital_page, render_page
from hospitals.audit import (
    actor_names, audit_actions, audit_csv_lines, audit_trail, note_reader, patient_accounts, patient_actors,
    record_audit,
)
from hospitals.models import AuditEvent, Membership, Patient

AUDIT_PAGE_SIZE = 50

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
    "invitation.replace": "Invitation replaced",
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
    "model.promote": "Model put in service",
    "model.rollback": "Model rolled back",
}
OBJECT_WORDS = {
    "hospital": "Hospital", "membership": "Member", "invitation": "Invitation", "patient": "Patient record",
    "scan": "Scan", "federatedrun": "Federated run", "nodeenrolment": "Federation node", "modelversion": "Model version",
}


def _audit_rows(hospital, events):
    people = actor_names(events)
    patients = patient_actors(hospital, events)
    existing = _existing_objects(hospital, events)
    note_of = note_reader(hospital)
    member_names = _member_names(hospital, [e.object_id for e in events if e.object_type == "membership"])
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
            object_id = member_names.get(object_id, object_id)
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
            "note": note_of(event),
        })
    return rows


REMOVAL_ACCOUNT = re.compile(r"\baccount (\d+)\b")


def _member_names(hospital, member_ids) -> dict:
    """How each membership is named, by its id: staff by their email, as on the members page; a patient
    by their record, as everywhere in the audit log (their email is a patient detail). Only this
    hospital's memberships are looked up; a gone one by the account its removal event names."""
    member_ids = {member_id for member_id in member_ids if member_id.isdigit()}
    accounts = {str(pk): user_id for pk, user_id in
                Membership.objects.filter(hospital=hospital, pk__in=member_ids).values_list("pk", "user_id")}
    accounts.update(_removed_member_accounts(hospital, member_ids - set(accounts)))
    emails = dict(get_user_model().objects.filter(pk__in=accounts.values()).values_list("pk", "email"))
    patients = patient_accounts(hospital, set(accounts.values()))
    names = {}
    for member_id, account in accounts.items():
        if account in patients:
            record = patients[account]
            names[member_id] = f"patient {str(record)[:8]}…" if record else f"patient (account {account})"
        elif account in emails:
            names[member_id] = emails[account]
    return names


def _removed_member_accounts(hospital, member_ids) -> dict:
    """The account each gone membership belonged to, by its id: its removal event names it
    (hospitals.services.remove_member), so the member stays named on every event about them."""
    if not member_ids:
        return {}
    accounts = {}
    for object_id, detail in AuditEvent.objects.filter(
            hospital_id=hospital.pk, action="membership.remove", object_id__in=member_ids).values_list(
            "object_id", "detail"):
        named = REMOVAL_ACCOUNT.search(detail)
        if named:
            accounts[object_id] = int(named.group(1))
    return accounts


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
    response = StreamingHttpResponse(audit_csv_lines(hospital, events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{hospital.slug}-{timezone.localdate():%Y%m%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response
