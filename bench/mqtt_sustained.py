"""Sustained MQTT ingest: publishers at a steady rate for a while, a real Celery worker storing.

Where bench/mqtt_ingest.py times the drain of a queued backlog, this holds a steady load: a
private Mosquitto with IoTFlow's configuration, a ``celery -A iotflow worker`` whose MQTT
consumer stores into a fresh PostgreSQL database, and publisher processes sending QoS 1
telemetry (3 measurements a message) from many devices at ``--rate`` messages/s for
``--seconds``. Every second the stored point count is sampled; the backlog is what was
published (acknowledged by the broker) but not yet stored.

Figures: ``mqtt_points_per_s`` (stored points/s over the run after a short ramp-up),
``mqtt_sustained_lost_points`` (published × 3 − stored once the run has drained; must be 0)
and the backlog in the middle and at the end of the load (``mqtt_backlog_mid_points``,
``mqtt_backlog_end_points``; the script fails when the backlog grows).

    .venv/bin/python bench/mqtt_sustained.py [--seconds 100] [--rate 3500] [--devices 100] [--publishers 2]
"""

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mqtt_ingest import (  # noqa: E402
    ADMIN_PASSWORD,
    PLATFORM_PASSWORD,
    make_devices,
    setup_django,
    start_worker,
    stored_points,
    wait_subscribed,
)
from bench.services import free_port, fresh_database, private_broker  # noqa: E402

TICK_SECONDS = 0.05
RAMP_SECONDS = 5.0  # the first seconds are left out of the rate: the worker's batches settle
BASE_TS = 1_720_000_000_000


