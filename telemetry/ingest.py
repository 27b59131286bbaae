"""The one ingest path: HTTP and MQTT both hand records to ``ingest()``.

1. validate and normalise (timestamps, types, flattening)
2. one bulk write to the backend (all points of the call or none)
3. latest values (the backend keeps them beside the points)
4. the device's last-seen time and health, coalesced so it is not a row write per message
5. alert rules, on the newest value of each measurement of the batch (notifications.alerts)
6. live pages watching the device get those newest values (notifications.live)
"""

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import Counter

from devices import commands, health
from devices.models import Device
from notifications import alerts, live
from telemetry.backends import get_backend
from telemetry.points import Point, Value
from telemetry.timeparse import parse_point_timestamp, point_bounds, to_datetime

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


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# JSON can escape them, but no database (nor UTF-8) stores a NUL character or an unpaired surrogate.
UNSTORABLE_TEXT = re.compile(r"[\x00\ud800-\udfff]")
METADATA_MAX_DEPTH = 16
MAX_REPORTED_ERRORS = 100


def _metadata_problem(metadata: dict) -> str | None:
    """Why the metadata cannot be kept on the device (it is stored as JSON), or None.

    Walked without recursion, so no nesting the JSON parser accepted can exhaust the stack here.
    """
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > METADATA_MAX_DEPTH:
            return f"Nested more than {METADATA_MAX_DEPTH} levels deep."
        if isinstance(value, dict):
            if any(UNSTORABLE_TEXT.search(key) for key in value):
                return "Keys must not contain NUL characters or unpaired surrogates."
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and UNSTORABLE_TEXT.search(value):
            return "Text must not contain NUL characters or unpaired surrogates."
        elif isinstance(value, float) and not math.isfinite(value):
            return "Numbers must be finite."
    return None


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """The settings a record is checked against, read once per call rather than once per value."""

    max_name: int
    max_text: int
    timestamps: tuple[int, int]

    @classmethod
    def now(cls) -> "RecordLimits":
        return cls(settings.TELEMETRY_MAX_MEASUREMENT_LENGTH, settings.TELEMETRY_MAX_STRING_LENGTH, point_bounds())


NUMBER_TYPES = frozenset({float, int, bool})


def _plain_numbers(data: dict, max_name: int) -> bool:
    """Whether a record's values are all numbers in range under printable names that fit: stored as they are.

    Checked for the whole record at once (most records are such); a record that fails any of it is
    checked value by value, which finds and reports the same as if this were not here.
    """
    values = data.values()
    return (
        set(map(type, data)) == {str}
        and NUMBER_TYPES.issuperset(map(type, values))
        and "".join(data).isprintable()
        and max(map(len, data)) <= max_name
        and all(map(str.strip, data))
        and min(values) >= -(2**63)
        and max(values) < 2**63
        and math.isfinite(sum(values))  # no NaN or infinity among them
    )


