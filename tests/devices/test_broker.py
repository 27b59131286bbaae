"""Device accounts in a real Mosquitto: who may connect, and what each account may publish and hear."""

import io
import json
import queue
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.core.management import CommandError, call_command

from devices import broker
from devices.broker import BrokerAccounts, BrokerError, render_config

TIMEOUT = 3


class Peer:
    """A real MQTT client logged in under some account, keeping what it receives."""

    def __init__(self, broker, username: str | None, password: str | None):
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:12]}", reconnect_on_failure=False
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda client, userdata, message: self.inbox.put(message.topic)
        self.inbox: queue.Queue[str] = queue.Queue()
        self.received: list[str] = []
        self._connected = threading.Event()
        self._subacks: dict[int, list] = {}
        self._subscribed = threading.Condition()
        self.reason_code = None
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._connected.wait(TIMEOUT), "no CONNACK"
        if self.refused:
            self.client.loop_stop()

    @property
    def refused(self) -> bool:
        return self.reason_code.is_failure

    def subscribe(self, topic: str) -> bool:
        """Subscribe and say whether the broker granted it."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self._subscribed:
            assert self._subscribed.wait_for(lambda: mid in self._subacks, TIMEOUT), "no SUBACK"
            return not self._subacks[mid][0].is_failure

    def publish(self, topic: str, payload: str = "{}") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT)

    def wait_for(self, topic: str) -> list[str]:
        """Collect messages until one on ``topic`` arrives; return every topic received so far."""
        while topic not in self.received:
            self.received.append(self.inbox.get(timeout=TIMEOUT))
        return self.received

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason_code = reason_code
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._subscribed:
            self._subacks[mid] = reason_codes
            self._subscribed.notify_all()


@pytest.fixture
def login(private_broker):
    peers: list[Peer] = []

    def login(username: str | None = None, password: str | None = None) -> Peer:
        peer = Peer(private_broker, username, password)
        peers.append(peer)
        return peer

    yield login
    for peer in peers:
        peer.close()


@pytest.fixture
def platform(private_broker, login) -> Peer:
    peer = login(private_broker.platform_username, private_broker.platform_password)
    assert not peer.refused
    assert peer.subscribe("iotflow/#")
    return peer


@pytest.fixture
def accounts(private_broker):
    with private_broker.accounts() as accounts:
        yield accounts


@pytest.fixture
def device7(accounts, login) -> Peer:
    accounts.ensure_device(7, "pw-7")
    peer = login("device-7", "pw-7")
    assert not peer.refused
    return peer


def test_anonymous_client_is_refused(login):
    assert login().refused


def test_platform_account_connects(private_broker, login):
    assert not login(private_broker.platform_username, private_broker.platform_password).refused
    assert login(private_broker.platform_username, "wrong").refused


def test_device_logs_in_with_its_password_only(accounts, login):
    accounts.ensure_device(7, "pw-7")

    assert not login("device-7", "pw-7").refused
    assert login("device-7", "wrong").refused
    assert login("device-8", "pw-7").refused


def test_device_telemetry_reaches_the_platform(platform, device7):
    device7.publish("iotflow/devices/7/telemetry", json.dumps({"data": {"t": 21.5}}))

    assert platform.wait_for("iotflow/devices/7/telemetry")


def test_platform_reads_through_a_shared_subscription(private_broker, login, device7):
    worker = login(private_broker.platform_username, private_broker.platform_password)
    assert worker.subscribe("$share/iotflow/iotflow/#")

    device7.publish("iotflow/devices/7/telemetry")

    assert worker.wait_for("iotflow/devices/7/telemetry")


def test_device_cannot_publish_as_another_device(platform, device7):
    device7.publish("iotflow/devices/8/telemetry")
    device7.publish("iotflow/fleet/1/commands")
    device7.publish("iotflow/devices/7/telemetry")

    assert platform.wait_for("iotflow/devices/7/telemetry") == ["iotflow/devices/7/telemetry"]


def test_device_hears_only_its_own_commands(platform, device7):
    device7.subscribe("iotflow/devices/8/commands")
    device7.subscribe("iotflow/devices/+/commands")
    assert device7.subscribe("iotflow/devices/7/commands")

    platform.publish("iotflow/devices/8/commands")
    platform.publish("iotflow/devices/7/commands")

    assert device7.wait_for("iotflow/devices/7/commands") == ["iotflow/devices/7/commands"]


def test_device_cannot_subscribe_to_everything(platform, device7):
    assert not device7.subscribe("#")
    assert not device7.subscribe("$SYS/#")
    assert device7.subscribe("iotflow/devices/7/commands")

    platform.publish("iotflow/devices/8/commands")
    platform.publish("iotflow/devices/7/commands")

    assert device7.wait_for("iotflow/devices/7/commands") == ["iotflow/devices/7/commands"]


def test_platform_sees_no_broker_internals(platform):
    assert not platform.subscribe("$SYS/#")
    assert not platform.subscribe("$CONTROL/#")


def test_device_hears_its_groups_fleet_commands(accounts, login, platform):
    accounts.ensure_device(7, "pw-7", group_ids=[3])
    device = login("device-7", "pw-7")
    assert device.subscribe("iotflow/fleet/3/commands")
    assert not device.subscribe("iotflow/fleet/4/commands")

    platform.publish("iotflow/fleet/4/commands")
    platform.publish("iotflow/fleet/3/commands")

    assert device.wait_for("iotflow/fleet/3/commands") == ["iotflow/fleet/3/commands"]


def test_ensure_device_again_updates_password_and_groups(accounts, login):
    accounts.ensure_device(7, "pw-7", group_ids=[3])
    accounts.ensure_device(7, "pw-7b", group_ids=[4])

    assert login("device-7", "pw-7").refused
    device = login("device-7", "pw-7b")
    assert not device.refused
    assert device.subscribe("iotflow/fleet/4/commands")
    assert not device.subscribe("iotflow/fleet/3/commands")


def test_ensure_device_again_leaves_a_connected_device_alone(accounts, platform, device7):
    assert device7.subscribe("iotflow/devices/7/commands")

    accounts.ensure_device(7, "pw-7")
    platform.publish("iotflow/devices/7/commands")

    assert device7.wait_for("iotflow/devices/7/commands")


def test_leaving_a_group_stops_its_fleet_commands_at_once(accounts, login, platform):
    accounts.ensure_device(7, "pw-7", group_ids=[3])
    device = login("device-7", "pw-7")
    assert device.subscribe("iotflow/fleet/3/commands")
    assert device.subscribe("iotflow/devices/7/commands")

    accounts.ensure_device(7, "pw-7", group_ids=[])
    platform.publish("iotflow/fleet/3/commands")
    platform.publish("iotflow/devices/7/commands")

    assert device.wait_for("iotflow/devices/7/commands") == ["iotflow/devices/7/commands"]


def test_removed_device_cannot_connect(accounts, login):
    accounts.ensure_device(7, "pw-7")
    accounts.remove_device(7)
    accounts.remove_device(7)

    assert login("device-7", "pw-7").refused
    assert "device-7" not in accounts.list_clients()


def test_new_password_replaces_the_old(accounts, login):
    accounts.ensure_device(7, "pw-7")
    accounts.set_device_password(7, "pw-7-new")

    assert login("device-7", "pw-7").refused
    assert not login("device-7", "pw-7-new").refused


def test_list_clients_names_every_account(private_broker, accounts):
    accounts.ensure_device(7, "pw-7")

    assert set(accounts.list_clients()) == {private_broker.admin_username, private_broker.platform_username, "device-7"}


def test_broker_refusals_are_errors(accounts):
    with pytest.raises(BrokerError, match="setClientPassword"):
        accounts.set_device_password(99, "pw")


def test_wrong_admin_password_is_an_error(private_broker):
    with pytest.raises(BrokerError, match="refused the admin login"):
        BrokerAccounts(private_broker.host, private_broker.port, private_broker.admin_username, "wrong").open()


def test_unanswered_command_is_an_error(private_broker, monkeypatch):
    monkeypatch.setattr(broker, "CONTROL_TOPIC", "$CONTROL/dynamic-security/v0")
    with private_broker.accounts(timeout=0.3) as accounts, pytest.raises(BrokerError, match="no answer"):
        accounts.list_clients()


def test_account_without_admin_rights_is_an_error(private_broker):
    with pytest.raises(BrokerError, match="may not read"):
        BrokerAccounts(
            private_broker.host, private_broker.port, private_broker.platform_username, private_broker.platform_password
        ).open()


def test_config_keeps_backlog_and_denies_anonymous(tmp_path):
    config = render_config(1884, tmp_path, plugin_path="/x/mosquitto_dynamic_security.so", user="mosquitto")

    assert "allow_anonymous false" in config
    assert "per_listener_settings false" in config
    assert "max_queued_messages 100000" in config
    assert "plugin /x/mosquitto_dynamic_security.so" in config
    assert f"plugin_opt_config_file {tmp_path.resolve()}/dynamic-security.json" in config
    assert "listener 1884\n" in config


def test_broker_config_command_writes_config_and_keeps_accounts(tmp_path, settings):
    settings.MQTT_ADMIN_PASSWORD = "admin-pw"
    settings.MQTT_PASSWORD = "platform-pw"
    call_command("broker_config", port=1884, data_dir=tmp_path, plugin="/x/dynsec.so", stdout=io.StringIO())

    accounts = json.loads((tmp_path / "dynamic-security.json").read_text())
    assert [client["username"] for client in accounts["clients"]] == ["iotflow-admin", "iotflow-platform"]
    assert "listener 1884" in (tmp_path / "mosquitto.conf").read_text()

    (tmp_path / "dynamic-security.json").write_text("{}")
    call_command("broker_config", port=1884, data_dir=tmp_path, plugin="/x/dynsec.so", stdout=io.StringIO())
    assert (tmp_path / "dynamic-security.json").read_text() == "{}"


def test_broker_config_command_needs_passwords(tmp_path, settings):
    settings.MQTT_ADMIN_PASSWORD = ""
    with pytest.raises(CommandError, match="MQTT_ADMIN_PASSWORD"):
        call_command("broker_config", port=1884, data_dir=tmp_path, plugin="/x/dynsec.so", stdout=io.StringIO())
