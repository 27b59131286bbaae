"""Reading telemetry back: history, latest values, aggregates, deletion and the store's status."""

import pytest

from telemetry.backends import get_backend
from telemetry.timeparse import now_ms, to_iso

HOUR = 3_600_000
MINUTE = 60_000
# 2025-07-02T10:00:00Z, on an hour boundary.
T0 = 1751450400000


def send(device, records):
    response = device.client().post("/api/v1/telemetry", records, format="json")
    assert response.status_code == 201, response.json()


def at(ms: int, **data) -> dict:
    return {"data": data, "timestamp": ms}


@pytest.fixture
def day(device):
    """Readings every 15 minutes from 10:00 to 11:45, temperature rising by one each time."""
    send(device, [at(T0 + i * 15 * MINUTE, temperature=20.0 + i, humidity=50) for i in range(8)])
    return device


def history(device, client=None, **params):
    client = client or device.client()
    return client.get(f"/api/v1/telemetry/{device.pk}", params)


class TestHistory:
    def test_absolute_range_includes_start_and_excludes_end(self, day):
        body = history(
            day, start_time=to_iso(T0 + 15 * MINUTE), end_time=to_iso(T0 + 45 * MINUTE), fields="temperature"
        ).json()

        assert body["count"] == 2
        assert [row["value"] for row in body["data"]] == [22.0, 21.0]
        assert body["start_time"] == "2025-07-02T10:15:00.000Z"
        assert body["end_time"] == "2025-07-02T10:45:00.000Z"

    def test_epoch_bounds_work_like_iso_ones(self, day):
        body = history(day, start_time=str(T0), end_time=str((T0 + 30 * MINUTE) // 1000), fields="temperature").json()
        assert [row["value"] for row in body["data"]] == [21.0, 20.0]

    def test_newest_first_by_default_and_ascending_on_request(self, day):
        desc = history(day, start_time=to_iso(T0), fields="temperature").json()
        asc = history(day, start_time=to_iso(T0), fields="temperature", order="asc").json()

        assert [row["value"] for row in desc["data"]] == [27.0, 26.0, 25.0, 24.0, 23.0, 22.0, 21.0, 20.0]
        assert [row["value"] for row in asc["data"]] == list(reversed([row["value"] for row in desc["data"]]))
        assert desc["order"] == "desc" and asc["order"] == "asc"

    def test_row_shape(self, day):
        body = history(day, start_time=to_iso(T0), limit=1, fields="temperature").json()

        assert body["device_id"] == day.pk
        assert body["device_name"] == "alice-sensor"
        assert body["data"] == [{"timestamp": "2025-07-02T11:45:00.000Z", "measurement": "temperature", "value": 27.0}]

    def test_limit(self, day):
        body = history(day, start_time=to_iso(T0), limit=3).json()

        assert body["count"] == 3
        assert body["limit"] == 3
        assert len(body["data"]) == 3

    def test_fields_select_measurements(self, day):
        both = history(day, start_time=to_iso(T0)).json()
        humidity = history(day, start_time=to_iso(T0), fields="humidity").json()
        listed = history(day, start_time=to_iso(T0), fields="humidity, temperature").json()

        assert both["count"] == 16
        assert {row["measurement"] for row in humidity["data"]} == {"humidity"}
        assert humidity["count"] == 8
        assert humidity["fields"] == ["humidity"]
        assert listed["count"] == 16

    def test_relative_start_time(self, device):
        now = now_ms()
        send(device, [at(now - 2 * HOUR, t=1), at(now - 30 * MINUTE, t=2), at(now - MINUTE, t=3)])

        last_hour = history(device, start_time="-1h").json()
        default = history(device).json()
        week = history(device, start_time="-7d", end_time="-10m").json()

        assert [row["value"] for row in last_hour["data"]] == [3, 2]
        assert default["count"] == 3  # the last 24 hours
        assert [row["value"] for row in week["data"]] == [2, 1]

    def test_old_data_is_outside_the_default_range(self, day):
        assert history(day).json()["count"] == 0

    @pytest.mark.parametrize(
        "params,field",
        [
            ({"start_time": "yesterday"}, "start_time"),
            ({"end_time": "tomorrow"}, "end_time"),
            ({"start_time": "-1h", "end_time": "-2h"}, "start_time"),
            ({"limit": "ten"}, "limit"),
            ({"limit": 0}, "limit"),
            ({"limit": 10_001}, "limit"),
            ({"order": "newest"}, "order"),
        ],
    )
    def test_bad_parameters_are_field_errors(self, device, params, field):
        response = history(device, **params)

        assert response.status_code == 400
        assert list(response.json()["errors"]) == [field]

    @pytest.mark.parametrize(
        "params",
        [
            {"end_time": "99999999999999999999999"},
            {"start_time": "-99999999999999999999999"},
            {"end_time": "-99999999999999999w"},
            {"start_time": "-9999999999999d"},
        ],
    )
    def test_times_beyond_the_calendar_are_field_errors(self, device, params):
        response = history(device, **params)

        assert response.status_code == 400
        assert response.json()["errors"]

    def test_range_at_the_start_of_the_calendar(self, device):
        response = history(device, end_time="0001-01-01T01:00:00Z")

        assert response.status_code == 200
        assert response.json()["start_time"] == "0001-01-01T00:00:00.000Z"

    def test_unknown_device_is_not_found_for_its_owner(self, alice_client, device):
        assert alice_client.get("/api/v1/telemetry/999999").status_code == 404


class TestLatest:
    def test_latest_value_of_each_measurement(self, day):
        send(day, [at(T0 + 3 * HOUR, battery=80)])

        response = day.client().get(f"/api/v1/telemetry/{day.pk}/latest")

        assert response.status_code == 200
        body = response.json()
        assert body["device_id"] == day.pk
        assert body["device_name"] == "alice-sensor"
        assert body["timestamp"] == "2025-07-02T13:00:00.000Z"
        assert body["data"] == {
            "battery": {"value": 80, "timestamp": "2025-07-02T13:00:00.000Z"},
            "humidity": {"value": 50, "timestamp": "2025-07-02T11:45:00.000Z"},
            "temperature": {"value": 27.0, "timestamp": "2025-07-02T11:45:00.000Z"},
        }

    def test_fields_filter(self, day):
        body = day.client().get(f"/api/v1/telemetry/{day.pk}/latest", {"fields": "humidity"}).json()
        assert list(body["data"]) == ["humidity"]

    def test_no_data_yet(self, device):
        body = device.client().get(f"/api/v1/telemetry/{device.pk}/latest").json()
        assert body["data"] == {}
        assert body["timestamp"] is None

    def test_newer_write_is_visible_at_once(self, device):
        client = device.client()
        send(device, [at(T0, t=1.0)])
        assert client.get(f"/api/v1/telemetry/{device.pk}/latest").json()["data"]["t"]["value"] == 1.0

        send(device, [at(T0 + MINUTE, t=2.0)])

        assert client.get(f"/api/v1/telemetry/{device.pk}/latest").json()["data"]["t"]["value"] == 2.0

    def test_late_arriving_older_point_does_not_replace_latest(self, device):
        client = device.client()
        send(device, [at(T0 + HOUR, t=2.0)])
        client.get(f"/api/v1/telemetry/{device.pk}/latest")

        send(device, [at(T0, t=1.0)])

        body = client.get(f"/api/v1/telemetry/{device.pk}/latest").json()
        assert body["data"]["t"] == {"value": 2.0, "timestamp": "2025-07-02T11:00:00.000Z"}
        assert history(device, start_time=to_iso(T0)).json()["count"] == 2

    def test_newest_point_of_a_batch_wins_whatever_its_position(self, device):
        send(device, [at(T0 + 2 * MINUTE, t=3.0), at(T0, t=1.0), at(T0 + MINUTE, t=2.0)])

        body = device.client().get(f"/api/v1/telemetry/{device.pk}/latest").json()

        assert body["data"]["t"]["value"] == 3.0

    def test_latest_of_one_device_is_not_another_s(self, device, other_device):
        send(device, [at(T0, t=1.0)])
        send(other_device, [at(T0 + HOUR, t=9.0)])

        assert device.client().get(f"/api/v1/telemetry/{device.pk}/latest").json()["data"]["t"]["value"] == 1.0


def aggregated(device, **params):
    return device.client().get(f"/api/v1/telemetry/{device.pk}/aggregated", params)


class TestAggregated:
    @pytest.mark.parametrize(
        "function,first,second",
        [
            ("mean", 21.5, 25.5),
            ("min", 20.0, 24.0),
            ("max", 23.0, 27.0),
            ("sum", 86.0, 102.0),
            ("count", 4.0, 4.0),
        ],
    )
    def test_hourly_windows(self, day, function, first, second):
        response = aggregated(
            day,
            field="temperature",
            aggregation=function,
            window="1h",
            start_time=to_iso(T0),
            end_time=to_iso(T0 + 3 * HOUR),
        )

        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["aggregation"] == function
        assert body["window"] == "1h"
        assert body["series"]["temperature"] == [
            {"timestamp": "2025-07-02T10:00:00.000Z", "value": first, "count": 4},
            {"timestamp": "2025-07-02T11:00:00.000Z", "value": second, "count": 4},
        ]

    def test_windows_are_aligned_to_the_clock_not_to_start_time(self, day):
        body = aggregated(
            day, field="temperature", window="1h", start_time=to_iso(T0 + 30 * MINUTE), end_time=to_iso(T0 + 2 * HOUR)
        ).json()

        assert body["series"]["temperature"] == [
            {"timestamp": "2025-07-02T10:00:00.000Z", "value": 22.5, "count": 2},
            {"timestamp": "2025-07-02T11:00:00.000Z", "value": 25.5, "count": 4},
        ]

    def test_short_windows_and_empty_windows_left_out(self, day):
        body = aggregated(
            day,
            field="temperature",
            window="30m",
            aggregation="count",
            start_time=to_iso(T0),
            end_time=to_iso(T0 + HOUR),
        ).json()

        assert [(b["timestamp"], b["count"]) for b in body["series"]["temperature"]] == [
            ("2025-07-02T10:00:00.000Z", 2),
            ("2025-07-02T10:30:00.000Z", 2),
        ]

    def test_several_fields_and_text_values_ignored(self, device):
        send(device, [at(T0, t=1.0, h=10, mode="eco"), at(T0 + MINUTE, t=3.0, h=20, mode="boost")])

        body = aggregated(
            device, field="t,h,mode", window="1h", start_time=to_iso(T0), end_time=to_iso(T0 + HOUR)
        ).json()

        assert body["series"]["t"] == [{"timestamp": "2025-07-02T10:00:00.000Z", "value": 2.0, "count": 2}]
        assert body["series"]["h"] == [{"timestamp": "2025-07-02T10:00:00.000Z", "value": 15.0, "count": 2}]
        assert body["series"]["mode"] == []

    def test_default_is_the_mean_over_the_last_day(self, device):
        now = now_ms()
        send(device, [at(now - 2 * MINUTE, t=1.0), at(now - MINUTE, t=3.0), at(now - 25 * HOUR, t=100.0)])

        body = aggregated(device, field="t", window="1d").json()

        assert body["aggregation"] == "mean"
        assert sum(b["count"] for b in body["series"]["t"]) == 2
        assert {b["value"] for b in body["series"]["t"]} <= {1.0, 2.0, 3.0}

    @pytest.mark.parametrize(
        "params,field",
        [
            ({}, "field"),
            ({"field": " , "}, "field"),
            ({"field": "t", "aggregation": "median"}, "aggregation"),
            ({"field": "t", "window": "0s"}, "window"),
            ({"field": "t", "window": "hourly"}, "window"),
            ({"field": "t", "window": "1s", "start_time": "-7d"}, "window"),
            ({"field": "t", "start_time": "later"}, "start_time"),
        ],
    )
    def test_bad_parameters_are_field_errors(self, device, params, field):
        response = aggregated(device, **params)

        assert response.status_code == 400
        assert list(response.json()["errors"]) == [field]


class TestDelete:
    def test_delete_everything(self, day):
        client = day.client()
        client.get(f"/api/v1/telemetry/{day.pk}/latest")

        response = client.delete(f"/api/v1/telemetry/{day.pk}")

        assert response.status_code == 200
        assert response.json() == {"message": "Telemetry deleted", "device_id": day.pk, "deleted": 16}
        assert get_backend().count(day.pk) == 0
        assert client.get(f"/api/v1/telemetry/{day.pk}/latest").json()["data"] == {}

    def test_delete_a_range_and_latest_falls_back_to_what_is_left(self, day):
        client = day.client()
        assert client.get(f"/api/v1/telemetry/{day.pk}/latest").json()["data"]["temperature"]["value"] == 27.0

        response = client.delete(
            f"/api/v1/telemetry/{day.pk}?start_time={to_iso(T0 + HOUR)}&end_time={to_iso(T0 + 2 * HOUR)}"
        )

        assert response.json()["deleted"] == 8
        latest = client.get(f"/api/v1/telemetry/{day.pk}/latest").json()["data"]
        assert latest["temperature"] == {"value": 23.0, "timestamp": "2025-07-02T10:45:00.000Z"}
        assert latest["humidity"]["timestamp"] == "2025-07-02T10:45:00.000Z"
        assert history(day, start_time=to_iso(T0)).json()["count"] == 8

    def test_delete_one_field(self, day):
        client = day.client()

        response = client.delete(f"/api/v1/telemetry/{day.pk}?fields=humidity")

        assert response.json()["deleted"] == 8
        latest = client.get(f"/api/v1/telemetry/{day.pk}/latest").json()["data"]
        assert list(latest) == ["temperature"]

    def test_delete_up_to_a_time(self, day):
        response = day.client().delete(f"/api/v1/telemetry/{day.pk}?end_time={to_iso(T0 + 30 * MINUTE)}")

        assert response.json()["deleted"] == 4
        assert history(day, start_time=to_iso(T0), order="asc").json()["data"][0]["timestamp"] == (
            "2025-07-02T10:30:00.000Z"
        )

    def test_deleting_one_device_leaves_another_alone(self, day, other_device):
        send(other_device, [at(T0, t=1.0)])

        day.client().delete(f"/api/v1/telemetry/{day.pk}")

        assert get_backend().count(other_device.pk) == 1

    def test_bad_range_deletes_nothing(self, day):
        response = day.client().delete(f"/api/v1/telemetry/{day.pk}?start_time=whenever")

        assert response.status_code == 400
        assert get_backend().count(day.pk) == 16

    def test_owner_deletes_with_a_token(self, day, alice_client):
        assert alice_client.delete(f"/api/v1/telemetry/{day.pk}").status_code == 200
        assert get_backend().count(day.pk) == 0


def test_telemetry_status_is_public(client, db):
    response = client.get("/api/v1/telemetry/status")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["backend"]["backend"] == "sql"
    assert body["backend"]["status"] == "healthy"
    assert body["max_points_per_request"] == 10_000
    assert body["timestamp"].endswith("Z")