def publish_steadily(accounts: list[tuple[int, str, str]], port: int, rate: float, seconds: float, index: int,
                     published, stop) -> None:  # fmt: skip
    """One publisher process: ``rate`` QoS 1 messages/s over its devices until ``seconds`` pass or ``stop`` is set.

    ``published`` counts messages the broker acknowledged. Each message has its own timestamp,
    so every point it carries is a new one.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    os.nice(5)  # the devices are not on the platform's machine: the load generator yields the CPU to what it measures
    acked = [0]

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        acked[0] += 1

    clients = []
    for device_id, username, password in accounts:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username)  # the account's bound client id
        client.username_pw_set(username, password)
        client.max_inflight_messages_set(2000)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append((device_id, client))
    sent = 0
    started = time.monotonic()
    ts = BASE_TS + index * 10**10
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(rate * (elapsed + TICK_SECONDS))
        while sent < due:
            device_id, client = clients[sent % len(clients)]
            ts += 1
            body = {"data": {"temperature": 20 + sent % 10, "humidity": 50 + sent % 7, "seq": sent}, "timestamp": ts}
            client.publish(f"iotflow/devices/{device_id}/telemetry", json.dumps(body), qos=1)
            sent += 1
        published.value = acked[0]
        time.sleep(max(0.0, started + elapsed + TICK_SECONDS - time.monotonic()))
    deadline = time.monotonic() + 60
    while acked[0] < sent and time.monotonic() < deadline:
        published.value = acked[0]
        time.sleep(0.05)
    published.value = acked[0]
    for _, client in clients:
        client.disconnect()
        client.loop_stop()


def start_publishers(devices: list, port: int, rate: float, seconds: float, count: int):
    from devices.models import mqtt_password_for

    accounts = [(device.pk, device.mqtt_username, mqtt_password_for(device)) for device in devices]
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    counters, processes = [], []
    for index in range(count):
        counter = context.Value("q", 0, lock=False)
        process = context.Process(
            target=publish_steadily,
            args=(accounts[index::count], port, rate / count, seconds, index, counter, stop),
            daemon=True,
        )
        process.start()
        counters.append(counter)
        processes.append(process)
    return processes, counters, stop


def sample_run(processes, counters, seconds: float) -> list[tuple[float, int, int]]:
    """(seconds since start, messages published, points stored), once a second while the publishers run."""
    from django.db import close_old_connections

    samples = []
    started = time.monotonic()
    while any(process.is_alive() for process in processes) and time.monotonic() - started < seconds + 90:
        close_old_connections()
        stored = stored_points()
        samples.append((time.monotonic() - started, sum(c.value for c in counters), stored))
        time.sleep(max(0.0, len(samples) - (time.monotonic() - started)))
    return samples


def drain(expected: int, timeout: float = 120, stalled: float = 10) -> int:
    """Points stored once the worker has caught up, or has stored nothing new for ``stalled`` seconds."""
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    stored, progressed = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - progressed < stalled:
        close_old_connections()
        now_stored = stored_points()
        if now_stored >= expected:
            time.sleep(1)  # anything more would be a duplicate, which the point identity forbids
            return stored_points()
        if now_stored > stored:
            stored, progressed = now_stored, time.monotonic()
        time.sleep(0.2)
    return stored


def backlog_at(samples: list[tuple[float, int, int]], fraction: float, loaded_seconds: float) -> int:
    """Mean backlog (points published, not yet stored) over the 10 % of the load ending at ``fraction``."""
    lo, hi = (fraction - 0.1) * loaded_seconds, fraction * loaded_seconds
    window = [3 * published - stored for t, published, stored in samples if lo <= t <= hi]
    return round(statistics.mean(window)) if window else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=100, help="how long the publishers run")
    parser.add_argument("--rate", type=float, default=3500, help="messages/s over all publishers (3 points each)")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    args = parser.parse_args()

    db_url = fresh_database("iotflow_bench_mqtt_sustained")
    port = free_port()
    setup_django(db_url, port)
    log_path = ROOT / "var" / "bench-mqtt-sustained-worker.log"
    with private_broker(ADMIN_PASSWORD, PLATFORM_PASSWORD, port), log_path.open("w") as log:
        devices = make_devices(args.devices)
        worker = start_worker(dict(os.environ), log)
        try:
            wait_subscribed(worker, log)  # before anything is published
            processes, counters, stop = start_publishers(devices, port, args.rate, args.seconds, args.publishers)
            samples = sample_run(processes, counters, args.seconds)
            stop.set()
            published = sum(c.value for c in counters)
            stored = drain(3 * published)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    loaded = [s for s in samples if RAMP_SECONDS <= s[0] <= args.seconds]
    (t0, _, stored0), (t1, published1, stored1) = loaded[0], loaded[-1]
    points_per_s = (stored1 - stored0) / (t1 - t0)
    offered_per_s = 3 * published1 / t1
    mid, end = backlog_at(samples, 0.5, args.seconds), backlog_at(samples, 1.0, args.seconds)
    lost = 3 * published - stored
    print(f"load: {args.rate:,.0f} messages/s offered (3 measurements each) from {args.devices} devices over "
          f"{args.publishers} publisher processes for {args.seconds:g} s")  # fmt: skip
    print("worker: celery -A iotflow worker --pool=solo (one process), SQL backend on PostgreSQL")
    print(f"{'published (broker-acknowledged) points/s':<44}{offered_per_s:>12,.0f}")
    print(f"{'stored points/s':<44}{points_per_s:>12,.0f}")
    print(f"{'backlog mid-run / at the end (points)':<44}{mid:>12,} / {end:,}")
    print(f"{'messages published × 3 / points stored':<44}{3 * published:>12,} / {stored:,}")
    print(f"mqtt_points_per_s: {points_per_s:.0f}")
    print(f"mqtt_sustained_lost_points: {lost}")
    print(f"mqtt_backlog_mid_points: {mid}")
    print(f"mqtt_backlog_end_points: {end}")
    if lost:
        raise SystemExit(f"{lost} points published but not stored")
    # Growing means more than a second of the offered load on top of what was queued mid-run.
    if end > mid + offered_per_s:
        raise SystemExit(f"the backlog grew from {mid:,} to {end:,} points: the worker does not keep up")


if __name__ == "__main__":
    main()
