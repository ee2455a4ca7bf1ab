"""Scan API: thin views that parse, call diagnostics.access / diagnostics.services, and serialize."""

import logging

from django.conf import settings
from django.db.models import Q
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from diagnostics import services
from diagnostics.access import access_scan, may_see_ai_result, may_see_heatmap, may_see_outline, visible_scans
from diagnostics.api.parsers import ScanUploadParser
from diagnostics.api.serializers import (ReviewInputSerializer, ScanDetailSerializer, ScanRemovalSerializer,
                                         ScanSearchSerializer, ScanSerializer, ScanUploadedSerializer,
                                         ScanUploadSerializer, scan_data)
from diagnostics.limits import too_large_sentence
from diagnostics.ml.readers import CLASS_NAMES
from diagnostics.models.scans import Diagnosis, ReviewState, ScanSource, ScanStatus
from diagnostics.shown_slices import shown_slices
from hospitals.access import access_membership, access_patient, visible_patients
from hospitals.audit import record_audit
from hospitals.crypto import DecryptionError
from hospitals.keys import mrn_digest
from hospitals.models import AIResultVisibility, Patient, Role
from hospitals.storage import read_blob
from neurofed.api_schema import refusals

logger = logging.getLogger(__name__)


def error(code: str, detail: str, http_status: int) -> Response:
    return Response({"error": code, "detail": detail}, status=http_status)


