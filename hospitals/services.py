"""Writes on tenants, one verb each. Each runs in a transaction and leaves an audit event.

Refusals a person can act on (the last admin, an expired invitation) are `DomainError`s with a code
and a sentence; the API passes them on as they are.
"""

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from hospitals import keys, storage
from hospitals.audit import member_removal_detail, record_audit
from hospitals.emails import account_by_email, email_key
from hospitals.errors import DomainError
from hospitals.keys import mrn_digest, new_wrapped_data_key
from hospitals.models import Hospital, Invitation, Membership, Patient, Role

log = logging.getLogger(__name__)

SETTINGS_FIELDS = ("patients_see_ai_results", "federation_opt_in", "emergency_phone", "time_zone")


HOSPITAL_NAME_MAX = Hospital._meta.get_field("name").max_length
HOSPITAL_SLUG_MAX = Hospital._meta.get_field("slug").max_length
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")


@transaction.atomic
def create_hospital(*, slug: str, name: str, actor=None) -> Hospital:
    """A new tenant with its own data key. The slug is its address (/h/<slug>/), so it is checked here."""
    slug, name = slug.strip(), " ".join(name.split())
    problems = new_hospital_problems(slug=slug, name=name)
    if problems:
        raise problems[0]
    hospital = Hospital(slug=slug, name=name)
    hospital.wrapped_data_key, hospital.master_key_id = new_wrapped_data_key(str(hospital.id))
    try:
        # The savepoint keeps a hospital opened with the same slug or name at the same moment a clear 409.
        with transaction.atomic():
            hospital.save()
    except IntegrityError:
        problems = _taken(slug, name)
        if problems:
            raise problems[0] from None
        raise
    record_audit(actor=actor, hospital=hospital, action="hospital.create", obj=hospital)
    return hospital


def new_hospital_problems(*, slug: str, name: str) -> list[DomainError]:
    """What stops a hospital being opened with this slug and name, at most one refusal for each: a form
    shows them all at once rather than one per submit."""
    slug, name = slug.strip(), " ".join(name.split())
    problems = []
    # Starting with a letter or digit: IT names the hospital on the command line (delete_hospital,
    # --hospital), where a leading dash reads as an option.
    if not SLUG_PATTERN.fullmatch(slug):
        problems.append(DomainError("invalid_slug", "The short name may hold only lower-case letters, digits and "
                                                    "dashes, and starts with a letter or digit, for example st-anne."))
    elif len(slug) > HOSPITAL_SLUG_MAX:
        problems.append(DomainError("invalid_slug", f"The short name must be at most {HOSPITAL_SLUG_MAX} "
                                                    "characters."))
    if not name or len(name) > HOSPITAL_NAME_MAX:
        problems.append(DomainError("invalid_name", f"Enter the hospital's name (at most {HOSPITAL_NAME_MAX} "
                                                    "characters)."))
    elif "\x00" in name:  # PostgreSQL text holds no NUL: refused here, before it reaches a query
        problems.append(DomainError("invalid_name", "The hospital's name may not hold control characters."))
    wrong = {problem.code for problem in problems}
    # Only a valid value is looked up: it is what would be stored, and an invalid one is refused already.
    return problems + _taken(slug if "invalid_slug" not in wrong else "", name if "invalid_name" not in wrong else "")


def _taken(slug: str, name: str) -> list[DomainError]:
    """The refusals for a slug or name another hospital holds already; an empty value is not looked up."""
    taken = []
    if slug and Hospital.objects.filter(slug=slug).exists():
        taken.append(DomainError("slug_taken", f"A hospital with the short name {slug} exists already.", status=409))
    # Members tell their hospitals apart by name (the hospital chooser, the invitation mails).
    namesake = Hospital.objects.filter(name__iexact=name).first() if name else None
    if namesake is not None:
        taken.append(DomainError("name_taken", f"A hospital named {namesake.name} exists already; choose a name "
                                               "that tells them apart.", status=409))
    return taken


@transaction.atomic
def open_hospital(*, slug: str, name: str, admin_email: str, actor=None, request=None,
                  site_url: str = "") -> tuple[Hospital, Invitation, str]:
    """Onboard a hospital: the tenant, and an invitation for its first admin, who then invites the rest.

    Returns the hospital, the invitation and its token (mailed once the transaction commits; the token
    is returned too, for an operator whose mail does not reach the hospital yet).
    """
    address = _first_admin_address_problems(admin_email)
    if address:
        raise address[0]
    hospital = create_hospital(slug=slug, name=name, actor=actor)  # which refuses a slug or name it cannot take
    invitation, token = invite_member(hospital=hospital, email=admin_email, role=Role.ADMIN, actor=actor,
                                      request=request, site_url=site_url)
    return hospital, invitation, token


