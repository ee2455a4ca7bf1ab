"""The API's JSON bodies are bounded. DRF's JSONParser reads and parses a body whole, whatever its size, and
a few megabytes of `[{},{},…]` take a gigabyte to parse. No JSON operation needs more than a few kilobytes:
scans and masks come as multipart files, which Django's upload limits govern."""

import io

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class RequestBodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"

    @classmethod
    def over(cls, limit: int) -> "RequestBodyTooLarge":
        return cls(f"The request body is larger than the {limit:,} bytes a request other than a file upload may "
                   "have.")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_JSON_BYTES
        request = (parser_context or {}).get("request")
        declared = str(request.META.get("CONTENT_LENGTH") or "") if request is not None else ""
        # Refused on the length it declares before a byte is read; one sent without a length, as it is read.
        if declared.isdigit() and int(declared) > limit:
            raise RequestBodyTooLarge.over(limit)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestBodyTooLarge.over(limit)
        return super().parse(io.BytesIO(body), media_type, parser_context)
