"""Live messages to open browser pages, sent through the Channels layer without slowing the sender.

Ingest, commands and health changes call ``publish()`` (or one of the helpers below) from
synchronous code: HTTP requests, the MQTT consumer's writer thread, Celery tasks. With a
network layer (Redis) the message goes into a bounded queue that one background thread
per process drains over a long-lived Redis connection, so the caller never waits for Redis
and a slow or absent Redis costs it nothing: when the queue is full, messages are dropped
and counted. With the Redis pub/sub layer the thread publishes each drained batch in one
pipelined round trip, exactly as the layer's ``group_send`` would; other layers get their
own ``group_send`` on the thread's event loop. The thread sends at most once per
``LIVE_SEND_INTERVAL_MS``: a message after a quiet moment goes at once, and under load what
arrives meanwhile waits for the interval to end and goes in the same round, so a web process
serving hundreds of readings a second wakes the thread and Redis a hundred times a second at
most, not once per reading. With the in-memory layer, which only reaches
sockets of the same process, the message is sent inline. Live delivery is best effort:
every message describes state that is also saved, and a page that reconnects reloads it.

Messages are sent after the current transaction commits, so a page never sees a change
that was rolled back.
"""

import asyncio
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

import redis
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash, decode_hosts
from django.conf import settings
from django.db import transaction
from prometheus_client import Counter, Histogram

from iotflow.per_process import PerProcess
from telemetry.timeparse import to_iso

log = logging.getLogger(__name__)

LIVE_MESSAGES = Counter("iotflow_live_messages_total", "Live messages for WebSockets.", ["result"])
LIVE_ROUNDS = Histogram(
    "iotflow_live_send_round_messages",
    "Live messages the sender thread handed to the channel layer in one round.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1000),
)

HANDLER = "live.message"  # the type of a live group message, which notifications/relay.py writes to sockets
SEND_TIMEOUT_SECONDS = 5.0
DRAIN_LIMIT = 1000


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def publish(group: str, message: dict) -> None:
    """Send ``message`` (what the socket receives) to a group once the transaction commits."""
    transaction.on_commit(lambda: _send_now(group, message), robust=True)


def publish_device_event(device_id: int, kind: str, data: dict) -> None:
    """``{"type": kind, "device": id, "data": data}`` to the pages watching the device."""
    publish(device_group(device_id), {"type": kind, "device": device_id, "data": data})


def publish_telemetry(newest: Mapping[int, Mapping[str, object]], heard_at: datetime) -> None:
    """One message per device with the newest value of each measurement of a stored batch.

    ``newest`` maps a device id to its measurements' newest ``Point``s (as ``newest_points`` gives).
    ``ts`` is the newest reading's own time; ``seen``, ``heard_at``, when the platform heard from the
    device, the time its last seen records (a reading may carry an older timestamp of its own).
    """
    for device_id, points in newest.items():
        if not points:
            continue
        message = {
            "type": "telemetry",
            "device": device_id,
            "data": {name: point.value for name, point in points.items()},
            "ts": to_iso(max(point.ts for point in points.values())),
            "seen": heard_at.isoformat(),
        }
        publish(device_group(device_id), message)


def publish_command(command) -> None:
    """A command's current state, for the device page's command history."""
    publish_device_event(command.device_id, "command", command_data(command))


def command_data(command) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": str(command.pk),
        "action": command.action,
        "params": command.params,
        "source": command.source,
        "status": command.status,
        "attempts": command.attempts,
        "error": command.error,
        "response": command.response,
        "created_at": iso(command.created_at),
        "sent_at": iso(command.sent_at),
        "acknowledged_at": iso(command.acknowledged_at),
        "completed_at": iso(command.completed_at),
    }


def newest_points(points: Iterable) -> dict[int, dict[str, object]]:
    """The newest point of each measurement, per device, in one pass over a batch."""
    newest: dict[int, dict[str, object]] = defaultdict(dict)
    for point in points:
        series = newest[point.device_id]
        current = series.get(point.measurement)
        if current is None or current.ts < point.ts:
            series[point.measurement] = point
    return newest


def _send_now(group: str, message: dict) -> None:
    try:
        layer = get_channel_layer()
    except Exception:  # a misconfigured layer must not break the code that published
        LIVE_MESSAGES.labels("failed").inc()
        log.exception("No channel layer for live messages")
        return
    if layer is None:
        return
    # ``text``: the frame every socket of the group sends, encoded once here rather than once per socket.
    envelope = {"type": HANDLER, "message": message, "text": json.dumps(message)}
    if isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer reaches only sockets of this process: with none in the group, skip the send.
        if layer.groups.get(group):
            _send_inline(layer, group, envelope)
    else:
        _sender().submit(layer, group, envelope)


def _send_inline(layer, group: str, envelope: dict) -> None:
    try:
        async_to_sync(layer.group_send)(group, envelope)
        LIVE_MESSAGES.labels("sent").inc()
    except Exception:
        LIVE_MESSAGES.labels("failed").inc()
        log.warning("Live message to %s failed", group, exc_info=True)