def open_hospital_problems(*, slug: str, name: str, admin_email: str) -> list[DomainError]:
    """What stops open_hospital with these values, at most one refusal for each of them (the address's
    first), for a form to show all at once."""
    return _first_admin_address_problems(admin_email) + new_hospital_problems(slug=slug, name=name)


def _first_admin_address_problems(admin_email: str) -> list[DomainError]:
    try:
        validate_email(admin_email.strip())
        _check_email_length(admin_email)
        _refuse_operator(_find_user_by_email(admin_email))
    except ValidationError:
        return [DomainError("invalid_email", "Enter the email address of the hospital's first admin.")]
    except DomainError as refused:
        return [refused]
    return []


@transaction.atomic
def invite_first_admin(*, hospital: Hospital, email: str, actor, request=None) -> tuple[Invitation, str]:
    """The operator invites a hospital's first admin again (a lost or expired mail): only while the
    hospital has no admin, who from then on invites everyone else. An admin whose account is deactivated
    (who left) is none: nobody else could ever invite the hospital's next admin."""
    _lock_hospital(hospital)
    if active_admins(hospital).exists():
        raise DomainError("has_admin", f"{hospital.name} has an admin already, who invites the others.", status=409)
    try:
        validate_email(email.strip())
    except ValidationError:
        raise DomainError("invalid_email", "Enter the email address of the hospital's first admin.") from None
    try:
        invitation, token = invite_member(hospital=hospital, email=email, role=Role.ADMIN, actor=actor,
                                          request=request)
    except DomainError as refused:
        if refused.code != "already_member":
            raise
        # Who belongs to a hospital is the hospital's to know, not the operator's (DESIGN §2).
        raise DomainError("address_refused", "This address cannot be invited as the hospital's first admin; "
                                             "give another.", status=409) from None
    # One first admin: an earlier invitation, to whichever address, stops working.
    _replace_invitations(Invitation.objects.filter(hospital=hospital, role=Role.ADMIN), by=invitation, actor=actor,
                         request=request)
    return invitation, token


@transaction.atomic
def add_member(*, hospital: Hospital, user, role: str, actor=None, request=None) -> Membership:
    if Membership.objects.filter(hospital=hospital, user=user).exists():
        raise DomainError("already_member", "This person is already a member of the hospital.", status=409)
    membership = Membership.objects.create(hospital=hospital, user=user, role=role)
    record_audit(
        actor=actor, hospital=hospital, action="membership.create", obj=membership, request=request, detail=role
    )
    return membership


@transaction.atomic
def create_patient(
    *, hospital: Hospital, full_name: str, date_of_birth=None, medical_record_number: str = "", user=None,
    notes: str = "", actor=None, request=None,
) -> Patient:
    _check_date_of_birth(date_of_birth)
    digest = mrn_digest(hospital, medical_record_number)
    if digest and Patient.objects.filter(hospital=hospital, mrn_digest=digest).exists():
        raise _duplicate_mrn()
    try:
        # The savepoint keeps a concurrent insert of the same MRN a clear 409 instead of a broken transaction.
        with transaction.atomic():
            patient = Patient.objects.create(
                hospital=hospital,
                user=user,
                full_name=full_name,
                date_of_birth=date_of_birth,
                medical_record_number=medical_record_number,
                mrn_digest=digest,
                notes=notes,
            )
    except IntegrityError:
        raise _duplicate_mrn() from None
    record_audit(actor=actor, hospital=hospital, action="patient.create", obj=patient, request=request)
    return patient


def _duplicate_mrn() -> DomainError:
    return DomainError("duplicate_mrn", "A patient with this medical record number already exists in the hospital.",
                       status=409)


PATIENT_FIELDS = ("full_name", "date_of_birth", "medical_record_number", "notes")
EARLIEST_BIRTH = date(1900, 1, 1)


def _check_date_of_birth(date_of_birth) -> None:
    """A date of birth in the future or before 1900 is a typing slip; one that reached a record would
    follow the patient into every letter and lookup."""
    if date_of_birth is None:
        return
    if date_of_birth > timezone.localdate():
        raise DomainError("invalid_date_of_birth", "The date of birth is in the future; check it.")
    if date_of_birth < EARLIEST_BIRTH:
        raise DomainError("invalid_date_of_birth", "The date of birth is before 1900; check it.")
PATIENT_NAME_MAX = Patient._meta.get_field("full_name").max_length


