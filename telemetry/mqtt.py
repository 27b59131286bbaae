"""MQTT transport: the consumer run inside Celery workers, and the publisher used for commands.

The consumer subscribes through a shared subscription so several workers split the
stream, batches messages (by count and by a few milliseconds), hands their records to
the same ingest path as HTTP, and acknowledges each message to the broker (QoS 1,
manual acks) only after its points are committed. A killed worker therefore loses
nothing: the broker redelivers what was not acknowledged, and the idempotent point
identity (device, measurement, timestamp) stores each point once.

Each consumer has a broker identity (``MQTT_CONSUMER_ID``, by default the worker's node
name). Its session is a member of the shared subscription even while the worker is away,
so the broker keeps routing a share of the stream to it; ``Consumer.drain()`` (the
``drain_consumer`` command) retires an identity whose worker is gone for good.
"""

import collections
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, close_old_connections
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter as MetricCounter

from devices import commands, health
from devices.models import Command, Device
from telemetry import ingest
from telemetry.backends import BackendUnavailable

log = logging.getLogger(__name__)

MESSAGES = MetricCounter("iotflow_mqtt_messages_total", "MQTT messages handled by the consumer.", ["kind"])
MALFORMED = MetricCounter("iotflow_mqtt_malformed_total", "MQTT messages dropped as malformed.", ["reason"])

SUBSCRIPTIONS = ("+/telemetry/#", "+/status/+", "+/commands/ack")
CONSUMER_CLIENT_PREFIX = "iotflow-consumer-"
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another connection with our client id took the session
# A draining consumer's own marker topic: one the platform account may publish on and nothing else subscribes to.
DRAIN_MARKER_PREFIX = "iotflow/fleet/drain-"
DRAIN_CONNECT_SECONDS = 30
LOST_DRAIN_CONNECTION = "the connection was lost (is a worker still running under this identity?); drain again"
# The consumer's reconnect back-off (paho doubles the delay from min to max while the broker is away).
RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 1


def broker_address() -> tuple[str, int]:
    url = urlparse(settings.MQTT_URL)
    return url.hostname or "127.0.0.1", url.port or 1883


def new_client(client_id: str, *, persistent: bool = False) -> mqtt.Client:
    """A platform client (MQTT 5) logged in with the platform account."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if settings.MQTT_USERNAME:
        client.username_pw_set(settings.MQTT_USERNAME, settings.MQTT_PASSWORD)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client._iotflow_persistent = persistent  # noqa: SLF001 (read by connect())
    return client


def connect(client: mqtt.Client, *, block: bool = True, timeout: float = 10.0) -> None:
    host, port = broker_address()
    properties = None
    clean_start: bool | int = mqtt.MQTT_CLEAN_START_FIRST_ONLY
    if getattr(client, "_iotflow_persistent", False):
        # A persistent session keeps our subscriptions and queues messages while we are away;
        # a large receive maximum lets the broker keep a whole batch in flight before our acks.
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = settings.MQTT_SESSION_EXPIRY_SECONDS
        properties.ReceiveMaximum = settings.MQTT_MAX_INFLIGHT
        clean_start = False
    if block:
        client.connect(host, port, keepalive=30, clean_start=clean_start, properties=properties)
    else:
        client.connect_async(host, port, keepalive=30, clean_start=clean_start, properties=properties)


@dataclass(slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass(slots=True)
class Parsed:
    device_id: int
    kind: str  # telemetry | status | ack
    rest: list[str]


def parse_topic(topic: str) -> Parsed | None:
    """``iotflow/devices/{id}/telemetry[/sub...]``, ``.../status/{state}``, ``.../commands/ack``."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "iotflow" or parts[1] != "devices" or not parts[2].isdigit():
        return None
    device_id, kind, rest = int(parts[2]), parts[3], parts[4:]
    if kind == "telemetry":
        return Parsed(device_id, "telemetry", rest)
    if kind == "status" and len(rest) == 1 and rest[0] in ("online", "offline"):
        return Parsed(device_id, "status", rest)
    if kind == "commands" and rest == ["ack"]:
        return Parsed(device_id, "ack", rest)
    return None


