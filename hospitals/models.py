"""Tenants and the people in them. Every tenant-owned row carries a non-null hospital key (DESIGN §2)."""

import uuid
import zoneinfo
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from encrypted_model_fields.fields import EncryptedCharField, EncryptedDateField, EncryptedTextField


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    DOCTOR = "doctor", "Doctor"
    ADMIN = "admin", "Admin"


class AIResultVisibility(models.TextChoices):
    # Default: a doctor reviews (keeps or changes the reading) before the patient sees anything the model said.
    AFTER_REVIEW = "after_review", "Only after a doctor reviews the scan"
    IMMEDIATELY = "immediately", "At once, marked preliminary"


# Names in the time zone database that are no place's clock: "Factory" has no time at all, and
# "localtime" is whichever zone the machine it is read on runs in (the web and worker machines may
# differ). Browsers refuse both, so time.js could not show a single time on the hospital's pages.
NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """The IANA time zones this machine knows, sorted (Europe/London, America/New_York, ...)."""
    return tuple(sorted(zoneinfo.available_timezones() - NOT_PLACES))


def validate_time_zone(name: str) -> None:
    if name and name not in time_zone_names():
        raise ValidationError("Choose a time zone from the list, such as Europe/London.", code="invalid_time_zone")


class Hospital(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    # The hospital's AES-256 data key, wrapped (AES-GCM) by the platform master key; never stored plain.
    wrapped_data_key = models.BinaryField(editable=False)
    # Which master key wrapped it (first 16 hex digits of its SHA-256), so rotation knows what to rewrap.
    master_key_id = models.CharField(max_length=16, editable=False)
    patients_see_ai_results = models.CharField(
        max_length=20, choices=AIResultVisibility.choices, default=AIResultVisibility.AFTER_REVIEW
    )
    federation_opt_in = models.BooleanField(default=False)
    # The number patients are told to call in the advice beside a result; empty keeps the generic
    # "your local emergency number" wording, right for a hospital that has not said where it is.
    emergency_phone = models.CharField(
        max_length=30, blank=True, default="",
        validators=[RegexValidator(
            r"^\+?[0-9][0-9 ()-]*$",
            "Enter a phone number: digits, spaces, brackets and dashes, optionally starting with +.",
        )],
    )
    # The zone its pages, and its invitation mails, give times in; empty keeps the deployment's TIME_ZONE.
    # Staff read upload and review times against their own clock, so a hospital sees its own.
    time_zone = models.CharField(max_length=64, blank=True, default="", validators=[validate_time_zone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Members tell their hospitals apart by name (create_hospital refuses a namesake; this holds
            # when two are opened at the same moment).
            models.UniqueConstraint(Lower("name"), name="unique_hospital_name_any_case"),
        ]

    def __str__(self):
        return self.slug

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The zone to show this hospital's times in: the deployment's when it has none, or when this
        machine's time zone data no longer knows its zone (a page must still open)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone) if self.time_zone else timezone.get_default_timezone()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return timezone.get_default_timezone()


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "hospital"], name="one_membership_per_hospital")]
        ordering = ["hospital__name", "user__email"]

    def __str__(self):
        return f"{self.user_id}@{self.hospital_id}:{self.role}"

    @staticmethod
    def active_admin(through: str = "") -> Q:
        """An admin membership whose account can still sign in; ``through`` is the lookup path from the
        model queried to Membership (``"memberships__"`` from Hospital). A deactivated account's admin
        membership stays (the trail and the members list name it) but manages nothing."""
        return Q(**{f"{through}role": Role.ADMIN, f"{through}user__is_active": True})


class Patient(models.Model):
    """A patient record of one hospital. PHI columns are Fernet-encrypted in the database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="patients")
    # Set when the patient has an account and signs in to see their own scans.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient_records"
    )
    full_name = EncryptedCharField(max_length=200)
    date_of_birth = EncryptedDateField(null=True, blank=True)
    medical_record_number = EncryptedCharField(max_length=64, blank=True, default="")
    # Keyed HMAC of the MRN, so a record can be found by MRN without storing the MRN in clear.
    mrn_digest = models.CharField(max_length=64, blank=True, default="", db_index=True, editable=False)
    notes = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "mrn_digest"], condition=~Q(mrn_digest=""), name="unique_mrn_per_hospital"
            ),
            models.UniqueConstraint(
                fields=["hospital", "user"], condition=Q(user__isnull=False), name="one_patient_record_per_user"
            ),
        ]

    def __str__(self):
        return f"patient {self.id}"


class Invitation(models.Model):
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices)
    # Only a SHA-256 of the token is stored: a database leak does not hand out memberships.
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A patient invitation may name the record the new account is for, so the person sees their own
    # scans from the first sign-in instead of an empty page until someone links them.
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    # The record was made from this invitation's details, or from those of one it replaced: sending again
    # may correct it. A record the hospital held before is never rewritten from an invitation.
    made_the_record = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only")

    def delete(self):
        raise PermissionError("Audit events are append-only")


class AuditEvent(models.Model):
    """Who read or changed PHI or a scan, when and from where. Append-only.

    The hospital and actor are kept as plain ids, not foreign keys, so the trail outlives a deleted
    hospital or account and no cascade can rewrite it.
    """

    hospital_id = models.UUIDField(null=True, db_index=True)
    actor_id = models.BigIntegerField(null=True)
    actor_label = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # A short, PHI-free note such as "doctor -> admin"; never a name, a date of birth or an MRN.
    detail = models.CharField(max_length=200, blank=True, default="")
    # Words a person typed (why a scan was removed): they may name a patient whatever the form asks, so
    # they are sealed under the hospital's data key (hospitals.audit.seal_note). Not a field-key column:
    # rotating that key rewrites rows, and the database refuses any rewrite of the trail; the data key
    # is rewrapped instead, and destroying it with the hospital shreds these notes with its scans.
    sealed_note = models.BinaryField(null=True, blank=True, editable=False)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only")


class ApiToken(models.Model):
    """An API token (`Authorization: Token <secret>`), kept as the SHA-256 of its secret, as invitations
    are: a copy of the database or a backup hands out no credential. The secret is shown once, when the
    token is issued (hospitals.api_tokens)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
