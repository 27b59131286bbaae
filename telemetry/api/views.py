"""Telemetry endpoints of the IoTFlow v1 device contract."""

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AdminTokenAuthentication, TokenAuthentication
from devices.api.permissions import IsDevice, IsDeviceOrUser, device_for_request
from devices.authentication import DeviceKeyAuthentication
from devices.models import Device
from iotflow.api import PayloadTooLarge, ServiceUnavailable
from iotflow.throttling import TelemetryThrottle
from telemetry import ingest
from telemetry.backends import BackendUnavailable, get_backend
from telemetry.points import AGGREGATIONS, Point
from telemetry.timeparse import EARLIEST_MS, now_ms, parse_duration, parse_query_time, to_iso

from .serializers import (
    AggregatedSerializer,
    DeletedSerializer,
    HistorySerializer,
    IngestRecordSerializer,
    IngestResultSerializer,
    LatestSerializer,
    TelemetryStatusSerializer,
)

HOUR_MS = 3_600_000
MAX_BUCKETS = 10_000

TIME_PARAMS = [
    OpenApiParameter("start_time", str, description="Relative (-1h, -24h, -7d), 'now', ISO 8601 or epoch s/ms."),
    OpenApiParameter("end_time", str, description="As start_time; default now."),
]


def point_body(point: Point) -> dict:
    return {"timestamp": to_iso(point.ts), "measurement": point.measurement, "value": point.value}


def query_range(request: Request, default_span_ms: int) -> tuple[int, int]:
    try:
        end = parse_query_time(request.query_params.get("end_time"), now_ms())
    except ValueError as exc:
        raise exceptions.ValidationError({"end_time": [f"Time {exc}."]}) from None
    try:
        start = parse_query_time(request.query_params.get("start_time"), max(end - default_span_ms, EARLIEST_MS))
    except ValueError as exc:
        raise exceptions.ValidationError({"start_time": [f"Time {exc}."]}) from None
    if start >= end:
        raise exceptions.ValidationError({"start_time": ["Must be before end_time."]})
    return start, end


def query_fields(request: Request | HttpRequest, name: str = "fields") -> list[str] | None:
    raw = request.GET.get(name)  # DRF's query_params, also on a plain Django request
    if not raw:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()] or None


def backend_call(func, *args, **kwargs):
    """Run a backend call, turning an unreachable store into a clear 503."""
    try:
        return func(*args, **kwargs)
    except (BackendUnavailable, DatabaseError) as exc:
        raise ServiceUnavailable("Telemetry storage is unavailable; nothing was stored. Retry later.") from exc


class TelemetryIngestView(APIView):
    """``POST /telemetry`` and ``POST /devices/telemetry``: a record or a batch of records."""

    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]
    throttle_classes = [TelemetryThrottle]

    @extend_schema(request=IngestRecordSerializer, responses={201: IngestResultSerializer})
    def post(self, request: Request) -> Response:
        device: Device = request.auth
        try:
            result = backend_call(ingest.ingest, device, request.data, "http")
        except ingest.InvalidTelemetry as exc:
            raise exceptions.ValidationError(exc.errors) from None
        except ingest.TooManyPoints as exc:
            raise PayloadTooLarge(str(exc)) from None
        return Response(ingest_answer(device, result), status=201)


def ingest_answer(device: Device, result: ingest.IngestResult) -> dict:
    return {
        "message": "Telemetry data stored successfully",
        "device_id": device.pk,
        "records": result.records,
        "points": result.points,
    }


class ReadView(APIView):
    authentication_classes = [
        DeviceKeyAuthentication,
        TokenAuthentication,
        AdminTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsDeviceOrUser]


def history_body(request: Request, device: Device) -> dict:
    start, end = query_range(request, 24 * HOUR_MS)
    try:
        limit = int(request.query_params.get("limit", 1000))
    except ValueError:
        raise exceptions.ValidationError({"limit": ["Must be an integer."]}) from None
    if not 1 <= limit <= settings.TELEMETRY_HISTORY_MAX_LIMIT:
        raise exceptions.ValidationError({"limit": [f"Must be between 1 and {settings.TELEMETRY_HISTORY_MAX_LIMIT}."]})
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise exceptions.ValidationError({"order": ["Must be 'asc' or 'desc'."]})
    fields = query_fields(request)
    points = backend_call(
        get_backend().history, device.pk, start=start, end=end, fields=fields, limit=limit, descending=order == "desc"
    )
    return {
        "device_id": device.pk,
        "device_name": device.name,
        "start_time": to_iso(start),
        "end_time": to_iso(end),
        "fields": fields,
        "limit": limit,
        "order": order,
        "count": len(points),
        "data": [point_body(p) for p in points],
    }


