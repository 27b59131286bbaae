"""Telemetry over MQTT under faults: a killed worker, a restarted or crashed broker, replayed messages.

Simulated sensors publish numbered QoS 1 messages to a private Mosquitto running IoTFlow's
shipped configuration, and a real Celery worker consumes them. Each test counts what the
sensors published, what the broker acknowledged (PUBACK), what was stored, duplicated or lost,
and prints the figures in the run's summary.
"""

import random
import signal
import time

import pytest

from devices.models import mqtt_password_for
from telemetry.models import LatestValue, TelemetryPoint
from tests.integration.processes import start_worker, stop_process, wait_for
from tests.reliability.conftest import record_figures

from ._ingest import BASE_TS, Broker, Fleet, consumer_connects, stored_count, stored_seqs, tally

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

DEVICES = 10
MESSAGES = 300  # per device
RATE = 1000  # messages per second, all sensors together


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker")
    broker.configure()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def fleet(broker, make_device, alice):
    devices = [make_device(alice, f"sensor-{index}").device for index in range(DEVICES)]
    with broker.accounts() as accounts:
        for device in devices:
            accounts.ensure_device(device.pk, mqtt_password_for(device))
    fleet = Fleet(devices, broker)
    yield fleet
    fleet.close()


class Worker:
    """A real Celery worker (node ``ingest``: one consumer session, kept across restarts)."""

    def __init__(self, broker: Broker, fleet: Fleet, log) -> None:
        self.broker, self.fleet, self.log = broker, fleet, log
        self.process = None

    def start(self) -> None:
        self.process = start_worker(self.broker, "ingest", self.log, MQTT_MANAGE_ACCOUNTS="0")

    def wait_consuming(self) -> None:
        """Probe until a message goes through: before its first subscription the broker keeps nothing."""
        sensor = self.fleet.sensors[0]
        probes = TelemetryPoint.objects.filter(device_id=sensor.device.pk, measurement="probe", ts__gte=sensor.probe())

        def probe() -> bool:
            sensor.probe()
            time.sleep(0.3)
            return probes.exists()

        wait_for(probe, 60, "the worker's MQTT consumer", self.log)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop_process(self.process, sig)


@pytest.fixture
def worker(broker, fleet, tmp_path):
    worker = Worker(broker, fleet, tmp_path / "worker.log")
    worker.start()
    worker.wait_consuming()
    yield worker
    worker.stop()


def shut_down(worker: Worker, fleet: Fleet, broker: Broker) -> None:
    """Stop the clients, then the broker: clients of a stopped broker linger in their reconnect loops,
    and a clean broker stop flushes its log, which the delivery counts read."""
    worker.stop()
    fleet.close()
    broker.stop()


def wait_stored(fleet: Fleet, count: int, log, timeout: float = 90) -> None:
    wait_for(lambda: stored_count(fleet.device_ids) >= count, timeout, f"{count} stored points", log)