def _storable(value: Any, max_text: int) -> bool:
    """Whether a value is stored as it is: the common case, decided without building any error path."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return -(2**63) <= value < 2**63
    if kind is bool:
        return True
    return kind is str and len(value) <= max_text and not UNSTORABLE_TEXT.search(value)


def _flatten(
    data: dict, prefix: str, path: str, out: dict[str, Value], errors: dict[str, list[str]], limits: RecordLimits
) -> None:
    room = limits.max_name - len(prefix)
    for key, value in data.items():
        # A printable name (so no control character) that fits, with a plain value: nothing to report.
        if (
            type(key) is str
            and len(key) <= room
            and key.isprintable()
            and key.strip()
            and _storable(value, limits.max_text)
        ):
            out[prefix + key] = value
        else:
            _flatten_item(key, value, prefix, path, out, errors, limits)


def _flatten_item(
    key: Any,
    value: Any,
    prefix: str,
    path: str,
    out: dict[str, Value],
    errors: dict[str, list[str]],
    limits: RecordLimits,
) -> None:
    max_name, max_text = limits.max_name, limits.max_text
    name = f"{prefix}{key}"
    field = f"{path}.{key}"
    if not isinstance(key, str) or not key.strip() or CONTROL_CHARACTERS.search(key):
        errors.setdefault(field, []).append("Measurement names must be non-empty printable text.")
    elif len(name) > max_name:
        # Checked before descending too: it bounds the nesting, so no payload can exhaust the stack.
        errors.setdefault(field, []).append(f"Measurement name is longer than {max_name} characters.")
    elif isinstance(value, dict):
        if not value:
            errors.setdefault(field, []).append("Nested objects must not be empty.")
        _flatten(value, f"{name}.", field, out, errors, limits)
    elif isinstance(value, bool):
        out[name] = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            out[name] = value
        else:
            errors.setdefault(field, []).append("Integers must fit in 64 bits.")
    elif isinstance(value, float):
        if math.isfinite(value):
            out[name] = value
        else:
            errors.setdefault(field, []).append("Numbers must be finite.")
    elif isinstance(value, str):
        if len(value) > max_text:
            errors.setdefault(field, []).append(f"Text values are limited to {max_text} characters.")
        elif UNSTORABLE_TEXT.search(value):
            errors.setdefault(field, []).append("Text must not contain NUL characters or unpaired surrogates.")
        else:
            out[name] = value
    else:
        kind = "null" if value is None else type(value).__name__
        errors.setdefault(field, []).append(f"Values must be numbers, booleans or text, not {kind}.")


def _record_points(
    device_id: int, record: Any, path: str, errors: dict[str, list[str]], limits: RecordLimits
) -> list[Point]:
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
    elif metadata and (problem := _metadata_problem(metadata)):
        errors.setdefault(f"{prefix}metadata", []).append(problem)
    try:
        ts = parse_point_timestamp(record.get("timestamp"), limits.timestamps)
    except ValueError as exc:
        errors.setdefault(f"{prefix}timestamp", []).append(f"Timestamp {exc}.")
        ts = 0  # keep validating the values so every error is reported at once
    if _plain_numbers(data, limits.max_name):
        values = data
    else:
        values = {}
        _flatten(data, "", f"{prefix}data", values, errors, limits)
    return [Point(device_id, name, ts, value) for name, value in values.items()]


KNOWN_MEASUREMENTS_SECONDS = 300.0
_known_measurements: dict[int, tuple[float, set[str]]] = {}
_known_lock = threading.Lock()


def check_measurement_limit(device_id: int, points: Sequence[Point]) -> None:
    """Refuse points that would give the device more than TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE names.

    Cheap on the hot path: the names a device is known to have are kept per process for a few
    minutes, and the latest-values table is read only when a record carries a name not known yet.
    """
    limit = settings.TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE
    if not limit:
        return
    names = {point.measurement for point in points}
    now = time.monotonic()
    with _known_lock:
        hit = _known_measurements.get(device_id)
        known = hit[1] if hit is not None and hit[0] > now else None
        if known is not None and names <= known:
            return
    # Names accepted by this process but maybe not written yet (an MQTT batch is written at its end) count too.
    known = set(get_backend().latest(device_id)) | (known or set())
    new = names - known
    if len(known) + len(new) > limit:
        raise InvalidTelemetry(
            {
                "data": [
                    f"A device may have at most {limit} distinct measurements; it has {len(known)} "
                    f"and this request adds {len(new)}."
                ]
            }
        )
    with _known_lock:
        if len(_known_measurements) > 100_000:
            _known_measurements.clear()
        _known_measurements[device_id] = (now + KNOWN_MEASUREMENTS_SECONDS, known | names)


def normalise(device_id: int, payload: Any) -> tuple[list[Point], int, dict]:
    """Points, record count and the last record's metadata; raises InvalidTelemetry or TooManyPoints."""
    errors: dict[str, list[str]] = {}
    limit = settings.TELEMETRY_MAX_POINTS_PER_REQUEST
    if isinstance(payload, list):
        if not payload:
            raise InvalidTelemetry({"non_field_errors": ["A batch must hold at least one record."]})
        if len(payload) > limit:
            # Every record carries at least one point: refused before any of them is looked at.
            raise TooManyPoints(f"A request may carry at most {limit} points; split the batch.")
        records = payload
        paths = [f"records[{i}]" for i in range(len(records))]
    else:
        records = [payload]
        paths = [""]
    points: list[Point] = []
    limits = RecordLimits.now()
    for record, path in zip(records, paths, strict=True):
        points.extend(_record_points(device_id, record, path, errors, limits))
        if len(points) > limit:
            raise TooManyPoints(f"A request may carry at most {limit} points; split the batch.")
        if len(errors) >= MAX_REPORTED_ERRORS:
            # A bad batch must not buy an answer many times its own size: the first errors say enough.
            errors.setdefault("non_field_errors", []).append(
                f"Validation stopped after {MAX_REPORTED_ERRORS} fields with errors; nothing was stored."
            )
            break
    if errors:
        raise InvalidTelemetry(errors)
    check_measurement_limit(device_id, points)
    last = records[-1]
    metadata = last.get("metadata") or {}
    return points, len(records), metadata


def store(points: Sequence[Point], transport: str, *, heard_at: datetime | None = None) -> None:
    """Write points in one call; the backend keeps each measurement's latest value with them.

    Then alert rules and live pages see the newest value per device and measurement: one check
    and one live message per device per call, however many points it carried. ``heard_at``: when
    the devices were heard from, as their last seen records it (now, unless given).
    """
    get_backend().write(points)
    POINTS_STORED.labels(transport).inc(len(points))
    newest = live.newest_points(points)
    alerts.evaluate(newest)
    live.publish_telemetry(newest, heard_at or timezone.now())
    report_state(points)


def report_state(points: Sequence[Point]) -> None:
    """Telemetry of state fields (power, fan speed, ...) is the device's reported state too."""
    fields = settings.DEVICE_STATE_FIELDS
    newest: dict[int, dict[str, Point]] = {}
    for point in points:
        if point.measurement in fields:
            current = newest.setdefault(point.device_id, {}).get(point.measurement)
            if current is None or current.ts <= point.ts:
                newest[point.device_id][point.measurement] = point
    for device_id, state_points in newest.items():
        state = {name: point.value for name, point in state_points.items()}
        key = f"reported-state:{device_id}"
        if cache.get(key) == state:
            continue  # unchanged since the last report: no row to lock
        commands.update_reported_state(device_id, state, to_datetime(max(p.ts for p in state_points.values())))
        cache.set(key, state, 300)


def ingest(device: Device, payload: Any, transport: str = "http") -> IngestResult:
    try:
        points, records, metadata = normalise(device.pk, payload)
    except (InvalidTelemetry, TooManyPoints):
        RECORDS_REJECTED.labels(transport).inc()
        raise
    return accept(device, points, records, metadata, transport)


def accept(device: Device, points: Sequence[Point], records: int, metadata: dict, transport: str) -> IngestResult:
    """Store a device's validated points (``normalise``'s result) and record that it was heard from."""
    heard_at = timezone.now()
    store(points, transport, heard_at=heard_at)
    health.mark_seen(device, metadata, reason="telemetry", at=heard_at)
    return IngestResult(records=records, points=len(points), metadata=metadata)
