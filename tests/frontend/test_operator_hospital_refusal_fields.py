"""A hospital refused for one value (its short name or its name) marks that field, with the sentence beside it."""

import re

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/operator/hospitals/"


@pytest.mark.parametrize("fields, field_id, sentence", [
    ({"slug": "st-anne"}, "id_slug", "A hospital with the short name st-anne exists already."),
    ({"slug": "St Anne"}, "id_slug", "The short name may hold only lower-case letters, digits and dashes"),
    ({"name": " st  anne's"}, "id_name", "A hospital named St Anne&#x27;s exists already"),
])
def test_the_refused_value_is_marked_on_its_own_field(client, world, django_user_model, fields, field_id, sentence):
    client.force_login(django_user_model.objects.create_superuser("operator@neurofed.example",
                                                                  "operator@neurofed.example", PASSWORD))
    html = client.post(URL, {"name": "Royal Infirmary", "slug": "royal", "admin_email": "it@royal.example",
                             **fields}).content.decode()
    field = re.search(rf'<input [^>]*id="{field_id}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and f"{field_id}_error" in field
    beside = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S).group(1)
    assert sentence in beside
    # The summary above the form links to the field rather than standing alone.
    assert f'<a href="#{field_id}">' in html


def test_every_refused_value_is_marked_at_once(client, world, django_user_model):
    """A short name, a name and an address that are all refused are all said on the first submit."""
    client.force_login(django_user_model.objects.create_superuser("operator@neurofed.example",
                                                                  "operator@neurofed.example", PASSWORD))
    response = client.post(URL, {"name": "north general", "slug": "st-anne", "admin_email": "not-an-address"})
    html = response.content.decode()
    assert response.status_code == 400
    for field_id, sentence in (("id_slug", "A hospital with the short name st-anne exists already."),
                               ("id_name", "A hospital named North General exists already"),
                               ("id_admin_email", "Enter a valid email address.")):
        beside = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html, re.S).group(1)
        assert sentence in beside and beside.count("<li>") == 1
        assert f'<a href="#{field_id}">' in html


@pytest.mark.parametrize("fields, field_id", [({"slug": "a\x00b"}, "id_slug"), ({"name": "Good\x00Name"}, "id_name")])
def test_a_nul_character_is_refused_on_its_field_not_a_server_error(client, world, django_user_model, fields,
                                                                     field_id):
    client.force_login(django_user_model.objects.create_superuser("operator@neurofed.example",
                                                                  "operator@neurofed.example", PASSWORD))
    response = client.post(URL, {"name": "Royal Infirmary", "slug": "royal", "admin_email": "it@royal.example",
                                 **fields})
    assert response.status_code == 400
    assert re.search(rf'<ul class="errorlist" id="{field_id}_error">', response.content.decode())


def test_the_operators_own_address_is_refused_beside_a_taken_short_name(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("operator@neurofed.example",
                                                                  "operator@neurofed.example", PASSWORD))
    html = client.post(URL, {"name": "Royal Infirmary", "slug": "st-anne",
                             "admin_email": "Operator@neurofed.example"}).content.decode()
    assert re.search(r'<ul class="errorlist" id="id_slug_error">.*exists already', html, re.S)
    assert re.search(r'<ul class="errorlist" id="id_admin_email_error">.*platform operator', html, re.S)
