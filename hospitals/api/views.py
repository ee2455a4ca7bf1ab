"""Hospitals API v1. Thin views: parse, call the access helpers or a service, serialize.

The hospital always comes from the URL slug through a permission class (hospitals/api/permissions.py),
which leaves the caller's membership on the view; nothing here queries tenant data unscoped.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hospitals import services
from hospitals.accounts import authenticate_by_email
from hospitals.access import access_invitation, access_member, access_patient, visible_patients
from hospitals.api import serializers as s
from hospitals.api_tokens import DigestTokenAuthentication, issue_token
from hospitals.api.permissions import IsHospitalAdmin, MembersReadAdminsWrite, MembersReadStaffWrite
from hospitals.audit import audit_trail, note_reader, patient_actors, record_audit
from hospitals.models import Invitation, Membership
from neurofed.api_schema import refusals


class AuthTokenView(APIView):
    """Exchange email and password for an API token (`Authorization: Token <token>`); DELETE revokes it."""

    # Tokens only: a browser session must not be able to mint or revoke API tokens without CSRF checks.
    authentication_classes = [DigestTokenAuthentication]
    # Asking for a token proves who one is by password: a revoked token a client still sends in its
    # header must not stand in the way of getting a new one (neurofed.api_schema reads this too).
    unauthenticated_methods = ("POST",)

    def get_authenticators(self):
        if getattr(self.request, "method", None) in self.unauthenticated_methods:
            return []
        return super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(request=s.TokenRequestSerializer, responses={200: s.TokenSerializer, **refusals(429)})
    def post(self, request):
        form = s.TokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = authenticate_by_email(request._request, form.validated_data["email"], form.validated_data["password"])
        _, secret = issue_token(user)
        return Response({"token": secret})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        request.auth.delete()  # the token this request came with; the account's others stay
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        memberships = Membership.objects.filter(user=request.user).select_related("hospital")
        return Response(s.MeSerializer({"user": request.user, "memberships": memberships}).data)


class MyHospitalsView(generics.ListAPIView):
    """The hospitals I belong to, each with my role there."""

    serializer_class = s.MyHospitalSerializer
    pagination_class = None

    def get_queryset(self):
        return Membership.objects.filter(user=self.request.user).select_related("hospital")


class InviteMixin:
    """POST an invitation (admin). Shared by members/ and invitations/, which both create one."""

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.CreatedInvitationSerializer, **refusals(409)})
    def post(self, request, slug):
        form = s.InvitationCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        hospital = self.membership.hospital
        patient = None
        if form.validated_data.get("patient"):
            patient = access_patient(
                request.user, hospital, form.validated_data["patient"], membership=self.membership,
                request=request, action="patient.invite",
            )
        invitation, _token = services.invite_member(
            hospital=hospital, email=form.validated_data["email"], role=form.validated_data["role"],
            patient=patient, actor=request.user, request=request,
        )
        return Response(s.CreatedInvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class MemberListView(InviteMixin, generics.ListAPIView):
    """Members of the hospital (admin); POST invites someone by email."""

    permission_classes = [IsHospitalAdmin]
    serializer_class = s.MemberSerializer

    def get_queryset(self):
        return Membership.objects.filter(hospital=self.membership.hospital).select_related("user", "hospital")


class MemberDetailView(APIView):
    """One member (admin): read, change role, remove. The last admin is never demoted or removed."""

    permission_classes = [IsHospitalAdmin]

    def get_member(self, request, member_id):
        return access_member(request.user, self.membership.hospital, member_id, membership=self.membership)

    @extend_schema(responses=s.MemberSerializer)
    def get(self, request, slug, member_id):
        return Response(s.MemberSerializer(self.get_member(request, member_id)).data)

    @extend_schema(request=s.RoleChangeSerializer, responses={200: s.MemberSerializer, **refusals(409)})
    def patch(self, request, slug, member_id):
        member = self.get_member(request, member_id)
        form = s.RoleChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = services.change_role(
            hospital=self.membership.hospital, membership=member, role=form.validated_data["role"],
            actor=request.user, request=request,
        )
        return Response(s.MemberSerializer(member).data)

    @extend_schema(responses={204: None, **refusals(409)})
    def delete(self, request, slug, member_id):
        member = self.get_member(request, member_id)
        services.remove_member(
            hospital=self.membership.hospital, membership=member, actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(post=extend_schema(responses={201: s.PatientSerializer, **refusals(409)}))
class PatientListView(generics.ListCreateAPIView):
    """Patients: staff list all and create; a patient lists only their own record."""

    permission_classes = [MembersReadStaffWrite]
    serializer_class = s.PatientSerializer

    def get_queryset(self):
        return visible_patients(self.request.user, self.membership.hospital, self.membership)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "membership": self.membership}

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        # A list shows names and dates of birth, so reading it is a PHI read like opening one record.
        record_audit(
            actor=request.user, hospital=self.membership.hospital, action="patient.list", object_type="patient",
            request=request,
        )
        return response

    def perform_create(self, serializer):
        serializer.instance = services.create_patient(
            hospital=self.membership.hospital, actor=self.request.user, request=self.request,
            **serializer.validated_data,
        )


class PatientDetailView(APIView):
    """One patient record: staff read and correct it; a patient reads only their own."""

    permission_classes = [MembersReadStaffWrite]

    @extend_schema(responses=s.PatientSerializer)
    def get(self, request, slug, patient_id):
        patient = access_patient(
            request.user, self.membership.hospital, patient_id, membership=self.membership, request=request
        )
        return Response(s.PatientSerializer(patient, context={"membership": self.membership}).data)

    @extend_schema(request=s.PatientSerializer, responses={200: s.PatientSerializer, **refusals(409)})
    def patch(self, request, slug, patient_id):
        hospital = self.membership.hospital
        # The answer shows the whole record, so this is a read as well as a change, and audited as both.
        patient = access_patient(request.user, hospital, patient_id, membership=self.membership, request=request)
        form = s.PatientSerializer(patient, data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        patient = services.update_patient(
            hospital=hospital, patient=patient, actor=request.user, request=request, **form.validated_data
        )
        return Response(s.PatientSerializer(patient, context={"membership": self.membership}).data)


class HospitalSettingsView(APIView):
    """The hospital's settings: every member may read them, only an admin may change them."""

    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(responses=s.HospitalSettingsSerializer)
    def get(self, request, slug):
        return Response(s.HospitalSettingsSerializer(self.membership.hospital).data)

    @extend_schema(request=s.HospitalSettingsSerializer, responses=s.HospitalSettingsSerializer)
    def patch(self, request, slug):
        return self._update(request, partial=True)

    @extend_schema(request=s.HospitalSettingsSerializer, responses=s.HospitalSettingsSerializer)
    def put(self, request, slug):
        return self._update(request, partial=False)

    def _update(self, request, *, partial):
        hospital = self.membership.hospital
        form = s.HospitalSettingsSerializer(hospital, data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        hospital = services.update_hospital_settings(
            hospital=hospital, actor=request.user, request=request, **form.validated_data
        )
        return Response(s.HospitalSettingsSerializer(hospital).data)


class InvitationListView(InviteMixin, generics.ListAPIView):
    """Invitations of the hospital, newest first (admin); POST sends a new one."""

    permission_classes = [IsHospitalAdmin]
    serializer_class = s.InvitationSerializer

    def get_queryset(self):
        return Invitation.objects.filter(hospital=self.membership.hospital).select_related("invited_by")


class InvitationDetailView(APIView):
    permission_classes = [IsHospitalAdmin]

    def get_invitation(self, request, invitation_id):
        return access_invitation(request.user, self.membership.hospital, invitation_id, membership=self.membership)

    @extend_schema(responses=s.InvitationSerializer)
    def get(self, request, slug, invitation_id):
        return Response(s.InvitationSerializer(self.get_invitation(request, invitation_id)).data)

    @extend_schema(responses={204: None, **refusals(409)})
    def delete(self, request, slug, invitation_id):
        invitation = self.get_invitation(request, invitation_id)
        services.revoke_invitation(invitation=invitation, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AcceptInvitationView(APIView):
    """Accept an invitation by its token; with a password, this also creates the account."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=s.AcceptInvitationSerializer,
        responses={200: s.AcceptedInvitationSerializer, 201: s.AcceptedInvitationSerializer, **refusals(409)},
    )
    def post(self, request):
        form = s.AcceptInvitationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        accepted = services.accept_invitation(
            token=form.validated_data["token"], password=form.validated_data.get("password") or None,
            user=request.user, request=request,
        )
        code = status.HTTP_201_CREATED if accepted.account_created else status.HTTP_200_OK
        return Response(s.AcceptedInvitationSerializer(accepted).data, status=code)


class AuditEventListView(generics.ListAPIView):
    """The hospital's audit trail, newest first (admin, read-only). Filter with ?action=patient.read."""

    permission_classes = [IsHospitalAdmin]
    serializer_class = s.AuditEventSerializer

    @extend_schema(parameters=[OpenApiParameter("action", str, description="Only events with this action")],
                   responses={200: s.AuditEventSerializer(many=True), **refusals(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = s.AuditQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return audit_trail(self.membership.hospital, action=query.validated_data.get("action", ""))

    def get_serializer_context(self):
        context = {**super().get_serializer_context(), "patient_actors": {}}
        membership = getattr(self, "membership", None)  # none while the API schema is generated
        if membership is not None:
            context["read_note"] = note_reader(membership.hospital)
        return context

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if args:  # the page of events: its patient actors, named by record, in one query
            serializer.context["patient_actors"] = patient_actors(self.membership.hospital, list(args[0]))
        return serializer
