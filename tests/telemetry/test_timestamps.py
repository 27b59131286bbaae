"""Devices send timestamps in many formats; each lands on the same UTC millisecond."""

from datetime import UTC, datetime

import pytest

from telemetry import timeparse
from telemetry.backends import get_backend

# 2025-07-02T14:30:00Z
EPOCH_S = 1751466600
EPOCH_MS = EPOCH_S * 1000


def post(device, timestamp, **extra):
    body = {"data": {"temperature": 21.5}, **extra}
    if timestamp is not ...:
        body["timestamp"] = timestamp
    return device.client().post("/api/v1/telemetry", body, format="json")


def stored_ts(device) -> int:
    (point,) = get_backend().history(device.pk, start=0, end=2**62)
    return point.ts


@pytest.mark.parametrize(
    "timestamp,expected_ms",
    [
        ("2025-07-02T14:30:00Z", EPOCH_MS),
        ("2025-07-02T14:30:00.250Z", EPOCH_MS + 250),
        ("2025-07-02T14:30:00+00:00", EPOCH_MS),
        ("2025-07-02T16:30:00+02:00", EPOCH_MS),
        ("2025-07-02T09:30:00-05:00", EPOCH_MS),
        ("2025-07-02T14:30:00", EPOCH_MS),
        ("2025-07-02 14:30:00", EPOCH_MS),
        ("2025-07-02 16:30:00+02:00", EPOCH_MS),
        (EPOCH_S, EPOCH_MS),
        (EPOCH_MS, EPOCH_MS),
        (EPOCH_S + 0.125, EPOCH_MS + 125),
        (str(EPOCH_S), EPOCH_MS),
        (str(EPOCH_MS), EPOCH_MS),
        ("1751466600.5", EPOCH_MS + 500),
    ],
)
def test_timestamp_formats_are_stored_as_utc_milliseconds(device, timestamp, expected_ms):
    response = post(device, timestamp)

    assert response.status_code == 201, response.json()
    assert stored_ts(device) == expected_ms


def test_history_reports_timestamps_in_iso_utc(device):
    post(device, "2025-07-02T16:30:00.5+02:00")

    body = device.client().get(f"/api/v1/telemetry/{device.pk}", {"start_time": "2025-07-01T00:00:00Z"}).json()

    assert [row["timestamp"] for row in body["data"]] == ["2025-07-02T14:30:00.500Z"]


def test_absent_timestamp_means_server_time(device):
    before = timeparse.now_ms()
    assert post(device, ...).status_code == 201
    after = timeparse.now_ms()

    assert before <= stored_ts(device) <= after


def test_null_timestamp_means_server_time(device):
    before = timeparse.now_ms()
    assert post(device, None).status_code == 201
    assert before <= stored_ts(device) <= timeparse.now_ms()


@pytest.mark.parametrize(
    "timestamp",
    [
        "1999-12-31T23:59:59Z",
        0,
        946684799,
        "2000-01-01T00:00:00+00:01",
    ],
)
def test_too_old_timestamp_is_rejected(device, timestamp):
    response = post(device, timestamp)

    assert response.status_code == 400
    (message,) = response.json()["errors"]["timestamp"]
    assert "2000-01-01" in message
    assert get_backend().count(device.pk) == 0


def test_earliest_accepted_time_is_accepted(device):
    assert post(device, "2000-01-01T00:00:00Z").status_code == 201


def test_timestamp_far_in_the_future_is_rejected(device, settings):
    settings.TELEMETRY_MAX_FUTURE_SECONDS = 3600
    two_hours_ahead = timeparse.now_ms() + 2 * 3_600_000

    response = post(device, two_hours_ahead)

    assert response.status_code == 400
    (message,) = response.json()["errors"]["timestamp"]
    assert "3600 seconds in the future" in message
    assert get_backend().count(device.pk) == 0


def test_slightly_future_timestamp_is_accepted(device, settings):
    settings.TELEMETRY_MAX_FUTURE_SECONDS = 3600
    assert post(device, timeparse.now_ms() + 60_000).status_code == 201


@pytest.mark.parametrize("timestamp", ["yesterday", "2025-13-01T00:00:00Z", "", True, [EPOCH_S], {"s": EPOCH_S}])
def test_unreadable_timestamp_is_a_field_error(device, timestamp):
    response = post(device, timestamp)

    assert response.status_code == 400
    assert response.json()["errors"]["timestamp"]
    assert get_backend().count(device.pk) == 0


