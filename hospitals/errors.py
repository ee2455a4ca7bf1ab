"""Refusals of the domain layer, for people to read.

Services raise `DomainError` when a request is well-formed but cannot be carried out (the last admin
cannot be removed, an invitation has expired). It knows nothing about HTTP beyond a suggested status;
the API turns it into `{"error": code, "detail": sentence}` (platform/api_errors.py).
"""


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, detail: str, *, status: int | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