class Sender:
    """One thread per process that drains queued messages to the channel layer over its own event loop.

    A round starts no sooner than ``interval`` seconds after the previous one ended.
    """

    def __init__(self, size: int, interval: float = 0.0):
        self.interval = interval
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.unfinished = 0
        self.done = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="live-sender", daemon=True)
        self.thread.start()

    def submit(self, layer, group: str, envelope: dict) -> None:
        with self.done:
            self.unfinished += 1
        try:
            self.queue.put_nowait((layer, group, envelope))
        except queue.Full:
            LIVE_MESSAGES.labels("dropped").inc()
            self._finished(1)

    def _finished(self, count: int) -> None:
        with self.done:
            self.unfinished -= count
            if self.unfinished == 0:
                self.done.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted message was handed to the layer (for tests and shutdown)."""
        with self.done:
            return self.done.wait_for(lambda: self.unfinished == 0, timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        publishers: dict[int, PubSubPublisher | None] = {}
        last_round = -self.interval
        while True:
            batch = [self.queue.get()]
            wait = last_round + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # under load: what arrives meanwhile goes in this round
            while len(batch) < DRAIN_LIMIT:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                by_layer: dict[int, list[tuple]] = defaultdict(list)
                for item in batch:
                    by_layer[id(item[0])].append(item)
                for items in by_layer.values():
                    layer = items[0][0]
                    if id(layer) not in publishers:
                        publishers[id(layer)] = PubSubPublisher.for_layer(layer)
                    publisher = publishers[id(layer)]
                    if publisher is not None:
                        publisher.publish([(group, envelope) for _, group, envelope in items])
                    else:
                        loop.run_until_complete(_deliver(items))
            except Exception:  # never let the thread die: the next messages may well get through
                log.warning("Live delivery of %d messages failed", len(batch), exc_info=True)
            LIVE_ROUNDS.observe(len(batch))
            last_round = time.monotonic()
            self._finished(len(batch))


class PubSubPublisher:
    """Publishes group messages exactly as ``RedisPubSubChannelLayer.group_send`` does, from this thread.

    One pipelined round trip per drained batch over a plain Redis connection: the layer's own
    asyncio client cost about ten times the CPU per message. Messages of a group keep their order.
    """

    def __init__(self, layer: RedisPubSubChannelLayer, addresses: list[str]):
        self.layer = layer
        self.prefix = layer._kwargs.get("prefix", "asgi")
        timeouts = {"socket_connect_timeout": SEND_TIMEOUT_SECONDS, "socket_timeout": SEND_TIMEOUT_SECONDS}
        self.clients = [redis.Redis.from_url(address, **timeouts) for address in addresses]

    @classmethod
    def for_layer(cls, layer) -> "PubSubPublisher | None":
        """A publisher for the pub/sub layer configured with Redis URLs; None for any other layer."""
        if not isinstance(layer, RedisPubSubChannelLayer):
            return None
        hosts = decode_hosts(layer._kwargs.get("hosts"))
        if not all(set(host) == {"address"} for host in hosts):
            return None  # sentinels or connection options: left to the layer itself
        return cls(layer, [host["address"] for host in hosts])

    def publish(self, items: list[tuple[str, dict]]) -> None:
        pipelines: dict[int, redis.client.Pipeline] = {}
        counts: dict[int, int] = defaultdict(int)
        for group, envelope in items:
            channel = f"{self.prefix}__group__{group}"
            shard = _consistent_hash(channel, len(self.clients))
            if shard not in pipelines:
                pipelines[shard] = self.clients[shard].pipeline(transaction=False)
            pipelines[shard].publish(channel, self.layer.serialize(envelope))
            counts[shard] += 1
        for shard, pipeline in pipelines.items():
            try:
                pipeline.execute()
                LIVE_MESSAGES.labels("sent").inc(counts[shard])
            except (redis.RedisError, OSError) as exc:
                LIVE_MESSAGES.labels("failed").inc(counts[shard])
                log.warning("%d live messages failed: %r", counts[shard], exc)


async def _deliver(batch: list[tuple]) -> None:
    """Groups in parallel; within a group, messages in the order they were published."""
    by_group: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for layer, group, envelope in batch:
        by_group[(id(layer), group)].append((layer, envelope))
    await asyncio.gather(*(_deliver_group(group, items) for (_, group), items in by_group.items()))


async def _deliver_group(group: str, items: list[tuple]) -> None:
    for layer, envelope in items:
        try:
            await asyncio.wait_for(layer.group_send(group, envelope), SEND_TIMEOUT_SECONDS)
            LIVE_MESSAGES.labels("sent").inc()
        except Exception as exc:
            LIVE_MESSAGES.labels("failed").inc()
            log.warning("Live message to %s failed: %r", group, exc)


_senders = PerProcess(lambda: Sender(settings.LIVE_QUEUE_SIZE, settings.LIVE_SEND_INTERVAL_MS / 1000))


def _sender() -> Sender:
    """This process's sender, started on first use (and again in a forked child)."""
    return _senders.get()


def wait_until_sent(timeout: float = 5.0) -> bool:
    """Whether everything queued so far reached the channel layer within ``timeout`` seconds."""
    sender = _senders.peek()
    return True if sender is None else sender.wait_idle(timeout)
