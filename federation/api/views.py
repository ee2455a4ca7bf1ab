"""Federated runs over the API. Thin: parse, call federation.access / federation.services, serialize.

Starting, stopping and promoting are the platform operator's (a Django superuser's); the admins of
participating hospitals may watch, reading only their own hospital's node figures (federation.access).
Hospitals opt in through their settings endpoint
(PATCH /api/v1/hospitals/<slug>/settings/ {"federation_opt_in": true}).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from federation import services
from federation.access import access_run, visible_runs
from hospitals.access import access_membership
from hospitals.models import Role
from federation.api import serializers as s
from neurofed.api_schema import refusals


def _require_operator(request):
    if not request.user.is_superuser:
        raise PermissionDenied("Only the platform operator may do this.")


class RunListView(generics.ListAPIView):
    serializer_class = s.RunSerializer

    def get_queryset(self):
        return visible_runs(self.request.user).prefetch_related("hospitals", "rounds")

    @extend_schema(request=s.StartRunSerializer, responses={201: s.RunSerializer, **refusals(403, 409)})
    def post(self, request):
        _require_operator(request)
        data = s.StartRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        hospitals = params.pop("hospitals")
        run = services.start_federated_run(hospitals=hospitals, actor=request.user, request=request, **params)
        run.refresh_from_db()  # a run the task queue refused has failed already
        return Response(s.RunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)


class RunDetailView(APIView):
    @extend_schema(responses=s.RunSerializer)
    def get(self, request, run_id):
        return Response(s.RunSerializer(access_run(request.user, run_id), context={"request": request}).data)


class RunStopView(APIView):
    @extend_schema(request=None, responses={200: s.RunSerializer, **refusals(403, 409)})
    def post(self, request, run_id):
        run = access_run(request.user, run_id)
        _require_operator(request)
        run = services.stop_federated_run(run=run, actor=request.user, request=request)
        return Response(s.RunSerializer(run, context={"request": request}).data)


class RunPromoteView(APIView):
    @extend_schema(request=s.RunPromoteSerializer, responses={200: s.RunSerializer, **refusals(403, 409)})
    def post(self, request, run_id):
        run = access_run(request.user, run_id)
        _require_operator(request)
        accept = s.RunPromoteSerializer(data=request.data)
        accept.is_valid(raise_exception=True)
        named = accept.validated_data.get("accepted_against")
        services.promote_federated_model(
            run=run, actor=request.user, request=request, accept_lower_score=accept.validated_data["accept_lower_score"],
            accepted_against=services.version_of_candidates_task(run, named) if named is not None else None)
        run.refresh_from_db()
        return Response(s.RunSerializer(run, context={"request": request}).data)


class HospitalRunStartView(APIView):
    """A hospital admin starts a run over every opted-in hospital (federation.services.start_hospital_run)."""

    @extend_schema(request=s.StartHospitalRunSerializer, responses={201: s.RunSerializer, **refusals(403, 409)})
    def post(self, request, slug):
        membership = access_membership(request.user, slug, roles=(Role.ADMIN,))
        data = s.StartHospitalRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.start_hospital_run(hospital=membership.hospital, actor=request.user, request=request,
                                          **data.validated_data)
        run.refresh_from_db()  # a run the task queue refused has failed already
        return Response(s.RunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)



class HospitalTrainingCasesView(APIView):
    """How many cases a hospital's node would train on, against the minimum a run counts it with: the
    hospital's admin reads them before starting a run (only counts, and only of this hospital)."""

    @extend_schema(responses={200: s.TrainingCasesSerializer, **refusals(403)})
    def get(self, request, slug):
        membership = access_membership(request.user, slug, roles=(Role.ADMIN,))
        return Response(s.TrainingCasesSerializer(services.training_case_counts(membership.hospital)).data)
