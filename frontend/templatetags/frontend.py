"""Small template helpers of the pages."""

from django import template
from django.utils.dateparse import parse_datetime

register = template.Library()


@register.filter
def label_name(label, names):
    return names.get(label, label) if label else ""


@register.filter
def iso_date(value):
    """An ISO timestamp from the API's JSON, as a datetime the date filter can format."""
    return parse_datetime(value) if value else None


@register.filter
def percent(value):
    return f"{value * 100:.0f}%" if value is not None else ""


# The words each audience reads for a scan's state, the same as the live pages' scripts use
# (scanpage.js for patients, worklist.js for staff), so a list and a scan's own page agree.
_PATIENT_STATUS = {"queued": "Waiting to be analysed", "processing": "Being analysed", "done": "Analysed",
                   "failed": "Could not be analysed"}
_STAFF_STATUS = {"queued": "Queued", "processing": "Analysing", "done": "Analysed", "failed": "Failed"}


@register.filter
def status_words(status, staff=False):
    return (_STAFF_STATUS if staff else _PATIENT_STATUS).get(status, status)
