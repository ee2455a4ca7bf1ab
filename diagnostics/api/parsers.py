"""Multipart parsing that notices a path in an uploaded file's name.

Django strips directories from upload names silently. A name such as "../../etc/x.png" is either a
broken client or a probe for path traversal; the upload is refused with a clear error instead of
being accepted under a quietly shortened name. (Names are never used for storage either way: blobs get
random names, and an original name can hold PHI, so it is not kept.)
"""

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser


class _RecordingParser(DjangoMultiPartParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.names_with_paths = 0

    def sanitize_file_name(self, file_name):
        if file_name and ("/" in file_name or "\\" in file_name or file_name.strip() in (".", "..")):
            self.names_with_paths += 1
        return super().sanitize_file_name(file_name)


class ScanUploadParser(DRFMultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            parser = _RecordingParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        data = data.copy()
        data["_file_name_had_path"] = "1" if parser.names_with_paths else ""
        return DataAndFiles(data, files)
