"""MQTT messages reach the same ingest path as HTTP, and bad ones never stop the consumer."""

import json

import pytest

from devices import commands
from devices.models import Command, Device, HealthEvent
from telemetry.backends import get_backend
from telemetry.mqtt import Incoming, parse_topic, process_batch


def message(topic: str, payload, mid: int = 1) -> Incoming:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Incoming(topic=topic, payload=body, mid=mid, qos=1, generation=0)


def test_topics_are_parsed():
    assert parse_topic("iotflow/devices/7/telemetry").kind == "telemetry"
    assert parse_topic("iotflow/devices/7/telemetry/engine/left").rest == ["engine", "left"]
    assert parse_topic("iotflow/devices/7/status/offline").rest == ["offline"]
    assert parse_topic("iotflow/devices/7/commands/ack").kind == "ack"
    for bad in ("iotflow/devices/x/telemetry", "iotflow/devices/7/status/maybe", "other/7/telemetry", "iotflow"):
        assert parse_topic(bad) is None


def test_telemetry_messages_are_stored_once_in_one_batch(device):
    topic = f"iotflow/devices/{device.pk}/telemetry"
    batch = [
        message(topic, {"data": {"temperature": 21.5, "fan": {"speed": 2}}, "timestamp": 1751466600}),
        message(topic, {"data": {"temperature": 21.5, "fan": {"speed": 2}}, "timestamp": 1751466600}, mid=2),
        message(f"{topic}/engine", {"data": {"rpm": 900}, "timestamp": 1751466600}, mid=3),
    ]
    process_batch(batch)
    stored = {p.measurement: p.value for p in get_backend().history(device.pk, start=0, end=2**62)}
    assert stored == {"temperature": 21.5, "fan.speed": 2, "engine.rpm": 900}
    device.device.refresh_from_db()
    assert device.device.health == Device.Health.ONLINE and device.device.last_seen is not None


def test_malformed_messages_are_dropped_without_stopping_the_batch(device, other_device):
    good = message(f"iotflow/devices/{other_device.pk}/telemetry", {"data": {"t": 1}, "timestamp": 1751466600})
    process_batch(
        [
            message(f"iotflow/devices/{device.pk}/telemetry", b"{not json"),
            message(f"iotflow/devices/{device.pk}/telemetry", {"data": {"t": None}}),
            message(f"iotflow/devices/{device.pk}/telemetry", b"\xff\xfe"),
            message("iotflow/devices/999999/telemetry", {"data": {"t": 1}}),
            message(f"iotflow/devices/{device.pk}/commands/ack", {"id": "not-a-uuid", "status": "ok"}),
            good,
        ]
    )
    assert get_backend().count(device.pk) == 0
    assert get_backend().count(other_device.pk) == 1


def test_status_messages_drive_health(device):
    process_batch([message(f"iotflow/devices/{device.pk}/status/online", b"")])
    process_batch([message(f"iotflow/devices/{device.pk}/status/offline", b"")])
    device.device.refresh_from_db()
    assert device.device.health == Device.Health.OFFLINE
    assert device.device.health_reason == "status/offline"
    events = list(HealthEvent.objects.filter(device=device.device).order_by("at").values_list("previous", "state"))
    assert events == [("never_seen", "online"), ("online", "offline")]


def test_acks_over_mqtt_update_the_command(device):
    command = commands.send(device.device, "set_fan_speed", {"fan_speed": 4})
    commands.claim_delivery(command.pk)
    process_batch(
        [message(f"iotflow/devices/{device.pk}/commands/ack", {"id": str(command.pk), "status": "ok", "result": {}})]
    )
    command.refresh_from_db()
    assert command.status == Command.Status.ACKNOWLEDGED
    device.device.refresh_from_db()
    assert device.device.reported_state == {"fan_speed": 4}


@pytest.mark.parametrize("payload", [[], [{"data": {}}], {"data": {"x": [1, 2]}}])
def test_invalid_records_are_dropped(device, payload):
    process_batch([message(f"iotflow/devices/{device.pk}/telemetry", payload)])
    assert get_backend().count(device.pk) == 0
