"""The upload limit, rendered from settings into the upload page.

The page's script checks a file's size before sending it and shows the server's own sentence, so the
limit has one source (settings.UPLOAD_MAX_BYTES) and no copy in JavaScript.
"""

from django import template
from django.conf import settings
from django.utils.html import format_html

from diagnostics.limits import size_words, too_large_sentence

register = template.Library()


@register.simple_tag
def upload_limit_attributes():
    """data-max-bytes and data-too-large for the upload form."""
    limit = settings.UPLOAD_MAX_BYTES
    return format_html('data-max-bytes="{}" data-too-large="{}"', limit, too_large_sentence(limit))


@register.simple_tag
def upload_limit_words():
    return size_words(settings.UPLOAD_MAX_BYTES)