@transaction.atomic
def update_patient(*, hospital: Hospital, patient: Patient, actor, request=None, **changes) -> Patient:
    """Correct a patient's PHI. The audit event names the fields that changed, never their values."""
    unknown = set(changes) - set(PATIENT_FIELDS)
    if unknown:
        raise DomainError("invalid_field", f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if patient.hospital_id != hospital.pk:
        raise DomainError("invalid_patient", "No such patient in this hospital.")
    if "date_of_birth" in changes:
        _check_date_of_birth(changes["date_of_birth"])
    changed = [name for name, value in changes.items() if getattr(patient, name) != value]
    if not changed:
        return patient
    for name in changed:
        setattr(patient, name, changes[name])
    update_fields = list(changed)
    if "medical_record_number" in changed:
        patient.mrn_digest = mrn_digest(hospital, patient.medical_record_number)
        taken = Patient.objects.filter(hospital=hospital, mrn_digest=patient.mrn_digest).exclude(pk=patient.pk)
        if patient.mrn_digest and taken.exists():
            raise _duplicate_mrn()
        update_fields.append("mrn_digest")
    try:
        # As in create_patient: another record given the same number at the same moment is a clear 409.
        with transaction.atomic():
            patient.save(update_fields=update_fields)
    except IntegrityError:
        raise _duplicate_mrn() from None
    record_audit(
        actor=actor, hospital=hospital, action="patient.update", obj=patient, request=request,
        detail=", ".join(sorted(changed)),
    )
    return patient


# --- invitations ---------------------------------------------------------------------------------------


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalise_email(email: str) -> str:
    return email_key(email)


EMAIL_MAX = Invitation._meta.get_field("email").max_length


def _check_email_length(email: str) -> None:
    # Mail transport limits an address to 254 characters (RFC 5321), and so does the column it is kept in.
    if len(_normalise_email(email)) > EMAIL_MAX:
        raise DomainError("invalid_email", f"An email address has at most {EMAIL_MAX} characters; check this one.")


def _find_user_by_email(email: str):
    return account_by_email(email)


@transaction.atomic
def invite_member(
    *, hospital: Hospital, email: str, role: str, actor, patient: Patient | None = None, request=None,
    site_url: str = "", made_the_record: bool = False,
) -> tuple[Invitation, str]:
    """Invite an email address with a role. Returns the invitation and its token, which only the email sees.

    A pending invitation to the same address is replaced; the new invitation's `replaced_sent_at` says
    when the replaced one was sent (None when there was none).
    """
    _check_email_length(email)
    email = _normalise_email(email)
    if role not in Role.values:
        raise DomainError("invalid_role", f"Role must be one of {', '.join(Role.values)}.")
    # One invitation per address at a time: two admins inviting it at once would otherwise each replace only
    # what was committed before, and leave two working links with different roles.
    _lock_hospital(hospital)
    existing = _find_user_by_email(email)
    _refuse_operator(existing)
    if existing is not None and Membership.objects.filter(hospital=hospital, user=existing).exists():
        raise DomainError("already_member", "This email address already belongs to a member.", status=409)
    if patient is not None:
        if role != Role.PATIENT:
            raise DomainError("patient_needs_patient_role", "Only a patient invitation can name a patient record.")
        if patient.hospital_id != hospital.pk:
            raise DomainError("invalid_patient", "No such patient in this hospital.")
        # A removed patient invited back may be given the record their own account still holds.
        if patient.user_id is not None and patient.user_id != getattr(existing, "pk", None):
            raise DomainError("patient_has_account", "This patient record is already linked to an account.", status=409)
        _refuse_second_record(hospital, existing, patient)
        # Whoever accepted first would get the record, and its scans: one address at a time.
        elsewhere = (Invitation.objects.filter(patient=patient, accepted_at__isnull=True, expires_at__gt=timezone.now())
                     .exclude(email=email))
        if elsewhere.exists():
            raise DomainError("patient_invited_elsewhere", "A pending invitation to another address already names "
                                                           "this patient record; revoke it first.", status=409)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        hospital=hospital,
        email=email,
        role=role,
        patient=patient,
        made_the_record=made_the_record and patient is not None,
        token_digest=_token_digest(token),
        invited_by=actor,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    record_audit(
        actor=actor, hospital=hospital, action="invitation.create", obj=invitation, request=request, detail=role
    )
    # A newer invitation replaces older pending ones, so only the latest email sent can be used. When the
    # earlier one was sent, or None: the admin is told that its link no longer works.
    invitation.replaced_sent_at = _replace_invitations(
        Invitation.objects.filter(hospital=hospital, email=email), by=invitation, actor=actor, request=request
    )
    link = invitation_link(token, request, site_url)
    # Whether the mail left: True or False once the transaction has committed and it was tried (the
    # pages and create_hospital say so), None while an enclosing transaction is still open.
    invitation.mail_sent = None
    transaction.on_commit(lambda: _send_invitation(invitation, token, link))
    return invitation, token


def _refuse_second_record(hospital: Hospital, account, patient: Patient) -> None:
    """An account holds one patient record per hospital: a removed patient invited back with another
    record than the one their account still holds could never accept (the account cannot hold both)."""
    if account is None:
        return
    held = Patient.objects.filter(hospital=hospital, user=account).exclude(pk=patient.pk).first()
    if held is not None:
        raise DomainError("patient_has_other_record", "This email address's account already holds another "
                                                      f"patient record of this hospital ({held.pk}). Invite it "
                                                      "with that record, or without naming one.", status=409)


def _replace_invitations(invitations, *, by: Invitation, actor, request=None):
    """Delete the pending ones of `invitations` that `by` replaces, each leaving an audit event that names
    its replacement, as a revoked one leaves its own. Returns when the latest of them was sent, or None.

    Locked first, as accepting locks an invitation: one accepted meanwhile is not deleted, nor reported.
    """
    replaced = dict(invitations.filter(accepted_at__isnull=True).exclude(pk=by.pk).select_for_update()
                    .values_list("pk", "created_at"))
    Invitation.objects.filter(pk__in=replaced).delete()
    for pk in sorted(replaced):
        record_audit(actor=actor, hospital=by.hospital, action="invitation.replace", object_type="invitation",
                     object_id=pk, request=request, detail=f"by invitation {by.pk}")
    return max(replaced.values(), default=None)


@transaction.atomic
def invite_patient(
    *, hospital: Hospital, email: str, full_name: str, date_of_birth=None, medical_record_number: str = "",
    actor, request=None,
) -> tuple[Invitation, str]:
    """Invite a patient together with their record, so that they can upload from their first sign-in.

    Sending again to the same address reuses the record the replaced invitation named, instead of leaving
    it behind as a duplicate that would block its own MRN: corrected with the new details when an invitation
    made it, else (a record the hospital held before) only when the details agree with it. A patient
    removed from the hospital and invited back gets the record their account still holds here (one
    account, one record per hospital), when the details agree with it. So does
    a record number the hospital already holds for a patient without an account (a record made for a
    doctor's uploads, or left by a revoked invitation), when the name and date of birth agree with it:
    it is the same patient, now given access.
    """
    full_name = full_name.strip()
    if not full_name:
        raise DomainError("name_required", "Enter the patient's full name.")
    _check_date_of_birth(date_of_birth)
    _lock_hospital(hospital)  # the pending invitation read here is the one invite_member replaces
    pending = (
        Invitation.objects.filter(
            hospital=hospital, email=_normalise_email(email), accepted_at__isnull=True, patient__user__isnull=True
        )
        .exclude(patient=None)
        .select_related("patient")
        .first()
    )
    returning = None if pending is not None else _record_of_address(hospital, email)
    held = None if pending or returning else _patient_without_account(hospital, medical_record_number)
    made = False
    # An invitation's own record is corrected by sending again only while nothing else hangs on it: once
    # a scan has been filed under it, it is the patient's record like any other.
    if pending is not None and pending.made_the_record and not pending.patient.scans.exists():
        patient = update_patient(
            hospital=hospital, patient=pending.patient, actor=actor, request=request, full_name=full_name,
            date_of_birth=date_of_birth, medical_record_number=medical_record_number.strip(),
        )
        made = True
    elif pending is not None:
        try:
            patient = _confirmed_holder(pending.patient, full_name, date_of_birth,
                                        mrn_digest(hospital, medical_record_number.strip()))
        except DomainError:
            raise DomainError("record_mismatch", "The invitation pending for this address names a patient record "
                                                 "the hospital held before, with other details, and an invitation "
                                                 "does not rewrite it. Check the name, date of birth and record "
                                                 "number against that record (correct the record on its patient "
                                                 "page if it is the record that is wrong), or revoke that "
                                                 "invitation to invite someone else.", status=409) from None
    elif returning is not None:
        patient = _confirmed_returning(hospital, returning, full_name, date_of_birth, medical_record_number)
    elif held is not None:
        patient = _confirmed_holder(held, full_name, date_of_birth)
    else:
        patient = create_patient(
            hospital=hospital, full_name=full_name, date_of_birth=date_of_birth,
            medical_record_number=medical_record_number.strip(), actor=actor, request=request,
        )
        made = True
    return invite_member(hospital=hospital, email=email, role=Role.PATIENT, actor=actor, patient=patient,
                         request=request, made_the_record=made)


def _confirmed_holder(patient: Patient, full_name: str, date_of_birth, typed_mrn: str = "") -> Patient:
    """The held record, if the invitation describes the same person; a refusal otherwise.

    A record number alone is one typo away from another patient: giving an account to the record it
    names would show that patient's scans to the invitee. So the name (and the date of birth, where
    both are known, and the record number's digest `typed_mrn`, where one was typed) must agree with the
    record, and the record is never rewritten from the invitation.
    """
    if not _describes(patient, full_name, date_of_birth) or (typed_mrn and typed_mrn != patient.mrn_digest):
        raise DomainError("mrn_mismatch", "The hospital holds this medical record number for a patient with other "
                                          "details. Check the number, name and date of birth against the record.",
                          status=409)
    return patient


def _describes(patient: Patient, full_name: str, date_of_birth) -> bool:
    same_name = " ".join(patient.full_name.split()).casefold() == " ".join(full_name.split()).casefold()
    same_birth = date_of_birth is None or patient.date_of_birth is None or patient.date_of_birth == date_of_birth
    return same_name and same_birth


def _record_of_address(hospital: Hospital, email: str) -> Patient | None:
    """The record this address's account holds in the hospital, once it is no longer a member: that of a
    patient removed from it. (A member is refused as one by invite_member.)"""
    account = _find_user_by_email(email)
    if account is None or Membership.objects.filter(hospital=hospital, user=account).exists():
        return None
    return Patient.objects.filter(hospital=hospital, user=account).first()


def _confirmed_returning(hospital: Hospital, patient: Patient, full_name: str, date_of_birth,
                         medical_record_number: str) -> Patient:
    """The record of a patient invited back, if the invitation describes it; a refusal otherwise.

    It holds their scans and is not rewritten from the invitation, as a held record is not.
    """
    typed_mrn = mrn_digest(hospital, medical_record_number.strip())
    if not _describes(patient, full_name, date_of_birth) or (typed_mrn and typed_mrn != patient.mrn_digest):
        raise DomainError("record_mismatch", "This address's account already has a patient record here, with "
                                             "other details. Check the name, date of birth and record number "
                                             "against that record, or correct the record first.", status=409)
    return patient


def _patient_without_account(hospital: Hospital, medical_record_number: str) -> Patient | None:
    digest = mrn_digest(hospital, medical_record_number.strip())
    if not digest:
        return None
    # A record another address's pending invitation names stays that invitation's: one record, one account.
    unclaimed = Patient.objects.filter(hospital=hospital, mrn_digest=digest, user__isnull=True)
    pending = Invitation.objects.filter(hospital=hospital, accepted_at__isnull=True, patient__isnull=False)
    return unclaimed.exclude(pk__in=pending.values("patient")).first()


def invitation_link(token: str, request, site_url: str = "") -> str:
    """The accept page's address, when the site has one (the pages live in another app): absolute from
    the request, or from ``site_url`` where there is none (a command).

    The token follows "#": browsers never send that part, so opening the link writes it to no server's
    access log (the page's script posts it)."""
    try:
        path = f"{reverse('frontend:invite-link')}#{token}"
    except NoReverseMatch:
        return ""
    if request is not None:
        return request.build_absolute_uri(path)
    return f"{site_url.rstrip('/')}{path}" if site_url else path


def _send_invitation(invitation: Invitation, token: str, link: str = "") -> None:
    hospital = invitation.hospital
    try:
        _mail_invitation(invitation, token, link)
    except Exception as exc:
        # The invitation is committed already; a mail server hiccup must not turn that into a 500.
        # The admin sees it pending in the list and can send a new one. Logged by type only: a refused
        # recipient's error names the invitee's address.
        log.error("invitation %s for hospital %s could not be emailed (%s)", invitation.pk, hospital.slug,
                  type(exc).__name__)
        invitation.mail_sent = False
        return
    invitation.mail_sent = True
    log.info("invitation %s sent for hospital %s", invitation.pk, hospital.slug)


def _mail_invitation(invitation: Invitation, token: str, link: str) -> None:
    hospital = invitation.hospital
    role = invitation.get_role_display().lower()
    how = f"Accept it here: {link}\n\n" if link else ""
    expires = timezone.localtime(invitation.expires_at, hospital.tzinfo)
    send_mail(
        subject=f"Your invitation to {hospital.name} on NeuroFed",
        message=(
            f"You have been invited to join {hospital.name} on NeuroFed as {role}.\n\n{how}"
            f"Your invitation token: {token}\n"
            "(for the API: POST it to /api/v1/invitations/accept/, with a password if you have no NeuroFed "
            "account yet)\n\n"
            f"The invitation expires at {expires:%Y-%m-%d %H:%M} ({expires.tzinfo}) and works once.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, actor, request=None) -> None:
    # Read again under the row lock accepting takes: the invitee may have accepted it, or another admin
    # revoked it, since the admin's page read it. Deleting it then would report a revoke that changed
    # nothing, while the invitee stays a member.
    current = (Invitation.objects.select_for_update()
               .filter(pk=invitation.pk, hospital_id=invitation.hospital_id).first())
    if current is None:
        raise DomainError("invalid_invitation", "This invitation no longer exists: it was revoked or replaced.",
                          status=404)
    if current.accepted_at is not None:
        raise DomainError("invitation_used", "This invitation has already been accepted.", status=409)
    record_audit(actor=actor, hospital=invitation.hospital, action="invitation.revoke", obj=current, request=request)
    current.delete()


@dataclass(frozen=True)
class Acceptance:
    membership: Membership
    user: object
    account_created: bool


def usable_invitation(token: str, *, lock: bool = False) -> Invitation:
    """The invitation a token opens, refused as the person can act on when it cannot be accepted.

    The accept page asks this before anyone chooses a password; accepting asks it again under a lock.
    """
    invitations = Invitation.objects.select_related("hospital", "patient")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(token_digest=_token_digest(token or "")).first()
    if invitation is None:
        raise DomainError("invalid_token", "This invitation token is not valid; ask the hospital for a new invitation.")
    if invitation.accepted_at is not None:
        # 409, as revoking an accepted invitation answers: the same code keeps one status everywhere.
        raise DomainError("invitation_used", "This invitation has already been used; ask the hospital for a new one.",
                          status=409)
    if invitation.expires_at <= timezone.now():
        raise DomainError("invitation_expired", "This invitation has expired; ask the hospital for a new one.")
    return invitation


def invitation_accepted_by(user, token: str | None = None, *, invitation_id: int | None = None) -> Invitation | None:
    """The invitation this token opens, or the one with this id (the accept page keeps only that once the
    token is spent), if `user` is the one who accepted it (their Back button); else None."""
    if not getattr(user, "is_authenticated", False):
        return None
    invitations = Invitation.objects.select_related("hospital").filter(accepted_by=user)
    if token is not None:
        return invitations.filter(token_digest=_token_digest(token)).first()
    return invitations.filter(pk=invitation_id).first() if invitation_id is not None else None


def accepted_invitation(invitation_id: int | None) -> Invitation | None:
    """The accepted invitation with this id, whoever accepted it: for the accept page of the browser that
    accepted it while signed out (its session keeps the id), not for anything a user names."""
    if invitation_id is None:
        return None
    return Invitation.objects.select_related("hospital").filter(pk=invitation_id, accepted_at__isnull=False).first()


def _refuse_operator(user) -> None:
    """The platform operator's account joins no hospital: it would read patients' data (DESIGN §2)."""
    if user is not None and user.is_superuser:
        raise DomainError("operator_account", "This address is the platform operator's account, which is a member "
                                              "of no hospital; invite another address.", status=409)


def invitation_is_for(invitation: Invitation, user) -> bool:
    """Whether this account may accept the invitation: only the address it was sent to can."""
    return _normalise_email(user.email) == invitation.email


@transaction.atomic
def accept_invitation(*, token: str, password: str | None = None, user=None, request=None) -> Acceptance:
    """Turn an invitation into a membership, creating the account when the email has none.

    `user` is whoever is signed in while accepting (or None): a signed-in user can accept only an
    invitation for their own email address.
    """
    # The hospital first, as inviting takes it before the invitations: taken the other way round, an
    # invitation sent again while it is accepted deadlocked the two.
    hospital_id = Invitation.objects.filter(token_digest=_token_digest(token or "")).values_list(
        "hospital_id", flat=True).first()
    if hospital_id is not None:
        _lock_hospital(Hospital(pk=hospital_id))
    invitation = usable_invitation(token, lock=True)
    hospital = invitation.hospital
    signed_in = user is not None and user.is_authenticated
    if signed_in and not invitation_is_for(invitation, user):
        raise DomainError(
            "wrong_account", "This invitation is for another email address; sign out or sign in as that address."
        )
    account = user if signed_in else _find_user_by_email(invitation.email)
    _refuse_operator(account)  # an invitation sent before the address became the operator's
    created = account is None
    if created:
        if not password:
            raise DomainError("password_required", "No account exists for this email yet: choose a password.")
        candidate = get_user_model()(username=invitation.email, email=invitation.email)
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise DomainError("weak_password", " ".join(exc.messages)) from None
        try:
            with transaction.atomic():
                account = get_user_model().objects.create_user(
                    username=invitation.email, email=invitation.email, password=password
                )
        except IntegrityError:
            # Another invitation to this address (another hospital's) was accepted at the same moment and
            # created the account first. Joining it here would put this membership on an account whose
            # password was chosen there, not with the one typed here: the invitee signs in and accepts again.
            raise DomainError("account_exists", "An account for this email address was created a moment ago, by "
                                                "accepting another invitation. Sign in to it, then accept this "
                                                "invitation again.", status=409) from None
    if invitation.patient is not None:
        try:
            _refuse_second_record(hospital, account, invitation.patient)
        except DomainError:
            # The account got its record here after the invitation was sent: this one cannot be used.
            raise DomainError("patient_has_other_record", f"Your account already holds a patient record at "
                                                          f"{hospital.name}. Ask the hospital to invite you again.",
                              status=409) from None
    membership = add_member(hospital=hospital, user=account, role=invitation.role, actor=account, request=request)
    if invitation.patient is not None and invitation.patient.user_id is None:
        invitation.patient.user = account
        invitation.patient.save(update_fields=["user"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = account
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_audit(actor=account, hospital=hospital, action="invitation.accept", obj=invitation, request=request)
    return Acceptance(membership=membership, user=account, account_created=created)


# --- members and settings ------------------------------------------------------------------------------


def _lock_hospital(hospital: Hospital) -> None:
    # Every change to the set of admins, and every invitation, takes this row lock first, so two admins
    # demoting each other at the same moment cannot both succeed and leave the hospital without one. "No
    # key": it excludes the other takers, but not the inserts (uploads, memberships) whose foreign key
    # only reads the row.
    Hospital.objects.select_for_update(no_key=True).filter(pk=hospital.pk).first()


def _reread_member(membership: Membership) -> None:
    """The membership as it stands now, under the hospital lock: another admin may have removed it since
    the page or request read it."""
    try:
        membership.refresh_from_db()
    except Membership.DoesNotExist:
        raise DomainError("invalid_member", "This person is no longer a member of the hospital.", status=404) from None


def active_admins(hospital: Hospital):
    """The hospital's admins who can still sign in."""
    return Membership.objects.filter(Membership.active_admin(), hospital=hospital)


def hospitals_for_operator() -> list[Hospital]:
    """Every hospital with its members counted by role (``<role>_count``, ``active_admin_count``) and, while
    it has no admin who can sign in, the first-admin invitation still open (``pending_admin``, else None):
    a lost mail, or an admin who left, must not leave a hospital nobody can manage."""
    listed = list(Hospital.objects.annotate(
        **{f"{role}_count": Count("memberships", filter=Q(memberships__role=role)) for role in Role.values},
        active_admin_count=Count("memberships", filter=Membership.active_admin("memberships__")),
    ).order_by("name"))
    pending = {}
    for invitation in Invitation.objects.filter(hospital__in=[h for h in listed if not h.active_admin_count],
                                                role=Role.ADMIN, accepted_at__isnull=True).order_by("created_at"):
        pending[invitation.hospital_id] = invitation
    for hospital in listed:
        hospital.pending_admin = pending.get(hospital.pk)
    return listed


def _refuse_last_admin(hospital: Hospital, membership: Membership) -> None:
    if membership.role != Role.ADMIN:
        return
    if not active_admins(hospital).exclude(pk=membership.pk).exists():
        others = Membership.objects.filter(hospital=hospital, role=Role.ADMIN).exclude(pk=membership.pk)
        why = " whose account is active (the others' accounts are deactivated)" if others.exists() else ""
        raise DomainError(
            "last_admin", f"This is the hospital's last admin{why}: make someone else admin first.", status=409
        )


@transaction.atomic
def change_role(*, hospital: Hospital, membership: Membership, role: str, actor, request=None) -> Membership:
    if membership.hospital_id != hospital.pk:
        raise DomainError("invalid_member", "No such member in this hospital.")
    if role not in Role.values:
        raise DomainError("invalid_role", f"Role must be one of {', '.join(Role.values)}.")
    _lock_hospital(hospital)
    _reread_member(membership)
    if membership.role == role:
        return membership
    if role != Role.ADMIN:
        _refuse_last_admin(hospital, membership)
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit(
        actor=actor, hospital=hospital, action="membership.role_change", obj=membership, request=request,
        detail=f"{previous} -> {role}",
    )
    if role == Role.PATIENT:
        _give_patient_record(hospital, membership.user, actor=actor, request=request)
    return membership


def _give_patient_record(hospital: Hospital, user, *, actor, request=None) -> None:
    """A patient uploads to their own record: a member made patient without one gets one here.

    It is named from the account (full name, else email), the best the hospital knows at this point;
    staff correct it on the patient record page. A record the account already has is kept as it is.
    """
    if Patient.objects.filter(hospital=hospital, user=user).exists():
        return
    create_patient(hospital=hospital, full_name=(user.get_full_name() or user.email)[:PATIENT_NAME_MAX],
                   user=user, actor=actor, request=request)


@transaction.atomic
def remove_member(*, hospital: Hospital, membership: Membership, actor, request=None) -> None:
    if membership.hospital_id != hospital.pk:
        raise DomainError("invalid_member", "No such member in this hospital.")
    _lock_hospital(hospital)
    _reread_member(membership)
    _refuse_last_admin(hospital, membership)
    record_audit(
        actor=actor, hospital=hospital, action="membership.remove", obj=membership, request=request,
        # The membership row goes, so the trail keeps whose it was (an id, as everywhere in the trail):
        # the audit page names the removed member by it.
        detail=member_removal_detail(membership.role, membership.user_id),
    )
    # The patient record stays with the hospital (it is the hospital's medical record); without the
    # membership the person can no longer reach it.
    membership.delete()


def settings_refusals(hospital: Hospital, **changes) -> dict:
    """Why each of these settings values cannot be saved, by setting name; empty when all can.

    A form shows each sentence beside its own field; update_hospital_settings refuses the same values.
    """
    known = {name: value for name, value in changes.items() if name in SETTINGS_FIELDS}
    return _clean_settings(hospital, known)[1]


def _clean_settings(hospital: Hospital, changes: dict) -> tuple[dict, dict]:
    # The model's own field rules (the emergency number's pattern and length, the visibility choices)
    # are checked here rather than by each caller, so no page, API or command can save a number that
    # patients would then be told to call.
    cleaned, refusals = {}, {}
    for name, value in changes.items():
        try:
            cleaned[name] = Hospital._meta.get_field(name).clean(value, hospital)
        except ValidationError as invalid:
            refusals[name] = " ".join(invalid.messages)
    return cleaned, refusals


@transaction.atomic
def update_hospital_settings(*, hospital: Hospital, actor, request=None, **changes) -> Hospital:
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise DomainError("invalid_setting", f"Unknown setting: {', '.join(sorted(unknown))}.")
    cleaned, refusals = _clean_settings(hospital, changes)
    if refusals:
        raise DomainError("invalid_setting", next(iter(refusals.values())))
    changed = {name: value for name, value in cleaned.items() if getattr(hospital, name) != value}
    if not changed:
        return hospital
    for name, value in changed.items():
        setattr(hospital, name, value)
    hospital.save(update_fields=list(changed))
    record_audit(
        actor=actor, hospital=hospital, action="hospital.settings_update", obj=hospital, request=request,
        detail=", ".join(f"{name}={value}" for name, value in sorted(changed.items())),
    )
    return hospital


# --- keys ------------------------------------------------------------------------------------------------


@dataclass
class HospitalDeletion:
    # Set once the deletion has committed and the files were removed: how many files and folders could
    # not be (0 when all went). None while the deletion waits on an enclosing transaction.
    files_left: int | None = None


@transaction.atomic
def delete_hospital(*, hospital: Hospital, actor=None) -> HospitalDeletion:
    """Crypto-shred a hospital: destroy its data key, then its rows; its files go once that commits.

    Without the data key every blob and MRN digest of the hospital is unreadable, even in a backup of
    the files taken before deletion.
    """
    deletion = HospitalDeletion()
    hospital = Hospital.objects.select_for_update().get(pk=hospital.pk)
    size = len(bytes(hospital.wrapped_data_key or b""))
    # Overwritten before deleting, so the deleted row's last version holds random bytes. Its earlier
    # versions (kept until vacuum) and the write-ahead log still hold the wrapped key, as a database
    # backup does: only the master key opens them, so rotating it afterwards (rotate_master_key, then
    # destroying the old one) completes the shredding (docs/foundation.md).
    hospital.wrapped_data_key = secrets.token_bytes(size or 64)
    hospital.master_key_id = "destroyed"
    hospital.save(update_fields=["wrapped_data_key", "master_key_id"])
    record_audit(actor=actor, hospital=hospital, action="hospital.delete", obj=hospital, detail=hospital.slug)
    hospital_id, slug = hospital.pk, hospital.slug
    files_of = Hospital(pk=hospital_id, slug=slug)
    hospital.delete()

    def remove_files():
        deletion.files_left = storage.delete_hospital_files(files_of)

    transaction.on_commit(remove_files)
    log.info("hospital %s (%s) deleted and its data key destroyed", slug, hospital_id)
    return deletion


@dataclass
class RotationReport:
    rewrapped: int = 0
    already_current: int = 0


def rotate_master_key(*, actor=None, progress=None) -> RotationReport:
    """Rewrap every hospital's data key under the current master key; blobs are not touched.

    One transaction per hospital, so an interrupted rotation keeps what it did and a rerun finishes the
    rest; a hospital already under the current key is left alone.
    """
    report = RotationReport()
    for hospital_id in Hospital.objects.order_by("slug").values_list("pk", flat=True):
        with transaction.atomic():
            hospital = Hospital.objects.select_for_update().filter(pk=hospital_id).first()
            if hospital is None:
                continue  # deleted since the list was read: its key is destroyed, nothing to rewrap
            if keys.rewrap_data_key(hospital):
                hospital.save(update_fields=["wrapped_data_key", "master_key_id"])
                record_audit(
                    actor=actor, hospital=hospital, action="hospital.key_rewrap", obj=hospital,
                    detail=f"master key {hospital.master_key_id}",
                )
                report.rewrapped += 1
            else:
                report.already_current += 1
        if progress is not None:
            progress(hospital)
    return report
