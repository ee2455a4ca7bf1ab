"""Patients' and doctors' scan pages: upload, history, the result / case viewer, the worklist.

The pages render what the member may see through diagnostics.access and the API's own serializer
(scan_data), so a page and the API never disagree about what a patient is shown; live changes come
over the scan websockets and are fetched from the API again.
"""

from django.urls import reverse

from diagnostics.access import access_scan, visible_scans
from diagnostics.api.serializers import scan_data
from diagnostics.ml.readers import CLASS_NAMES
from diagnostics.models import ScanSource
from frontend.views.base import STAFF, hospital_page, render_page
from hospitals.access import access_patient, visible_patients
from hospitals.models import Role

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
        "patients": reverse("api-patients", kwargs={"slug": slug}),
        "page": f"/h/{slug}/scans/",
    }


@hospital_page(roles=(Role.PATIENT,))
def history(request, membership):
    scans = (
        visible_scans(request.user, membership.hospital, membership)
        .filter(source=ScanSource.UPLOAD)
        .select_related("hospital", "diagnosis", "diagnosis__model_version")
    )
    rows = [scan_data(scan, membership) for scan in scans]
    context = {"rows": rows, "label_names": LABEL_NAMES}
    return render_page(request, "frontend/patient/history.html", context, membership=membership)


@hospital_page(roles=(Role.PATIENT,))
def upload(request, membership):
    context = {"api": _api_urls(membership.hospital.slug)}
    return render_page(request, "frontend/patient/upload.html", context, membership=membership)


@hospital_page()
def scan(request, membership, scan_id):
    hospital = membership.hospital
    found = access_scan(request.user, hospital, scan_id, membership, request=request, action="scan.view")
    context = {
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
        return render_page(request, "frontend/doctor/case.html", context, membership=membership)
    return render_page(request, "frontend/patient/result.html", context, membership=membership)


@hospital_page(roles=STAFF)
def worklist(request, membership):
    hospital = membership.hospital
    # Names for the list, decrypted here once: the scan API carries only the patient's id.
    patients = visible_patients(request.user, hospital, membership).filter(scans__source=ScanSource.UPLOAD).distinct()
    context = {
        "api": _api_urls(hospital.slug),
        "labels": _labels(),
        "label_names": LABEL_NAMES,
        "patient_names": {str(p.id): p.full_name for p in patients},
        "ws_path": f"/ws/hospitals/{hospital.slug}/worklist/",
    }
    return render_page(request, "frontend/doctor/worklist.html", context, membership=membership)
