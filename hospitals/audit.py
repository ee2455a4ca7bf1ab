"""The audit trail: one append-only row per read or change of PHI or a scan."""

import csv
import io
import ipaddress
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model

from hospitals import crypto
from hospitals.keys import hospital_data_key
from hospitals.models import AuditEvent, Hospital, Membership, Patient, Role


def client_address(request) -> str | None:
    """The client's IP address, for the audit trail and the sign-in brake.

    REMOTE_ADDR, unless the site runs behind TRUSTED_PROXY_COUNT reverse proxies: then every request
    comes from the nearest proxy, and the client is the entry that many places from the right of
    X-Forwarded-For (each proxy appends the address it saw). Entries further left are whatever the
    client sent, so they are never read.
    """
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
        address = forwarded[-proxies] if len(forwarded) >= proxies else ""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        # Some servers put a socket path or a name here; an audit write must never fail over it.
        return None


def record_audit(
    *, actor, hospital, action: str, obj=None, object_type: str = "", object_id="", request=None, detail: str = "",
    note: str = "",
):
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    authenticated, label = _actor_identity(actor)
    # A patient's email is a patient detail, and this row can never be erased: a patient is kept by
    # account id only, and named by their record when the trail is read (patient_actors).
    if label and hospital is not None and Membership.objects.filter(
            user_id=actor.pk, hospital_id=hospital.id, role=Role.PATIENT).exists():
        label = ""
    if note and hospital is None:
        raise ValueError("a note is sealed under a hospital's key; this event has no hospital")
    return AuditEvent.objects.create(
        hospital_id=getattr(hospital, "id", None),
        actor_id=actor.pk if authenticated else None,
        actor_label=label,
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        client_address=client_address(request),
        detail=detail,
        sealed_note=seal_note(hospital_data_key(hospital), hospital.id, action, object_type, object_id, note)
        if note else None,
    )


def _actor_identity(actor) -> tuple[bool, str]:
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return authenticated, actor.get_username() if authenticated else ""


def record_audit_everywhere(*, actor, action: str, obj, request=None, detail: str = "") -> None:
    """The same event in the platform's own log (no hospital) and in every hospital's, written as
    record_audit writes each, in one insert: for what concerns every tenant alike (the model that
    diagnoses all their scans), inside a transaction that may hold row locks."""
    authenticated, label = _actor_identity(actor)
    patient_at = set(Membership.objects.filter(user_id=actor.pk, role=Role.PATIENT)
                     .values_list("hospital_id", flat=True)) if label else set()
    address = client_address(request)
    AuditEvent.objects.bulk_create([
        AuditEvent(hospital_id=hospital_id, actor_id=actor.pk if authenticated else None,
                   actor_label="" if hospital_id in patient_at else label, action=action,
                   object_type=obj._meta.model_name, object_id=str(obj.pk), client_address=address, detail=detail)
        for hospital_id in [None, *Hospital.objects.order_by("pk").values_list("pk", flat=True)]
    ], batch_size=500)


def _note_associated_data(hospital_id, action: str, object_type: str, object_id) -> bytes:
    # Binds a note to its hospital and to what the event is about: pasted into another event's row it
    # fails to open.
    return crypto.blob_associated_data(str(hospital_id), "audit-note", f"{action}:{object_type}:{object_id or ''}")


def seal_note(data_key: bytes, hospital_id, action: str, object_type: str, object_id, note: str) -> bytes:
    return crypto.encrypt_blob(data_key, note.encode(), _note_associated_data(hospital_id, action, object_type,
                                                                               object_id))


def note_reader(hospital):
    """A function giving an event's note in plain text ("" for none), the hospital's key unwrapped once.

    A note that does not open (a row altered by hand) reads as a sentence saying so, not as an error
    that would hide the rest of the trail.
    """
    data_key = None

    def read(event: AuditEvent) -> str:
        nonlocal data_key
        if event.sealed_note is None:
            return ""
        if data_key is None:
            data_key = hospital_data_key(hospital)
        aad = _note_associated_data(hospital.id, event.action, event.object_type, event.object_id)
        try:
            return crypto.decrypt_blob(data_key, bytes(event.sealed_note), aad).decode()
        except crypto.DecryptionError:
            return "(this note cannot be opened: it was altered)"

    return read


