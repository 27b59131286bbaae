"""Device health follows what the device does: heard from → online; silent → stale, then offline."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.db.models import Q
from django.utils import timezone

from devices import health
from devices.models import Device, HealthEvent
from notifications import live
from notifications.models import Notification
from tests.integration.processes import wait_for

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


def test_an_online_device_seen_again_records_time_and_metadata_without_a_new_event(device, settings):
    settings.LAST_SEEN_RESOLUTION_SECONDS = 0  # every call passes the gate
    health.mark_seen(device.device, {"fw": "1.0"}, reason="telemetry")
    first = refreshed(device).last_seen
    health.mark_seen(device.device, {"fw": "1.1", "site": {"room": 4}}, reason="telemetry")
    current = refreshed(device)
    assert current.last_seen > first
    assert current.last_metadata == {"fw": "1.1", "site": {"room": 4}}
    health.mark_seen(device.device, reason="telemetry")
    assert refreshed(device).last_metadata == {"fw": "1.1", "site": {"room": 4}}, "no metadata keeps the last"
    assert list(HealthEvent.objects.filter(device=device.device).values_list("state", flat=True)) == ["online"]


def test_a_fleet_coming_back_goes_online_in_a_few_statements_a_chunk(
    make_device, alice, bob, monkeypatch, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    monkeypatch.setattr(health, "TRANSITION_CHUNK", 4)
    bob.muted_notification_kinds = ["device_online"]
    bob.save()
    fleet = [make_device(alice, f"fleet-{index}") for index in range(6)] + [
        make_device(bob, f"muted-{index}") for index in range(4)
    ]
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "_send_now", lambda group, message: sent.append((group, message)))
    chunks = 3  # 10 devices, 4 a transaction
    # each chunk: savepoint, lock, update, events, notifications, release (five statements a device before)
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(6 * chunks):
        changed = health.transition_many({keyed.pk: "telemetry" for keyed in fleet}, Health.ONLINE)
    assert sorted(changed) == sorted(keyed.pk for keyed in fleet)

    assert all(refreshed(keyed).health == Health.ONLINE for keyed in fleet)
    events = HealthEvent.objects.filter(device__in=[keyed.device for keyed in fleet])
    assert sorted(events.values_list("device_id", "previous", "state", "reason")) == sorted(
        (keyed.pk, "never_seen", "online", "telemetry") for keyed in fleet
    )
    titles = sorted(Notification.objects.filter(kind="device_online").values_list("user__username", "title"))
    assert titles == [("alice", f"fleet-{index} is Online") for index in range(6)], "bob muted these"
    health_messages = {group: m["data"]["health"] for group, m in sent if m["type"] == "device_health"}
    assert health_messages == {live.device_group(keyed.pk): "online" for keyed in fleet}
    pushed = [(group, m["data"]["title"]) for group, m in sent if m["type"] == "notification"]
    assert sorted(pushed) == [(live.user_group(alice.pk), f"fleet-{index} is Online") for index in range(6)]


def test_a_sweep_leaves_a_device_heard_from_after_it_was_listed(device, make_device, alice):
    silent = make_device(alice, "silent")
    health.mark_seen(device.device, reason="telemetry")
    health.mark_seen(silent.device, reason="telemetry")
    Device.objects.filter(pk=silent.pk).update(last_seen=timezone.now() - timedelta(hours=1))
    still_silent = Q(last_seen__lt=timezone.now() - timedelta(minutes=5))
    listed = {device.pk: "silence", silent.pk: "silence"}  # as a sweep that read both before one was heard from

    assert health.transition_many(listed, Health.OFFLINE, still=still_silent) == [silent.pk]
    assert refreshed(device).health == Health.ONLINE and refreshed(silent).health == Health.OFFLINE


@pytest.fixture
def redis_gates(settings, private_redis):
    """The default cache on a Redis of the test's own, as servers run it (gates set in one pipeline)."""
    settings.CACHES = {"default": {"BACKEND": "iotflow.cache.TolerantRedisCache", "LOCATION": private_redis.url}}
    return cache


def _fresh_buffer(settings, monkeypatch, interval: float) -> None:
    settings.LAST_SEEN_FLUSH_SECONDS = interval
    monkeypatch.setattr(health, "_buffer", health._buffer.fresh())


