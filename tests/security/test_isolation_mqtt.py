"""MQTT isolation matrix on a private Mosquitto with IoTFlow's config and dynamic-security accounts.

Device A, with the account IoTFlow gives it (password derived from its key), tries to publish to
and subscribe to everything that is not its own: device B's topics, its group's and B's group's
fleet topics, wildcards, the broker's internals and the platform's shared subscription, and it tries
to connect with B's client id (each device account is bound to its own, ``device-<id>``). MQTT 5
lets the broker say no (SUBACK and PUBACK reason codes); a platform subscriber on ``iotflow/#``
checks that no refused message got through anyway. Then key rotation: how soon the old password
stops working, and what happens to a device still connected with it.
"""

import json
import queue
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.db import transaction
from paho.mqtt.reasoncodes import ReasonCode

from devices.broker import device_client_id, device_username
from devices.models import Device, DeviceGroup, mqtt_password_for
from iotflow.celery import app as celery_app

from ._matrix import Tally, record_figure

TIMEOUT = 3


class Client:
    """An MQTT 5 client that keeps every SUBACK, PUBACK and message it gets."""

    def __init__(self, broker, username: str, password: str, client_id: str | None = None) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"security-{uuid.uuid4().hex[:10]}" if client_id is None else client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda client, userdata, message: self.inbox.put(message.topic)
        self.inbox: queue.Queue[str] = queue.Queue()
        self.connack: ReasonCode | None = None
        self.disconnected = threading.Event()
        self._connected = threading.Event()
        self._acks: dict[int, list[ReasonCode]] = {}
        self._acked = threading.Condition()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._connected.wait(TIMEOUT), "no CONNACK"

    @property
    def refused(self) -> bool:
        return self.connack.is_failure

    def subscribe(self, topic: str) -> bool:
        """Whether the broker granted the subscription."""
        _, mid = self.client.subscribe(topic, qos=1)
        return not self._wait(mid)[0].is_failure

    def publish(self, topic: str, payload: str = "{}") -> bool:
        """Whether the broker accepted the QoS 1 message (PUBACK reason code below 0x80)."""
        info = self.client.publish(topic, payload, qos=1)
        return not self._wait(info.mid)[0].is_failure

    def drain_until(self, topic: str) -> list[str]:
        """Topics received up to and including the first on ``topic``."""
        received: list[str] = []
        while topic not in received:
            received.append(self.inbox.get(timeout=TIMEOUT))
        return received

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _wait(self, mid: int) -> list[ReasonCode]:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self._acks, TIMEOUT), f"no acknowledgement of {mid}"
            return self._acks.pop(mid)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._acked:
            self._acks[mid] = list(reason_codes)
            self._acked.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acked:
            self._acks[mid] = [reason_code]
            self._acked.notify_all()


@pytest.fixture
def connect(private_broker):
    clients: list[Client] = []

    def connect(username: str, password: str, client_id: str | None = None) -> Client:
        client = Client(private_broker, username, password, client_id)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def accounts(private_broker):
    with private_broker.accounts() as accounts:
        yield accounts


@pytest.fixture
def fleet(db, alice, bob, accounts):
    """Device A (alice's) and device B (bob's), each in a group of its owner, with real broker accounts."""
    devices = {}
    for label, owner in (("a", alice), ("b", bob)):
        device = Device(owner=owner, name=f"device-{label}")
        device.set_new_api_key()
        device.save()
        group = DeviceGroup.objects.create(owner=owner, name=f"group-{label}")
        group.devices.add(device)
        accounts.ensure_device(device.pk, mqtt_password_for(device), [group.pk])
        devices[label] = (device, group)
    return devices


@pytest.fixture
def platform(private_broker, connect) -> Client:
    client = connect(private_broker.platform_username, private_broker.platform_password)
    assert not client.refused and client.subscribe("iotflow/#")
    return client


def login_as(connect, device: Device) -> Client:
    """Log in as the device the way it must: its account and its bound client id."""
    client = connect(device_username(device.pk), mqtt_password_for(device), client_id=device_client_id(device.pk))
    assert not client.refused, client.connack
    return client


