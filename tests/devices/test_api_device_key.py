"""A device uses its own API key for status, heartbeat, configuration and MQTT credentials."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import Device, DeviceConfiguration, mqtt_password_for

DEVICE_ENDPOINTS = [
    ("get", "/api/v1/devices/status"),
    ("post", "/api/v1/devices/heartbeat"),
    ("get", "/api/v1/devices/config"),
    ("get", "/api/v1/devices/mqtt-credentials"),
]


def call(client: APIClient, method: str, url: str):
    return getattr(client, method)(url, format="json")


def test_status_describes_the_calling_device(device):
    response = device.client().get("/api/v1/devices/status")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == device.pk
    assert body["name"] == "alice-sensor"
    assert body["status"] == "active"
    assert body["is_online"] is False
    assert body["last_seen"] is None


def test_heartbeat_records_when_the_device_was_last_seen(device):
    before = timezone.now()

    response = device.client().post("/api/v1/devices/heartbeat")

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Heartbeat received"
    assert body["device_id"] == device.pk
    assert body["status"] == "online"
    device.device.refresh_from_db()
    assert device.device.last_seen >= before
    status = device.client().get("/api/v1/devices/status").json()
    assert status["last_seen"] is not None


def test_heartbeat_of_one_device_leaves_another_unseen(device, other_device):
    device.client().post("/api/v1/devices/heartbeat")

    assert other_device.client().get("/api/v1/devices/status").json()["last_seen"] is None


def test_configuration_starts_empty(device):
    response = device.client().get("/api/v1/devices/config")

    assert response.status_code == 200
    assert response.json() == {"device_id": device.pk, "configuration": {}, "updated_at": None}


def test_configuration_is_written_and_read_back(device):
    client = device.client()
    config = {"interval": 30, "units": "metric", "thresholds": {"high": 30.5}, "enabled": True}

    response = client.put("/api/v1/devices/config", {"configuration": config}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["configuration"] == config
    read = client.get("/api/v1/devices/config").json()
    assert read["configuration"] == config
    assert read["updated_at"] is not None


def test_configuration_body_may_be_the_plain_mapping(device):
    client = device.client()
    response = client.put("/api/v1/devices/config", {"interval": 10}, format="json")

    assert response.status_code == 200
    assert client.get("/api/v1/devices/config").json()["configuration"] == {"interval": 10}


def test_configuration_update_merges_and_null_removes_a_key(device):
    client = device.client()
    client.put("/api/v1/devices/config", {"configuration": {"interval": 30, "units": "metric"}}, format="json")

    response = client.put("/api/v1/devices/config", {"configuration": {"interval": 60, "units": None}}, format="json")

    assert response.status_code == 200
    assert response.json()["configuration"] == {"interval": 60}
    assert client.get("/api/v1/devices/config").json()["configuration"] == {"interval": 60}
    assert list(DeviceConfiguration.objects.filter(device_id=device.pk).values_list("key", flat=True)) == ["interval"]


def test_configuration_of_one_device_is_invisible_to_another(device, other_device):
    device.client().put("/api/v1/devices/config", {"configuration": {"secret": "a"}}, format="json")

    assert other_device.client().get("/api/v1/devices/config").json()["configuration"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"configuration": {}},
        {},
        {"configuration": "interval=30"},
        {"configuration": ["interval", 30]},
        {"configuration": {"": 1}},
        {"configuration": {"k" * 101: 1}},
    ],
)
def test_bad_configuration_body_is_a_field_error(device, body):
    response = device.client().put("/api/v1/devices/config", body, format="json")

    assert response.status_code == 400
    assert "configuration" in response.json()["errors"]
    assert not DeviceConfiguration.objects.exists()


def test_configuration_body_that_is_not_an_object_is_refused(device):
    response = device.client().put("/api/v1/devices/config", [1, 2], format="json")

    assert response.status_code == 400
    assert not DeviceConfiguration.objects.exists()


def test_mqtt_credentials_are_derived_from_the_key(device, settings):
    settings.MQTT_URL = "mqtt://broker.internal:1884"
    settings.MQTT_PUBLIC_HOST = "mqtt.example.com"

    response = device.client().get("/api/v1/devices/mqtt-credentials")

    assert response.status_code == 200
    body = response.json()
    prefix = f"iotflow/devices/{device.pk}/"
    assert body == {
        "host": "mqtt.example.com",
        "port": 1884,
        "username": f"device-{device.pk}",
        "password": mqtt_password_for(device.device),
        "client_id": f"device-{device.pk}",
        "topic_prefix": prefix,
        "topics": {
            "telemetry": f"{prefix}telemetry",
            "status": f"{prefix}status/{{online|offline}}",
            "commands": f"{prefix}commands",
            "command_ack": f"{prefix}commands/ack",
        },
    }
    assert body["password"] != device.key
    assert device.client().get("/api/v1/devices/mqtt-credentials").json()["password"] == body["password"]


def test_mqtt_password_differs_between_devices(device, other_device):
    first = device.client().get("/api/v1/devices/mqtt-credentials").json()["password"]
    second = other_device.client().get("/api/v1/devices/mqtt-credentials").json()["password"]
    assert first != second


def test_mqtt_host_defaults_to_the_broker_url(device, settings):
    settings.MQTT_URL = "mqtt://10.0.0.5"
    settings.MQTT_PUBLIC_HOST = ""

    body = device.client().get("/api/v1/devices/mqtt-credentials").json()

    assert (body["host"], body["port"]) == ("10.0.0.5", 1883)


@pytest.mark.parametrize("method,url", DEVICE_ENDPOINTS)
def test_invalid_key_is_refused(db, method, url):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="not-a-key")

    response = call(client, method, url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "X-API-Key"


@pytest.mark.parametrize("method,url", DEVICE_ENDPOINTS)
def test_missing_key_is_refused(db, method, url):
    assert call(APIClient(), method, url).status_code == 401


@pytest.mark.parametrize("method,url", DEVICE_ENDPOINTS)
def test_personal_token_is_not_a_device_key(alice_client, device, method, url):
    assert call(alice_client, method, url).status_code == 401


@pytest.mark.parametrize("method,url", DEVICE_ENDPOINTS)
def test_inactive_device_is_forbidden(make_device, alice, method, url):
    inactive = make_device(alice, "retired", status=Device.Status.INACTIVE)

    response = call(inactive.client(), method, url)

    assert response.status_code == 403
    assert "inactive" in response.json()["detail"]


def test_inactive_device_heartbeat_does_not_mark_it_seen(make_device, alice):
    inactive = make_device(alice, "retired", status=Device.Status.INACTIVE)
    inactive.client().post("/api/v1/devices/heartbeat")
    inactive.device.refresh_from_db()
    assert inactive.device.last_seen is None


@pytest.mark.parametrize("method,url", DEVICE_ENDPOINTS)
def test_device_in_maintenance_is_still_accepted(make_device, alice, method, url):
    serviced = make_device(alice, "serviced", status=Device.Status.MAINTENANCE)
    assert call(serviced.client(), method, url).status_code == 200


def test_rotated_key_is_refused_immediately_and_the_new_one_works(device):
    old_client = device.client()
    assert old_client.get("/api/v1/devices/status").status_code == 200  # the old key is now cached

    new_key = device.device.set_new_api_key()
    device.device.save()

    assert old_client.get("/api/v1/devices/status").status_code == 401
    new_client = APIClient()
    new_client.credentials(HTTP_X_API_KEY=new_key)
    assert new_client.get("/api/v1/devices/status").status_code == 200
    device.device.refresh_from_db()
    assert device.device.key_rotated_at is not None


def test_status_change_in_the_database_applies_to_a_cached_key(device):
    client = device.client()
    assert client.get("/api/v1/devices/status").status_code == 200

    device.device.status = Device.Status.INACTIVE
    device.device.save()

    assert client.get("/api/v1/devices/status").status_code == 403


def test_deleted_device_key_is_refused(device):
    client = device.client()
    assert client.get("/api/v1/devices/status").status_code == 200

    device.device.delete()

    assert client.get("/api/v1/devices/status").status_code == 401


def test_key_with_surrounding_spaces_is_accepted(device):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=f"  {device.key} ")
    assert client.get("/api/v1/devices/status").status_code == 200
