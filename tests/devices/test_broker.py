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
from devices.models import mqtt_password_for
from devices.tasks import reconcile

TIMEOUT = 3


class Peer:
    """A real MQTT client logged in under some account, keeping what it receives."""

    def __init__(self, broker, username: str | None, password: str | None, client_id: str | None = None):
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda client, userdata, flags, reason_code, properties: self.disconnected.set()
        self.client.on_message = lambda client, userdata, message: self.inbox.put(message.topic)
        self.inbox: queue.Queue[str] = queue.Queue()
        self.received: list[str] = []
        self._connected = threading.Event()
        self.disconnected = threading.Event()
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

    def login(username: str | None = None, password: str | None = None, client_id: str | None = None) -> Peer:
        """Log in; device accounts must pass their bound client id (``device-<id>``), others get a random one."""
        peer = Peer(private_broker, username, password, client_id)
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
    peer = login("device-7", "pw-7", "device-7")
    assert not peer.refused
    return peer


def test_anonymous_client_is_refused(login):
    assert login().refused


def test_platform_account_connects(private_broker, login):
    assert not login(private_broker.platform_username, private_broker.platform_password).refused
    assert login(private_broker.platform_username, "wrong").refused


def test_device_logs_in_with_its_password_only(accounts, login):
    accounts.ensure_device(7, "pw-7")

    assert not login("device-7", "pw-7", "device-7").refused
    assert login("device-7", "wrong", "device-7").refused
    assert login("device-8", "pw-7", "device-8").refused


def test_device_connects_only_with_its_own_client_id(accounts, login):
    accounts.ensure_device(7, "pw-7")
    accounts.ensure_device(8, "pw-8")
    device8 = login("device-8", "pw-8", "device-8")

    assert login("device-7", "pw-7", "device-7-spare").reason_code == "Not authorized"
    assert login("device-7", "pw-7", "device-8").reason_code == "Not authorized"
    assert login("device-8", "pw-8", f"test-{uuid.uuid4().hex[:12]}").refused
    # The refused login with device-8's client id did not take over its connection.
    assert device8.subscribe("iotflow/devices/8/commands")
    assert not device8.disconnected.is_set()


def test_account_keeps_a_fingerprint_of_its_password_not_the_password(accounts):
    accounts.ensure_device(7, "pw-7")

    account = accounts.device_account(7)
    assert account["clientid"] == "device-7"
    assert account["textdescription"] == broker.password_fingerprint("pw-7")
    assert "pw-7" not in json.dumps(account)
    assert broker.password_fingerprint("pw-7") != broker.password_fingerprint("pw-7b")


def create_unbound_account(accounts: BrokerAccounts, device_id: int, password: str) -> None:
    """An account as releases before the client id binding made it: no client id, no fingerprint."""
    name = f"device-{device_id}"
    accounts.run(
        {"command": "createRole", "rolename": name, "acls": broker.device_acls(device_id)},
        {"command": "createClient", "username": name, "password": password, "roles": [{"rolename": name}]},
    )


def test_account_made_before_the_binding_is_bound_once(accounts, login, platform):
    create_unbound_account(accounts, 7, "pw-7")
    legacy = login("device-7", "pw-7", "sensor-7")
    assert not legacy.refused

    accounts.ensure_device(7, "pw-7")

    assert legacy.disconnected.wait(TIMEOUT), "a device connected under the unbound account stays connected"
    assert login("device-7", "pw-7", "sensor-7").refused
    device = login("device-7", "pw-7", "device-7")
    assert device.subscribe("iotflow/devices/7/commands")

    accounts.ensure_device(7, "pw-7")
    platform.publish("iotflow/devices/7/commands")

    assert device.wait_for("iotflow/devices/7/commands")
    assert not device.disconnected.is_set()


def test_reconcile_binds_old_accounts_once_and_removes_stale_ones(accounts, login, device):
    username, password = f"device-{device.pk}", mqtt_password_for(device.device)
    create_unbound_account(accounts, device.pk, password)
    accounts.ensure_device(device.pk + 1000, "pw-gone")

    assert reconcile(accounts) == {"devices": 1, "removed": 1}
    assert accounts.device_account(device.pk)["clientid"] == username
    assert f"device-{device.pk + 1000}" not in accounts.list_clients()
    connected = login(username, password, username)
    assert not connected.refused

    assert reconcile(accounts) == {"devices": 1, "removed": 0}
    assert connected.subscribe(f"iotflow/devices/{device.pk}/commands"), "reconcile disconnected a device in step"
    assert not connected.disconnected.is_set()


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
    device = login("device-7", "pw-7", "device-7")
    assert device.subscribe("iotflow/fleet/3/commands")
    assert not device.subscribe("iotflow/fleet/4/commands")

    platform.publish("iotflow/fleet/4/commands")
    platform.publish("iotflow/fleet/3/commands")

    assert device.wait_for("iotflow/fleet/3/commands") == ["iotflow/fleet/3/commands"]


def test_ensure_device_again_updates_password_and_groups(accounts, login):
    accounts.ensure_device(7, "pw-7", group_ids=[3])
    accounts.ensure_device(7, "pw-7b", group_ids=[4])

    assert login("device-7", "pw-7", "device-7").refused
    device = login("device-7", "pw-7b", "device-7")
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
    device = login("device-7", "pw-7", "device-7")
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

    assert login("device-7", "pw-7", "device-7").refused
    assert "device-7" not in accounts.list_clients()


def test_new_password_replaces_the_old(accounts, login):
    accounts.ensure_device(7, "pw-7")
    accounts.set_device_password(7, "pw-7-new")

    assert login("device-7", "pw-7", "device-7").refused
    assert not login("device-7", "pw-7-new", "device-7").refused


def test_list_clients_names_every_account(private_broker, accounts):
    accounts.ensure_device(7, "pw-7")

    assert set(accounts.list_clients()) == {private_broker.admin_username, private_broker.platform_username, "device-7"}


def test_broker_refusals_are_errors(accounts):
    with pytest.raises(BrokerError, match="modifyClient"):
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
