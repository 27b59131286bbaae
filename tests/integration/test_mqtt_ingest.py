"""Telemetry over a real broker through a real worker: stored exactly once, even when the worker dies."""

import json
import signal
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.broker import device_client_id
from devices.models import mqtt_password_for
from telemetry.models import TelemetryPoint

from .processes import start_worker, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def device_client(broker, device) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_client_id(device.pk))
    client.username_pw_set(device.device.mqtt_username, mqtt_password_for(device.device))
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def stored(device_id: int) -> int:
    return TelemetryPoint.objects.filter(device_id=device_id).count()


@pytest.fixture
def mqtt_device(private_broker, device):
    with private_broker.accounts() as accounts:
        accounts.ensure_device(device.pk, mqtt_password_for(device.device))
    return device


def wait_until_consuming(client, device, log) -> None:
    """Probe until the worker's consumer is subscribed (messages before that have no session to go to)."""
    topic = f"iotflow/devices/{device.pk}/telemetry"

    def probe():
        client.publish(topic, json.dumps({"data": {"probe": 1}, "timestamp": 1_700_000_000_000}), qos=1)
        time.sleep(0.3)
        return TelemetryPoint.objects.filter(device_id=device.pk, measurement="probe").exists()

    wait_for(probe, 60, "the worker's MQTT consumer", log)


def publish_sequence(client, device, count: int, base: int = 1_751_000_000_000) -> None:
    topic = f"iotflow/devices/{device.pk}/telemetry"
    infos = [
        client.publish(topic, json.dumps({"data": {"seq": i, "temp": 20 + i % 7}, "timestamp": base + i}), qos=1)
        for i in range(count)
    ]
    for info in infos:
        info.wait_for_publish(30)


def test_qos1_messages_are_stored_exactly_once_across_a_killed_worker(private_broker, mqtt_device, tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(private_broker, "ingest", log)
    client = device_client(private_broker, mqtt_device)
    try:
        wait_until_consuming(client, mqtt_device, log)
        count = 4000
        publish_sequence(client, mqtt_device, count)
        # Kill the worker while it is still working through the stream.
        wait_for(lambda: stored(mqtt_device.pk) > 200, 60, "the first points", log, interval=0.01)
        stop_process(worker, signal.SIGKILL)
        at_kill = stored(mqtt_device.pk)

        worker = start_worker(private_broker, "ingest", log)
        expected = 2 * count + 1
        wait_for(lambda: stored(mqtt_device.pk) >= expected, 90, f"{expected} points", log)
        time.sleep(1)  # anything still arriving would be a duplicate
        seqs = sorted(
            TelemetryPoint.objects.filter(device_id=mqtt_device.pk, measurement="seq").values_list(
                "value_float", flat=True
            )
        )
        assert seqs == [float(i) for i in range(count)], "every message stored once"
        assert stored(mqtt_device.pk) == expected
        print(f"\nMQTT ingest: {count} messages, worker killed after {at_kill} points, 0 lost, 0 duplicates")
    finally:
        client.loop_stop()
        client.disconnect()
        stop_process(worker)
