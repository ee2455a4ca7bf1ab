"""The emails that tell a patient a doctor has reviewed their scan, or that the hospital removed one.

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


def patient_account(scan):
    """The active account with an email that the scan's patient signs in with, or None."""
    patient = scan.patient
    user = patient.user if patient is not None else None
    return user if user is not None and user.is_active and user.email else None


def _send(subject: str, body: str, user, what: str, scan_id, hospital) -> bool:
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=[user.email])
    except Exception as exc:
        # By type only: a refused recipient's error names the patient's address.
        logger.error("could not email the patient of scan %s in %s that it was %s (%s)", scan_id, hospital.slug,
                     what, type(exc).__name__)
        return False
    logger.info("patient of scan %s in %s told by email that it was %s", scan_id, hospital.slug, what)
    return True


def tell_patient_scan_removed(*, hospital, scan_id, uploaded_at, user) -> bool:
    """Email a patient that the hospital removed a scan of theirs (its row is gone by now). The reason
    stays in the audit log: it was written for the hospital, and may not suit a patient's inbox."""
    # On the hospital's clock whichever way the removal came (a page or the API).
    uploaded = date_format(localtime(uploaded_at, hospital.tzinfo), r"j F Y \a\t H:i:s")  # uploads may share a day
    return _send(
        f"{hospital.name}: a scan has been removed from your record",
        f"{hospital.name} has removed the scan you uploaded on {uploaded}, with its result, from your record "
        "on NeuroFed, for example because it was uploaded in error.\n\n"
        f"If you did not expect this, or want to know why, contact {hospital.name}.\n",
        user, "removed", scan_id, hospital)


def tell_patient_scan_reviewed(scan, request=None) -> bool:
    """Email the scan's patient that it has been reviewed; False when there is no one to tell or it failed.

    Runs after the review has committed: a mail server that is down must not undo a doctor's review,
    and the patient sees the result on their next visit anyway.
    """
    user = patient_account(scan)
    if user is None:
        return False
    hospital = scan.hospital
    link = _scan_link(scan, request)
    uploaded = date_format(localtime(scan.created_at, hospital.tzinfo), "j F Y")
    return _send(
        f"{hospital.name}: a doctor has reviewed your scan",
        f"A doctor at {hospital.name} has reviewed the scan you uploaded on {uploaded}.\n\n"
        f"Sign in to NeuroFed to read the result and what it means for you{': ' + link if link else '.'}\n\n"
        "This message does not contain your result: email is not a private channel.\n",
        user, "reviewed", scan.pk, hospital)
