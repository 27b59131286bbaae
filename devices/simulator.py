"""Simulated devices that behave like real ones: drifting sensors, MQTT or HTTP, commands acknowledged.

Profiles follow the device simulator of the original connectivity layer (default,
high_frequency, energy_efficient, industrial) and the air purifier of the Praan
backend, which executes set_fan_speed / turn_on / turn_off and acknowledges them.
"""

import json
import logging
import random
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.broker import device_client_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    interval: float  # seconds between telemetry messages
    sensors: dict[str, tuple[float, float, float]]  # name -> (start, low, high)
    battery_drain_per_hour: float = 0.0


PROFILES = {
    "default": Profile(30, {"temperature": (22, 15, 30), "humidity": (55, 30, 80), "pressure": (1013, 990, 1030)}, 0.1),
    "high_frequency": Profile(
        5,
        {
            "temperature": (22, 15, 30),
            "humidity": (55, 30, 80),
            "pressure": (1013, 990, 1030),
            "accelerometer.x": (0, -2, 2),
            "accelerometer.y": (0, -2, 2),
            "accelerometer.z": (9.8, 8, 11),
            "gyroscope.x": (0, -1, 1),
            "gyroscope.y": (0, -1, 1),
            "gyroscope.z": (0, -1, 1),
        },
        0.5,
    ),
    "energy_efficient": Profile(300, {"temperature": (20, 10, 30)}, 0.05),
    "industrial": Profile(
        10,
        {
            "temperature": (60, 40, 90),
            "pressure": (4, 2, 8),
            "vibration": (0.3, 0, 2),
            "power_consumption": (1500, 800, 3000),
        },
        0.3,
    ),
    "air_purifier": Profile(
        120,
        {
            "temperature": (24, 16, 32),
            "humidity": (50, 25, 80),
            "pm1": (12, 0, 150),
            "pm25": (25, 0, 250),
            "pm10": (40, 0, 400),
            "sound": (35, 20, 70),
            "voc": (120, 0, 500),
            "network_strength": (80, 20, 100),
        },
    ),
}

FAN_SPEEDS = range(0, 6)


@dataclass
class SimulatedDevice:
    """One device's state; ``reading()`` drifts each sensor a little (no sudden jumps)."""

    device_id: int
    profile_name: str
    values: dict[str, float] = field(default_factory=dict)
    power: str = "on"
    fan_speed: int = 2
    battery: float = 100.0
    executed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.profile = PROFILES[self.profile_name]
        self.values = {name: start for name, (start, _, _) in self.profile.sensors.items()}

    def reading(self) -> dict:
        data: dict = {}
        for name, (_, low, high) in self.profile.sensors.items():
            step = (high - low) * 0.02
            self.values[name] = min(high, max(low, self.values[name] + random.uniform(-step, step)))
            data[name] = round(self.values[name], 2)
        if self.profile_name == "air_purifier":
            # Particles fall faster the harder the fan runs.
            for name in ("pm1", "pm25", "pm10"):
                self.values[name] = max(0.0, self.values[name] * (1 - 0.02 * self.fan_speed))
                data[name] = round(self.values[name], 1)
            data.update({"power": self.power, "fan_speed": self.fan_speed if self.power == "on" else 0})
        if self.profile.battery_drain_per_hour:
            self.battery = max(0.0, self.battery - self.profile.battery_drain_per_hour * self.profile.interval / 3600)
            data["battery"] = round(self.battery, 2)
        return {"data": _nest(data), "timestamp": int(time.time() * 1000)}

    def execute(self, command: dict) -> tuple[bool, dict]:
        """Run a command; returns (ok, result) for the acknowledgement."""
        if command.get("id") in self.executed:
            return True, {"state": self.state, "duplicate": True}
        action, params = command.get("action"), command.get("params") or {}
        if action == "turn_on":
            self.power = "on"
        elif action == "turn_off":
            self.power = "off"
        elif action == "set_fan_speed" or (action == "set_state" and "fan_speed" in params):
            speed = params.get("fan_speed", params.get("speed"))
            if not isinstance(speed, int) or speed not in FAN_SPEEDS:
                return False, {"error": "fan_speed must be an integer from 0 to 5"}
            self.fan_speed = speed
            if "power" in params:
                self.power = params["power"]
        elif action in ("set_state", "apply"):
            self.power = params.get("power", self.power)
        elif action not in ("ping", "get_status", "reboot"):
            return False, {"error": f"unknown action {action!r}"}
        self.executed = (self.executed + [command.get("id")])[-100:]
        return True, {"state": self.state}

    @property
    def state(self) -> dict:
        return {"power": self.power, "fan_speed": self.fan_speed}


def _nest(flat: dict) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        head, _, tail = key.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[key] = value
    return nested


class MqttRunner:
    """Drives one simulated device over MQTT: telemetry, online/offline status, commands and acks."""

    def __init__(self, sim: SimulatedDevice, host: str, port: int, username: str, password: str, interval: float):
        self.sim, self.interval = sim, interval
        self.prefix = f"iotflow/devices/{sim.device_id}"
        # The broker accepts the device's account only under its own client id.
        client_id = device_client_id(sim.device_id)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.client.will_set(f"{self.prefix}/status/offline", b"", qos=1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("Device %s refused by the broker: %s", self.sim.device_id, reason_code)
            return
        client.subscribe(f"{self.prefix}/commands", qos=1)
        client.publish(f"{self.prefix}/status/online", b"", qos=1)

    def _on_message(self, client, userdata, message) -> None:
        try:
            command = json.loads(message.payload)
        except ValueError:
            return
        ok, result = self.sim.execute(command)
        ack = {"id": command.get("id"), "status": "ok" if ok else "error", "result": result}
        client.publish(f"{self.prefix}/commands/ack", json.dumps(ack), qos=1)

    def run(self, stop: threading.Event) -> None:
        self.client.loop_start()
        try:
            while not stop.is_set():
                self.client.publish(f"{self.prefix}/telemetry", json.dumps(self.sim.reading()), qos=1)
                stop.wait(self.interval)
            self.client.publish(f"{self.prefix}/status/offline", b"", qos=1).wait_for_publish(2)
        finally:
            self.client.disconnect()
            self.client.loop_stop()


class HttpRunner:
    """Drives one simulated device over the HTTP API: telemetry, and commands by polling."""

    def __init__(self, sim: SimulatedDevice, base_url: str, api_key: str, interval: float):
        self.sim, self.base_url, self.api_key, self.interval = sim, base_url.rstrip("/"), api_key, interval

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (the platform's own URL)
            self.base_url + path,
            data=data,
            method=method,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._call("POST", "/api/v1/telemetry", self.sim.reading())
                for command in self._call("GET", "/api/v1/devices/commands/pending").get("commands", []):
                    ok, result = self.sim.execute(command)
                    self._call(
                        "POST",
                        f"/api/v1/devices/commands/{command['id']}/ack",
                        {"status": "ok" if ok else "error", "result": result},
                    )
            except OSError as exc:
                log.warning("Device %s: %s", self.sim.device_id, exc)
            stop.wait(self.interval)
