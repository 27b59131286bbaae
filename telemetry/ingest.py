"""The one ingest path: HTTP and MQTT both hand records to ``ingest()``.

1. validate and normalise (timestamps, types, flattening)
2. one bulk write to the backend (all points of the call or none)
3. latest values (the backend keeps them; the cached copy is dropped)
4. the device's last-seen time, coalesced so it is not a row write per message
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import Counter

from devices.models import Device
from telemetry.backends import get_backend
from telemetry.points import Point, Value
from telemetry.timeparse import parse_point_timestamp

POINTS_STORED = Counter("iotflow_telemetry_points_total", "Telemetry points stored.", ["transport"])
RECORDS_REJECTED = Counter("iotflow_telemetry_rejected_total", "Telemetry records rejected.", ["transport"])


class InvalidTelemetry(Exception):
    """The payload breaks the contract; ``errors`` maps a field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid telemetry")
        self.errors = errors


class TooManyPoints(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IngestResult:
    records: int
    points: int
    metadata: dict


def _flatten(data: dict, prefix: str, path: str, out: dict[str, Value], errors: dict[str, list[str]]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        field = f"{path}.{key}"
        if not isinstance(key, str) or not key.strip() or any(ord(ch) < 32 for ch in key):
            errors.setdefault(field, []).append("Measurement names must be non-empty printable text.")
        elif isinstance(value, dict):
            if not value:
                errors.setdefault(field, []).append("Nested objects must not be empty.")
            _flatten(value, f"{name}.", field, out, errors)
        elif len(name) > settings.TELEMETRY_MAX_MEASUREMENT_LENGTH:
            errors.setdefault(field, []).append(
                f"Measurement name is longer than {settings.TELEMETRY_MAX_MEASUREMENT_LENGTH} characters."
            )
        elif isinstance(value, bool | int):
            out[name] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                out[name] = value
            else:
                errors.setdefault(field, []).append("Numbers must be finite.")
        elif isinstance(value, str):
            if len(value) > settings.TELEMETRY_MAX_STRING_LENGTH:
                errors.setdefault(field, []).append(
                    f"Text values are limited to {settings.TELEMETRY_MAX_STRING_LENGTH} characters."
                )
            else:
                out[name] = value
        else:
            kind = "null" if value is None else type(value).__name__
            errors.setdefault(field, []).append(f"Values must be numbers, booleans or text, not {kind}.")


def _record_points(device_id: int, record: Any, path: str, errors: dict[str, list[str]]) -> list[Point]:
    if not isinstance(record, dict):
        errors.setdefault(path or "non_field_errors", []).append("A record must be a JSON object.")
        return []
    prefix = f"{path}." if path else ""
    data = record.get("data")
    if not isinstance(data, dict) or not data:
        errors.setdefault(f"{prefix}data", []).append("Required: a non-empty object of measurement values.")
        return []
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.setdefault(f"{prefix}metadata", []).append("Must be an object.")
    try:
        ts = parse_point_timestamp(record.get("timestamp"))
    except ValueError as exc:
        errors.setdefault(f"{prefix}timestamp", []).append(f"Timestamp {exc}.")
        ts = 0  # keep validating the values so every error is reported at once
    values: dict[str, Value] = {}
    _flatten(data, "", f"{prefix}data", values, errors)
    return [Point(device_id, name, ts, value) for name, value in values.items()]


def normalise(device_id: int, payload: Any) -> tuple[list[Point], int, dict]:
    """Points, record count and the last record's metadata; raises InvalidTelemetry or TooManyPoints."""
    errors: dict[str, list[str]] = {}
    if isinstance(payload, list):
        if not payload:
            raise InvalidTelemetry({"non_field_errors": ["A batch must hold at least one record."]})
        records = payload
        paths = [f"records[{i}]" for i in range(len(records))]
    else:
        records = [payload]
        paths = [""]
    points: list[Point] = []
    for record, path in zip(records, paths, strict=True):
        points.extend(_record_points(device_id, record, path, errors))
        if len(points) > settings.TELEMETRY_MAX_POINTS_PER_REQUEST:
            raise TooManyPoints(
                f"A request may carry at most {settings.TELEMETRY_MAX_POINTS_PER_REQUEST} points; split the batch."
            )
    if errors:
        raise InvalidTelemetry(errors)
    last = records[-1]
    metadata = last.get("metadata") or {}
    return points, len(records), metadata


def store(points: Sequence[Point], transport: str) -> None:
    """Write points in one call and forget the cached latest values they change."""
    get_backend().write(points)
    POINTS_STORED.labels(transport).inc(len(points))
    cache.delete_many([latest_cache_key(d) for d in {p.device_id for p in points}])


def latest_cache_key(device_id: int) -> str:
    return f"latest:{device_id}"


def mark_seen(device: Device, metadata: dict | None = None) -> None:
    """Record that the device was heard from, at most one row write per LAST_SEEN_RESOLUTION_SECONDS."""
    if not cache.add(f"seen:{device.pk}", 1, settings.LAST_SEEN_RESOLUTION_SECONDS):
        return
    changes: dict[str, Any] = {"last_seen": timezone.now()}
    if metadata:
        changes["last_metadata"] = metadata
    Device.objects.filter(pk=device.pk).update(**changes)


def ingest(device: Device, payload: Any, transport: str = "http") -> IngestResult:
    try:
        points, records, metadata = normalise(device.pk, payload)
    except (InvalidTelemetry, TooManyPoints):
        RECORDS_REJECTED.labels(transport).inc()
        raise
    store(points, transport)
    mark_seen(device, metadata)
    return IngestResult(records=records, points=len(points), metadata=metadata)
