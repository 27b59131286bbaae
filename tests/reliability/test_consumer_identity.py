"""A worker that is gone for good under one consumer identity, its stream taken over by another worker.

The dead worker's broker session stays a member of the shared subscription, so the broker keeps
routing a share of the telemetry to it. ``manage.py drain_consumer`` stores what that session holds
and ends it; from then on the broker sends everything to the consumers that are alive.
"""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.broker import device_client_id
from devices.models import mqtt_password_for
from telemetry.models import TelemetryPoint
from tests.integration.processes import ROOT, child_env, start_worker, stop_process, wait_for
from tests.reliability.conftest import record_figures

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

MESSAGES = 40  # per phase; the shared subscription splits them between the two consumers
RETIRED, LIVE = "worker-a", "worker-b"


def sensor(broker, device) -> mqtt.Client:
    """The device's own MQTT 3.1.1 connection, as firmware would open it."""
    with broker.accounts() as accounts:
        accounts.ensure_device(device.pk, mqtt_password_for(device))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_client_id(device.pk), protocol=mqtt.MQTTv311)
    client.username_pw_set(device.mqtt_username, mqtt_password_for(device))
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    return client


def publish(client: mqtt.Client, device_id: int, stamps: list[int]) -> None:
    """One QoS 1 message per timestamp; returns once the broker has acknowledged (and so routed) each."""
    topic = f"iotflow/devices/{device_id}/telemetry"
    bodies = [json.dumps({"data": {"n": i}, "timestamp": ts}) for i, ts in enumerate(stamps)]
    infos = [client.publish(topic, body, qos=1) for body in bodies]
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()


def stored(device_id: int, stamps: list[int]) -> int:
    return TelemetryPoint.objects.filter(device_id=device_id, measurement="n", ts__in=stamps).count()


def subscribed(log: Path) -> bool:
    return "MQTT consumer subscribed as" in log.read_text()


def session_held(broker, client_id: str) -> bool:
    """Whether the broker keeps a session under ``client_id`` (asked with session expiry 0: none is left behind)."""
    outcome: dict = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(broker.platform_username, broker.platform_password)
    client.on_connect = lambda c, userdata, flags, reason_code, props: outcome.update(present=flags.session_present)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        wait_for(lambda: "present" in outcome, 10, f"a connection as {client_id}")
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome["present"]


def drain(broker, consumer_id: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", "drain_consumer", consumer_id, "--timeout", "120"]
    return subprocess.run(  # noqa: S603 (the project's own command)
        command, cwd=ROOT, env=child_env(broker), capture_output=True, text=True, timeout=180
    )


def test_a_retired_identity_is_drained_and_gets_nothing_more(private_broker, device, tmp_path):
    """Worker A is killed for good while worker B lives; messages go to both; draining A stores A's share."""
    env = {"MQTT_MANAGE_ACCOUNTS": "0"}
    retired_log, live_log = tmp_path / "retired.log", tmp_path / "live.log"
    base = int(time.time() * 1000) - 600_000
    while_away = list(range(base, base + MESSAGES))
    after_drain = list(range(base + MESSAGES, base + 2 * MESSAGES))
    client = sensor(private_broker, device.device)
    retired = start_worker(private_broker, "retired", retired_log, MQTT_CONSUMER_ID=RETIRED, **env)
    live = None
    try:
        wait_for(lambda: subscribed(retired_log), 60, "worker A's consumer to subscribe", retired_log)
        live = start_worker(private_broker, "live", live_log, MQTT_CONSUMER_ID=LIVE, **env)
        wait_for(lambda: subscribed(live_log), 60, "worker B's consumer to subscribe", live_log)
        stop_process(retired, signal.SIGKILL)  # gone for good: never started again under its identity

        publish(client, device.pk, while_away)
        started = time.monotonic()
        result = drain(private_broker, RETIRED)
        drain_s = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        found = re.search(r"iotflow-consumer-worker-a: (\d+) queued messages stored", result.stdout)
        assert found, result.stdout
        drained = int(found.group(1))
        wait_for(lambda: stored(device.pk, while_away) == MESSAGES, 60, "every message of A's absence", live_log)

        publish(client, device.pk, after_drain)
        # Were A's session still in the group, its share of these would wait there and never be stored.
        wait_for(lambda: stored(device.pk, after_drain) == MESSAGES, 60, "every message after the drain", live_log)
        assert not session_held(private_broker, f"iotflow-consumer-{RETIRED}")
        assert session_held(private_broker, f"iotflow-consumer-{LIVE}") is True
    finally:
        client.disconnect()
        client.loop_stop()
        for process in (retired, live):
            if process is not None:
                stop_process(process)

    assert 0 < drained < MESSAGES, drained  # A's session held its share; B stored the rest
    record_figures(
        "consumer identity retired",
        {
            "published_while_away": MESSAGES,
            "drained_from_retired_session": drained,
            "stored_while_away": stored(device.pk, while_away),
            "published_after_drain": MESSAGES,
            "stored_after_drain": stored(device.pk, after_drain),
            "drain_s": drain_s,
        },
    )


def test_draining_an_unknown_identity_changes_nothing(private_broker, settings, capsys):
    settings.MQTT_URL = f"mqtt://{private_broker.host}:{private_broker.port}"
    settings.MQTT_USERNAME, settings.MQTT_PASSWORD = private_broker.platform_username, private_broker.platform_password
    call_command("drain_consumer", "never-ran", "--timeout", "30")
    assert "held no session" in capsys.readouterr().out
    assert not session_held(private_broker, "iotflow-consumer-never-ran")
