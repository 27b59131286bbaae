"""Rate limits: registration per client address, telemetry and heartbeats per device."""

import pytest
from rest_framework.test import APIClient

from iotflow.throttling import RateThrottle, parse_rate
from telemetry.backends import get_backend


@pytest.fixture
def rates(monkeypatch, settings):
    """Set the limits for a test; DRF copies the rates onto the throttle class when it is defined."""

    def set_rates(**overrides: str) -> None:
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        monkeypatch.setattr(RateThrottle, "THROTTLE_RATES", merged)
        settings.RATE_LIMITS_ENABLED = True

    return set_rates


def register(client: APIClient, name: str, **extra):
    return client.post("/api/v1/devices/register", {"name": name}, format="json", **extra)


def send(keyed, value=1.0):
    return keyed.client().post("/api/v1/telemetry", {"data": {"t": value}}, format="json")


def test_registration_is_limited_per_client_address(rates, alice_client):
    rates(register="2/1m")

    assert register(alice_client, "one").status_code == 201
    assert register(alice_client, "two").status_code == 201
    response = register(alice_client, "three")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()


def test_registration_from_another_address_is_not_limited(rates, alice_client):
    rates(register="1/1m")

    assert register(alice_client, "one", REMOTE_ADDR="10.0.0.1").status_code == 201
    assert register(alice_client, "two", REMOTE_ADDR="10.0.0.1").status_code == 429
    assert register(alice_client, "three", REMOTE_ADDR="10.0.0.2").status_code == 201


def test_forwarded_for_header_does_not_escape_the_registration_limit(rates, alice_client, settings):
    """Without a trusted proxy in front, X-Forwarded-For is whatever the client wants it to be."""
    settings.NUM_PROXIES = 0
    rates(register="1/1m")

    assert register(alice_client, "one", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 201
    assert register(alice_client, "two", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 429


def test_behind_a_proxy_the_forwarded_address_is_the_client(rates, alice_client, settings):
    settings.NUM_PROXIES = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    rates(register="1/1m")

    assert register(alice_client, "one", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 201
    assert register(alice_client, "two", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert register(alice_client, "three", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 201


def test_refused_registrations_count_too(rates, db):
    """Guessing owner passwords is limited like registering."""
    rates(register="2/1m")
    client = APIClient()
    body = {"name": "x", "username": "alice", "password": "guess"}

    statuses = [client.post("/api/v1/devices/register", body, format="json").status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_telemetry_is_limited_per_device(rates, device, other_device):
    rates(telemetry="3/1m")

    assert [send(device).status_code for _ in range(3)] == [201, 201, 201]
    limited = send(device)

    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    assert send(other_device).status_code == 201


def test_limited_request_stores_nothing(rates, device):
    rates(telemetry="1/1m")
    body = {"data": {"t": 1}, "timestamp": 1751466600}
    other = {"data": {"t": 2}, "timestamp": 1751466601}

    assert device.client().post("/api/v1/telemetry", body, format="json").status_code == 201
    assert device.client().post("/api/v1/telemetry", other, format="json").status_code == 429

    assert get_backend().count(device.pk) == 1


def test_both_telemetry_urls_share_the_device_s_limit(rates, device):
    rates(telemetry="2/1m")
    client = device.client()

    assert client.post("/api/v1/telemetry", {"data": {"t": 1}}, format="json").status_code == 201
    assert client.post("/api/v1/devices/telemetry", {"data": {"t": 2}}, format="json").status_code == 201
    assert client.post("/api/v1/devices/telemetry", {"data": {"t": 3}}, format="json").status_code == 429


def test_reading_is_not_limited_by_the_telemetry_limit(rates, device):
    rates(telemetry="1/1m")
    send(device)
    client = device.client()

    assert client.get("/api/v1/devices/telemetry").status_code == 200
    assert client.get(f"/api/v1/telemetry/{device.pk}/latest").status_code == 200


def test_heartbeats_are_limited_per_device(rates, device, other_device):
    rates(heartbeat="2/1m")

    statuses = [device.client().post("/api/v1/devices/heartbeat").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert other_device.client().post("/api/v1/devices/heartbeat").status_code == 200


def test_limits_can_be_switched_off(rates, settings, device, alice_client):
    rates(register="1/1m", telemetry="1/1m", heartbeat="1/1m")
    settings.RATE_LIMITS_ENABLED = False

    assert all(register(alice_client, f"d{i}").status_code == 201 for i in range(3))
    assert all(send(device).status_code == 201 for _ in range(3))
    assert all(device.client().post("/api/v1/devices/heartbeat").status_code == 200 for _ in range(3))


@pytest.mark.parametrize(
    "rate,parsed",
    [
        ("100/1m", (100, 60)),
        ("10/5m", (10, 300)),
        ("30/min", (30, 60)),
        ("5/s", (5, 1)),
        ("1000/h", (1000, 3600)),
        ("7/2d", (7, 172800)),
        (None, (None, None)),
    ],
)
def test_rate_syntax(rate, parsed):
    assert parse_rate(rate) == parsed
