"""A user registers a device and receives its API key once."""

import hashlib

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from devices.models import Device
from tests.conftest import token_client

URL = "/api/v1/devices/register"
PASSWORD = "s3cret-pass-123"


def register(client: APIClient, **body):
    return client.post(URL, body, format="json")


def test_owner_credentials_in_the_body_register_a_device(alice):
    response = register(
        APIClient(),
        name="Smart Temperature Sensor 001",
        description="Living room environmental sensor",
        device_type="temperature_sensor",
        location="Living Room",
        firmware_version="1.2.3",
        hardware_version="v2.1",
        username="alice",
        password=PASSWORD,
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["message"] == "Device registered successfully"
    device = body["device"]
    assert {"id", "name", "api_key", "status", "device_type", "created_at"} <= device.keys()
    assert device["name"] == "Smart Temperature Sensor 001"
    assert device["status"] == "active"
    assert device["device_type"] == "temperature_sensor"
    assert device["location"] == "Living Room"
    assert device["firmware_version"] == "1.2.3"
    assert device["owner"] == "alice"
    assert "password" not in device and "username" not in device
    stored = Device.objects.get(pk=device["id"])
    assert stored.owner == alice
    assert stored.hardware_version == "v2.1"


def test_personal_token_registers_a_device_for_its_owner(alice, alice_client):
    response = register(alice_client, name="kitchen")

    assert response.status_code == 201, response.json()
    device = Device.objects.get(pk=response.json()["device"]["id"])
    assert device.owner == alice
    assert device.device_type == "sensor"


def test_api_key_is_stored_only_as_its_hash(alice_client):
    response = register(alice_client, name="kitchen")
    api_key = response.json()["device"]["api_key"]
    device = Device.objects.get(pk=response.json()["device"]["id"])

    assert len(api_key) >= 32
    assert device.api_key_hash == hashlib.sha256(api_key.encode()).hexdigest()
    assert device.api_key_prefix == api_key[:8]
    stored_values = Device.objects.filter(pk=device.pk).values().get()
    assert api_key not in {str(value) for value in stored_values.values()}


def test_returned_key_authenticates_the_new_device(alice_client):
    device = register(alice_client, name="kitchen").json()["device"]

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=device["api_key"])
    response = client.get("/api/v1/devices/status")

    assert response.status_code == 200
    assert response.json()["id"] == device["id"]


def test_each_device_gets_its_own_key(alice_client):
    first = register(alice_client, name="one").json()["device"]["api_key"]
    second = register(alice_client, name="two").json()["device"]["api_key"]
    assert first != second


def test_duplicate_name_for_the_same_owner_is_a_conflict(alice_client):
    assert register(alice_client, name="kitchen").status_code == 201

    response = register(alice_client, name="kitchen")

    assert response.status_code == 409
    assert "kitchen" in response.json()["detail"]
    assert Device.objects.filter(name="kitchen").count() == 1


def test_another_owner_may_use_the_same_name(alice_client, bob_client):
    assert register(alice_client, name="kitchen").status_code == 201
    assert register(bob_client, name="kitchen").status_code == 201
    assert Device.objects.filter(name="kitchen").count() == 2


def test_wrong_password_is_refused(alice):
    response = register(APIClient(), name="kitchen", username="alice", password="wrong")

    assert response.status_code == 401
    assert not Device.objects.exists()


def test_unknown_user_is_refused(db):
    response = register(APIClient(), name="kitchen", username="nobody", password=PASSWORD)
    assert response.status_code == 401


def test_inactive_user_cannot_register(make_user):
    make_user("carol", is_active=False)
    response = register(APIClient(), name="kitchen", username="carol", password=PASSWORD)
    assert response.status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"password": PASSWORD}])
def test_missing_owner_credentials_are_refused(alice, body):
    response = register(APIClient(), name="kitchen", **body)

    assert response.status_code == 401
    assert "username" in response.json()["detail"]
    assert response.has_header("WWW-Authenticate")
    assert not Device.objects.exists()


def test_invalid_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token ift_not-a-real-token")
    assert register(client, name="kitchen").status_code == 401


def test_revoked_token_is_refused(alice):
    token, raw = ApiToken.issue(alice)
    token.revoke()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")

    assert register(client, name="kitchen").status_code == 401
    assert not Device.objects.exists()


def test_missing_name_is_a_field_error(alice_client):
    response = register(alice_client, device_type="sensor")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert "name" in body["errors"]


def test_overlong_fields_are_field_errors(alice_client):
    response = register(alice_client, name="x" * 101, device_type="t" * 51)

    assert response.status_code == 400
    assert {"name", "device_type"} <= response.json()["errors"].keys()


def test_status_cannot_be_chosen_at_registration(alice_client):
    response = register(alice_client, name="kitchen", status="maintenance")

    assert response.status_code == 201
    assert Device.objects.get(name="kitchen").status == Device.Status.ACTIVE


def test_staff_registers_devices_for_themselves(staff):
    response = register(token_client(staff), name="lab")
    assert Device.objects.get(pk=response.json()["device"]["id"]).owner == staff
