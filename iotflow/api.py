"""Error shape shared by every API endpoint.

Validation and parse errors answer ``{"detail": "Invalid input.", "errors": {field: [messages]}}``;
every other error answers ``{"detail": message}``.
"""

from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request too large."
    default_code = "too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, try again later."
    default_code = "unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RecursionError) and "JSON" in str(exc):
        # The JSON decoder's own nesting limit: the body is at fault, not the server.
        exc = exceptions.ParseError("JSON parse error - nested too deeply.")
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (down, restarting, connect timeout): a clear 503 the client can retry.
        exc = ServiceUnavailable("The database is unavailable; retry later.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data
        if isinstance(errors, list):
            errors = {"non_field_errors": errors}
        response.data = {"detail": "Invalid input.", "errors": errors}
    elif isinstance(exc, exceptions.ParseError):
        # A body that is not valid JSON is a 400 like any other: same shape, the body named as the field.
        response.data = {"detail": "Invalid input.", "errors": {"body": [str(exc.detail)]}}
    return response
