"""Telemetry published over MQTT, stored by a real Celery worker, shows up on an open page's socket."""

import json
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from asgiref.sync import sync_to_async
from paho.mqtt.enums import CallbackAPIVersion

from devices.broker import device_client_id
from devices.models import mqtt_password_for
from tests.integration.processes import start_worker, stop_process

from .conftest import login, receive_type, run, socket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mqtt_device(private_broker, device):
    with private_broker.accounts() as accounts:
        accounts.ensure_device(device.pk, mqtt_password_for(device.device))
    return device


def test_mqtt_telemetry_reaches_a_subscribed_socket(private_broker, redis_layer, mqtt_device, alice, tmp_path):
    log = tmp_path / "worker.log"
    # The worker's channel layer is the same Redis the test's socket listens on.
    worker = start_worker(private_broker, "live", log, REDIS_URL=redis_layer.url, CHANNEL_LAYER_PREFIX="iotflow-test")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_client_id(mqtt_device.pk))
    client.username_pw_set(mqtt_device.device.mqtt_username, mqtt_password_for(mqtt_device.device))
    client.connect(private_broker.host, private_broker.port)
    client.loop_start()
    topic = f"iotflow/devices/{mqtt_device.pk}/telemetry"
    alice_cookie = login(alice)

    def publish(seq: int) -> None:
        body = {"data": {"temperature": 20 + seq, "seq": seq}, "timestamp": 1_751_000_000_000 + seq}
        client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)

    async def scenario():
        page = socket(alice_cookie)
        await page.connect()
        await page.send_json_to({"type": "subscribe", "devices": [mqtt_device.pk]})
        await receive_type(page, "subscribed")
        # The worker needs a while to start and subscribe: publish until a message comes through.
        for seq in range(120):
            await sync_to_async(publish)(seq)
            if await page.receive_nothing(timeout=1):
                continue  # (a timed-out receive would end the socket: peek instead)
            message = await receive_type(page, "telemetry")
            assert message["device"] == mqtt_device.pk
            assert message["data"]["temperature"] == 20 + message["data"]["seq"]
            assert message["ts"].startswith("2025-06-27T")
            heard = datetime.fromisoformat(message["seen"])
            assert abs(heard - datetime.now(UTC)) < timedelta(minutes=5), "readings of 2025, heard from now"
            break
        else:
            raise AssertionError(f"no telemetry reached the socket\n{log.read_text()[-3000:]}")
        await page.disconnect()

    try:
        run(scenario)
    finally:
        client.loop_stop()
        client.disconnect()
        stop_process(worker)
