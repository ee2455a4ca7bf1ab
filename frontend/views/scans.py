"""Patients' and doctors' scan pages: upload, history, the result / case viewer, the worklist.

The pages render what the member may see through diagnostics.access and the API's own serializer
(scan_data), so a page and the API never disagree about what a patient is shown; live changes come
over the scan websockets and are fetched from the API again.
"""

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from diagnostics import services

from diagnostics.access import access_scan, visible_scans
from diagnostics.api.serializers import scan_data
from diagnostics.limits import size_words, too_large_sentence
from diagnostics.ml.readers import CLASS_NAMES
from diagnostics.models import ScanSource
from frontend.views.base import STAFF, hospital_page, render_page
from hospitals.access import access_patient, visible_patients
from hospitals.audit import record_audit
from hospitals.errors import DomainError
from hospitals.models import Role
from neurofed.pagination import LimitOffsetWithCeiling

# A page of the worklist is two API pages (awaiting review, reviewed), so a names request covers both.
WORKLIST_PAGE_SIZE = 50
WORKLIST_NAMES_MAX = 2 * WORKLIST_PAGE_SIZE
HISTORY_PAGE_SIZE = 20

LABEL_NAMES = {
    "glioma": "Glioma",
    "meningioma": "Meningioma",
    "notumor": "No tumour",
    "pituitary": "Pituitary tumour",
}


def _labels():
    return [(name, LABEL_NAMES.get(name, name)) for name in CLASS_NAMES]


def _api_urls(slug):
    return {
        "scans": reverse("diagnostics-api:scan-list", kwargs={"slug": slug}),
        "search": reverse("diagnostics-api:scan-search", kwargs={"slug": slug}),
        "page": f"/h/{slug}/scans/",
    }


@hospital_page(roles=(Role.PATIENT,))
def history(request, membership):
    scans = (
        visible_scans(request.user, membership.hospital, membership)
        .filter(source=ScanSource.UPLOAD)
        .select_related("hospital", "diagnosis", "diagnosis__model_version", "diagnosis__segmenter_version")
    )
    page = Paginator(scans, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [scan_data(scan, membership) for scan in page.object_list]
    context = {"rows": rows, "page": page, "label_names": LABEL_NAMES}
    return render_page(request, "frontend/patient/history.html", context, membership=membership)


@hospital_page(roles=(Role.PATIENT,))
def upload(request, membership):
    # The page's script refuses a file over the limit before sending it, with the server's own sentence:
    # the limit has one source, the settings.
    limit = settings.UPLOAD_MAX_BYTES
    context = {"api": _api_urls(membership.hospital.slug), "max_bytes": limit,
               "too_large": too_large_sentence(limit), "limit_words": size_words(limit)}
    return render_page(request, "frontend/patient/upload.html", context, membership=membership)


@hospital_page()
def scan(request, membership, scan_id):
    hospital = membership.hospital
    found = access_scan(request.user, hospital, scan_id, membership, request=request, action="scan.view")
    context = {
        "may_remove": services.may_remove_scan(found, membership),
        "scan": found,
        "data": scan_data(found, membership, detail=True),
        "labels": _labels(),
        "label_names": LABEL_NAMES,
        "ws_path": f"/ws/hospitals/{hospital.slug}/scans/{found.id}/",
    }
    if membership.role in STAFF:
        if found.patient_id:
            context["patient"] = access_patient(request.user, hospital, found.patient_id, membership=membership,
                                                request=request)
        context["may_review"] = membership.role == Role.DOCTOR
        context["reason_max"] = services.REMOVAL_REASON_MAX
        return render_page(request, "frontend/doctor/case.html", context, membership=membership)
    # Their own name, for the printed result they take to another doctor (never on the screen's chrome).
    context["patient_name"] = found.patient.full_name if found.patient_id else ""
    return render_page(request, "frontend/patient/result.html", context, membership=membership)


@require_POST
@hospital_page(roles=(Role.PATIENT, Role.ADMIN))
def scan_remove(request, membership, scan_id):
    hospital = membership.hospital
    found = access_scan(request.user, hospital, scan_id, membership, request=request)
    try:
        services.remove_scan(hospital=hospital, scan=found, membership=membership,
                             reason=request.POST.get("reason", ""), request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
        return redirect("frontend:scan", hospital.slug, found.pk)
    uploaded = date_format(localtime(found.created_at), "j M Y, H:i:s")  # seconds: uploads come close together
    messages.success(request, f"The scan uploaded {uploaded} has been removed.")
    return redirect("frontend:scans" if membership.role == Role.PATIENT else "frontend:worklist", hospital.slug)


@hospital_page(roles=STAFF)
def worklist(request, membership):
    hospital = membership.hospital
    context = {
        "api": _api_urls(hospital.slug),
        "names_url": reverse("frontend:worklist-names", args=[hospital.slug]),
        "labels": _labels(),
        "label_names": LABEL_NAMES,
        "page_size": WORKLIST_PAGE_SIZE,
        "names_max": WORKLIST_NAMES_MAX,
        "page_max": LimitOffsetWithCeiling.max_limit,
        "ws_path": f"/ws/hospitals/{hospital.slug}/worklist/",
    }
    return render_page(request, "frontend/doctor/worklist.html", context, membership=membership)


@hospital_page(roles=STAFF)
def worklist_names(request, membership):
    """The names of the patients whose scans the worklist shows: ?patient=<id>, repeated.

    Names are encrypted, so only the rows on screen are decrypted, not every patient of the hospital;
    one request reads them all, and is audited as one list read, as the patients API's list is.
    """
    hospital = membership.hospital
    wanted = request.GET.getlist("patient")
    if len(wanted) > WORKLIST_NAMES_MAX:
        return JsonResponse({"error": "too_many", "detail": f"Ask for at most {WORKLIST_NAMES_MAX} patients at once."},
                            status=400)
    try:
        ids = [str(uuid.UUID(value)) for value in wanted]
    except ValueError:
        return JsonResponse({"error": "invalid_id", "detail": "A patient id is not a valid id."}, status=400)
    patients = visible_patients(request.user, hospital, membership).filter(pk__in=ids)
    names = {str(patient.pk): patient.full_name for patient in patients}
    if names:
        record_audit(actor=request.user, hospital=hospital, action="patient.list", object_type="patient",
                     request=request, detail=f"worklist names: {len(names)}")
    return JsonResponse({"names": names})