class TelemetryHistoryView(ReadView):
    @extend_schema(
        parameters=[
            *TIME_PARAMS,
            OpenApiParameter("limit", int, description="At most this many points (default 1000)."),
            OpenApiParameter("fields", str, description="Comma-separated measurement names."),
            OpenApiParameter("order", str, enum=["desc", "asc"]),
        ],
        responses=HistorySerializer,
    )
    def get(self, request: Request, device_id: int) -> Response:
        return Response(history_body(request, device_for_request(request, device_id)))

    @extend_schema(parameters=[*TIME_PARAMS, OpenApiParameter("fields", str)], responses=DeletedSerializer)
    def delete(self, request: Request, device_id: int) -> Response:
        device = device_for_request(request, device_id)
        has_range = "start_time" in request.query_params or "end_time" in request.query_params
        start, end = query_range(request, now_ms()) if has_range else (None, None)
        deleted = backend_call(get_backend().delete, device.pk, start=start, end=end, fields=query_fields(request))
        return Response({"message": "Telemetry deleted", "device_id": device.pk, "deleted": deleted})


class OwnTelemetryView(TelemetryIngestView):
    """``/devices/telemetry``: POST stores, GET reads the calling device's own history."""

    @extend_schema(
        parameters=[*TIME_PARAMS, OpenApiParameter("limit", int), OpenApiParameter("fields", str)],
        responses=HistorySerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(history_body(request, request.auth))

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "POST" else []


class TelemetryLatestView(ReadView):
    @extend_schema(parameters=[OpenApiParameter("fields", str)], responses=LatestSerializer)
    def get(self, request: Request, device_id: int) -> Response:
        device = device_for_request(request, device_id)
        # The backend keeps latest values apart from history (one indexed read), so no extra cache is needed.
        latest = backend_call(get_backend().latest, device.pk, query_fields(request))
        return Response(latest_answer(device, latest))


def latest_answer(device: Device, latest: dict[str, Point]) -> dict:
    newest = max((p.ts for p in latest.values()), default=None)
    return {
        "device_id": device.pk,
        "device_name": device.name,
        "timestamp": to_iso(newest) if newest is not None else None,
        "data": {m: {"value": p.value, "timestamp": to_iso(p.ts)} for m, p in sorted(latest.items())},
    }


class TelemetryAggregatedView(ReadView):
    @extend_schema(
        parameters=[
            *TIME_PARAMS,
            OpenApiParameter("field", str, required=True, description="Measurement name(s), comma-separated."),
            OpenApiParameter("aggregation", str, enum=list(AGGREGATIONS)),
            OpenApiParameter("window", str, description="Window length: 30s, 1m, 5m, 1h, 1d (default 1h)."),
        ],
        responses=AggregatedSerializer,
    )
    def get(self, request: Request, device_id: int) -> Response:
        device = device_for_request(request, device_id)
        fields = query_fields(request, "field") or query_fields(request, "fields")
        if not fields:
            raise exceptions.ValidationError({"field": ["Name at least one measurement."]})
        function = request.query_params.get("aggregation", "mean")
        if function not in AGGREGATIONS:
            raise exceptions.ValidationError({"aggregation": [f"Must be one of {', '.join(AGGREGATIONS)}."]})
        try:
            window = parse_duration(request.query_params.get("window", "1h"))
        except ValueError as exc:
            raise exceptions.ValidationError({"window": [f"Window {exc}."]}) from None
        start, end = query_range(request, 24 * HOUR_MS)
        if (end - start) // window > MAX_BUCKETS:
            raise exceptions.ValidationError(
                {"window": [f"Too many windows for this range (at most {MAX_BUCKETS}); choose a longer window."]}
            )
        series = backend_call(
            get_backend().aggregate, device.pk, fields, start=start, end=end, window_ms=window, function=function
        )
        return Response(
            {
                "device_id": device.pk,
                "aggregation": function,
                "window": request.query_params.get("window", "1h"),
                "start_time": to_iso(start),
                "end_time": to_iso(end),
                "series": {
                    field: [{"timestamp": to_iso(b.ts), "value": b.value, "count": b.count} for b in buckets]
                    for field, buckets in series.items()
                },
            }
        )


class TelemetryStatusView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: TelemetryStatusSerializer, 503: TelemetryStatusSerializer})
    def get(self, request: Request) -> Response:
        health = get_backend().health()
        return Response(
            {
                "status": health["status"],
                "backend": health,
                "max_points_per_request": settings.TELEMETRY_MAX_POINTS_PER_REQUEST,
                "timestamp": to_iso(now_ms()),
            },
            status=200 if health["status"] == "healthy" else 503,
        )
