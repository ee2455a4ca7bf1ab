"""API errors are for people: every error body is {"error": code, "detail": sentence}."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
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
        response.data = {"error": "invalid", "detail": "The request has invalid fields.", "fields": data}
    return response
