"""Hostile and broken input: refused with a clear 4xx, nothing stored, and the server still healthy.

Each request goes through the whole Django stack (middleware, DRF parsers, the API's exception
handler); MQTT payloads go through the consumer's batch function, as the worker runs it. After
every test ``/health`` must still answer 200, and no bad request may leave a row or a point behind.
"""

import datetime
import json
import logging
from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboards.models import Dashboard
from devices import commands
from devices.models import Command, Device, DeviceConfiguration, DeviceGroup, Schedule
from notifications.delivery import notify
from notifications.models import AlertRule, Notification
from telemetry import ingest
from telemetry.backends import get_backend
from telemetry.mqtt import Incoming, process_batch
from telemetry.timeparse import now_ms
from tests.conftest import token_client

EPOCH_S = 1_751_466_600  # 2025-07-02T14:30:00Z
DEEP = 10_000


@pytest.fixture(autouse=True)
def _bad_input_guards(settings, db):
    """Rate limits off (the tests send many requests); the server must answer /health after every test."""
    settings.RATE_LIMITS_ENABLED = False
    settings.MQTT_MANAGE_ACCOUNTS = False
    ingest._known_measurements.clear()  # names cached by earlier tests' devices must not count here
    yield
    response = Client().get("/health")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "healthy"


@dataclass
class Target:
    """An endpoint that reads a JSON body, and who may call it."""

    name: str
    method: str
    url: str
    caller: str  # device | user | admin


TARGETS = [
    Target("telemetry", "POST", "/api/v1/telemetry", "device"),
    Target("device telemetry", "POST", "/api/v1/devices/telemetry", "device"),
    Target("device config", "PUT", "/api/v1/devices/config", "device"),
    Target("command ack", "POST", "/api/v1/devices/commands/{command}/ack", "device"),
    Target("register", "POST", "/api/v1/devices/register", "user"),
    Target("send command", "POST", "/api/v1/devices/{device}/commands", "user"),
    Target("group", "POST", "/api/v1/groups", "user"),
    Target("schedule", "POST", "/api/v1/schedules", "user"),
    Target("alert rule", "POST", "/api/v1/alert-rules", "user"),
    Target("dashboard", "POST", "/api/v1/dashboards", "user"),
    Target("admin device", "PATCH", "/api/v1/admin/devices/{device}", "admin"),
]


@dataclass
class World:
    """A device with its key, its owner's token client, a staff client, and a pending command."""

    device: Device
    clients: dict[str, APIClient]
    command: Command

    def send(self, target: Target, body: bytes, content_type: str = "application/json", **extra):
        url = target.url.format(device=self.device.pk, command=self.command.pk)
        return self.clients[target.caller].generic(target.method, url, body, content_type, **extra)

    def stored(self) -> dict[str, object]:
        """Everything a bad request could leave behind."""
        self.device.refresh_from_db()
        return {
            "points": get_backend().count(self.device.pk),
            "devices": Device.objects.count(),
            "configuration": DeviceConfiguration.objects.count(),
            "commands": list(Command.objects.values_list("pk", "status", "response")),
            "groups": DeviceGroup.objects.count(),
            "schedules": Schedule.objects.count(),
            "rules": AlertRule.objects.count(),
            "dashboards": Dashboard.objects.count(),
            "device": (self.device.name, self.device.status, self.device.last_metadata, self.device.description),
        }


@pytest.fixture
def world(device, alice, staff) -> World:
    command = commands.send(device.device, "set_fan_speed", {"fan_speed": 2})
    return World(
        device=device.device,
        clients={"device": device.client(), "user": token_client(alice), "admin": token_client(staff, "admin")},
        command=command,
    )


