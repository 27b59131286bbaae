"""Who may read and delete which device's telemetry."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from telemetry.backends import get_backend
from tests.conftest import session_client, token_client

T0 = 1751450400000  # 2025-07-02T10:00:00Z
START = {"start_time": "2025-07-01T00:00:00Z", "end_time": "2025-07-03T00:00:00Z"}


def read_endpoints(device_id: int) -> list[tuple[str, dict]]:
    return [
        (f"/api/v1/telemetry/{device_id}", START),
        (f"/api/v1/telemetry/{device_id}/latest", {}),
        (f"/api/v1/telemetry/{device_id}/aggregated", {"field": "t", **START}),
    ]


@pytest.fixture
def readings(device, other_device):
    for keyed, value in [(device, 1.0), (other_device, 2.0)]:
        response = keyed.client().post("/api/v1/telemetry", {"data": {"t": value}, "timestamp": T0}, format="json")
        assert response.status_code == 201
    return device


def assert_reads_alices_data(client, device) -> None:
    history, latest, aggregated = [client.get(url, params) for url, params in read_endpoints(device.pk)]
    assert history.status_code == 200, history.json()
    assert [row["value"] for row in history.json()["data"]] == [1.0]
    assert latest.status_code == 200
    assert latest.json()["data"]["t"]["value"] == 1.0
    assert aggregated.status_code == 200
    assert aggregated.json()["series"]["t"][0]["value"] == 1.0


def test_device_reads_its_own_telemetry(readings):
    assert_reads_alices_data(readings.client(), readings)


def test_owner_reads_with_a_personal_token(readings, alice_client):
    assert_reads_alices_data(alice_client, readings)


def test_owner_reads_with_a_session(readings, alice):
    assert_reads_alices_data(session_client(alice), readings)


def test_staff_reads_any_device_with_the_admin_header(readings, admin_client_api):
    assert_reads_alices_data(admin_client_api, readings)


def test_staff_reads_any_device_with_a_personal_token(readings, staff):
    assert_reads_alices_data(token_client(staff), readings)


def test_staff_reads_any_device_with_a_session(readings, staff):
    assert_reads_alices_data(session_client(staff), readings)


@pytest.mark.parametrize("index", range(3))
def test_another_device_s_key_is_forbidden(readings, other_device, index):
    url, params = read_endpoints(readings.pk)[index]

    response = other_device.client().get(url, params)

    assert response.status_code == 403
    assert "1.0" not in response.content.decode()


def test_another_device_s_key_cannot_delete(readings, other_device):
    response = other_device.client().delete(f"/api/v1/telemetry/{readings.pk}")

    assert response.status_code == 403
    assert get_backend().count(readings.pk) == 1


@pytest.mark.parametrize("index", range(3))
def test_another_user_s_token_finds_nothing(readings, bob_client, index):
    url, params = read_endpoints(readings.pk)[index]

    response = bob_client.get(url, params)

    assert response.status_code == 404


@pytest.mark.parametrize("index", range(3))
def test_another_user_s_session_finds_nothing(readings, bob, index):
    url, params = read_endpoints(readings.pk)[index]
    assert session_client(bob).get(url, params).status_code == 404


def test_another_user_cannot_delete(readings, bob_client, bob):
    assert bob_client.delete(f"/api/v1/telemetry/{readings.pk}").status_code == 404
    assert session_client(bob).delete(f"/api/v1/telemetry/{readings.pk}").status_code == 404
    assert get_backend().count(readings.pk) == 1


def test_owner_session_deletes(readings, alice):
    response = session_client(alice).delete(f"/api/v1/telemetry/{readings.pk}")

    assert response.status_code == 200
    assert get_backend().count(readings.pk) == 0


def test_session_delete_needs_the_csrf_token(readings, alice):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password="s3cret-pass-123")

    response = client.delete(f"/api/v1/telemetry/{readings.pk}")

    assert response.status_code == 403
    assert get_backend().count(readings.pk) == 1


def test_owner_sees_only_their_devices_in_the_list(readings, alice_client, other_device):
    body = alice_client.get("/api/v1/devices").json()
    assert [d["id"] for d in body["results"]] == [readings.pk]
    assert alice_client.get(f"/api/v1/devices/{other_device.pk}").status_code == 404


def test_non_staff_admin_header_is_forbidden(readings, alice):
    client = token_client(alice, "admin")
    assert client.get(f"/api/v1/telemetry/{readings.pk}/latest").status_code == 403


@pytest.mark.parametrize("index", range(3))
def test_anonymous_is_unauthorised(readings, index):
    url, params = read_endpoints(readings.pk)[index]

    response = APIClient().get(url, params)

    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


def test_anonymous_cannot_delete(readings):
    assert APIClient().delete(f"/api/v1/telemetry/{readings.pk}").status_code == 401
    assert get_backend().count(readings.pk) == 1


def test_invalid_token_is_unauthorised(readings):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token ift_nope")
    assert client.get(f"/api/v1/telemetry/{readings.pk}/latest").status_code == 401


def test_device_key_reaches_no_other_device_even_unknown_ones(readings):
    assert readings.client().get("/api/v1/telemetry/999999/latest").status_code == 403