def body_too_large(request) -> Response | None:
    """413 for a body declared over the upload limit, before it is read; else None.

    Uploads are held in memory only (settings.FILE_UPLOAD_HANDLERS), and that handler does not take a
    file of a larger body: it would be dropped unseen, and a review stored without the outline it carried.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:  # a server in front normally refuses such a request before it gets here
        return error("invalid_length", "The request's Content-Length is not a number.", 400)
    if declared > settings.UPLOAD_MAX_BYTES + 64 * 1024:
        return error("too_large", too_large_sentence(settings.UPLOAD_MAX_BYTES), 413)
    return None


class _ScanListing:
    """The scan list, filtered by the query string and, for a search, by a record number."""

    def get_queryset(self):
        """The scans this member may see, before filters (the browsable API's page asks for it too)."""
        if not hasattr(self, "membership"):
            self.membership = access_membership(self.request.user, self.kwargs["slug"])
        return visible_scans(self.request.user, self.membership.hospital, self.membership).select_related(
            "hospital", "patient", "diagnosis", "diagnosis__model_version", "diagnosis__segmenter_version"
        )

    def _listing(self, request, record_number: str = ""):
        scans = self.get_queryset()
        membership = self.membership
        try:
            scans = self._filter(scans, request.query_params, membership)
        except ValueError as exc:
            return error("invalid_filter", str(exc), 400)
        if record_number:
            scans = self._of_record_number(scans, record_number, request, membership)
        page = self.paginate_queryset(scans)
        return self.get_paginated_response([scan_data(scan, membership) for scan in page])

    @staticmethod
    def _filter(scans, params, membership):
        source = params.get("source", ScanSource.UPLOAD)
        if source not in ScanSource.values:
            raise ValueError(f"source must be one of {', '.join(ScanSource.values)}.")
        scans = scans.filter(source=source)
        if "status" in params:
            if params["status"] not in ScanStatus.values:
                raise ValueError(f"status must be one of {', '.join(ScanStatus.values)}.")
            scans = scans.filter(status=params["status"])
        if params.get("review_state") == "reviewed":
            # Confirmed and corrected together, newest first, so the worklist can page through them as one list.
            scans = scans.exclude(review_state=ReviewState.UNREVIEWED)
        elif "review_state" in params:
            if params["review_state"] not in ReviewState.values:
                raise ValueError(f"review_state must be one of {', '.join(ReviewState.values)} or reviewed.")
            scans = scans.filter(review_state=params["review_state"])
        filters_on_result = {"label", "min_confidence", "max_confidence"} & set(params)
        if filters_on_result:
            # The reading of an image unlike the MRIs the software learnt from may mean nothing: until a
            # doctor has read it, it matches no filter on the software's class or confidence.
            scans = scans.exclude(diagnosis__unusual_image=True, review_state=ReviewState.UNREVIEWED)
        if (filters_on_result and membership.role == Role.PATIENT
                and membership.hospital.patients_see_ai_results == AIResultVisibility.AFTER_REVIEW):
            # Otherwise a label filter would reveal the unreviewed AI result it is meant to withhold.
            scans = scans.exclude(review_state=ReviewState.UNREVIEWED)
        if "label" in params:
            label = params["label"]
            if label not in CLASS_NAMES:
                raise ValueError(f"label must be one of {', '.join(CLASS_NAMES)}.")
            scans = scans.filter(Q(reviewed_label=label) | Q(reviewed_label="", diagnosis__label=label))
        for name, lookup in (("min_confidence", "gte"), ("max_confidence", "lte")):
            if name in params:
                try:
                    value = float(params[name])
                except ValueError:
                    raise ValueError(f"{name} must be a number between 0 and 1.") from None
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be a number between 0 and 1.")
                scans = scans.filter(**{f"diagnosis__confidence__{lookup}": value})
        return scans

    @staticmethod
    def _of_record_number(scans, record_number, request, membership):
        """Scans of the patient with this record number (exact, case as typed does not matter).

        Record numbers are stored encrypted; their keyed digest finds the record without decrypting any.
        Finding a record by its number is a read of that record, audited as one.
        """
        hospital = membership.hospital
        digest = mrn_digest(hospital, record_number)
        patient = visible_patients(request.user, hospital, membership).filter(mrn_digest=digest).first()
        if patient is None:
            return scans.none()
        record_audit(actor=request.user, hospital=hospital, action="patient.find_by_mrn", obj=patient, request=request)
        return scans.filter(patient=patient)


# The query string _ScanListing._filter reads, as /api/docs/ lists it.
LIST_FILTERS = [
    OpenApiParameter("source", str, enum=ScanSource.values, description=f"Default: {ScanSource.UPLOAD}."),
    OpenApiParameter("status", str, enum=ScanStatus.values),
    OpenApiParameter("review_state", str, enum=[*ReviewState.values, "reviewed"],
                     description="reviewed: confirmed and corrected together."),
    OpenApiParameter("label", str, enum=CLASS_NAMES,
                     description="A doctor's label, else the software's; an unusual image matches only once read."),
    OpenApiParameter("min_confidence", float, description="The software's confidence, 0 to 1."),
    OpenApiParameter("max_confidence", float, description="The software's confidence, 0 to 1."),
]


class ScanSearchView(_ScanListing, GenericAPIView):
    """POST: the scan list's answer, for the patient with the record number `mrn` given in the body.

    A record number identifies a patient, and URLs end up in access logs, proxies and browser history:
    so it travels in a body, as FHIR's POST _search does. The other filters, `limit` and `offset` stay in
    the query string (the answer's `next` link carries them; post the same body to it).
    """

    parser_classes = [JSONParser]
    # The form the browsable API and OPTIONS describe (post reads the body itself).
    serializer_class = ScanSearchSerializer

    @extend_schema(request=ScanSearchSerializer, responses=ScanSerializer(many=True), parameters=LIST_FILTERS)
    def post(self, request, slug):
        if not isinstance(request.data, dict) or "mrn" not in request.data:
            return error("mrn_required", "Send the record number to search for as 'mrn' in a JSON body.", 400)
        form = ScanSearchSerializer(data=request.data)
        form.is_valid(raise_exception=True)  # an 'mrn' that is sent but unusable: invalid, naming why
        return self._listing(request, form.validated_data["mrn"].strip())


class ScanListView(_ScanListing, GenericAPIView):
    """GET: scans the member may see, newest first, filtered. POST: upload a scan (multipart, `file`)."""

    parser_classes = [ScanUploadParser]
    # The upload form the browsable API draws (post reads the form itself).
    serializer_class = ScanUploadSerializer

    @extend_schema(responses={200: ScanSerializer(many=True), **refusals(400)}, parameters=LIST_FILTERS)
    def get(self, request, slug):
        if "mrn" in request.query_params:
            return error("record_number_in_url", "A record number must not be sent in a URL, where logs keep it; "
                                                 "POST it as 'mrn' to the scans' search/ address.", 400)
        return self._listing(request)

    @extend_schema(request=ScanUploadSerializer, responses={201: ScanUploadedSerializer, 200: ScanUploadedSerializer,
                                                          **refusals(409, 413, 415, 422, 503)})
    def post(self, request, slug):
        membership = access_membership(request.user, slug)
        hospital = membership.hospital
        if (refused := body_too_large(request)) is not None:
            return refused
        if request.data.get("_file_name_had_path"):
            return error("invalid_filename", "The file name must not contain a folder path; upload the file alone.",
                         400)
        upload = request.FILES.get("file")
        if upload is None:
            return error("no_file", "Attach the scan as the multipart field 'file'.", 400)
        if upload.size > settings.UPLOAD_MAX_BYTES:
            return error("too_large", too_large_sentence(settings.UPLOAD_MAX_BYTES), 413)
        if membership.role == Role.PATIENT:
            patient = Patient.objects.filter(hospital=hospital, user=request.user).first()
            if patient is None:
                return error("no_patient_record", "Your account has no patient record at this hospital yet.", 409)
        else:
            patient_id = request.data.get("patient")
            if not patient_id:
                return error("patient_required", "Name the patient the scan belongs to in the field 'patient'.", 400)
            patient = access_patient(request.user, hospital, patient_id, membership=membership, request=request)
        try:
            scan, created = services.upload_scan(
                hospital=hospital, patient=patient, data=upload.read(), uploaded_by=request.user, request=request
            )
        except services.UploadRejected as rejected:
            logger.info("upload to %s rejected: %s", hospital.slug, rejected.code)
            return error(rejected.code, rejected.detail, rejected.status)
        body = scan_data(scan, membership, detail=True)
        body["duplicate"] = not created
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ScanDetailView(GenericAPIView):
    """GET: the scan. DELETE: remove it, with its result and files (`reason`, required of an admin)."""

    @extend_schema(responses=ScanDetailSerializer)
    def get(self, request, slug, scan_id):
        membership = access_membership(request.user, slug)
        scan = access_scan(request.user, membership.hospital, scan_id, membership, request=request)
        return Response(scan_data(scan, membership, detail=True))

    # The schema tools leave a DELETE's body out of the docs, so the description says what to send.
    @extend_schema(request=ScanRemovalSerializer, responses={204: None, **refusals(400, 403, 409)},
                   description="Remove the scan with its result, reviews and files. Send a JSON body "
                               '`{"reason": "..."}`: required of an admin (it goes to the audit log, sealed '
                               "under the hospital's key; write no patient details in it), optional for the "
                               "patient, who may remove their own upload until a doctor has reviewed it.")
    def delete(self, request, slug, scan_id):
        membership = access_membership(request.user, slug)
        scan = access_scan(request.user, membership.hospital, scan_id, membership, request=request)
        form = ScanRemovalSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.remove_scan(hospital=membership.hospital, scan=scan, membership=membership,
                             reason=form.validated_data["reason"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScanReviewView(GenericAPIView):
    """A doctor confirms or changes the label; optional corrected mask (PNG) and notes."""

    parser_classes = [ScanUploadParser, JSONParser]
    serializer_class = ReviewInputSerializer  # the form the browsable API and OPTIONS describe

    @extend_schema(request=ReviewInputSerializer, responses={201: ScanDetailSerializer, **refusals(403, 409, 413, 415, 422)})
    def post(self, request, slug, scan_id):
        membership = access_membership(request.user, slug)
        scan = access_scan(request.user, membership.hospital, scan_id, membership, request=request)
        if membership.role != Role.DOCTOR:
            raise PermissionDenied("Only a doctor of this hospital can review a scan.")
        if (refused := body_too_large(request)) is not None:
            return refused
        form = ReviewInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        mask = form.validated_data.get("mask")
        try:
            review = services.review_scan(
                hospital=membership.hospital, scan=scan, reviewer=request.user, label=form.validated_data["label"],
                notes=form.validated_data.get("notes", ""), mask_png=mask.read() if mask else None,
                last_review_seen=form.validated_data.get("last_review_seen"),
                outline_based_on=form.validated_data.get("outline_based_on"), request=request,
            )
        except services.UploadRejected as rejected:
            return error(rejected.code, rejected.detail, rejected.status)
        # The scan as the review left it: read again, it may already be gone (an admin removed it since).
        return Response(scan_data(review.scan, membership, detail=True), status=status.HTTP_201_CREATED)


class _ScanPNGView(GenericAPIView):
    """A PNG derived from a scan, decrypted on the fly; never cached by a browser or a proxy."""

    what = ""

    def perform_content_negotiation(self, request, force=False):
        # An <img> asks for image/*; errors still go out as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, **refusals(500)})
    def get(self, request, slug, scan_id):
        membership = access_membership(request.user, slug)
        scan = access_scan(request.user, membership.hospital, scan_id, membership, request=request,
                           action=f"scan.{self.what}")
        try:
            png = self.render(request, scan, membership)
        except DecryptionError:
            logger.error("scan %s: stored %s failed to decrypt", scan.id, self.what)
            return error("unavailable", "The stored image could not be opened; the hospital's IT team has been told.",
                         500)
        except services.UploadRejected as refused:
            # A stored scan the decoder refuses now (its limits were lowered since the upload).
            logger.error("scan %s: stored %s cannot be decoded (%s)", scan.id, self.what, refused.code)
            return error("unavailable", "The stored image could not be opened; the hospital's IT team has been told.",
                         500)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def render(self, request, scan, membership) -> bytes:
        raise NotImplementedError

    @staticmethod
    def shown_diagnosis(scan, membership):
        """The scan's diagnosis if this member may see it yet, else None."""
        diagnosis = Diagnosis.objects.filter(scan=scan).first()
        return diagnosis if diagnosis is not None and may_see_ai_result(scan, membership) else None

    @classmethod
    def visible_diagnosis(cls, scan, membership):
        diagnosis = cls.shown_diagnosis(scan, membership)
        if diagnosis is None:
            raise Http404("This scan has no result to show yet")
        return diagnosis


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("slice", int, description="Which slice of a volume; default: the analysed one for those "
                                               "who may see the result, else the middle one."),
]))
class ScanImageView(_ScanPNGView):
    """The scan itself: the analysed slice for those who may see the result, else the middle one (or
    ?slice=N of a volume), windowed to 8 bits."""

    what = "image"

    def render(self, request, scan, membership):
        slices = shown_slices(scan)
        # The analysed slice is the one the model flagged: showing it by default would tell a patient
        # where the tumour was found before a doctor has reviewed the result.
        diagnosis = self.shown_diagnosis(scan, membership)
        default = diagnosis.slice_index if diagnosis is not None else len(slices) // 2
        try:
            index = int(request.query_params.get("slice", default))
        except ValueError:
            raise Http404("No such slice") from None
        if not 0 <= index < len(slices):
            raise Http404("No such slice")
        return services.encode_png(slices[index])