def wait_quiet(fleet: Fleet, seconds: float = 2.0, timeout: float = 60) -> None:
    """Until the stored count stops changing (for a run that may have lost messages)."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = stored_count(fleet.device_ids)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)


def finish(fleet: Fleet, log) -> dict[str, int]:
    """Wait for the stream to end, every message to be acknowledged and stored; then count."""
    fleet.join()
    assert fleet.wait_acked(60), "the broker did not acknowledge every message"
    acked = sum(len(sensor.acked()) for sensor in fleet.sensors)
    wait_stored(fleet, acked, log)
    time.sleep(1)  # a redelivery still on its way would show as a surplus
    return tally(fleet)


def assert_exactly_once(figures: dict[str, int]) -> None:
    assert figures["acked"] == figures["published"] == DEVICES * MESSAGES
    assert figures["lost"] == 0, f"{figures['lost']} acknowledged messages were never stored"
    assert figures["duplicates"] == 0
    assert figures["stored"] == figures["acked"]
    assert figures["gaps"] == 0


def test_baseline_every_acknowledged_message_is_stored_once(broker, fleet, worker):
    fleet.stream(MESSAGES, RATE)
    figures = finish(fleet, worker.log)
    shut_down(worker, fleet, broker)
    figures["redelivered"] = broker.consumer_deliveries()[1]
    record_figures("mqtt baseline", figures)
    assert_exactly_once(figures)


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(broker, fleet, worker):
    fleet.stream(MESSAGES, RATE)
    total = DEVICES * MESSAGES
    wait_for(lambda: stored_count(fleet.device_ids) >= total // 4, 60, "a quarter of the stream", worker.log, 0.01)
    worker.stop(signal.SIGKILL)
    at_kill = stored_count(fleet.device_ids)
    worker.start()
    figures = finish(fleet, worker.log)
    shut_down(worker, fleet, broker)
    figures |= {"stored_at_kill": at_kill, "redelivered": broker.consumer_deliveries()[1]}
    record_figures("mqtt worker SIGKILL", figures)
    assert_exactly_once(figures)


def test_broker_restarted_mid_stream_loses_only_what_arrives_before_the_consumer_is_back(broker, fleet, worker):
    """A clean broker restart keeps every message it acknowledged before stopping.

    Mosquitto does not keep shared subscriptions across its restart, so what sensors publish
    after the broker is back and before the consumer subscribed again is dropped: any loss must
    fall in that window, which the consumer's quick reconnect keeps short.
    """
    fleet.stream(MESSAGES, RATE)
    wait_for(lambda: fleet.progress >= MESSAGES // 3, 30, "a third of the stream")
    down = time.time()
    broker.stop(signal.SIGTERM)
    time.sleep(1)  # an outage: sensors keep publishing into their own queues
    broker.start()
    back = time.time()
    published, at_back = fleet.progress, stored_count(fleet.device_ids)
    wait_for(lambda: stored_count(fleet.device_ids) > at_back, 30, "ingest to resume", worker.log, 0.02)
    resumed = time.time() - back
    recovery = drain_seconds(fleet, published, back)  # what the broker held or sensors queued is stored
    held = {(sensor.device.pk, seq) for sensor in fleet.sensors for seq, at in sensor.acked().items() if at < down}
    figures = finish_allowing_loss(fleet, worker.log)
    shut_down(worker, fleet, broker)
    resubscribed = min(t for t in consumer_connects(worker.log) if t >= back)
    lost = acked_not_stored(fleet)
    figures |= {
        "acked_before_stop": len(held),
        "lost_acked_before_stop": len(held - stored_pairs(fleet)),
        "outage_s": round(back - down, 2),
        "consumer_back_after_s": round(resubscribed - back, 2),
        "ingest_resumed_s": round(resumed, 2),
        "recovery_s": round(recovery, 2),
        "resent_by_sensors": broker.sensor_resends(),
        "redelivered": broker.consumer_deliveries()[1],
    }
    record_figures("mqtt broker SIGTERM+restart", figures)
    margin = 0.5
    outside = [item for item, at in lost.items() if not back - margin <= at <= resubscribed + margin]
    assert not outside, f"{len(outside)} lost messages were acknowledged outside the resubscription window"
    assert figures["lost_acked_before_stop"] == 0
    assert figures["duplicates"] == 0
    assert figures["acked"] == figures["published"] == DEVICES * MESSAGES


def drain_seconds(fleet: Fleet, below: int, since: float, quiet: float = 2.0, timeout: float = 60) -> float:
    """Seconds from ``since`` until the last of the messages numbered below ``below`` was stored."""
    expected = below * len(fleet.sensors)
    last_count, last_change, deadline = -1, since, time.time() + timeout
    while time.time() < deadline:
        count, now = stored_count(fleet.device_ids, below=below), time.time()
        if count != last_count:
            last_count, last_change = count, now
        if count >= expected or now - last_change >= quiet:
            break
        time.sleep(0.05)
    return last_change - since


def stored_pairs(fleet: Fleet) -> set[tuple[int, int]]:
    return {(device_id, seq) for device_id, counts in stored_seqs(fleet.device_ids).items() for seq in counts}


def acked_not_stored(fleet: Fleet) -> dict[tuple[int, int], float]:
    """Acknowledged messages missing from the store, with the time of their PUBACK."""
    stored = stored_pairs(fleet)
    return {
        (sensor.device.pk, seq): at
        for sensor in fleet.sensors
        for seq, at in sensor.acked().items()
        if (sensor.device.pk, seq) not in stored
    }


def finish_allowing_loss(fleet: Fleet, log) -> dict[str, int]:
    fleet.join()
    assert fleet.wait_acked(60), "the broker did not acknowledge every message"
    wait_quiet(fleet)
    return tally(fleet)


def test_broker_hard_kill_loses_at_most_what_arrived_since_the_last_save(broker, fleet, worker):
    """With the consumer away, a SIGKILLed broker keeps what its last autosave held and loses what came after."""
    interval = int(broker.setting("autosave_interval"))
    worker.stop()  # the consumer's session stays on the broker and queues the stream
    fleet.stream(MESSAGES // 2, RATE)
    fleet.join()
    assert fleet.wait_acked(30), "the broker did not acknowledge every message"
    first_half = time.time()
    wait_for(
        lambda: broker.persistence_file.exists() and broker.persistence_file.stat().st_mtime > first_half,
        interval + 5,
        "an autosave",
    )
    fleet.stream(MESSAGES, RATE, start=MESSAGES // 2)
    fleet.join()
    assert fleet.wait_acked(30), "the broker did not acknowledge every message"
    last_save = broker.persistence_file.stat().st_mtime
    broker.stop(signal.SIGKILL)
    killed = time.time()
    broker.start()
    worker.start()
    worker.wait_consuming()
    wait_quiet(fleet)

    # A message the sensor saw acknowledged before the last save began was in that save.
    margin = 0.5
    lost = acked_not_stored(fleet)
    saved = {
        (sensor.device.pk, seq) for sensor in fleet.sensors for seq, at in sensor.acked().items() if at < last_save
    }
    unsaved = DEVICES * MESSAGES - len(saved)
    figures = tally(fleet) | {
        "autosave_interval_s": interval,
        "since_last_save_s": round(killed - last_save, 2),
        "acked_before_last_save": len(saved),
        "acked_after_last_save": unsaved,
    }
    record_figures("mqtt broker SIGKILL (consumer away)", figures)
    early = [item for item, at in lost.items() if at < last_save - margin]
    assert not early, f"{len(early)} messages acknowledged before the last save were lost"
    assert figures["lost"] <= unsaved
    assert figures["duplicates"] == 0
    assert killed - last_save <= interval + 1, "the broker saved less often than its autosave_interval"


def test_replayed_messages_are_stored_once(broker, fleet, worker):
    fleet.stream(MESSAGES, RATE * 2)
    fleet.join()
    rng = random.Random(20)
    replayed = 0
    for sensor in fleet.sensors:
        for seq in rng.sample(range(MESSAGES), MESSAGES // 10):
            sensor.publish(seq)
            replayed += 1
    figures = finish(fleet, worker.log) | {"replayed": replayed}
    shut_down(worker, fleet, broker)
    figures["delivered"] = sum(broker.consumer_deliveries())
    record_figures("mqtt replayed 10%", figures)
    # The replays must have reached the consumer for the test to mean anything.
    assert figures["delivered"] >= DEVICES * MESSAGES + replayed
    assert_exactly_once(figures)
    newest = LatestValue.objects.filter(device_id__in=fleet.device_ids, measurement="seq")
    assert {latest.ts for latest in newest} == {BASE_TS + MESSAGES - 1}, "a replay moved a latest value back"
