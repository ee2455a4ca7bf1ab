"""The worklist's filters are each named in full: a screen reader that lands on one control hears its
label alone, and "at least" alone does not say of what."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_every_worklist_filter_names_what_it_filters(client, world):
    client.force_login(world.doctor_a)
    html = client.get("/h/st-anne/worklist/").content.decode()
    labels = dict(re.findall(r'<label for="(filter-[\w-]+)">([^<]+)</label>', html))
    assert labels["filter-confidence"] == "Confidence at most"
    assert labels["filter-min-confidence"] == "Confidence at least"
