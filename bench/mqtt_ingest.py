"""Sustained MQTT ingest: IoTFlow's worker consumer against a bare paho-mqtt subscriber, same broker, same run.

Both drain the same backlog: messages published while the subscriber was away are
queued by the broker, then the subscriber connects and the drain is timed. The bare
subscriber only parses each message (json.loads); IoTFlow's worker validates, stores
(committed) and acknowledges every message. Prints ``name: value`` lines.

    .venv/bin/python bench/mqtt_ingest.py [--messages 60000] [--devices 20] [--backend sql|iotdb]

With IOTDB_HOST set (and IOTDB_PORT, IOTDB_USER, IOTDB_PASSWORD as needed) the worker stores
into that IoTDB, in a database of the run's own (dropped afterwards); ``--backend`` overrides.
"""

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.services import free_port, fresh_database, private_broker  # noqa: E402

ADMIN_PASSWORD = secrets.token_urlsafe(12)
PLATFORM_PASSWORD = secrets.token_urlsafe(12)
IOTDB_BENCH_DATABASE = "root.iotflow_bench"


def telemetry_env(backend: str) -> dict[str, str]:
    """The telemetry store of the run; the benchmark's timestamps are old, so raw retention is off."""
    if backend == "iotdb":
        return {"TELEMETRY_BACKEND": "iotdb", "IOTDB_DATABASE": IOTDB_BENCH_DATABASE, "RETENTION_RAW_DAYS": "0"}
    return {"TELEMETRY_BACKEND": "sql"}


def drop_iotdb_database() -> None:
    from iotdb.utils.exception import StatementExecutionException

    from telemetry.backends import get_backend

    with get_backend().session() as session, contextlib.suppress(StatementExecutionException):  # not there yet
        session.execute_non_query_statement(f"DELETE DATABASE {IOTDB_BENCH_DATABASE}")


def setup_django(db_url: str, port: int, backend: str = "sql") -> None:
    os.environ.update(
        {
            **telemetry_env(backend),
            "DJANGO_SETTINGS_MODULE": "iotflow.settings",
            "DATABASE_URL": db_url,
            "MQTT_URL": f"mqtt://127.0.0.1:{port}",
            "MQTT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MQTT_PASSWORD": PLATFORM_PASSWORD,
            "MQTT_MANAGE_ACCOUNTS": "0",
            "CELERY_BROKER_URL": "memory://",
        }
    )
    import django

    django.setup()


def make_devices(count: int) -> list:
    from accounts.models import User
    from devices.broker import BrokerAccounts
    from devices.models import Device, mqtt_password_for

    owner = User.objects.create_user("bench")
    devices = []
    with BrokerAccounts.from_settings() as accounts:
        for index in range(count):
            device = Device(owner=owner, name=f"bench-{index}")
            device.set_new_api_key()
            device.save()
            accounts.ensure_device(device.pk, mqtt_password_for(device))
            devices.append(device)
    return devices


def publish_backlog(devices: list, port: int, messages: int, base_ts: int) -> None:
    """Publish ``messages`` QoS 1 telemetry messages (3 measurements each) spread over the devices.

    Each device account speaks MQTT 3.1.1 as paho does, written out by hand: the messages go out
    back to back and the broker's acknowledgements are read afterwards. The backlog is the same as
    paho's, in a few seconds instead of half a minute of paho's per-message work.
    """
    from devices.models import mqtt_password_for

    links = [device_link(port, device.mqtt_username, mqtt_password_for(device)) for device in devices]
    sent = [0] * len(links)
    for i in range(messages):
        index = i % len(links)
        device = devices[index]
        body = {"data": {"temperature": 20 + i % 10, "humidity": 50 + i % 7, "seq": i}, "timestamp": base_ts + i}
        sent[index] += 1
        links[index].sendall(publish_packet(f"iotflow/devices/{device.pk}/telemetry", json.dumps(body), sent[index]))
    for link, count in zip(links, sent, strict=True):
        acks = read_exactly(link, 4 * count)
        if acks[::4] != b"\x40" * count:
            raise RuntimeError("the broker did not acknowledge every message")
        link.sendall(b"\xe0\x00")  # DISCONNECT
        link.close()


def mqtt_packet(kind: int, body: bytes) -> bytes:
    """A packet of type byte ``kind``, its remaining length as MQTT's variable-length integer, then ``body``."""
    length, size = bytearray(), len(body)
    while True:
        size, digit = divmod(size, 128)
        length.append(digit | (0x80 if size else 0))
        if not size:
            return bytes([kind]) + bytes(length) + body


def mqtt_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def device_link(port: int, username: str, password: str) -> socket.socket:
    """A device's MQTT 3.1.1 connection: its account, its bound client id, a clean session."""
    link = socket.create_connection(("127.0.0.1", port), timeout=60)
    flags = 0x80 | 0x40 | 0x02  # user name, password, clean session
    header = mqtt_string("MQTT") + bytes([4, flags]) + struct.pack(">H", 60)
    link.sendall(mqtt_packet(0x10, header + mqtt_string(username) + mqtt_string(username) + mqtt_string(password)))
    connack = read_exactly(link, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"{username}: connection refused ({connack[3]})")
    return link


