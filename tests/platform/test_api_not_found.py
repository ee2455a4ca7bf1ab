"""An /api/v1/ address that names no operation answers the API's error body, never an HTML page."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v1/hospitals/Not_A.Slug/patients/"])
def test_an_unknown_api_address_is_a_json_not_found(api, world, path):
    for client in (api(world.doctor_a), api()):
        response = client.get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json() == {"error": "not_found",
                                   "detail": "No such API address; the operations are listed at /api/docs/."}


def test_an_address_without_its_slash_is_told_the_address_meant_not_redirected(api, world):
    response = api(world.doctor_a).post("/api/v1/hospitals/st-anne/scans/search", {"mrn": "RN-1"}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "API addresses end with a slash: /api/v1/hospitals/st-anne/scans/search/"
