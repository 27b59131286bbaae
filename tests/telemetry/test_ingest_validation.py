"""What a device may send as telemetry, and what happens to a bad record or batch."""

import pytest
from django.db import DatabaseError

from devices.models import Device
from telemetry import ingest
from telemetry.backends import get_backend
from telemetry.points import Point

EPOCH_S = 1751466600  # 2025-07-02T14:30:00Z
EPOCH_MS = EPOCH_S * 1000


def post(device, body, url="/api/v1/telemetry"):
    return device.client().post(url, body, format="json")


def stored(device) -> dict[str, object]:
    return {p.measurement: p.value for p in get_backend().history(device.pk, start=0, end=2**62)}


def test_nested_objects_are_flattened_to_dotted_names(device):
    body = {
        "data": {"env": {"temperature": 21.5, "air": {"co2": 410}}, "battery": 87},
        "timestamp": EPOCH_S,
    }

    response = post(device, body)

    assert response.status_code == 201, response.json()
    assert response.json()["points"] == 3
    assert stored(device) == {"env.temperature": 21.5, "env.air.co2": 410, "battery": 87}


def test_value_types_survive_the_round_trip(device):
    data = {"f": 1.25, "i": -7, "zero": 0, "on": True, "off": False, "mode": "eco", "empty": ""}
    assert post(device, {"data": data, "timestamp": EPOCH_S}).status_code == 201

    values = stored(device)

    assert values == data
    assert type(values["i"]) is int
    assert type(values["on"]) is bool
    assert type(values["f"]) is float


def test_response_reports_what_was_stored(device):
    response = post(device, {"data": {"a": 1, "b": 2}, "timestamp": EPOCH_S})

    assert response.status_code == 201
    assert response.json() == {
        "message": "Telemetry data stored successfully",
        "device_id": device.pk,
        "records": 1,
        "points": 2,
    }


def test_metadata_is_kept_on_the_device(device):
    body = {"data": {"t": 1}, "metadata": {"location": "Office", "sensor_status": "active"}}
    assert post(device, body).status_code == 201

    device.device.refresh_from_db()

    assert device.device.last_metadata == {"location": "Office", "sensor_status": "active"}
    assert device.device.last_seen is not None


@pytest.mark.parametrize(
    "data,field,fragment",
    [
        ({"t": [1, 2]}, "data.t", "not list"),
        ({"t": None}, "data.t", "not null"),
        ({"env": {"t": [1]}}, "data.env.t", "not list"),
        ({"env": {}}, "data.env", "empty"),
        ({"": 1}, "data.", "non-empty"),
        ({"bad\nname": 1}, "data.bad\nname", "printable"),
        ({"x" * 129: 1}, "data." + "x" * 129, "longer than 128"),
        ({"note": "x" * 1025}, "data.note", "1024 characters"),
    ],
)
def test_bad_values_are_field_errors(device, data, field, fragment):
    response = post(device, {"data": {"ok": 1, **data}})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert fragment in errors[field][0]
    assert get_backend().count(device.pk) == 0


def test_out_of_range_number_is_a_field_error(device):
    raw = b'{"data": {"ok": 1, "huge": 1e400}}'
    response = device.client().post("/api/v1/telemetry", raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"data.huge": ["Numbers must be finite."]}
    assert get_backend().count(device.pk) == 0


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_json_numbers_are_refused(device, literal):
    raw = b'{"data": {"t": ' + literal + b"}}"
    response = device.client().post("/api/v1/telemetry", raw, content_type="application/json")

    assert response.status_code == 400
    assert get_backend().count(device.pk) == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_from_any_transport_are_field_errors(device, value):
    with pytest.raises(ingest.InvalidTelemetry) as caught:
        ingest.ingest(device.device, {"data": {"t": value}}, transport="mqtt")

    assert caught.value.errors == {"data.t": ["Numbers must be finite."]}
    assert get_backend().count(device.pk) == 0


