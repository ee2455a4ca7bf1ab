"""Shapes of the hospitals API. Serializers validate and present; the writes happen in services."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from hospitals.audit import actor_label_for_export
from hospitals.models import AuditEvent, Hospital, Invitation, Membership, Patient, Role
from hospitals.services import EMAIL_MAX


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "email", "first_name", "last_name"]
        read_only_fields = fields


class MyHospitalSerializer(serializers.ModelSerializer):
    """A hospital as one of its members sees it in their list: with their own role there."""

    slug = serializers.CharField(source="hospital.slug", read_only=True)
    name = serializers.CharField(source="hospital.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["slug", "name", "role"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    user = UserSerializer(read_only=True)
    memberships = MyHospitalSerializer(many=True, read_only=True)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class MemberSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=EMAIL_MAX)
    role = serializers.ChoiceField(choices=Role.choices)
    patient = serializers.UUIDField(required=False, allow_null=True, help_text="Patient record to link (patient role)")


# Invitation.status, as the API names it (the schema's InvitationStatusEnum).
INVITATION_STATUSES = ("pending", "accepted", "expired")


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)
    status = serializers.ChoiceField(choices=INVITATION_STATUSES, read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "patient", "invited_by", "status", "created_at", "expires_at", "accepted_at"]
        read_only_fields = fields


class CreatedInvitationSerializer(InvitationSerializer):
    mail_sent = serializers.BooleanField(
        read_only=True, allow_null=True,
        help_text="Whether the invitation's email left: false when the mail relay refused it or did not answer "
                  "(the invitation stays pending; invite the address again once mail works).",
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "mail_sent"]
        read_only_fields = fields


class AcceptInvitationSerializer(serializers.Serializer):
    token = serializers.CharField()
    password = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, style={"input_type": "password"},
        help_text="Needed only when the invited email has no account yet.",
    )


class AcceptedInvitationSerializer(serializers.Serializer):
    hospital = serializers.CharField(source="membership.hospital.slug")
    role = serializers.CharField(source="membership.role")
    email = serializers.EmailField(source="user.email")
    account_created = serializers.BooleanField()


class PatientSerializer(serializers.ModelSerializer):
    has_account = serializers.SerializerMethodField()
    full_name = serializers.CharField(max_length=200)
    medical_record_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="",
                                  help_text="Staff notes; absent from a patient's reading of their own record.")

    class Meta:
        model = Patient
        fields = ["id", "full_name", "date_of_birth", "medical_record_number", "notes", "has_account", "created_at"]
        read_only_fields = ["id", "has_account", "created_at"]

    def get_has_account(self, patient) -> bool:
        return patient.user_id is not None

    def to_representation(self, patient):
        data = super().to_representation(patient)
        # Staff write the notes to each other (the record page says so), not to the patient: only a staff
        # reader, named by context={"membership": ...}, gets them.
        membership = self.context.get("membership")
        if membership is None or membership.role == Role.PATIENT:
            data.pop("notes")
        return data


class HospitalSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hospital
        fields = ["slug", "name", "patients_see_ai_results", "federation_opt_in", "emergency_phone", "time_zone"]
        read_only_fields = ["slug", "name"]
        extra_kwargs = {"time_zone": {"help_text": "IANA name (Europe/London) of the zone the hospital's pages "
                                                   "and invitation mails give times in; empty for the deployment's"}}


class AuditQuerySerializer(serializers.Serializer):
    """The audit list's filter: a NUL or a lone surrogate is a 400 here, not a database error."""

    action = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                   max_length=AuditEvent._meta.get_field("action").max_length)


class AuditEventSerializer(serializers.ModelSerializer):
    note = serializers.SerializerMethodField(help_text="Words a person typed, such as why a scan was removed; "
                                                       "stored sealed under the hospital's key.")

    class Meta:
        model = AuditEvent
        fields = [
            "id", "at", "actor_id", "actor_label", "action", "object_type", "object_id", "detail", "note",
            "client_address",
        ]
        read_only_fields = fields

    actor_label = serializers.SerializerMethodField(help_text="Staff by sign-in email; a patient as "
                                                              "'patient <record id>', never by email.")

    def get_note(self, event) -> str:
        return self.context["read_note"](event)

    def get_actor_label(self, event) -> str:
        return actor_label_for_export(event, self.context["patient_actors"])