def publish_packet(topic: str, payload: str, packet_id: int) -> bytes:
    return mqtt_packet(0x32, mqtt_string(topic) + struct.pack(">H", packet_id % 65535 + 1) + payload.encode())


def read_exactly(link: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = link.recv(size - len(data))
        if not chunk:
            raise RuntimeError("the broker closed the connection")
        data += chunk
    return bytes(data)


def raw_client(port: int, clean: bool):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.username_pw_set("iotflow-platform", PLATFORM_PASSWORD)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0 if clean else 3600
    properties.ReceiveMaximum = 1000
    client.connect("127.0.0.1", port, clean_start=clean, properties=properties)
    return client


def measure_raw(devices: list, port: int, messages: int) -> float:
    """Messages/s of a bare paho subscriber that only parses each message."""
    topic = "$share/iotflow/iotflow/devices/+/telemetry/#"
    client = raw_client(port, clean=False)
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()

    publish_backlog(devices, port, messages, base_ts=1_700_000_000_000)

    done = threading.Event()
    times: list[float] = []

    def on_message(client, userdata, message) -> None:
        json.loads(message.payload)
        times.append(time.perf_counter())
        if len(times) == messages:
            done.set()

    client = raw_client(port, clean=False)
    client.on_message = on_message
    client.loop_start()
    done.wait(300)
    client.disconnect()
    client.loop_stop()
    # Drop the baseline's session so it takes no share of the worker's stream.
    raw_client(port, clean=True).disconnect()
    if len(times) < messages:
        raise RuntimeError(f"bare subscriber received {len(times)} of {messages}")
    return messages / (times[-1] - times[0])


SUBSCRIBED = "MQTT consumer subscribed as"  # telemetry/mqtt.py's log line once the broker routes the stream to it


def start_worker(env: dict, log) -> subprocess.Popen:
    """``celery -A iotflow worker`` (one process) logging to ``log``, at info level for the consumer's own lines."""
    command = [sys.executable, "-m", "celery", "-A", "iotflow", "worker", "--pool=solo", "-n", "bench@localhost",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_subscribed(worker: subprocess.Popen, log, timeout: float = 60) -> None:
    """Until the worker's consumer has subscribed (its log says so)."""
    deadline = time.monotonic() + timeout
    while SUBSCRIBED not in Path(log.name).read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker's consumer did not subscribe; see {log.name}")
        time.sleep(0.1)


def stored_points() -> int:
    from telemetry.backends import get_backend

    return get_backend().count()


def measure_worker(devices: list, port: int, messages: int, log) -> tuple[float, int]:
    """Messages/s stored and acknowledged by a real Celery worker's MQTT consumer."""
    from django.db import close_old_connections

    env = dict(os.environ)
    worker = start_worker(env, log)
    # Let the worker create its persistent session and subscription, then stop it.
    wait_subscribed(worker, log)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)

    publish_backlog(devices, port, messages, base_ts=1_710_000_000_000)
    expected = 3 * messages
    worker = start_worker(env, log)
    try:
        first = last = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            close_old_connections()
            count = stored_points()
            now = time.perf_counter()
            if count and first is None:
                first = (now, count)
            if count >= expected:
                last = now
                break
            time.sleep(0.05)
        if last is None:
            raise RuntimeError(f"worker stored {stored_points()} of {expected} points")
        time.sleep(1)
        final = stored_points()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    start_time, at_start = first
    drained = (expected - at_start) / 3
    return drained / (last - start_time), final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=20)
    default_backend = "iotdb" if os.environ.get("IOTDB_HOST") else "sql"
    parser.add_argument("--backend", choices=["sql", "iotdb"], default=default_backend)
    args = parser.parse_args()

    db_url = fresh_database("iotflow_bench_mqtt")
    port = free_port()
    setup_django(db_url, port, args.backend)
    if args.backend == "iotdb":
        drop_iotdb_database()
    with private_broker(ADMIN_PASSWORD, PLATFORM_PASSWORD, port):
        devices = make_devices(args.devices)
        raw = measure_raw(devices, port, args.messages)
        log_path = ROOT / "var" / "bench-mqtt-worker.log"
        with log_path.open("w") as log:
            worker, stored = measure_worker(devices, port, args.messages, log)
    if args.backend == "iotdb":
        drop_iotdb_database()
    expected = 3 * args.messages
    print(f"telemetry backend: {args.backend}")
    print(f"{'figure':<28}{'value':>14}")
    print(f"{'bare paho subscriber':<28}{raw:>12,.0f}/s")
    print(f"{'IoTFlow worker (stored)':<28}{worker:>12,.0f}/s")
    print(f"{'points stored / expected':<28}{stored:>8,} / {expected:,}")
    print(f"mqtt_raw_messages_per_s: {raw:.0f}")
    print(f"mqtt_messages_per_s: {worker:.0f}")
    print(f"mqtt_backlog_points_per_s: {worker * 3:.0f}")
    print(f"mqtt_ingest_vs_raw: {worker / raw:.2f}")
    print(f"mqtt_lost_points: {expected - stored}")


if __name__ == "__main__":
    main()
