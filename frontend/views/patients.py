"""The patient record page for staff: the record's details, corrected in place, and the patient's scans.

A doctor reading a case wants the patient's earlier scans beside it; an admin or doctor fixes a
misspelt name or a wrong date of birth here rather than through the API.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect

from diagnostics.access import visible_scans
from diagnostics.api.serializers import scan_data
from diagnostics.models import ScanSource
from frontend.forms import PatientRecordForm
from frontend.views.base import STAFF, hospital_page, render_page
from frontend.views.scans import LABEL_NAMES
from hospitals import services
from hospitals.access import access_patient
from hospitals.errors import DomainError

SCANS_PAGE_SIZE = 20
# The service's refusals that are about one field: the page marks that field, not the form as a whole.
RECORD_REFUSAL_FIELDS = {
    "invalid_date_of_birth": "date_of_birth",
    "duplicate_mrn": "medical_record_number",
}


@hospital_page(roles=STAFF)
def patient(request, membership, patient_id):
    hospital = membership.hospital
    record = access_patient(request.user, hospital, patient_id, membership=membership, request=request)
    initial = {name: getattr(record, name) for name in services.PATIENT_FIELDS}
    form = PatientRecordForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        try:
            services.update_patient(hospital=hospital, patient=record, actor=request.user, request=request,
                                    **form.cleaned_data)
        except DomainError as refused:
            form.add_error(RECORD_REFUSAL_FIELDS.get(refused.code), refused.detail)
        else:
            messages.success(request, "The patient record has been saved.")
            return redirect("frontend:patient", hospital.slug, record.pk)
    scans = (visible_scans(request.user, hospital, membership)
             .filter(patient=record, source=ScanSource.UPLOAD)
             .select_related("hospital", "patient", "diagnosis", "diagnosis__model_version",
                             "diagnosis__segmenter_version"))
    page = Paginator(scans, SCANS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "record": record,
        "form": form,
        "rows": [scan_data(scan, membership) for scan in page.object_list],
        "page": page,
        "label_names": LABEL_NAMES,
    }
    return render_page(request, "frontend/doctor/patient.html", context, membership=membership,
                       status=400 if form.is_bound else 200)
