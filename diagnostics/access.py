"""The one way to fetch scans (DESIGN §2): hospital and user explicit, 404 for missing and not yours."""

from django.core.exceptions import ValidationError
from django.http import Http404

from diagnostics.models.scans import Scan, ScanSource
from hospitals.access import STAFF_ROLES, _require_own_membership
from hospitals.audit import record_audit
from hospitals.models import AIResultVisibility, Membership, Role


def visible_scans(user, hospital, membership: Membership):
    """Scans of this hospital the member may see: all for staff, their own for a patient."""
    _require_own_membership(user, hospital, membership)
    scans = Scan.objects.filter(hospital=hospital)
    if membership.role in STAFF_ROLES:
        return scans
    return scans.filter(patient__user=user, source=ScanSource.UPLOAD)


def access_scan(user, hospital, scan_id, membership: Membership, *, request=None, action="scan.read") -> Scan:
    try:
        scan = visible_scans(user, hospital, membership).select_related("hospital", "patient").get(pk=scan_id)
    except (Scan.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such scan") from None
    record_audit(actor=user, hospital=hospital, action=action, obj=scan, request=request)
    return scan


def may_see_ai_result(scan: Scan, membership: Membership) -> bool:
    """Staff always; a patient at once only where the hospital allows it, otherwise after a review.

    An unusual image (one that does not look like the brain MRIs the models learnt from) waits for a
    doctor whatever the hospital's setting: the software's reading of it may be meaningless, and a
    "no tumour" read off a picture that is no MRI would be false reassurance.
    """
    if membership.role != Role.PATIENT:
        return True
    if scan.review_state != "unreviewed":
        return True
    diagnosis = getattr(scan, "diagnosis", None)
    if diagnosis is not None and diagnosis.unusual_image:
        return False
    return scan.hospital.patients_see_ai_results == AIResultVisibility.IMMEDIATELY


def may_see_heatmap(scan: Scan, diagnosis, membership: Membership) -> bool:
    """Whether this member is shown the heatmap of the software's reading.

    It explains that reading: once a doctor has changed the label, a patient would be shown where the
    software looked for a tumour the doctor says is not there, or is another. Staff keep it.
    """
    if membership.role != Role.PATIENT:
        return True
    return not scan.reviewed_label or scan.reviewed_label == diagnosis.label


def may_see_outline(scan: Scan, membership: Membership) -> bool:
    """Whether this member is shown a tumour outline with the result they see.

    The outline follows the diagnosis: a patient whose scan a doctor has read as "no tumour" is not
    shown the software's outline beside it (a result that reads "no tumour" over a drawn tumour
    contradicts itself). Staff keep it: it is what the software said, and the case viewer shows that.
    """
    if membership.role != Role.PATIENT:
        return True
    return scan.reviewed_label != "notumor"