def _prefix_subtopic(payload: Any, rest: list[str]) -> Any:
    """Telemetry on ``.../telemetry/engine`` names its measurements ``engine.<name>``."""
    if not rest:
        return payload
    prefix = ".".join(rest)

    def nest(record):
        if isinstance(record, dict) and isinstance(record.get("data"), dict):
            return {**record, "data": {prefix: record["data"]}}
        return record

    return [nest(r) for r in payload] if isinstance(payload, list) else nest(payload)


_devices: dict[int, tuple[float, Device | None]] = {}
DEVICE_CACHE_SECONDS = 30.0


def cached_device(device_id: int) -> Device | None:
    """The device of a topic, from a per-process cache (a dict: cheaper per message than any shared cache)."""
    now = time.monotonic()
    hit = _devices.get(device_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    device = Device.objects.select_related("owner").filter(pk=device_id).first()
    if len(_devices) > 100_000:
        _devices.clear()
    _devices[device_id] = (now + DEVICE_CACHE_SECONDS, device)
    return device


def consumer_client_id(identity: str) -> str:
    """The broker client id of a consumer identity (``MQTT_CONSUMER_ID`` or a worker's node name).

    A full client id (``iotflow-consumer-...``, as the broker logs it) is taken as it is.
    """
    return identity if identity.startswith(CONSUMER_CLIENT_PREFIX) else CONSUMER_CLIENT_PREFIX + identity


def shared_topics() -> list[str]:
    return [f"$share/{settings.MQTT_SHARE_GROUP}/{settings.MQTT_TOPIC_PREFIX}/{t}" for t in SUBSCRIPTIONS]


class DrainFailed(Exception):
    """A drain stopped before the session was empty; the session is kept, with what it still holds."""


class Consumer:
    """Consumes device topics through a shared subscription and writes in batches."""

    def __init__(self, client_id: str, *, batch_size: int | None = None, batch_ms: int | None = None):
        self.client_id = client_id
        self.batch_size = batch_size or settings.MQTT_BATCH_SIZE
        self.batch_seconds = (batch_ms if batch_ms is not None else settings.MQTT_BATCH_MS) / 1000
        self.queue: queue.Queue[Incoming] = queue.Queue(maxsize=self.batch_size * 20)
        self.generation = 0
        self.handled = 0  # messages stored (or dropped as malformed) and acknowledged
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker routes our share of the stream to this connection
        self.session_present: bool | None = None
        # Draining: take the session over, store what it holds, then end it (see drain()).
        self.draining = False
        self.drained = threading.Event()
        self.drain_error = ""
        self._marker_topic = ""
        self._marker_mid: int | None = None
        self.client = new_client(client_id, persistent=True)
        # Mosquitto does not keep shared subscriptions across its own restart (the session and the
        # messages already queued in it survive): telemetry arriving before we subscribe again is
        # dropped. Retrying often keeps that window to about a second; devices reconnect slower.
        self.client.reconnect_delay_set(min_delay=RECONNECT_MIN_SECONDS, max_delay=RECONNECT_MAX_SECONDS)
        self.client.manual_ack_set(True)
        self.client.max_inflight_messages_set(settings.MQTT_MAX_INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.writer = threading.Thread(target=self._run_writer, name="mqtt-writer", daemon=True)

    def start(self) -> None:
        connect(self.client, block=False)
        self.client.loop_start()
        self.writer.start()

    def stop(self, timeout: float = 10.0, *, end_session: bool = False) -> None:
        """Stop after the current batch; ``end_session`` also has the broker delete our session now."""
        self.stopping.set()
        self.writer.join(timeout)
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self.client.disconnect(properties=properties)
        self.client.loop_stop()

    def drain(self, timeout: float = 600.0) -> int:
        """Retire this identity: take over its session, store everything queued in it, then end the session.

        A worker that is gone for good leaves a session that is still a member of the shared
        subscription: the broker keeps routing its share of the stream there until the session
        expires. Draining unsubscribes first (nothing new is routed to it), stores the backlog
        exactly like the running consumer, and disconnects with session expiry 0, so the broker
        forgets the session. Returns the number of messages handled. Raises DrainFailed, keeping
        the session, when the backlog is not stored within ``timeout`` or the connection is lost
        (a worker still running under this identity takes the session back; Mosquitto 2.0 just
        closes our connection then, so any loss counts).
        """
        self.draining = True
        self.start()
        started = time.monotonic()
        while not self.drained.wait(0.2):
            waited = time.monotonic() - started
            if not self.drain_error and self.session_present is None and waited > min(timeout, DRAIN_CONNECT_SECONDS):
                host, port = broker_address()
                self.drain_error = f"could not connect to the broker at {host}:{port}"
            if not self.drain_error and waited > timeout:
                self.drain_error = f"the session was not emptied within {timeout:g}s"
            if self.drain_error:
                self.stop()
                raise DrainFailed(self.drain_error)
        if not self.connected.is_set():  # taken over after the marker: the session is not ours to end
            self.stop()
            raise DrainFailed(LOST_DRAIN_CONNECTION)
        self.stop(end_session=True)
        return self.handled

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT consumer %s: connection refused: %s", self.client_id, reason_code)
            if self.draining:
                self.drain_error = f"the broker refused the connection: {reason_code}"
            return
        self.generation += 1
        self.session_present = bool(flags.session_present)
        if self.draining:
            self._start_drain(client)
        else:
            client.subscribe([(topic, 1) for topic in shared_topics()])
        self.connected.set()
        log.info("MQTT consumer connected as %s (session present: %s)", self.client_id, flags.session_present)

    def _start_drain(self, client: mqtt.Client) -> None:
        """Leave the shared subscription, then ask for a marker that arrives after everything queued before it.

        The broker handles our packets in order and delivers a session's messages in order, so
        once the marker has come through the writer, every message queued for us is stored.
        The marker goes to a topic of our own that no device or consumer subscribes to.
        """
        client.unsubscribe(shared_topics())
        self._marker_topic = f"{DRAIN_MARKER_PREFIX}{uuid.uuid4().hex}/commands"
        self._marker_mid = client.subscribe(self._marker_topic, qos=1)[1]

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if mid == self._marker_mid:
            if refused:
                self.drain_error = f"the broker refused the drain marker subscription: {', '.join(refused)}"
            else:
                client.publish(self._marker_topic, str(self.generation), qos=1)
        elif refused:
            log.error("MQTT consumer %s: subscription refused: %s", self.client_id, ", ".join(refused))
        else:
            self.subscribed.set()
            log.info("MQTT consumer subscribed as %s", self.client_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason_code == SESSION_TAKEN_OVER:
            # Two consumers with one identity keep taking the session from each other (brokers that say so).
            log.error(
                "MQTT consumer %s: another client connected with the same client id and took over the session; "
                "each worker needs its own MQTT_CONSUMER_ID",
                self.client_id,
            )
        if self.draining and not self.stopping.is_set():
            self.drain_error = LOST_DRAIN_CONNECTION
            client.disconnect()  # no reconnect: a running worker may hold the session now
            return
        if not self.stopping.is_set():
            log.warning("MQTT consumer %s disconnected (%s); reconnecting", self.client_id, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        # Blocks when the writer falls behind: the broker then holds the backlog (back-pressure).
        self.queue.put(Incoming(message.topic, message.payload, message.mid, message.qos, self.generation))

    def _run_writer(self) -> None:
        while not (self.stopping.is_set() and self.queue.empty()):
            batch = self._collect()
            if batch:
                self._write_until_stored(batch)

    def _collect(self) -> list[Incoming]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_seconds
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self.queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write_until_stored(self, batch: list[Incoming]) -> None:
        markers = [item for item in batch if item.topic.startswith(DRAIN_MARKER_PREFIX)]
        messages = [item for item in batch if not item.topic.startswith(DRAIN_MARKER_PREFIX)] if markers else batch
        delay = 0.5
        while True:
            close_old_connections()
            try:
                process_batch(messages)
                break
            except (BackendUnavailable, DatabaseError):
                log.warning("Telemetry store unavailable; holding %d messages unacknowledged", len(messages))
                if self.stopping.is_set():
                    return  # unacknowledged: the broker redelivers them to the next consumer
                time.sleep(delay)
                delay = min(delay * 2, 10)
        for item in batch:
            # An ack for a message from an earlier connection could hit a new message's id: skip it,
            # the broker redelivers that message and the duplicate point is ignored.
            if item.qos > 0 and item.generation == self.generation:
                self.client.ack(item.mid, item.qos)
        self.handled += len(messages)
        # Only this connection's marker proves its backlog is stored (an earlier one may come again).
        if any(item.topic == self._marker_topic and item.payload == str(self.generation).encode() for item in markers):
            self.drained.set()


def _malformed(item: Incoming, device_id: int | None, reason: str, detail: Any = "") -> None:
    MALFORMED.labels(reason).inc()
    log.warning("Dropped MQTT message on %s (device %s): %s %s", item.topic, device_id, reason, detail)


def process_batch(batch: list[Incoming]) -> None:
    """Store the batch's telemetry in one write, then apply status messages and acknowledgements."""
    points: list = []
    kinds: collections.Counter[str] = collections.Counter()
    seen: dict[int, tuple[Device, dict]] = {}
    after: list[tuple[str, Device, Any, Incoming]] = []
    for item in batch:
        parsed = parse_topic(item.topic)
        if parsed is None:
            _malformed(item, None, "unknown_topic")
            continue
        device = cached_device(parsed.device_id)
        if device is None or device.status == Device.Status.INACTIVE:
            _malformed(item, parsed.device_id, "unknown_or_inactive_device")
            continue
        kinds[parsed.kind] += 1
        if parsed.kind == "status":
            after.append(("status", device, parsed.rest[0], item))
            continue
        try:
            payload = json.loads(item.payload)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            _malformed(item, device.pk, "invalid_json")
            continue
        if parsed.kind == "ack":
            after.append(("ack", device, payload, item))
            seen.setdefault(device.pk, (device, {}))
            continue
        try:
            new_points, _, metadata = ingest.normalise(device.pk, _prefix_subtopic(payload, parsed.rest))
        except ingest.InvalidTelemetry as exc:
            _malformed(item, device.pk, "invalid_telemetry", exc.errors)
            continue
        except ingest.TooManyPoints as exc:
            _malformed(item, device.pk, "too_many_points", exc)
            continue
        points.extend(new_points)
        seen[device.pk] = (device, metadata)
    heard_at = timezone.now()
    if points:
        ingest.store(points, "mqtt", heard_at=heard_at)
    for kind, count in kinds.items():
        MESSAGES.labels(kind).inc(count)
    for device, metadata in seen.values():
        health.mark_seen(device, metadata, reason="telemetry", at=heard_at)
    for kind, device, payload, item in after:
        if kind == "status":
            apply_status(device, payload)
        else:
            apply_ack(device, payload, item)


def apply_status(device: Device, state: str) -> None:
    if state == "online":
        health.mark_seen(device, force=True, reason="status/online")
    else:
        cache.delete(f"seen:{device.pk}")
        health.transition(device.pk, Device.Health.OFFLINE, "status/offline")


def apply_ack(device: Device, payload: Any, item: Incoming) -> None:
    if not isinstance(payload, dict) or "id" not in payload:
        _malformed(item, device.pk, "invalid_ack")
        return
    status = payload.get("status", "ok")
    try:
        commands.acknowledge(device, payload["id"], status == "ok", payload.get("result"), payload.get("error", ""))
    except (Command.DoesNotExist, ValidationError):
        _malformed(item, device.pk, "unknown_command", payload.get("id"))
    except DataError:
        # A result the database cannot store (a NUL character, say): the device's fault, not a store outage.
        _malformed(item, device.pk, "invalid_ack", "unstorable result")
    except commands.CommandRejected as exc:
        log.info("Acknowledgement of command %s ignored: %s", payload.get("id"), exc)


class Publisher:
    """A long-lived connection for publishing commands (one per process)."""

    _lock = threading.Lock()
    _client: mqtt.Client | None = None

    @classmethod
    def client(cls) -> mqtt.Client:
        with cls._lock:
            if cls._client is None:
                client = new_client(f"iotflow-publisher-{os.getpid()}")
                connect(client)
                client.loop_start()
                cls._client = client
            return cls._client

    @classmethod
    def publish(cls, topic: str, payload: dict, qos: int = 1, timeout: float = 5.0, expiry: int | None = None) -> None:
        """Publish and wait for the broker; ``expiry`` (seconds) drops the message if it is still queued by then."""
        properties = None
        if expiry is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = max(1, int(expiry))
        info = cls.client().publish(topic, json.dumps(payload), qos=qos, properties=properties)
        info.wait_for_publish(timeout)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"MQTT publish to {topic} failed: {mqtt.error_string(info.rc)}")

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            if cls._client is not None:
                cls._client.disconnect()
                cls._client.loop_stop()
                cls._client = None


def command_topic(device_id: int) -> str:
    return f"{settings.MQTT_TOPIC_PREFIX}/{device_id}/commands"