@pytest.fixture
def buffered(settings, monkeypatch):
    """Telemetry's last-seen times go through a fresh SeenBuffer writing every 50 ms."""
    _fresh_buffer(settings, monkeypatch, 0.05)
    yield
    if (buffer := health._buffer.peek()) is not None:
        buffer.stop()


@pytest.fixture
def manual_buffer(settings, monkeypatch):
    """A fresh SeenBuffer whose rounds the test drives itself (``flush()``)."""
    _fresh_buffer(settings, monkeypatch, 3600)
    buffer = health.seen_buffer()
    yield buffer
    buffer.stop()


@pytest.mark.django_db(transaction=True)  # the buffer's thread has its own connection: it sees committed rows only
def test_buffered_last_seen_is_written_by_the_process_thread_and_brings_devices_online(
    make_device, alice, buffered, redis_gates
):
    devices = [make_device(alice, f"buffered-{index}") for index in range(3)]
    for index, keyed in enumerate(devices):
        health.mark_seen(keyed.device, {"slot": index} if index else None, reason="telemetry")

    def all_online():
        current = [refreshed(keyed) for keyed in devices]
        return current if all(d.health == Health.ONLINE for d in current) else None

    current = wait_for(all_online, 10, "the buffered write", interval=0.02)
    assert all(d.last_seen is not None and d.health_reason == "telemetry" for d in current)
    assert [d.last_metadata for d in current] == [{}, {"slot": 1}, {"slot": 2}]
    assert HealthEvent.objects.filter(state="online").count() == 3
    assert all(redis_gates.get(health.gate_key(k.pk)) == 1 for k in devices), "each device's gate is closed"


@pytest.mark.django_db(transaction=True)
def test_a_closed_gate_keeps_the_buffered_write_away(device, buffered, redis_gates):
    health.mark_seen(device.device, {"fw": "1.0"}, reason="telemetry")
    first = wait_for(lambda: refreshed(device).last_seen, 10, "the first write", interval=0.02)
    health.mark_seen(device.device, {"fw": "2.0"}, reason="telemetry")
    health.seen_buffer().flush()
    current = refreshed(device)
    assert current.last_seen == first and current.last_metadata == {"fw": "1.0"}, "gate closed: no second write"

    redis_gates.delete(health.gate_key(device.pk))  # as the admin's device-cache clearing does
    health.mark_seen(device.device, {"fw": "3.0"}, reason="telemetry")
    health.seen_buffer().flush()
    current = refreshed(device)
    assert current.last_seen > first and current.last_metadata == {"fw": "3.0"}


@pytest.mark.django_db(transaction=True)
def test_a_failed_buffered_write_is_kept_for_the_next_round(device, manual_buffer, monkeypatch):
    health.mark_seen(device.device, {"fw": "1.0"}, reason="telemetry")
    real = health.record_seen

    def unreachable(entries):
        raise OperationalError("database unreachable")

    monkeypatch.setattr(health, "record_seen", unreachable)
    with pytest.raises(OperationalError):
        manual_buffer.flush()
    assert refreshed(device).last_seen is None
    health.mark_seen(device.device, reason="telemetry")  # newer, without metadata: keeps the pending metadata
    monkeypatch.setattr(health, "record_seen", real)
    manual_buffer.flush()
    current = refreshed(device)
    assert current.health == Health.ONLINE and current.last_metadata == {"fw": "1.0"}
    assert manual_buffer.pending == {} and manual_buffer.passed == {}


@pytest.mark.django_db(transaction=True)
def test_an_offline_message_handled_while_telemetry_waited_keeps_the_device_offline(device, manual_buffer):
    health.mark_seen(device.device, reason="telemetry")
    manual_buffer.flush()
    assert refreshed(device).health == Health.ONLINE
    cache.delete(health.gate_key(device.pk))
    health.mark_seen(device.device, reason="telemetry")  # heard from, then its last will arrives
    health.transition(device.pk, Health.OFFLINE, "status/offline")
    manual_buffer.flush()
    current = refreshed(device)
    assert current.health == Health.OFFLINE and current.health_reason == "status/offline"

    cache.delete(health.gate_key(device.pk))
    health.mark_seen(device.device, reason="telemetry")  # heard from after it went offline: online again
    manual_buffer.flush()
    assert refreshed(device).health == Health.ONLINE
