"""The API's error answers, in its OpenAPI schema.

Every error body is `{"error": code, "detail": sentence}` (api_errors.py), with `fields` for invalid
input. Each operation documents the statuses it answers with that body, so that a hospital's integrator
reading /api/docs/ knows which to handle. Some follow from the operation itself and are added here: 400
and 413 when it takes a body, 401 when it needs a signed-in caller, 403 when its hospital permission turns some
roles away, 404 when its path names a hospital or an object (missing and not yours answer alike). The
rest only the view's own code knows (403 for a role checked there, 409 for a conflict with the current
state, 413 / 415 / 422 / 503 for an upload, 429 for too many attempts, 500 for a stored file that cannot
be opened): the view lists them with `refusals(...)`. Every error answer the test suite receives is held
against this schema (tests/conftest.py).
"""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny

MEANINGS = {
    400: "The request is malformed or a field is invalid (`invalid`, with each bad field's messages in "
         "`fields`), or the service refuses it as it stands (`error` says why).",
    401: "Not signed in, or the token sent is not valid (revoked): send `Authorization: Token <key>` (from "
         "/api/v1/auth/token/) or a session cookie.",
    403: "Signed in, but this role may not do this (`permission_denied`, or `forbidden` with the reason).",
    404: "No such hospital or object, or not yours to see: both answer the same (`not_found`).",
    409: "The request conflicts with the current state (`error` says how, `detail` what to do).",
    413: "The upload or the request body is larger than the platform takes (`too_large`, `too_many_pixels`, "
         "`too_many_frames`).",
    415: "The body's Content-Type, or the uploaded file's format or compression, is not one this operation "
         "takes (`detail` names the ones that are).",
    422: "The uploaded file is damaged, empty or not what this operation takes (`detail` says which); nothing "
         "was stored.",
    429: "Too many attempts: wait the number of seconds in `Retry-After`.",
    500: "A stored file could not be opened (`unavailable`); the hospital's IT team has been told.",
    503: "Uploads cannot be checked at the moment (`gate_unavailable`); nothing was stored. Try again later.",
}


class ApiErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A code for programs: not_found, invalid, forbidden, ...")
    detail = serializers.CharField(help_text="A sentence for people: what is wrong and what to do.")
    fields = serializers.DictField(required=False, help_text="With `invalid`: each bad field's messages.")


def refusals(*statuses: int) -> dict:
    """Responses for `extend_schema(responses=...)`: the error statuses only this operation's code knows."""
    return {status: OpenApiResponse(ApiErrorSerializer, description=MEANINGS[status]) for status in statuses}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the error statuses every operation of its kind answers."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self._implied_error_statuses():
            if str(status) not in responses:
                responses[str(status)] = {**self._get_response_for_code(ApiErrorSerializer, str(status),
                                                                        direction=direction),
                                          "description": MEANINGS[status]}
        return dict(sorted(responses.items()))

    def _implied_error_statuses(self) -> list[int]:
        statuses = []
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            # 413: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (neurofed.parsers); 415: a body in a Content-Type
            # the operation's parsers do not read.
            statuses += [400, 413, 415]
        permissions = self.view.get_permissions()
        # Open to anyone, an operation still refuses a token that is not valid, where it reads tokens.
        authenticates = self.method not in getattr(self.view, "unauthenticated_methods", ()) and any(
            issubclass(authenticator, TokenAuthentication) for authenticator in self.view.authentication_classes)
        if authenticates or not all(isinstance(permission, AllowAny) for permission in permissions):
            statuses.append(401)
        # A hospital's permission classes know which roles they turn away (hospitals/api/permissions.py).
        if any(getattr(permission, "refuses_some_roles", lambda method: False)(self.method)
               for permission in permissions):
            statuses.append(403)
        if "{" in self.path:
            statuses.append(404)
        return statuses
