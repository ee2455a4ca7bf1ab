"""A JSON request body is bounded (neurofed.parsers): DRF reads and parses a body whole, and a few megabytes
of `[{},{},…]` took over a gigabyte to parse, from anyone, signed in or not. Files are counted apart, against
the upload limit."""

import io

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from neurofed.parsers import BoundedJSONParser, RequestBodyTooLarge
from tests.diagnostics.helpers import upload
from tests.diagnostics.samples import jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_bodies(settings):
    settings.API_MAX_JSON_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    return settings


def test_a_json_body_over_the_limit_is_refused_unread_even_signed_out(small_bodies):
    response = APIClient().post("/api/v1/auth/token/", "[" + "{}," * 5000 + "{}]", content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": "too_large",
                               "detail": "The request body is larger than the 4,096 bytes a request other than a file "
                                         "upload may have."}
    # Within the limit, the operation answers as ever.
    within = APIClient().post("/api/v1/auth/token/", {"email": "nobody@example.org", "password": "x" * 12},
                              format="json")
    assert within.status_code == 400 and within.json()["error"] != "too_large"


def test_a_json_body_sent_without_a_length_is_cut_off_at_the_limit(small_bodies, rf):
    parser = BoundedJSONParser()
    request = rf.post("/", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    endless = io.BytesIO(b"[" + b"{}," * 10**6 + b"{}]")
    with pytest.raises(RequestBodyTooLarge):
        parser.parse(endless, "application/json", {"request": request})
    assert endless.tell() == 4097  # read no further than the limit
    assert parser.parse(io.BytesIO(b'{"a": 1}'), "application/json", {"request": request}) == {"a": 1}
    with pytest.raises(ParseError):
        parser.parse(io.BytesIO(b"{"), "application/json", {"request": request})


def test_a_scan_larger_than_the_body_limit_is_still_uploaded(small_bodies, world, api):
    data = jpeg_bytes("glioma", 3)
    assert len(data) > small_bodies.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = upload(api(world.owner), world.a, data)
    assert response.status_code == 201, response.json()
