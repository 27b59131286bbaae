"""Simulated purifiers for fleet fault tests: they execute commands through devices.simulator and keep a log.

Each device records every command message it received (with the time), while the simulator's
own ``executed`` list shows what it ran: the simulator deduplicates by command id, so a resend
is acknowledged again without running twice.
"""

import json
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.models import Device, mqtt_password_for
from devices.simulator import SimulatedDevice


@dataclass
class FleetDevice:
    """A purifier on MQTT 3.1.1; ``persistent`` keeps its broker session (queued commands) while it is away."""

    device: Device
    host: str
    port: int
    persistent: bool = False
    lose_first_ack: bool = False  # the first acknowledgement of each command never leaves the device
    received: list[tuple[str, float]] = field(default_factory=list)
    sim: SimulatedDevice = field(init=False)

    def __post_init__(self) -> None:
        self.sim = SimulatedDevice(self.device.pk, "air_purifier")
        self.prefix = f"iotflow/devices/{self.device.pk}"
        self.subscribed = threading.Event()
        self._acks_lost: set[str] = set()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device.mqtt_username,
            protocol=mqtt.MQTTv311,
            clean_session=not self.persistent,
        )
        self.client.username_pw_set(self.device.mqtt_username, mqtt_password_for(self.device))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message

    def connect(self, timeout: float = 5.0) -> None:
        self.subscribed.clear()
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            raise AssertionError(f"device {self.device.pk} did not subscribe to its commands")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(f"{self.prefix}/commands", qos=1)

    def _on_message(self, client, userdata, message) -> None:
        command = json.loads(message.payload)
        command_id = str(command.get("id"))
        self.received.append((command_id, time.time()))
        ok, result = self.sim.execute(command)
        if self.lose_first_ack and command_id not in self._acks_lost:
            self._acks_lost.add(command_id)
            return
        ack = {"id": command_id, "status": "ok" if ok else "error", "result": result}
        client.publish(f"{self.prefix}/commands/ack", json.dumps(ack), qos=1)

    @property
    def executed(self) -> list[str]:
        return [str(command_id) for command_id in self.sim.executed]

    def receipts(self, command_id: str) -> list[float]:
        return [at for received_id, at in self.received if received_id == command_id]
