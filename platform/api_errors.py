"""API errors are for people: every error body is {"error": code, "detail": sentence}."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from hospitals.errors import DomainError
from neurofed.parsers import RequestBodyTooLarge


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        # A refusal that lasts a known time (too many sign-in failures) says when to try again.
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return Response({"error": exc.code, "detail": exc.detail}, status=exc.status, headers=headers)
    # Django's own exceptions carry no DRF code; translate them first so the body says "not_found" or
    # "permission_denied" rather than a generic "error".
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):  # a body Django read itself, or a form's fields, over the limit
        exc = RequestBodyTooLarge.over(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "error" in data:
        return response
    code = getattr(exc, "default_code", "error")
    codes = exc.get_codes() if hasattr(exc, "get_codes") else code
    if isinstance(data, dict) and set(data) == {"detail"}:
        detail = data["detail"]
        response.data = {"error": codes if isinstance(codes, str) else code, "detail": str(detail)}
    else:
        fields = data if isinstance(data, dict) else as_serializer_error(exc)
        response.data = {"error": "invalid", "detail": _first_message(fields), "fields": fields}
    response.data = _encodable(response.data)
    return response


def _encodable(value):
    """The body with every lone surrogate written as its escape. A choice field's refusal quotes the value it
    refused, and a JSON string may carry half a surrogate pair ("\\ud800"), which no UTF-8 body can hold:
    left in, the 400 became a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(item) for item in value]
    return value


def _first_message(fields) -> str:
    """A sentence naming the first bad field, so a client that shows only `detail` still helps."""
    for name, messages in fields.items():
        message = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(message, dict):
            return _first_message(message)
        if name == "non_field_errors":
            return str(message)
        return f"{name}: {message}"
    return "The request has invalid fields."


def api_not_found(request):
    """An /api/ address that names no operation: the error body an API client reads, not an HTML page.

    It also stands in for Django's redirect to the address with a slash, which a client's POST would
    follow without its body: the answer says which address was meant instead.
    """
    detail = "No such API address; the operations are listed at /api/docs/."
    if not request.path_info.endswith("/"):
        try:
            resolve(request.path_info + "/")
        except Resolver404:
            pass
        else:
            detail = f"API addresses end with a slash: {request.path_info}/"
    return JsonResponse({"error": "not_found", "detail": detail}, status=404)