def refused(world: World, target: Target, body: bytes, statuses: tuple[int, ...] = (400,), **kwargs) -> dict:
    """Send a bad body; it must be refused with a JSON answer and change nothing."""
    before = world.stored()
    response = world.send(target, body, **kwargs)
    assert response.status_code in statuses, (target.name, response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    assert world.stored() == before, f"{target.name} stored something from a refused request"
    return response.json()


def post_telemetry(world: World, body: bytes, content_type: str = "application/json"):
    return world.send(TARGETS[0], body, content_type)


by_name = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


# --- size -------------------------------------------------------------------------------------


@by_name
def test_body_over_the_default_limit_is_a_413_before_it_is_read(world, target):
    body = b'{"data": {"t": "' + b"x" * (5 * 1024 * 1024) + b'"}}'

    answer = refused(world, target, body, statuses=(413,))

    assert "at most 5242880 bytes" in answer["detail"]


def test_body_limit_follows_max_request_bytes(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    under = json.dumps({"data": {"t": 1}, "metadata": {"pad": "x" * 1500}, "timestamp": EPOCH_S}).encode()
    over = json.dumps({"data": {"t": 1}, "metadata": {"pad": "x" * 2100}}).encode()

    assert refused(world, TARGETS[0], over, statuses=(413,))["detail"].startswith("Request body too large")
    assert post_telemetry(world, under).status_code == 201


@pytest.mark.parametrize("length", ["abc", "1e3", "-1"])
def test_unreadable_content_length_is_a_400(world, length):
    refused(world, TARGETS[0], b'{"data": {"t": 1}}', CONTENT_LENGTH=length)


def test_content_length_shorter_than_the_body_reads_only_that_much(world):
    answer = refused(world, TARGETS[0], b'{"data": {"t": 1}}', CONTENT_LENGTH="9")

    assert "JSON parse error" in answer["errors"]["body"][0]


def test_form_with_too_many_fields_is_a_json_400(world):
    form = "&".join(f"f{i}=1" for i in range(1500)).encode()

    answer = refused(world, TARGETS[0], form, content_type="application/x-www-form-urlencoded")

    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in answer["errors"]["body"][0]


def test_batch_with_more_records_than_points_allowed_is_refused_unread(world):
    body = json.dumps([1] * 1_000_000).encode()  # 3 MB: under the body limit, a million records

    answer = refused(world, TARGETS[0], body, statuses=(413,))

    assert answer == {"detail": "A request may carry at most 10000 points; split the batch."}


def test_errors_of_a_large_bad_batch_are_capped(world):
    body = json.dumps([{"data": {"t": None}}] * 10_000).encode()

    response = post_telemetry(world, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == ingest.MAX_REPORTED_ERRORS + 1
    assert "stopped after 100 fields" in errors["non_field_errors"][0]
    assert len(response.content) < 20_000, "the answer stays small, whatever the batch"
    assert get_backend().count(world.device.pk) == 0


def test_huge_text_value_is_a_field_error(world):
    body = json.dumps({"data": {"note": "x" * 4_000_000}}).encode()

    answer = refused(world, TARGETS[0], body)

    assert answer["errors"] == {"data.note": ["Text values are limited to 1024 characters."]}


# --- structure ----------------------------------------------------------------------------------


@by_name
@pytest.mark.parametrize("opener,closer", [(b'{"a": ', b"}"), (b"[", b"]")], ids=["objects", "arrays"])
def test_deeply_nested_json_is_a_400(world, target, opener, closer):
    body = opener * DEEP + b"1" + closer * DEEP

    answer = refused(world, target, body)

    assert answer["detail"] == "Invalid input."


@pytest.mark.parametrize("depth", [40, 70, 200, 900])
def test_nested_measurements_below_the_parser_limit_are_checked_without_recursing_past_the_name_limit(world, depth):
    body = b'{"data": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"

    response = post_telemetry(world, body)

    if depth <= 64:  # "a.a.a..." of at most 128 characters
        assert response.status_code == 201, response.json()
    else:
        assert response.status_code == 400
        assert response.json()["detail"] == "Invalid input."
        assert get_backend().count(world.device.pk) == 0


def test_deeply_nested_metadata_is_refused(world):
    body = b'{"data": {"t": 1}, "metadata": ' + b'{"m": ' * 50 + b"1" + b"}" * 50 + b"}"

    answer = refused(world, TARGETS[0], body)

    assert answer["errors"] == {"metadata": ["Nested more than 16 levels deep."]}


# --- encoding and numbers -----------------------------------------------------------------------


@by_name
def test_invalid_utf8_is_a_400(world, target):
    answer = refused(world, target, b'{"name": "caf\xe9", "data": {"t": "\xff\xfe"}}')

    assert "utf-8" in answer["errors"]["body"][0]


@by_name
@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_number_literals_are_a_400_naming_them(world, target, literal):
    body = b'{"name": "n", "action": "a", "data": {"t": ' + literal + b'}, "configuration": {"k": ' + literal + b"}}"

    answer = refused(world, target, body)

    assert literal.decode().lstrip("-") in answer["errors"]["body"][0]


def test_number_too_large_for_a_float_is_a_field_error(world):
    answer = refused(world, TARGETS[0], b'{"data": {"t": 1e400}, "metadata": {"m": -1e400}}')

    assert answer["errors"] == {"data.t": ["Numbers must be finite."], "metadata": ["Numbers must be finite."]}


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800", "x\\udfff"])
def test_text_no_database_can_store_is_a_field_error(world, text):
    body = f'{{"data": {{"s": "{text}", "ok": 1}}}}'.encode()

    answer = refused(world, TARGETS[0], body)

    assert answer["errors"] == {"data.s": ["Text must not contain NUL characters or unpaired surrogates."]}


@pytest.mark.parametrize("metadata", ['{"k": "\\u0000"}', '{"k\\u0000": 1}', '{"k": ["\\ud83d"]}'])
def test_metadata_no_database_can_store_is_refused_before_any_point_is_stored(world, metadata):
    body = f'{{"data": {{"t": 1}}, "metadata": {metadata}}}'.encode()

    answer = refused(world, TARGETS[0], body)

    assert list(answer["errors"]) == ["metadata"]


@pytest.mark.parametrize(
    "target_name,body",
    [
        ("register", b'{"name": "bad\\u0000name"}'),
        ("register", b'{"name": "bad\\ud800name"}'),
        ("dashboard", b'{"name": "\\udc00"}'),
        ("send command", b'{"action": "set", "params": {"x": "\\u0000"}}'),
        ("send command", b'{"action": "set", "params": {"x": "\\ud800"}}'),
        ("device config", b'{"configuration": {"k": "\\u0000"}}'),
        ("device config", b'{"configuration": {"k\\u0000": 1}}'),
        ("command ack", b'{"status": "ok", "result": {"r": "\\u0000"}}'),
    ],
)
def test_text_no_database_can_store_is_a_400_everywhere(world, target_name, body):
    target = next(t for t in TARGETS if t.name == target_name)

    answer = refused(world, target, body)

    assert answer["detail"] == "Invalid input."


def test_invalid_bytes_in_credentials_are_a_401(world):
    for headers in ({"HTTP_X_API_KEY": "\xff\xfe\x00"}, {"HTTP_AUTHORIZATION": "Token \xff\xfe"}):
        response = APIClient().post("/api/v1/telemetry", {"data": {"t": 1}}, format="json", **headers)
        assert response.status_code == 401
    assert get_backend().count(world.device.pk) == 0


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp,message",
    [
        (0, "is before 2000-01-01T00:00:00Z, the earliest accepted time"),
        (-1, "is before 2000-01-01T00:00:00Z, the earliest accepted time"),
        ("1970-01-01T00:00:00Z", "is before 2000-01-01T00:00:00Z, the earliest accepted time"),
        ("1999-12-31T23:59:59.999Z", "is before 2000-01-01T00:00:00Z, the earliest accepted time"),
        ("0001-01-01T00:00:00Z", "is before 2000-01-01T00:00:00Z, the earliest accepted time"),
        ("9999-12-31T23:59:59Z", "is more than 86400 seconds in the future"),
        (253_402_300_800_000, "is outside the years 1 to 9999"),
        (1e300, "is outside the years 1 to 9999"),
        (-1e300, "is outside the years 1 to 9999"),
        ("+275760-09-13", "is not a recognised timestamp"),
    ],
)
def test_timestamps_outside_the_bounds_are_field_errors_naming_the_bound(world, timestamp, message):
    body = json.dumps({"data": {"t": 1}, "timestamp": timestamp}).encode()

    answer = refused(world, TARGETS[0], body)

    assert list(answer["errors"]) == ["timestamp"]
    assert answer["errors"]["timestamp"][0].startswith(f"Timestamp {message}")


def test_future_bound_follows_its_setting(world, settings):
    settings.TELEMETRY_MAX_FUTURE_SECONDS = 60
    late = json.dumps({"data": {"t": 1}, "timestamp": (now_ms() + 120_000) / 1000}).encode()
    soon = json.dumps({"data": {"t": 1}, "timestamp": (now_ms() + 30_000) / 1000}).encode()

    assert refused(world, TARGETS[0], late)["errors"]["timestamp"] == [
        "Timestamp is more than 60 seconds in the future."
    ]
    assert post_telemetry(world, soon).status_code == 201


def test_past_bound_follows_its_setting(world, settings):
    settings.TELEMETRY_MIN_TIMESTAMP = "2020-01-01T00:00:00Z"

    answer = refused(world, TARGETS[0], json.dumps({"data": {"t": 1}, "timestamp": "2019-06-01"}).encode())

    assert answer["errors"]["timestamp"] == ["Timestamp is before 2020-01-01T00:00:00Z, the earliest accepted time."]


# --- measurement names per device ----------------------------------------------------------------


def names(prefix: str, count: int) -> dict[str, int]:
    return {f"{prefix}{i}": i for i in range(count)}


def test_thousands_of_measurement_names_are_refused_by_the_default_limit(world):
    answer = refused(world, TARGETS[0], json.dumps({"data": names("m", 2000), "timestamp": EPOCH_S}).encode())

    assert answer["errors"] == {
        "data": ["A device may have at most 1000 distinct measurements; it has 0 and this request adds 2000."]
    }


def test_the_limit_counts_stored_names_and_a_batch_is_refused_whole(world, settings):
    settings.TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE = 50
    assert post_telemetry(world, json.dumps({"data": names("a", 30), "timestamp": EPOCH_S}).encode()).status_code == 201
    batch = [{"data": names("b", 10), "timestamp": EPOCH_S}, {"data": names("c", 15), "timestamp": EPOCH_S}]

    answer = refused(world, TARGETS[0], json.dumps(batch).encode())

    assert answer["errors"]["data"] == [
        "A device may have at most 50 distinct measurements; it has 30 and this request adds 25."
    ]
    assert get_backend().count(world.device.pk) == 30


def test_a_device_at_the_limit_keeps_sending_its_own_names(world, settings):
    settings.TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE = 50
    body = json.dumps({"data": names("a", 50), "timestamp": EPOCH_S}).encode()
    assert post_telemetry(world, body).status_code == 201

    again = json.dumps({"data": names("a", 50), "timestamp": EPOCH_S + 60}).encode()
    assert post_telemetry(world, again).status_code == 201
    refused(world, TARGETS[0], json.dumps({"data": {"new": 1}, "timestamp": EPOCH_S + 120}).encode())

    assert get_backend().count(world.device.pk) == 100


# --- content types and missing fields ------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type,body,status",
    [
        ("text/plain", b'{"data": {"t": 1}}', 415),
        ("application/xml", b"<data><t>1</t></data>", 415),
        ("application/x-www-form-urlencoded", b"data=t&t=1", 400),
        (
            "multipart/form-data; boundary=xx",
            b'--xx\r\nContent-Disposition: form-data; name="data"\r\n\r\n1\r\n--xx--',
            400,
        ),
        ("multipart/form-data", b"no boundary", 400),
        ("", b'{"data": {"t": 1}}', 415),
    ],
)
def test_bodies_that_are_not_json_are_refused(world, content_type, body, status):
    refused(world, TARGETS[0], body, statuses=(status,), content_type=content_type)


@pytest.mark.parametrize(
    "target_name,field",
    [
        ("telemetry", "data"),
        ("register", "name"),
        ("send command", "action"),
        ("group", "name"),
        ("schedule", "start_time"),
        ("alert rule", "measurement"),
        ("dashboard", "name"),
        ("device config", "configuration"),
    ],
)
def test_missing_required_fields_are_named(world, target_name, field):
    target = next(t for t in TARGETS if t.name == target_name)

    answer = refused(world, target, b"{}")

    assert field in answer["errors"], answer


# --- query parameters ------------------------------------------------------------------------------


def test_page_limit_larger_than_the_database_takes_is_capped(world):
    response = world.clients["user"].get("/api/v1/devices", {"limit": 10**40, "offset": 0})

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [world.device.pk]


@pytest.mark.parametrize(
    "query",
    [
        {"created_after": "0116-01-25T13:03:04-22:55"},  # an offset PostgreSQL cannot store
        {"created_before": "9999-12-31T23:59:59+23:59"},
        {"device": 10**30},
        {"limit": -5, "offset": 10**30},
    ],
)
def test_query_values_out_of_the_database_s_range_are_not_server_errors(transactional_db, world, query):
    """Committed per request as in production: a statement the database refused aborts only its own request."""
    response = world.clients["user"].get("/api/v1/notifications", query)

    assert response.status_code in (200, 400), response.content[:300]
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("instant", "status"),
    [
        ("2026-07-01T03:15:00-20:45", 200),  # beyond PostgreSQL's offsets, a plain instant in UTC
        ("2026-07-01T03:15:00+23:59", 200),
        ("9999-12-31T23:59:59-23:59", 400),  # after the year 9999 in UTC
        ("0001-01-01T00:00:00+00:01", 400),  # before the year 1 in UTC
    ],
)
def test_date_time_filters_take_any_iso_offset_as_its_utc_instant(transactional_db, world, alice, instant, status):
    notify(alice, "info", "A notification to find")
    created = Notification.objects.get(user=alice).created_at

    after = world.clients["user"].get("/api/v1/notifications", {"created_after": instant})
    before = world.clients["user"].get("/api/v1/notifications", {"created_before": instant})

    assert (after.status_code, before.status_code) == (status, status), after.content[:300]
    if status == 200:
        moment = datetime.datetime.fromisoformat(instant)
        assert len(after.json()["results"]) == int(created >= moment)
        assert len(before.json()["results"]) == int(created < moment)
    else:
        assert "created_after" in after.json()["errors"]