def test_batch_timestamp_errors_name_the_record(device):
    batch = [
        {"data": {"t": 1}, "timestamp": EPOCH_S},
        {"data": {"t": 2}, "timestamp": "not a time"},
    ]
    response = device.client().post("/api/v1/telemetry", batch, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["records[1].timestamp"]


class TestParseAbsolute:
    def test_iso_with_zone_designator(self):
        assert timeparse.parse_absolute("2025-07-02T14:30:00Z") == EPOCH_MS

    def test_iso_with_offset(self):
        assert timeparse.parse_absolute("2025-07-02T23:30:00+09:00") == EPOCH_MS

    def test_naive_text_is_utc(self):
        assert timeparse.parse_absolute("2025-07-02 14:30:00") == EPOCH_MS

    def test_surrounding_whitespace_is_ignored(self):
        assert timeparse.parse_absolute("  2025-07-02T14:30:00Z\n") == EPOCH_MS

    def test_small_numbers_are_seconds_and_large_ones_milliseconds(self):
        assert timeparse.parse_absolute(EPOCH_S) == EPOCH_MS
        assert timeparse.parse_absolute(EPOCH_MS) == EPOCH_MS
        assert timeparse.parse_absolute(timeparse.SECONDS_LIMIT - 1) == (timeparse.SECONDS_LIMIT - 1) * 1000
        assert timeparse.parse_absolute(timeparse.SECONDS_LIMIT) == timeparse.SECONDS_LIMIT

    def test_fractional_seconds_keep_milliseconds(self):
        assert timeparse.parse_absolute(EPOCH_S + 0.999) == EPOCH_MS + 999
        assert timeparse.parse_absolute("1751466600.042") == EPOCH_MS + 42

    @pytest.mark.parametrize("value", [True, False, None, float("nan"), float("inf"), "tomorrow", "12:00", [1]])
    def test_unreadable_values_raise(self, value):
        with pytest.raises(ValueError):
            timeparse.parse_absolute(value)


class TestParsePointTimestamp:
    def test_none_is_now(self):
        before = timeparse.now_ms()
        assert before <= timeparse.parse_point_timestamp(None) <= timeparse.now_ms()

    def test_bounds(self, settings):
        settings.TELEMETRY_MIN_TIMESTAMP = "2020-01-01T00:00:00Z"
        settings.TELEMETRY_MAX_FUTURE_SECONDS = 10
        assert timeparse.parse_point_timestamp("2020-01-01T00:00:00Z") == 1577836800000
        with pytest.raises(ValueError, match="before 2020-01-01"):
            timeparse.parse_point_timestamp("2019-12-31T23:59:59.999Z")
        with pytest.raises(ValueError, match="in the future"):
            timeparse.parse_point_timestamp(timeparse.now_ms() + 60_000)


class TestQueryTimes:
    def test_relative_times_count_back_from_now(self):
        now = timeparse.now_ms()
        for text, span in [("-30s", 30_000), ("-5m", 300_000), ("-1h", 3_600_000), ("-7d", 7 * 86_400_000)]:
            assert abs(timeparse.parse_query_time(text, 0) - (now - span)) < 5_000

    def test_absent_uses_the_default(self):
        assert timeparse.parse_query_time(None, 42) == 42
        assert timeparse.parse_query_time("", 42) == 42

    def test_now_and_absolute(self):
        assert abs(timeparse.parse_query_time("now", 0) - timeparse.now_ms()) < 5_000
        assert timeparse.parse_query_time("2025-07-02T14:30:00Z", 0) == EPOCH_MS
        assert timeparse.parse_query_time(str(EPOCH_S), 0) == EPOCH_MS

    @pytest.mark.parametrize("text", ["-1y", "1h", "-h", "soon"])
    def test_unreadable_query_times_raise(self, text):
        with pytest.raises(ValueError):
            timeparse.parse_query_time(text, 0)

    @pytest.mark.parametrize("text,ms", [("30s", 30_000), ("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000)])
    def test_durations(self, text, ms):
        assert timeparse.parse_duration(text) == ms

    @pytest.mark.parametrize("text", ["0s", "-1h", "1y", "h", "1.5h", ""])
    def test_bad_durations_raise(self, text):
        with pytest.raises(ValueError):
            timeparse.parse_duration(text)


def test_iso_output_round_trips():
    ms = EPOCH_MS + 7
    assert timeparse.to_iso(ms) == "2025-07-02T14:30:00.007Z"
    assert timeparse.to_datetime(ms) == datetime(2025, 7, 2, 14, 30, 0, 7000, tzinfo=UTC)
    assert timeparse.parse_absolute(timeparse.to_iso(ms)) == ms
