"""Every answer carries the Content-Security-Policy and the Permissions-Policy (neurofed/csp.py), and the
UI's markup needs nothing the policy refuses: no inline script, event handler or style."""

import re
from pathlib import Path

import pytest

import frontend
from hospitals.models import Patient
from tests.factories import make_user

pytestmark = pytest.mark.django_db

STRICT = ("default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
          "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'")
FRONTEND = Path(frontend.__file__).parent


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";")}


def assert_strict(response):
    policy = directives(response)
    for directive in STRICT:
        assert policy[directive.split()[0]] == directive, response["Content-Security-Policy"]
    for refused in ("unsafe-inline", "unsafe-eval", "report-uri"):
        assert refused not in response["Content-Security-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "usb=()"):
        assert feature in response["Permissions-Policy"]


def test_a_page_an_api_answer_and_the_admin_carry_the_strict_policy(client, world, api):
    record = Patient.objects.get(hospital=world.a, user=world.owner)
    assert_strict(client.get("/accounts/login/"))
    client.force_login(world.doctor_a)
    page = client.get(f"/h/st-anne/patients/{record.pk}/")
    assert page.status_code == 200
    assert_strict(page)
    answer = api(world.doctor_a).get(f"/api/v1/hospitals/st-anne/patients/{record.pk}/")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert_strict(answer)
    assert_strict(client.get("/no-such-page/"))

    client.force_login(make_user("operator@neurofed.example", is_superuser=True, is_staff=True))
    for url in ("/admin/", "/admin/auth/user/", "/admin/auth/user/add/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)


def test_the_live_updates_socket_of_this_host_is_allowed_by_name(client, settings):
    settings.ALLOWED_HOSTS = ["testserver", "neurofed.example"]
    # 'self' covers it in current browsers only; live.js opens wss: on an https page, ws: otherwise.
    assert directives(client.get("/accounts/login/"))["connect-src"] == "connect-src 'self' ws://testserver"
    secure = client.get("/accounts/login/", secure=True, HTTP_HOST="neurofed.example:8443")
    assert directives(secure)["connect-src"] == "connect-src 'self' wss://neurofed.example:8443"


def test_a_refused_host_gets_the_policy_without_a_socket(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert directives(response)["connect-src"] == "connect-src 'self'"


def test_reports_go_where_the_deployment_says(client, settings):
    settings.CSP_REPORT_URI = "https://reports.neurofed.example/csp"
    assert directives(client.get("/accounts/login/"))["report-uri"] == "report-uri https://reports.neurofed.example/csp"


def test_the_browsable_api_may_use_inline_styles_but_never_inline_scripts(client, world):
    client.force_login(world.doctor_a)
    page = client.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    policy = directives(page)
    assert policy["style-src"] == "style-src 'self' 'unsafe-inline'"
    assert policy["script-src"] == "script-src 'self'"
    json_answer = client.get("/api/v1/me/", HTTP_ACCEPT="application/json")
    assert directives(json_answer)["style-src"] == "style-src 'self'"


def test_the_api_docs_start_swagger_ui_from_a_script_file(client):
    page = client.get("/api/docs/")
    assert_strict(page)
    html = page.content.decode()
    assert "<style" not in html
    start = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"></script>', html)
    assert start, html
    script = client.get(start.group(1).replace("&amp;", "&"))
    assert script.status_code == 200 and "SwaggerUIBundle(" in script.content.decode()


# What the policy refuses, in markup: a <script> with code in it (a JSON data block is not run), an
# on...= handler, a style="..." attribute or a <style> block, and a javascript: URL.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"\sstyle\s*=|<style", re.I)


def test_templates_and_scripts_hold_nothing_the_policy_refuses():
    offenders = []
    for path in sorted((FRONTEND / "templates").rglob("*.html")):
        text = path.read_text()
        for name, pattern in (("inline script", INLINE_SCRIPT), ("event handler", HANDLER), ("style", STYLE)):
            if pattern.search(text):
                offenders.append(f"{path.relative_to(FRONTEND)}: {name}")
        if "javascript:" in text:
            offenders.append(f"{path.relative_to(FRONTEND)}: javascript: URL")
    # Scripts build markup in template strings: a style="..." or on...= there is refused the same way.
    for path in sorted((FRONTEND / "static").rglob("*.js")):
        text = path.read_text()
        if STYLE.search(text) or HANDLER.search(text) or "javascript:" in text:
            offenders.append(f"{path.relative_to(FRONTEND)}: inline style or handler in markup")
    assert offenders == []