def foreign_publish_topics(a: int, b: int, group_a: int, group_b: int) -> list[str]:
    own_root = f"iotflow/devices/{a}"
    return [
        f"iotflow/devices/{b}/telemetry",
        f"iotflow/devices/{b}/telemetry/sub",
        f"iotflow/devices/{b}/status/online",
        f"iotflow/devices/{b}/status/offline",
        f"iotflow/devices/{b}/commands",
        f"iotflow/devices/{b}/commands/ack",
        f"iotflow/devices/{b}",
        f"iotflow/devices/{a}0/telemetry",
        f"iotflow/devices/0{a}/telemetry",
        f"{own_root}x/telemetry",
        f"iotflow/fleet/{group_b}/commands",
        f"iotflow/fleet/{group_a}/commands",
        "iotflow/devices",
        "iotflow/telemetry",
        "iotflow",
        "other/topic",
        "$SYS/broker/clients/connected",
        "$CONTROL/dynamic-security/v1",
        f"/iotflow/devices/{b}/telemetry",
        f"IOTFLOW/devices/{b}/telemetry",
    ]


def foreign_filters(a: int, b: int, group_a: int, group_b: int, share: str) -> list[str]:
    return [
        f"iotflow/devices/{b}/#",
        f"iotflow/devices/{b}/telemetry",
        f"iotflow/devices/{b}/status/+",
        f"iotflow/devices/{b}/commands",
        f"iotflow/devices/{b}/commands/ack",
        "iotflow/devices/+/commands",
        "iotflow/devices/+/telemetry",
        "iotflow/devices/+/#",
        "iotflow/devices/#",
        "iotflow/fleet/+/commands",
        f"iotflow/fleet/{group_b}/commands",
        "iotflow/fleet/#",
        "iotflow/#",
        "#",
        "+/#",
        "+/+/+/commands",
        "+/devices/+/commands",
        "$SYS/#",
        "$CONTROL/#",
        "$CONTROL/dynamic-security/v1/response",
        f"$share/{share}/iotflow/#",
        f"$share/{share}/iotflow/devices/{b}/#",
        f"$share/{share}/#",
        "$share/other/iotflow/#",
    ]


def test_device_publishes_only_to_its_own_topics(request, fleet, platform, connect, accounts, settings):
    (device_a, group_a), (device_b, group_b) = fleet["a"], fleet["b"]
    attacker = login_as(connect, device_a)
    clients_before = set(accounts.list_clients())
    tally, puback = Tally(), Tally()

    topics = foreign_publish_topics(device_a.pk, device_b.pk, group_a.pk, group_b.pk)
    accepted = {}
    for topic in topics:
        payload = json.dumps({"data": {"temperature": 99}})
        if topic.startswith("$CONTROL"):
            payload = json.dumps({"commands": [{"command": "createClient", "username": "intruder", "password": "x"}]})
        accepted[topic] = attacker.publish(topic, payload)
        puback.record(topic, 200 if accepted[topic] else 403)
    marker = f"iotflow/devices/{device_a.pk}/telemetry"
    assert attacker.publish(marker), "control: a device publishes to its own topics"

    got_through = set(platform.drain_until(marker)) - {marker}
    if set(accounts.list_clients()) != clients_before:
        got_through.add("$CONTROL/dynamic-security/v1")  # the device managed to create a broker account
    for topic in topics:
        tally.record(topic, 200 if topic in got_through else 403)

    record_figure(request, "MQTT: device A publishing outside its topics (nothing delivered)", tally.figure)
    record_figure(request, "MQTT: ... of which refused in PUBACK (MQTT 5 reason code)", puback.figure)
    assert not tally.holes, tally.holes
    assert not puback.holes, puback.holes


def test_device_subscribes_only_to_its_own_topics(request, fleet, platform, connect, settings):
    (device_a, group_a), (device_b, group_b) = fleet["a"], fleet["b"]
    attacker = login_as(connect, device_a)
    victim = login_as(connect, device_b)
    tally = Tally()

    filters = foreign_filters(device_a.pk, device_b.pk, group_a.pk, group_b.pk, settings.MQTT_SHARE_GROUP)
    for topic_filter in filters:
        tally.record(topic_filter, 200 if attacker.subscribe(topic_filter) else 403)
    own = f"iotflow/devices/{device_a.pk}/commands"
    assert attacker.subscribe(own) and attacker.subscribe(f"iotflow/fleet/{group_a.pk}/commands")

    # Traffic of B's in every direction, then a command to A that ends what A may have heard.
    victim.publish(f"iotflow/devices/{device_b.pk}/telemetry")
    victim.publish(f"iotflow/devices/{device_b.pk}/status/online")
    victim.publish(f"iotflow/devices/{device_b.pk}/commands/ack")
    platform.publish(f"iotflow/devices/{device_b.pk}/commands")
    platform.publish(f"iotflow/fleet/{group_b.pk}/commands")
    platform.publish(own)
    heard = attacker.drain_until(own)
    tally.record("B's traffic reaching A", 200 if set(heard) - {own} else 403)

    record_figure(request, "MQTT: device A subscribing outside its topics (SUBACK refused)", tally.figure)
    assert not tally.holes, tally.holes


