"""Writes on tenants, one verb each. Each runs in a transaction and leaves an audit event."""

from django.db import transaction

from hospitals.audit import record_audit
from hospitals.keys import mrn_digest, new_wrapped_data_key
from hospitals.models import Hospital, Membership, Patient


@transaction.atomic
def create_hospital(*, slug: str, name: str, actor=None) -> Hospital:
    hospital = Hospital(slug=slug, name=name)
    hospital.wrapped_data_key, hospital.master_key_id = new_wrapped_data_key(str(hospital.id))
    hospital.save()
    record_audit(actor=actor, hospital=hospital, action="hospital.create", obj=hospital)
    return hospital


@transaction.atomic
def add_member(*, hospital: Hospital, user, role: str, actor=None) -> Membership:
    membership = Membership.objects.create(hospital=hospital, user=user, role=role)
    record_audit(actor=actor, hospital=hospital, action="membership.create", obj=membership)
    return membership


@transaction.atomic
def create_patient(
    *, hospital: Hospital, full_name: str, date_of_birth=None, medical_record_number: str = "", user=None,
    notes: str = "", actor=None, request=None,
) -> Patient:
    patient = Patient.objects.create(
        hospital=hospital,
        user=user,
        full_name=full_name,
        date_of_birth=date_of_birth,
        medical_record_number=medical_record_number,
        mrn_digest=mrn_digest(hospital, medical_record_number),
        notes=notes,
    )
    record_audit(actor=actor, hospital=hospital, action="patient.create", obj=patient, request=request)
    return patient