# --- MQTT ------------------------------------------------------------------------------------------


def mqtt(world: World, payload: bytes | dict, kind: str = "telemetry", mid: int = 1) -> Incoming:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Incoming(f"iotflow/devices/{world.device.pk}/{kind}", body, mid, 1, 0)


def good_message(world: World) -> Incoming:
    return mqtt(world, {"data": {"good": 1}, "timestamp": EPOCH_S}, mid=99)


def process_with_a_good_message(world: World, bad: Incoming, caplog) -> str:
    """The bad message is dropped with a logged reason; the good one in the same batch is stored."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="telemetry.mqtt"):
        process_batch([bad, good_message(world)])
    stored = {p.measurement for p in get_backend().history(world.device.pk, start=0, end=2**62)}
    assert stored == {"good"}, stored
    return caplog.text


MQTT_BAD = {
    "not json": (b"{not json", "invalid_json"),
    "invalid utf-8": (b'{"data": {"t": "\xff"}}', "invalid_json"),
    "NaN literal": (b'{"data": {"t": NaN}}', "Numbers must be finite"),
    "Infinity in metadata": (b'{"data": {"t": 1}, "metadata": {"m": Infinity}}', "Numbers must be finite"),
    "NUL in text": (b'{"data": {"t": "\\u0000"}}', "NUL characters"),
    "NUL in metadata": (b'{"data": {"t": 1}, "metadata": {"m": "\\u0000"}}', "NUL characters"),
    "surrogate in name": (b'{"data": {"\\ud800": 1}}', "printable text"),
    "far past": (b'{"data": {"t": 1}, "timestamp": 1}', "earliest accepted time"),
    "far future": (b'{"data": {"t": 1}, "timestamp": "9999-01-01"}', "in the future"),
    "not an object": (b"42", "A record must be a JSON object"),
    "no data": (b'{"metadata": {}}', "non-empty object"),
    "nested under the parser limit": (b'{"data": ' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"}", "invalid_"),
    "too many points": (json.dumps([{"data": {"t": i}} for i in range(10_001)]).encode(), "too_many_points"),
    "too many names": (json.dumps({"data": names("m", 1001)}).encode(), "at most 1000 distinct measurements"),
}


@pytest.mark.parametrize("case", list(MQTT_BAD), ids=list(MQTT_BAD))
def test_bad_mqtt_telemetry_is_dropped_and_the_batch_goes_on(world, case, caplog):
    payload, reason = MQTT_BAD[case]

    log = process_with_a_good_message(world, mqtt(world, payload), caplog)

    assert "Dropped MQTT message" in log and reason in log


def test_mqtt_payload_nested_beyond_the_parser_limit_is_dropped(world, caplog):
    body = b'{"data": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}"

    log = process_with_a_good_message(world, mqtt(world, body), caplog)

    assert "invalid_json" in log


def test_mqtt_ack_with_unstorable_result_is_dropped(world, caplog):
    ack = mqtt(world, b'{"id": "%s", "result": {"r": "\\u0000"}}' % str(world.command.pk).encode(), "commands/ack")

    process_with_a_good_message(world, ack, caplog)

    world.command.refresh_from_db()
    assert world.command.response is None


def test_mqtt_measurement_limit_holds_across_messages_of_one_batch(world, settings, caplog):
    settings.TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE = 50
    first = mqtt(world, {"data": names("a", 30), "timestamp": EPOCH_S}, mid=1)
    second = mqtt(world, {"data": names("b", 30), "timestamp": EPOCH_S}, mid=2)

    with caplog.at_level(logging.WARNING, logger="telemetry.mqtt"):
        process_batch([first, second])

    assert get_backend().count(world.device.pk) == 30
    assert "it has 30 and this request adds 30" in caplog.text


def test_bad_input_through_both_transports_leaves_the_device_untouched(world, caplog):
    """Metadata of a refused record never reaches the device, whichever way it came."""
    before = world.stored()
    bad = {"data": {"t": None}, "metadata": {"evil": True}}
    post_telemetry(world, json.dumps(bad).encode())
    process_batch([mqtt(world, bad)])

    assert world.stored() == before
