"""Error answers outside DRF's views: JSON under /api/, the site's pages elsewhere.

While the database is unreachable a request gets a quick 503 the client may retry, never a 500
page. The API's exception handler (iotflow.api) answers DRF views; ``server_error`` is the
project's handler500, so a database error anywhere else (a page, a middleware loading the
session) gets the same answer instead of a server error. ``page_not_found`` is handler404: an
address no view answers is a JSON 404 under /api/, as DRF's own are, and the site's page elsewhere.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found as django_page_not_found
from django.views.defaults import server_error as django_server_error

# How long clients are told to wait before retrying: PostgreSQL restarts and failovers take seconds.
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "The database is unavailable; retry later."


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means the database cannot be reached (down, restarting, connect timeout, lost connection)."""
    return isinstance(exc, OperationalError | InterfaceError)


def page_not_found(request: HttpRequest, exception: Exception, template_name: str = "404.html") -> HttpResponse:
    """handler404: DRF's JSON answer under /api/, the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return django_page_not_found(request, exception, template_name)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: 503 with Retry-After when the database is unreachable, Django's own 500 page otherwise."""
    if not database_unavailable(sys.exception()):
        return django_server_error(request, template_name)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=503)
    else:
        response = HttpResponse(
            "IoTFlow cannot reach its database right now. Try again in a moment.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