def audit_trail(hospital, *, action: str = "", since=None, until=None):
    """The hospital's own events, newest first; filters narrow them (``since`` included, ``until`` not),
    never reach another hospital's."""
    events = AuditEvent.objects.filter(hospital_id=hospital.pk)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    return events


AUDIT_CSV_COLUMNS = ("time_utc", "actor_id", "actor", "action", "object_type", "object_id", "client_address",
                     "detail", "note")
# A spreadsheet runs a cell that starts with one of these as a formula; a reason typed into a form
# must not become one in whoever opens the export.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def actor_label_for_export(event, patients: dict) -> str:
    """Who acted, for a file that leaves the hospital: staff by sign-in email, a patient by their record.

    Events written before patients' emails were kept out of the trail still hold one; it is not shown.
    """
    if event.actor_id in patients:
        record = patients[event.actor_id]
        return f"patient {record}" if record else "patient"
    return event.actor_label


# Events read per query while exporting: each batch names its patient actors in one more query.
EXPORT_BATCH = 2000


def audit_csv_lines(hospital, events):
    """The events as CSV text, a header line first, one line at a time (an export can be long)."""
    note_of = note_reader(hospital)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(AUDIT_CSV_COLUMNS)
    batch = []
    for event in events.iterator(chunk_size=EXPORT_BATCH):
        batch.append(event)
        if len(batch) == EXPORT_BATCH:
            yield from _csv_batch(hospital, batch, line, note_of)
            batch = []
    yield from _csv_batch(hospital, batch, line, note_of)


def _csv_batch(hospital, events, line, note_of):
    patients = patient_actors(hospital, events)
    for event in events:
        yield line([event.at.astimezone(dt_timezone.utc).isoformat(timespec="seconds"), event.actor_id or "",
                    _cell(actor_label_for_export(event, patients)), event.action, event.object_type,
                    _cell(event.object_id), event.client_address or "", _cell(event.detail), _cell(note_of(event))])


def audit_actions(hospital) -> list[str]:
    """The actions that occur in the hospital's trail, for a filter that offers only what can match."""
    return list(audit_trail(hospital).order_by("action").values_list("action", flat=True).distinct())


def actor_names(events) -> dict:
    """Who each event's actor is now (full name, else email); the trail keeps only ids and the username.

    An account deleted since is absent here, and the event's own actor_label then names it.
    """
    ids = {event.actor_id for event in events if event.actor_id is not None}
    users = get_user_model().objects.filter(pk__in=ids)
    from hospitals.accounts import display_name  # accounts imports the brake, which imports this module

    return {user.pk: display_name(user) for user in users}


def patient_actors(hospital, events) -> dict:
    """The events' actors who are this hospital's patients, each with their patient record's id (or None).

    A patient is named on the audit page by their record, never by their name or email: those are
    patient details. A patient is an account with the patient role here, or, once its membership is
    gone, an account the hospital still holds a patient record for; staff who were once patients
    (a record, but a staff role now) are staff.
    """
    return patient_accounts(hospital, {event.actor_id for event in events if event.actor_id is not None})


def member_removal_detail(role: str, account_id) -> str:
    """What a membership.remove event keeps of the member whose row goes: their role and account id."""
    return f"{role}, account {account_id}"


def patient_accounts(hospital, ids) -> dict:
    """Which of the accounts `ids` are this hospital's patients (see patient_actors), each with their
    patient record's id (or None)."""
    if not ids:
        return {}
    roles = dict(Membership.objects.filter(hospital_id=hospital.pk, user_id__in=ids).values_list("user_id", "role"))
    records = dict(Patient.objects.filter(hospital_id=hospital.pk, user_id__in=ids).values_list("user_id", "pk"))
    # A patient removed from the hospital who never had a record (invited without naming one) has neither a
    # role nor a record here any more; their removal's audit event still says they were a patient.
    unknown = {member_removal_detail(Role.PATIENT, actor_id): actor_id for actor_id in ids
               if actor_id not in roles and actor_id not in records}
    removed_patients = {unknown[detail] for detail in AuditEvent.objects.filter(
        hospital_id=hospital.pk, action="membership.remove", detail__in=list(unknown)).values_list("detail", flat=True)}
    return {
        actor_id: records.get(actor_id) for actor_id in ids
        if roles.get(actor_id) == Role.PATIENT or (actor_id not in roles and actor_id in records)
        or actor_id in removed_patients
    }
