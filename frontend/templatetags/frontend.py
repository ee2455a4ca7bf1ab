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