def test_integer_too_large_to_store_is_a_field_error(device):
    raw = b'{"data": {"ok": 1, "huge": 1' + b"0" * 400 + b"}}"
    response = device.client().post("/api/v1/telemetry", raw, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["data.huge"]
    assert get_backend().count(device.pk) == 0


def test_every_error_of_a_record_is_reported_at_once(device):
    body = {"data": {"a": [1], "b": None, "c": 1}, "timestamp": "never", "metadata": "x"}

    response = post(device, body)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"data.a", "data.b", "timestamp", "metadata"}


@pytest.mark.parametrize("body", ["hello", 42, True])
def test_body_that_is_not_an_object_is_refused(device, body):
    response = post(device, body)

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


def test_malformed_json_is_refused(device):
    response = device.client().post("/api/v1/telemetry", b'{"data": {', content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize("url", ["/api/v1/telemetry", "/api/v1/devices/config"])
def test_body_nested_beyond_the_parser_s_limit_is_refused(device, url):
    raw = b'{"data": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"

    response = device.client().generic("PUT" if "config" in url else "POST", url, raw, "application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["errors"]["body"][0]
    assert get_backend().count(device.pk) == 0


@pytest.mark.parametrize("body", [{}, {"data": {}}, {"data": 5}, {"data": "t=1"}, {"data": [1]}, {"temperature": 20}])
def test_missing_or_empty_data_is_refused(device, body):
    response = post(device, body)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["data"]


def test_batch_of_records_is_stored_whole(device):
    batch = [{"data": {"t": i, "h": 50 + i}, "timestamp": EPOCH_S + i} for i in range(5)]

    response = post(device, batch)

    assert response.status_code == 201
    assert response.json()["records"] == 5
    assert response.json()["points"] == 10
    assert get_backend().count(device.pk) == 10


def test_batch_with_one_bad_record_stores_nothing(device):
    batch = [
        {"data": {"t": 1}, "timestamp": EPOCH_S},
        {"data": {"t": [2]}, "timestamp": EPOCH_S + 1},
        {"data": {"t": 3}, "timestamp": EPOCH_S + 2},
        "not a record",
    ]

    response = post(device, batch)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"records[1].data.t", "records[3]"}
    assert get_backend().count(device.pk) == 0
    assert get_backend().latest(device.pk) == {}


def test_write_failing_in_its_last_statement_stores_nothing(device):
    """The backend writes a large batch in several statements; a failure in the last undoes them all."""
    points = [Point(device.pk, "t", EPOCH_MS + i, float(i)) for i in range(2001)]
    points.append(Point(device.pk, "t", 2**63, 0.0))  # beyond the BIGINT column: the database refuses it
    backend = get_backend()

    with pytest.raises((DatabaseError, OverflowError)):
        backend.write(points)

    assert backend.count(device.pk) == 0
    assert backend.latest(device.pk) == {}


def test_empty_batch_is_refused(device):
    response = post(device, [])

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


def test_too_many_points_is_refused_with_413(device, settings):
    settings.TELEMETRY_MAX_POINTS_PER_REQUEST = 5
    batch = [{"data": {"a": i, "b": i}, "timestamp": EPOCH_S + i} for i in range(3)]

    response = post(device, batch)

    assert response.status_code == 413
    assert "at most 5 points" in response.json()["detail"]
    assert get_backend().count(device.pk) == 0


def test_one_record_with_too_many_values_is_refused_with_413(device, settings):
    settings.TELEMETRY_MAX_POINTS_PER_REQUEST = 5
    response = post(device, {"data": {f"m{i}": i for i in range(6)}})
    assert response.status_code == 413


def test_batch_at_the_limit_is_accepted(device, settings):
    settings.TELEMETRY_MAX_POINTS_PER_REQUEST = 6
    batch = [{"data": {"a": i, "b": i}, "timestamp": EPOCH_S + i} for i in range(3)]
    assert post(device, batch).status_code == 201
    assert get_backend().count(device.pk) == 6


def test_resending_a_record_stores_each_point_once(device):
    body = {"data": {"t": 20.5, "h": 40}, "timestamp": EPOCH_S}

    for _ in range(3):
        assert post(device, body).status_code == 201

    assert get_backend().count(device.pk) == 2


def test_resending_a_batch_that_overlaps_stores_only_the_new_points(device):
    first = [{"data": {"t": i}, "timestamp": EPOCH_S + i} for i in range(3)]
    second = [{"data": {"t": i}, "timestamp": EPOCH_S + i} for i in range(1, 5)]

    assert post(device, first).status_code == 201
    assert post(device, second).status_code == 201

    assert get_backend().count(device.pk) == 5


def test_a_batch_repeating_one_point_stores_it_once(device):
    batch = [{"data": {"t": 1}, "timestamp": EPOCH_S}, {"data": {"t": 1}, "timestamp": EPOCH_S}]
    assert post(device, batch).status_code == 201
    assert get_backend().count(device.pk) == 1


def test_a_rewritten_point_keeps_its_first_value_everywhere(device):
    """The point's identity is device, measurement and time: the first write wins, in history and latest."""
    assert post(device, {"data": {"t": 1.0}, "timestamp": EPOCH_S}).status_code == 201
    assert post(device, {"data": {"t": 2.0}, "timestamp": EPOCH_S}).status_code == 201

    assert stored(device) == {"t": 1.0}
    latest = device.client().get(f"/api/v1/telemetry/{device.pk}/latest").json()
    assert latest["data"]["t"]["value"] == 1.0


def test_same_time_on_two_devices_is_two_points(device, other_device):
    body = {"data": {"t": 1}, "timestamp": EPOCH_S}
    assert post(device, body).status_code == 201
    assert post(other_device, body).status_code == 201
    assert get_backend().count(device.pk) == 1
    assert get_backend().count(other_device.pk) == 1


def test_devices_telemetry_url_stores_the_same_way(device):
    body = {"data": {"t": 21.0, "env": {"h": 40}}, "timestamp": "2025-07-02T14:30:00Z"}

    response = post(device, body, url="/api/v1/devices/telemetry")

    assert response.status_code == 201
    assert response.json()["points"] == 2
    assert stored(device) == {"t": 21.0, "env.h": 40}
    assert post(device, body, url="/api/v1/devices/telemetry").status_code == 201
    assert get_backend().count(device.pk) == 2


def test_devices_telemetry_url_validates_the_same_way(device):
    response = post(device, [{"data": {"t": None}}], url="/api/v1/devices/telemetry")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["records[0].data.t"]


def test_device_reads_its_own_history_at_devices_telemetry(device, other_device):
    post(device, {"data": {"t": 1}, "timestamp": EPOCH_S})
    post(other_device, {"data": {"t": 2}, "timestamp": EPOCH_S})

    response = device.client().get("/api/v1/devices/telemetry", {"start_time": "2025-07-01T00:00:00Z"})

    assert response.status_code == 200
    body = response.json()
    assert body["device_id"] == device.pk
    assert [(row["measurement"], row["value"]) for row in body["data"]] == [("t", 1)]


@pytest.mark.parametrize("url", ["/api/v1/telemetry", "/api/v1/devices/telemetry"])
def test_inactive_device_cannot_send(make_device, alice, url):
    inactive = make_device(alice, "retired", status=Device.Status.INACTIVE)

    response = post(inactive, {"data": {"t": 1}}, url=url)

    assert response.status_code == 403
    assert get_backend().count(inactive.pk) == 0


def test_device_in_maintenance_may_send(make_device, alice):
    serviced = make_device(alice, "serviced", status=Device.Status.MAINTENANCE)
    assert post(serviced, {"data": {"t": 1}}).status_code == 201


@pytest.mark.parametrize("url", ["/api/v1/telemetry", "/api/v1/devices/telemetry"])
def test_sending_needs_a_device_key(alice_client, device, url):
    response = alice_client.post(url, {"data": {"t": 1}}, format="json")
    assert response.status_code in (401, 403)
    assert get_backend().count(device.pk) == 0


def test_oversized_body_is_refused_with_413_before_it_is_read(device, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"data": {f"m{i}": i for i in range(200)}}
    response = post(device, body)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert get_backend().count(device.pk) == 0


def test_malformed_json_is_a_400_in_the_usual_shape(device):
    response = device.client().post("/api/v1/telemetry", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input."
    assert "JSON parse error" in response.json()["errors"]["body"][0]
