"""The patient's upload page (frontend/templates/frontend/patient/upload.html): the size limit it checks
before sending comes from the server's settings, with the server's own sentence."""

import re
from html import unescape

import pytest

pytestmark = pytest.mark.django_db


def _form_attributes(html: str) -> dict:
    form = re.search(r'<form id="upload-form"[^>]*>', html).group(0)
    return {name: unescape(value) for name, value in re.findall(r'([\w-]+)="([^"]*)"', form)}


def test_upload_page_carries_the_servers_size_limit_and_its_sentence(client, world, settings):
    client.force_login(world.owner)
    attributes = _form_attributes(client.get("/h/st-anne/upload/").content.decode())
    assert attributes["data-max-bytes"] == str(settings.UPLOAD_MAX_BYTES) == "52428800"
    assert attributes["data-too-large"] == "The file is larger than 50 MB, the most that can be uploaded."


def test_a_changed_limit_reaches_the_page(client, world, settings):
    settings.UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    client.force_login(world.owner)
    html = client.get("/h/st-anne/upload/").content.decode()
    attributes = _form_attributes(html)
    assert attributes["data-max-bytes"] == "5242880"
    assert attributes["data-too-large"] == "The file is larger than 5 MB, the most that can be uploaded."
    assert "up to 5 MB." in html