def test_device_cannot_log_in_as_another(fleet, connect, private_broker):
    (device_a, _), (device_b, _) = fleet["a"], fleet["b"]

    # With the right client id each time, so that only the password is wrong.
    b_as_b = {"client_id": device_client_id(device_b.pk)}
    a_as_a = {"client_id": device_client_id(device_a.pk)}
    assert connect(device_username(device_b.pk), mqtt_password_for(device_a), **b_as_b).refused
    assert connect(device_username(device_a.pk), mqtt_password_for(device_b), **a_as_a).refused
    assert connect(private_broker.platform_username, mqtt_password_for(device_a)).refused
    assert connect(private_broker.admin_username, mqtt_password_for(device_a)).refused


def test_device_cannot_take_over_another_devices_client_id(fleet, connect):
    """Each device account is bound to its client id ``device-<id>``; another account may not use it."""
    (device_a, _), (device_b, _) = fleet["a"], fleet["b"]
    victim = login_as(connect, device_b)

    intruder = connect(
        device_username(device_a.pk), mqtt_password_for(device_a), client_id=device_client_id(device_b.pk)
    )

    assert intruder.connack == "Not authorized", "device A logged in with device B's client id"
    assert victim.subscribe(f"iotflow/devices/{device_b.pk}/commands"), "device B's connection was taken over"
    assert not victim.disconnected.is_set(), "device B was pushed off the broker"


def test_device_account_refuses_every_other_client_id(request, fleet, connect):
    (device_a, _), (device_b, _) = fleet["a"], fleet["b"]
    username, password = device_username(device_a.pk), mqtt_password_for(device_a)
    tally = Tally()

    others = ("", f"{username}-2", username.upper(), device_client_id(device_b.pk), "iotflow-admin", "security-x")
    for client_id in others:
        tally.record(repr(client_id), 403 if connect(username, password, client_id=client_id).refused else 200)
    login_as(connect, device_a)  # control: its own client id works

    record_figure(request, "MQTT: device A connecting with a client id not its own (CONNACK refused)", tally.figure)
    assert not tally.holes, tally.holes


@pytest.fixture
def managed_broker(private_broker, settings):
    """IoTFlow manages the private broker's accounts; broker tasks run inline when the transaction commits."""
    settings.MQTT_URL = f"mqtt://{private_broker.host}:{private_broker.port}"
    settings.MQTT_ADMIN_USERNAME = private_broker.admin_username
    settings.MQTT_ADMIN_PASSWORD = private_broker.admin_password
    settings.MQTT_MANAGE_ACCOUNTS = True
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield private_broker
    celery_app.conf.task_always_eager = eager


def test_rotated_key_closes_the_old_mqtt_login(
    request, managed_broker, connect, alice, django_capture_on_commit_callbacks
):
    """Rotation (the owner's "new key" button) updates the broker account as soon as the change commits."""
    with django_capture_on_commit_callbacks(execute=True):
        device = Device(owner=alice, name="purifier")
        device.set_new_api_key()
        device.save()
    old_password = mqtt_password_for(device)
    connected = login_as(connect, device)

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        device.set_new_api_key()
        device.save()
    synced = time.monotonic() - started
    refused_after = None
    while refused_after is None and time.monotonic() - started < 30:
        if connect(device_username(device.pk), old_password, client_id=device_client_id(device.pk)).refused:
            refused_after = time.monotonic() - started
    kicked = connected.disconnected.wait(TIMEOUT)

    assert refused_after is not None, "the old MQTT password still works"
    assert kicked, "a device connected with the old password stays connected"
    login_as(connect, device)  # the new password works
    record_figure(
        request,
        "MQTT: old password refused after key rotation",
        f"{refused_after * 1000:.0f} ms",
        f"(account sync {synced * 1000:.0f} ms; connected client disconnected: {kicked})",
        name="refused after",
    )


def test_deleted_device_loses_its_mqtt_login(managed_broker, connect, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        device = Device(owner=alice, name="purifier")
        device.set_new_api_key()
        device.save()
    password, username, client_id = mqtt_password_for(device), device_username(device.pk), device_client_id(device.pk)
    connected = login_as(connect, device)

    with django_capture_on_commit_callbacks(execute=True):
        device.delete()

    assert connected.disconnected.wait(TIMEOUT), "a deleted device stays connected"
    assert connect(username, password, client_id=client_id).refused
