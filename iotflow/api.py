"""Error shape shared by every API endpoint.

Validation and parse errors answer ``{"detail": "Invalid input.", "errors": {field: [messages]}}``;
every other error answers ``{"detail": message}``.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DataError
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, database_unavailable


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
    wait = RETRY_AFTER_SECONDS  # sent as Retry-After


class Pagination(LimitOffsetPagination):
    """``limit``/``offset`` pages; a larger ``limit`` reads as ``max_limit``: no request gets a whole table."""

    max_limit = 1000


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RecursionError) and "JSON" in str(exc):
        # The JSON decoder's own nesting limit: the body is at fault, not the server.
        exc = exceptions.ParseError("JSON parse error - nested too deeply.")
    elif database_unavailable(exc):
        # The database is unreachable (down, restarting, connect timeout): a clear 503 the client can retry.
        exc = ServiceUnavailable(DATABASE_UNAVAILABLE)
    elif isinstance(exc, DataError):
        # A value the database cannot store or compare (a NUL character, a number or date out of its range)
        # that validation let through: still the request's fault, so a 400 rather than a 500.
        exc = exceptions.ValidationError({"non_field_errors": ["A value is out of the range the server can store."]})
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        # Django's own form limits (DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES) answer in the API's shape, not an HTML page.
        exc = exceptions.ParseError(f"Form parse error - {exc}")
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"Request body too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
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
