"""Operators manage every device through the admin API with ``Authorization: admin <staff token>``."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from devices.models import Device
from telemetry.backends import get_backend
from telemetry.timeparse import to_iso
from tests.conftest import session_client, token_client

T0 = 1751450400000  # 2025-07-02T10:00:00Z


def send(keyed, **data):
    response = keyed.client().post("/api/v1/telemetry", {"data": data, "timestamp": T0}, format="json")
    assert response.status_code == 201, response.json()


@pytest.fixture
def fleet(make_device, alice, bob):
    return {
        "thermo": make_device(alice, "thermo", device_type="thermostat"),
        "cam": make_device(alice, "cam", device_type="camera", status=Device.Status.MAINTENANCE),
        "meter": make_device(bob, "meter", device_type="meter", status=Device.Status.INACTIVE),
    }


class TestList:
    def test_lists_every_owner_s_devices(self, fleet, admin_client_api):
        response = admin_client_api.get("/api/v1/admin/devices")

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 3
        assert [d["name"] for d in body["results"]] == ["thermo", "cam", "meter"]
        first = body["results"][0]
        assert first["owner"] == "alice"
        assert first["api_key_prefix"] == fleet["thermo"].key[:8]
        assert "api_key" not in first and "api_key_hash" not in first

    @pytest.mark.parametrize(
        "params,names",
        [
            ({"status": "maintenance"}, ["cam"]),
            ({"device_type": "meter"}, ["meter"]),
            ({"search": "THER"}, ["thermo"]),
            ({"status": "active", "device_type": "camera"}, []),
        ],
    )
    def test_filters(self, fleet, admin_client_api, params, names):
        body = admin_client_api.get("/api/v1/admin/devices", params).json()
        assert [d["name"] for d in body["results"]] == names

    def test_filter_by_owner(self, fleet, admin_client_api, bob):
        body = admin_client_api.get("/api/v1/admin/devices", {"owner": bob.pk}).json()
        assert [d["name"] for d in body["results"]] == ["meter"]

    def test_pagination(self, fleet, admin_client_api):
        body = admin_client_api.get("/api/v1/admin/devices", {"limit": 2}).json()
        assert body["count"] == 3
        assert len(body["results"]) == 2
        assert body["next"]


class TestDetail:
    def test_includes_telemetry_point_count_and_latest(self, fleet, admin_client_api):
        send(fleet["thermo"], temperature=21.5, mode="eco")

        response = admin_client_api.get(f"/api/v1/admin/devices/{fleet['thermo'].pk}")

        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "thermo"
        assert body["owner_id"] == fleet["thermo"].device.owner_id
        assert body["telemetry"] == {
            "points": 2,
            "latest": {
                "temperature": {"value": 21.5, "timestamp": to_iso(T0)},
                "mode": {"value": "eco", "timestamp": to_iso(T0)},
            },
        }

    def test_device_without_telemetry(self, fleet, admin_client_api):
        body = admin_client_api.get(f"/api/v1/admin/devices/{fleet['cam'].pk}").json()
        assert body["telemetry"] == {"points": 0, "latest": {}}

    def test_unknown_device(self, admin_client_api, db):
        assert admin_client_api.get("/api/v1/admin/devices/999999").status_code == 404


class TestUpdate:
    def test_put_changes_only_the_given_fields(self, fleet, admin_client_api):
        pk = fleet["thermo"].pk

        response = admin_client_api.put(
            f"/api/v1/admin/devices/{pk}", {"location": "Lab", "firmware_version": "2.0"}, format="json"
        )

        assert response.status_code == 200, response.json()
        device = Device.objects.get(pk=pk)
        assert (device.location, device.firmware_version, device.name) == ("Lab", "2.0", "thermo")

    def test_moves_a_device_to_another_owner(self, fleet, admin_client_api, bob):
        pk = fleet["thermo"].pk

        response = admin_client_api.put(f"/api/v1/admin/devices/{pk}", {"owner_id": bob.pk}, format="json")

        assert response.status_code == 200
        assert Device.objects.get(pk=pk).owner == bob

    def test_status_set_through_update_applies_to_the_key_at_once(self, fleet, admin_client_api):
        thermo = fleet["thermo"]
        assert thermo.client().get("/api/v1/devices/status").status_code == 200

        admin_client_api.put(f"/api/v1/admin/devices/{thermo.pk}", {"status": "inactive"}, format="json")

        assert thermo.client().get("/api/v1/devices/status").status_code == 403

    def test_name_taken_by_the_same_owner_is_refused(self, fleet, admin_client_api):
        response = admin_client_api.put(f"/api/v1/admin/devices/{fleet['cam'].pk}", {"name": "thermo"}, format="json")

        assert response.status_code == 400
        assert Device.objects.get(pk=fleet["cam"].pk).name == "cam"

    def test_moving_onto_an_owner_with_the_same_name_is_refused(self, fleet, admin_client_api, alice):
        Device.objects.filter(pk=fleet["meter"].pk).update(name="thermo")

        response = admin_client_api.put(
            f"/api/v1/admin/devices/{fleet['meter'].pk}", {"owner_id": alice.pk}, format="json"
        )

        assert response.status_code == 400
        assert Device.objects.get(pk=fleet["meter"].pk).owner.username == "bob"

    def test_invalid_status_is_a_field_error(self, fleet, admin_client_api):
        response = admin_client_api.put(f"/api/v1/admin/devices/{fleet['cam'].pk}", {"status": "gone"}, format="json")

        assert response.status_code == 400
        assert "status" in response.json()["errors"]

    def test_key_fields_cannot_be_written(self, fleet, admin_client_api):
        thermo = fleet["thermo"]
        admin_client_api.put(
            f"/api/v1/admin/devices/{thermo.pk}",
            {"api_key_prefix": "XXXXXXXX", "api_key_hash": "0" * 64, "last_metadata": {"x": 1}},
            format="json",
        )
        assert thermo.client().get("/api/v1/devices/status").status_code == 200
        assert Device.objects.get(pk=thermo.pk).last_metadata == {}


class TestStatus:
    @pytest.mark.parametrize("status,expected", [("inactive", 403), ("maintenance", 200), ("active", 200)])
    def test_device_key_reflects_the_new_status_immediately(self, fleet, admin_client_api, status, expected):
        thermo = fleet["thermo"]
        assert thermo.client().get("/api/v1/devices/status").status_code == 200  # the key is now cached

        response = admin_client_api.put(f"/api/v1/admin/devices/{thermo.pk}/status", {"status": status}, format="json")

        assert response.status_code == 200
        assert response.json()["message"] == f"Device status set to {status}"
        assert response.json()["device"]["status"] == status
        assert thermo.client().get("/api/v1/devices/status").status_code == expected
        assert thermo.client().post("/api/v1/telemetry", {"data": {"t": 1}}, format="json").status_code == (
            403 if expected == 403 else 201
        )

    def test_reactivated_device_is_accepted_again(self, fleet, admin_client_api):
        meter = fleet["meter"]
        assert meter.client().get("/api/v1/devices/status").status_code == 403

        admin_client_api.put(f"/api/v1/admin/devices/{meter.pk}/status", {"status": "active"}, format="json")

        assert meter.client().get("/api/v1/devices/status").status_code == 200

    @pytest.mark.parametrize("body", [{"status": "broken"}, {}])
    def test_bad_status_is_a_field_error(self, fleet, admin_client_api, body):
        response = admin_client_api.put(f"/api/v1/admin/devices/{fleet['cam'].pk}/status", body, format="json")

        assert response.status_code == 400
        assert "status" in response.json()["errors"]
        assert Device.objects.get(pk=fleet["cam"].pk).status == Device.Status.MAINTENANCE

    def test_unknown_device(self, admin_client_api, db):
        response = admin_client_api.put("/api/v1/admin/devices/999999/status", {"status": "active"}, format="json")
        assert response.status_code == 404


class TestDelete:
    def test_removes_the_device_its_telemetry_and_its_key(self, fleet, admin_client_api):
        thermo = fleet["thermo"]
        send(thermo, t=1.0)
        send(fleet["cam"], t=2.0)

        response = admin_client_api.delete(f"/api/v1/admin/devices/{thermo.pk}")

        assert response.status_code == 204
        assert not Device.objects.filter(pk=thermo.pk).exists()
        assert get_backend().count(thermo.pk) == 0
        assert get_backend().latest(thermo.pk) == {}
        assert get_backend().count(fleet["cam"].pk) == 1
        assert thermo.client().get("/api/v1/devices/status").status_code == 401

    def test_unknown_device(self, admin_client_api, db):
        assert admin_client_api.delete("/api/v1/admin/devices/999999").status_code == 404


def test_stats(fleet, admin_client_api):
    send(fleet["thermo"], t=1.0, h=2)

    response = admin_client_api.get("/api/v1/admin/stats")

    assert response.status_code == 200
    body = response.json()
    assert body["devices"]["total"] == 3
    assert body["devices"]["by_status"] == {"active": 1, "inactive": 1, "maintenance": 1}
    assert body["devices"]["online"] == 1
    assert body["users"] == 3  # alice, bob and the operator
    assert body["telemetry"]["points"] == 2
    assert body["telemetry"]["backend"]["status"] == "healthy"


class TestCache:
    def test_reports_cached_entries(self, fleet, admin_client_api):
        thermo = fleet["thermo"]
        send(thermo, t=1.0)
        thermo.client().get(f"/api/v1/telemetry/{thermo.pk}/latest")

        body = admin_client_api.get("/api/v1/admin/cache/device-status").json()

        assert body["devices"] == 3
        assert body["cached_devices"] == 1
        assert body["cached_entries"] >= 1
        assert body["cache_backend"]

    def test_clearing_all_keeps_answers_true(self, fleet, admin_client_api):
        thermo = fleet["thermo"]
        send(thermo, t=1.0)
        thermo.client().get(f"/api/v1/telemetry/{thermo.pk}/latest")

        response = admin_client_api.delete("/api/v1/admin/cache/device-status")

        assert response.status_code == 200
        assert response.json() == {"message": "Device cache cleared", "devices": 3}
        assert cache.get(f"seen:{thermo.pk}") is None
        assert admin_client_api.get("/api/v1/admin/cache/device-status").json()["cached_entries"] == 0
        latest = thermo.client().get(f"/api/v1/telemetry/{thermo.pk}/latest").json()
        assert latest["data"]["t"]["value"] == 1.0

    def test_clearing_one_device(self, fleet, admin_client_api):
        thermo, cam = fleet["thermo"], fleet["cam"]
        for keyed in (thermo, cam):
            send(keyed, t=1.0)
            keyed.client().get(f"/api/v1/telemetry/{keyed.pk}/latest")

        response = admin_client_api.delete(f"/api/v1/admin/cache/devices/{thermo.pk}")

        assert response.status_code == 200
        assert response.json()["device_id"] == thermo.pk
        assert cache.get(f"seen:{thermo.pk}") is None
        assert cache.get(f"seen:{cam.pk}") is not None

    def test_clearing_an_unknown_device(self, admin_client_api, db):
        assert admin_client_api.delete("/api/v1/admin/cache/devices/999999").status_code == 404


ADMIN_ENDPOINTS = [
    ("get", "/api/v1/admin/devices"),
    ("get", "/api/v1/admin/devices/{pk}"),
    ("put", "/api/v1/admin/devices/{pk}"),
    ("delete", "/api/v1/admin/devices/{pk}"),
    ("put", "/api/v1/admin/devices/{pk}/status"),
    ("get", "/api/v1/admin/stats"),
    ("get", "/api/v1/admin/cache/device-status"),
    ("delete", "/api/v1/admin/cache/device-status"),
    ("delete", "/api/v1/admin/cache/devices/{pk}"),
]


def call(client, method, url, pk):
    return getattr(client, method)(
        url.format(pk=pk), {"status": "inactive"} if method == "put" else None, format="json"
    )


@pytest.mark.parametrize("method,url", ADMIN_ENDPOINTS)
def test_non_staff_token_with_the_admin_keyword_is_forbidden(device, alice, method, url):
    response = call(token_client(alice, "admin"), method, url, device.pk)

    assert response.status_code == 403
    assert Device.objects.get(pk=device.pk).status == Device.Status.ACTIVE


@pytest.mark.parametrize("method,url", ADMIN_ENDPOINTS)
def test_no_credentials_are_unauthorised(device, method, url):
    response = call(APIClient(), method, url, device.pk)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "admin"
    assert Device.objects.filter(pk=device.pk).exists()


@pytest.mark.parametrize("method,url", ADMIN_ENDPOINTS)
def test_device_key_is_not_an_admin_credential(device, method, url):
    assert call(device.client(), method, url, device.pk).status_code == 401


def test_invalid_admin_token_is_unauthorised(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="admin ift_nope")
    assert client.get("/api/v1/admin/devices").status_code == 401


def test_non_staff_session_is_forbidden(device, alice):
    assert session_client(alice).get("/api/v1/admin/devices").status_code == 403


def test_staff_session_is_accepted(device, staff):
    assert session_client(staff).get("/api/v1/admin/devices").json()["count"] == 1
