"""A user lists and reads their own devices; staff see every device."""

import pytest
from rest_framework.test import APIClient

from devices.models import Device
from tests.conftest import session_client, token_client


@pytest.fixture
def devices(make_device, alice, bob):
    return [
        make_device(alice, "porch", device_type="camera"),
        make_device(alice, "attic", status=Device.Status.MAINTENANCE),
        make_device(bob, "garage"),
    ]


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [d["name"] for d in response.json()["results"]]


def test_owner_lists_only_their_devices(devices, alice_client):
    assert names(alice_client.get("/api/v1/devices")) == ["porch", "attic"]


def test_list_with_a_session(devices, alice):
    assert names(session_client(alice).get("/api/v1/devices")) == ["porch", "attic"]


def test_list_filters(devices, alice_client):
    assert names(alice_client.get("/api/v1/devices", {"status": "maintenance"})) == ["attic"]
    assert names(alice_client.get("/api/v1/devices", {"device_type": "camera"})) == ["porch"]


def test_staff_lists_every_device(devices, staff):
    assert names(token_client(staff).get("/api/v1/devices")) == ["porch", "attic", "garage"]


def test_detail_of_own_device(devices, alice_client):
    porch = devices[0]

    response = alice_client.get(f"/api/v1/devices/{porch.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == porch.pk
    assert body["owner"] == "alice"
    assert body["device_type"] == "camera"
    assert "api_key" not in body and "api_key_hash" not in body


def test_detail_of_another_user_s_device_is_not_found(devices, bob_client):
    assert bob_client.get(f"/api/v1/devices/{devices[0].pk}").status_code == 404


def test_anonymous_and_device_keys_are_unauthorised(devices):
    assert APIClient().get("/api/v1/devices").status_code == 401
    assert devices[0].client().get("/api/v1/devices").status_code == 401
    assert devices[0].client().get(f"/api/v1/devices/{devices[0].pk}").status_code == 401
