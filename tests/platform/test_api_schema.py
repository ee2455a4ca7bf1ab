"""The OpenAPI schema generates and /api/docs/ is served from bundled static files, not a CDN."""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

HOSPITALS_PATHS = [
    "/api/v1/auth/token/", "/api/v1/me/", "/api/v1/hospitals/", "/api/v1/hospitals/{slug}/members/",
    "/api/v1/hospitals/{slug}/members/{member_id}/", "/api/v1/hospitals/{slug}/patients/",
    "/api/v1/hospitals/{slug}/patients/{patient_id}/", "/api/v1/hospitals/{slug}/settings/",
    "/api/v1/hospitals/{slug}/invitations/", "/api/v1/hospitals/{slug}/invitations/{invitation_id}/",
    "/api/v1/hospitals/{slug}/audit/", "/api/v1/invitations/accept/",
]


def test_schema_is_served_and_lists_the_hospitals_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(HOSPITALS_PATHS) <= set(schema["paths"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_schema_has_no_warnings_from_the_hospitals_api(capsys, tmp_path):
    call_command("spectacular", "--validate", "--file", str(tmp_path / "schema.yml"))
    ours = [str(ROOT / "hospitals"), str(ROOT / "platform"), *(f"'{path}'" for path in HOSPITALS_PATHS)]
    problems = [
        line for line in capsys.readouterr().err.splitlines()
        if ("Warning" in line or "Error" in line) and any(mark in line for mark in ours)
    ]
    assert problems == []


def test_docs_page_loads_from_bundled_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs"):
        assert cdn not in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