class ScanMaskView(_ScanPNGView):
    """The tumour outline (0 / 255): a doctor's correction when there is one, else the model's."""

    what = "mask"

    def render(self, request, scan, membership):
        diagnosis = self.visible_diagnosis(scan, membership)
        if not may_see_outline(scan, membership):
            raise Http404("No outline with this result")
        review = services.standing_outline_correction(scan)
        if review is not None:
            return read_blob(scan.hospital, review.mask_path, record_type=services.REVIEW_MASK_BLOB,
                             record_id=review.id, sha256=review.mask_sha256)
        if not diagnosis.mask_path:
            raise Http404("No mask for this scan")
        return read_blob(scan.hospital, diagnosis.mask_path, record_type=services.MASK_BLOB, record_id=diagnosis.id,
                         sha256=diagnosis.mask_sha256)


class ScanHeatmapView(_ScanPNGView):
    """Where the classifier looked (RGBA overlay, transparent where it did not)."""

    what = "heatmap"

    def render(self, request, scan, membership):
        diagnosis = self.visible_diagnosis(scan, membership)
        if not diagnosis.heatmap_path or not may_see_heatmap(scan, diagnosis, membership):
            raise Http404("No heatmap for this scan")
        return read_blob(scan.hospital, diagnosis.heatmap_path, record_type=services.HEATMAP_BLOB,
                         record_id=diagnosis.id, sha256=diagnosis.heatmap_sha256)

