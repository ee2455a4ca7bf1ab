"""The email that tells a patient a doctor has reviewed their scan.

Email is not a private channel, so the message says only that there is something to read and where:
no diagnosis, no name of a condition, no image. The result itself is behind the sign-in, where the
hospital's rules on what a patient sees apply.
"""

import logging

from django.core.mail import send_mail
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime

logger = logging.getLogger(__name__)


def _scan_link(scan, request) -> str:
    """The scan's page, when the site has one (the pages live in another app)."""
    try:
        path = reverse("frontend:scan", args=[scan.hospital.slug, scan.pk])
    except NoReverseMatch:
        return ""
    return request.build_absolute_uri(path) if request is not None else path


def tell_patient_scan_reviewed(scan, request=None) -> bool:
    """Email the scan's patient that it has been reviewed; False when there is no one to tell or it failed.

    Runs after the review has committed: a mail server that is down must not undo a doctor's review,
    and the patient sees the result on their next visit anyway.
    """
    patient = scan.patient
    user = patient.user if patient is not None else None
    if user is None or not user.is_active or not user.email:
        return False
    hospital = scan.hospital
    link = _scan_link(scan, request)
    uploaded = date_format(localtime(scan.created_at), "j F Y")
    try:
        send_mail(
            subject=f"{hospital.name}: a doctor has reviewed your scan",
            message=(
                f"A doctor at {hospital.name} has reviewed the scan you uploaded on {uploaded}.\n\n"
                f"Sign in to NeuroFed to read the result and what it means for you{': ' + link if link else '.'}\n\n"
                "This message does not contain your result: email is not a private channel.\n"
            ),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception:
        logger.exception("could not email the patient of scan %s in %s that it was reviewed", scan.pk, hospital.slug)
        return False
    logger.info("patient of scan %s in %s told by email that it was reviewed", scan.pk, hospital.slug)
    return True
