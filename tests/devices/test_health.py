"""Device health follows what the device does: heard from → online; silent → stale, then offline."""

from datetime import timedelta

from django.utils import timezone

from devices import health
from devices.models import Device, HealthEvent
from notifications.models import Notification

Health = Device.Health


def refreshed(keyed) -> Device:
    keyed.device.refresh_from_db()
    return keyed.device


def test_a_new_device_was_never_seen(alice_client, device):
    body = alice_client.get(f"/api/v1/devices/{device.pk}/health").json()
    assert body["state"] == "never_seen" and body["events"] == []


def test_telemetry_makes_a_device_online_and_tells_the_owner(device, alice):
    response = device.client().post("/api/v1/telemetry", {"data": {"t": 1}}, format="json")
    assert response.status_code == 201
    current = refreshed(device)
    assert current.health == Health.ONLINE and current.health_reason == "telemetry"
    assert current.health_since is not None
    note = Notification.objects.get(user=alice, kind="device_online")
    assert note.device_id == device.pk and note.level == "success"


def test_heartbeat_counts_as_being_heard_from(device):
    device.client().post("/api/v1/devices/heartbeat")
    assert refreshed(device).health_reason == "heartbeat"
    assert device.client().get("/api/v1/devices/status").json()["health"] == "online"


def test_silence_past_the_expected_interval_is_stale_then_offline(device, settings):
    settings.DEVICE_OFFLINE_SECONDS = 300
    Device.objects.filter(pk=device.pk).update(expected_interval=60)
    health.mark_seen(device.device, reason="telemetry")
    now = timezone.now()

    assert health.sweep(now + timedelta(seconds=30)) == 0
    assert health.sweep(now + timedelta(seconds=90)) == 1
    assert refreshed(device).health == Health.STALE
    assert health.sweep(now + timedelta(seconds=301)) == 1
    current = refreshed(device)
    assert current.health == Health.OFFLINE and current.health_reason == "silence"
    assert health.sweep(now + timedelta(seconds=600)) == 0, "an offline device is not re-marked"


def test_every_change_is_recorded_once(device, alice_client):
    health.mark_seen(device.device, reason="telemetry")
    health.transition(device.pk, Health.OFFLINE, "status/offline")
    assert not health.transition(device.pk, Health.OFFLINE, "status/offline"), "no change, no record"
    health.mark_seen(device.device, reason="status/online", force=True)
    events = list(HealthEvent.objects.filter(device=device.device).order_by("at", "id").values_list("state", "reason"))
    assert events == [("online", "telemetry"), ("offline", "status/offline"), ("online", "status/online")]
    api = alice_client.get(f"/api/v1/devices/{device.pk}/health").json()
    assert [e["state"] for e in api["events"]] == ["online", "offline", "online"]


def test_health_is_private_to_the_owner(bob_client, device):
    assert bob_client.get(f"/api/v1/devices/{device.pk}/health").status_code == 404
