"""A broker that can be stopped and started again, and sensors that publish numbered telemetry over it.

Every simulated sensor publishes ``{"data": {"seq": n}, "timestamp": BASE_TS + n}`` at QoS 1, so
the database tells exactly which messages arrived, which are missing and which came twice; the
sensor records which messages the broker acknowledged (PUBACK) and when.
"""

import json
import re
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.models import Device, mqtt_password_for
from telemetry.models import TelemetryPoint
from tests.conftest import PrivateBroker

BASE_TS = 1_751_000_000_000
# Debug logging names every PUBLISH the broker sends, with its DUP flag: redeliveries become countable.
CONSUMER_SEND = re.compile(r"Sending PUBLISH to iotflow-consumer-\S+ \(d(\d)")
SENSOR_RESEND = re.compile(r"Received PUBLISH from device-\d+ \(d1")
PROBE_TS = BASE_TS + 100_000_000  # probes use their own timestamps, far from the numbered messages


class Broker(PrivateBroker):
    """IoTFlow's Mosquitto configuration with debug logging, restartable with its state."""

    @property
    def persistence_file(self) -> Path:
        return self.data_dir / "mosquitto.db"

    def configure(self, extra_config: str = "") -> None:
        super().configure(extra_config + "log_type debug\n")

    def setting(self, name: str) -> str:
        """A value of the shipped configuration as rendered (the last line that sets it)."""
        values = re.findall(rf"^{name}\s+(\S+)", self.config_text, re.MULTILINE)
        assert values, f"{name} is not set in the broker configuration"
        return values[-1]

    def consumer_deliveries(self) -> tuple[int, int]:
        """PUBLISH packets the broker sent to IoTFlow's consumers: (first deliveries, redeliveries).

        Read it after a clean stop: Mosquitto 2.0.11 buffers its log when writing to a file.
        """
        flags = Counter(CONSUMER_SEND.findall(self.log_path.read_text(errors="replace")))
        return flags["0"], flags["1"]

    def sensor_resends(self) -> int:
        """PUBLISH packets sensors sent again (DUP flag) after a lost connection."""
        return len(SENSOR_RESEND.findall(self.log_path.read_text(errors="replace")))


class Sensor:
    """One device's MQTT 3.1.1 connection, as a typical sensor: clean session, paho's automatic reconnect.

    paho keeps every QoS 1 message until its PUBACK and sends the unacknowledged ones again
    after a reconnect, so a broker restart costs the sensor nothing it was not told about.
    """

    def __init__(self, device: Device, broker: Broker) -> None:
        self.device = device
        self.topic = f"iotflow/devices/{device.pk}/telemetry"
        self.sent: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        self.acked_at: dict[int, float] = {}  # mid -> wall-clock time of its PUBACK
        self.probes = 0
        self.closed = False
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device.mqtt_username)  # the bound client id
        self.client.username_pw_set(device.mqtt_username, mqtt_password_for(device))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acked_at[mid] = time.time()

    def publish(self, seq: int) -> None:
        body = json.dumps({"data": {"seq": seq}, "timestamp": BASE_TS + seq})
        self.sent.append((seq, self.client.publish(self.topic, body, qos=1)))

    def probe(self) -> int:
        """Publish a ``probe`` point with a timestamp of its own; returns that timestamp."""
        self.probes += 1
        ts = PROBE_TS + self.probes
        self.client.publish(self.topic, json.dumps({"data": {"probe": 1}, "timestamp": ts}), qos=1)
        return ts

    def acked(self) -> dict[int, float]:
        """Sequence numbers the broker acknowledged, with the time of the (first) PUBACK.

        Known by the PUBACK callback: paho leaves a message's ``rc`` at "not connected" when it
        was queued during an outage, even after sending it and getting its PUBACK later.
        """
        times: dict[int, float] = {}
        for seq, info in self.sent:
            at = self.acked_at.get(info.mid)
            if at is not None:
                times[seq] = min(at, times.get(seq, at))
        return times

    def unacked(self) -> int:
        return sum(1 for _, info in self.sent if info.mid not in self.acked_at)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client.disconnect()
            self.client.loop_stop()


class Fleet:
    """Sensors that publish ``count`` numbered messages each, interleaved, at a paced total rate."""

    def __init__(self, devices: list[Device], broker: Broker) -> None:
        self.sensors = [Sensor(device, broker) for device in devices]
        self.progress = 0  # sequence numbers below this were published by every sensor
        self._thread: threading.Thread | None = None
        deadline = time.monotonic() + 10
        for sensor in self.sensors:
            assert sensor.connected.wait(max(0.0, deadline - time.monotonic())), "a sensor could not connect"

    @property
    def device_ids(self) -> list[int]:
        return [sensor.device.pk for sensor in self.sensors]

    def stream(self, stop: int, per_second: float, start: int = 0) -> None:
        """Publish sequence numbers ``start`` to ``stop - 1`` in the background; ``join()`` waits for the last."""

        def run() -> None:
            began = time.monotonic()
            step = len(self.sensors) / per_second
            for seq in range(start, stop):
                for sensor in self.sensors:
                    sensor.publish(seq)
                self.progress = seq + 1
                pause = began + (seq + 1 - start) * step - time.monotonic()
                if pause > 0:
                    time.sleep(pause)

        self._thread = threading.Thread(target=run, name="fleet", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 60) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the fleet did not finish publishing"

    def wait_acked(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(sensor.unacked() for sensor in self.sensors):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()


def consumer_connects(worker_log: Path) -> list[float]:
    """Wall-clock times at which the worker's consumer (re)connected, from its log."""
    stamps = re.findall(r"^\[([\d-]+ [\d:]+,\d+): INFO/\w+\] MQTT consumer connected", worker_log.read_text(), re.M)
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() for stamp in stamps]


def stored_seqs(device_ids: list[int]) -> dict[int, Counter]:
    """How often each sequence number is stored, per device."""
    found: dict[int, Counter] = {pk: Counter() for pk in device_ids}
    rows = TelemetryPoint.objects.filter(device_id__in=device_ids, measurement="seq").values_list(
        "device_id", "value_float"
    )
    for device_id, value in rows:
        found[device_id][int(value)] += 1
    return found


def stored_count(device_ids: list[int], below: int | None = None) -> int:
    points = TelemetryPoint.objects.filter(device_id__in=device_ids, measurement="seq")
    if below is not None:
        points = points.filter(ts__lt=BASE_TS + below)
    return points.count()


def tally(fleet: Fleet) -> dict[str, int]:
    """published / acked / stored / duplicates / lost (acked, never stored) / gaps (holes below the newest)."""
    stored = stored_seqs(fleet.device_ids)
    figures = Counter()
    for sensor in fleet.sensors:
        counts = stored[sensor.device.pk]
        acked = set(sensor.acked())
        figures["published"] += len({seq for seq, _ in sensor.sent})
        figures["acked"] += len(acked)
        figures["stored"] += sum(counts.values())
        figures["duplicates"] += sum(n - 1 for n in counts.values() if n > 1)
        figures["lost"] += len(acked - set(counts))
        newest = max(counts, default=-1)
        figures["gaps"] += sum(1 for seq in range(newest + 1) if seq not in counts)
    return dict(figures)
