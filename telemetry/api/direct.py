"""The device API's two busiest requests answered without DRF's request cycle when they are plain.

A device posting one reading and a device reading its own latest values are most of the API's
traffic. DRF's cycle around them (request wrapping, content negotiation, authenticator, permission
and throttle objects, a template response) cost the web worker about as much as the rest of the
request (docs/performance.md). ``first`` puts a direct path in front of the DRF view: it answers
only a request that is plainly on the happy path, with the same checks, the same functions and
the same bytes and headers as the view; anything else (no or a bad key, another content type or
``Accept``, a ``format`` override, invalid data, a refused rate, a failed write) is handed to the
DRF view untouched, so every error keeps its one answer. The equivalence is tested request for
request in tests/telemetry/test_direct_path.py.
"""

import functools
import json
from collections.abc import Callable
from types import SimpleNamespace

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.renderers import JSONRenderer

from devices.authentication import HEADER
from devices.keys import device_for_key
from devices.models import Device
from iotflow.throttling import TelemetryThrottle
from telemetry import ingest
from telemetry.backends import BackendUnavailable, get_backend

DirectAnswer = Callable[..., HttpResponse | None]

# What a client may ask for and still get exactly the JSON the DRF view would choose for it.
PLAIN_ACCEPT = frozenset({None, "", "*/*", "application/json"})
_renderer = JSONRenderer()


def first(direct: DirectAnswer, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view`` with ``direct`` tried before it; ``direct`` returns None to hand the request over.

    The wrapper carries the view's attributes (``cls``, ``initkwargs``, ``csrf_exempt``), so the
    schema generator and the CSRF middleware see the DRF view.
    """

    @functools.wraps(view)
    def answer(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return direct(request, *args, **kwargs) or view(request, *args, **kwargs)

    answer.direct = direct  # iotflow/device_lane.py tries it ahead of Django's middleware
    return answer


@functools.cache
def allowed_methods(view_class: type) -> str:
    """The ``Allow`` header DRF sends for ``view_class``: its handlers, HEAD beside GET."""
    view = view_class()
    view.setup(None)
    return ", ".join(view.allowed_methods)


def plain_request(request: HttpRequest) -> bool:
    """JSON asked for, no renderer override: the DRF view would answer with its JSON renderer."""
    return request.META.get("HTTP_ACCEPT", "").strip() in PLAIN_ACCEPT and "format" not in request.GET


def active_device(request: HttpRequest) -> Device | None:
    """The device of the request's key, as ``DeviceKeyAuthentication`` finds it, if it may act."""
    raw = request.META.get(HEADER, "").strip()
    device = device_for_key(raw) if raw else None
    if device is None or device.status == Device.Status.INACTIVE:
        return None
    return device


def json_answer(data: dict, status: int, view_class: type) -> HttpResponse:
    """What DRF's ``Response`` renders for ``data``: its JSON renderer's bytes, ``Allow`` and ``Vary``."""
    response = HttpResponse(_renderer.render(data), status=status, content_type=_renderer.media_type)
    response["Allow"] = allowed_methods(view_class)
    patch_vary_headers(response, ("Accept",))
    return response


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def post_reading(request: HttpRequest) -> HttpResponse | None:
    """``POST /telemetry`` with a device key and a valid JSON body: stored and answered 201."""
    from .views import TelemetryIngestView, ingest_answer

    if request.method != "POST" or request.content_type != "application/json" or not plain_request(request):
        return None
    if request.content_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return None
    device = active_device(request)
    if device is None:
        return None
    try:
        # As DRF's JSON parser reads it: UTF-8, no NaN or Infinity.
        payload = json.loads(request.body.decode("utf-8"), parse_constant=_refuse_constant)
        points, records, metadata = ingest.normalise(device.pk, payload)
    except (ValueError, RecursionError, RequestDataTooBig, ingest.InvalidTelemetry, ingest.TooManyPoints):
        return None
    except (BackendUnavailable, DatabaseError):
        return None  # the measurement limit's read failed: the view's own attempt answers 503
    if not TelemetryThrottle().allow_request(SimpleNamespace(auth=device), None):
        return None  # refused without being counted: the view counts nothing either and answers 429
    try:
        result = ingest.accept(device, points, records, metadata, "http")
    except (BackendUnavailable, DatabaseError):
        return None  # the view tries once more (the write is idempotent) and answers 503 as it always has
    return json_answer(ingest_answer(device, result), 201, TelemetryIngestView)


def get_latest(request: HttpRequest, device_id: int) -> HttpResponse | None:
    """``GET /telemetry/<id>/latest`` by the device itself with its key."""
    from .views import TelemetryLatestView, latest_answer, query_fields

    if request.method != "GET" or not plain_request(request):
        return None
    device = active_device(request)
    if device is None or device.pk != device_id:
        return None
    # Django checks a reused connection with a query of its own before the request's first one: a second
    # round trip for this one-query read. Skipped here; if the connection turns out dead, the read fails
    # and the view, handed the request with the check re-armed, checks, reconnects and answers.
    connection.health_check_done = True
    try:
        latest = get_backend().latest(device.pk, query_fields(request))
    except (BackendUnavailable, DatabaseError):
        connection.health_check_done = False
        return None
    return json_answer(latest_answer(device, latest), 200, TelemetryLatestView)
