"""Holds an API error answer against the OpenAPI schema (see the autouse fixture in tests/conftest.py)."""

import functools
import json
import re

from django.urls import Resolver404, resolve

API_PREFIX = "/api/v1/"
# 405 is DRF's own answer to a method no operation has; it names no operation to document it under.
UNDOCUMENTED_STATUSES = {405}


@functools.cache
def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _path_template(path: str) -> str | None:
    """The schema's name for a request path ("/api/v1/hospitals/{slug}/scans/{scan_id}/"), or None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if match.url_name == "api-not-found":
        return None  # names no operation: tests/platform/test_api_not_found.py holds its answer
    route = match.route
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def check_error_is_documented(environ: dict, response) -> None:
    path, status = environ.get("PATH_INFO", ""), response.status_code
    if not path.startswith(API_PREFIX) or status < 400 or status in UNDOCUMENTED_STATUSES:
        return
    template = _path_template(path)
    if template is None:
        return
    method = environ["REQUEST_METHOD"].lower()
    if method == "options":
        return  # DRF's description of an address, which the schema does not list as an operation
    operation = _schema()["paths"].get(template, {}).get(method)
    assert operation is not None, f"{method.upper()} {template} answered {status} but is not in the schema"
    assert str(status) in operation["responses"], (
        f"{method.upper()} {template} answered {status} ({response.content[:200]!r}), which its schema does not "
        f"document: add it with neurofed.api_schema.refusals({status}) if it is right")
    if "text/html" in environ.get("HTTP_ACCEPT", ""):
        return  # the browsable API's page: the same refusal, drawn for a person rather than in the JSON body
    body = json.loads(response.content)
    assert {"error", "detail"} <= set(body) <= {"error", "detail", "fields"}, body
