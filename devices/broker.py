"""Device accounts in the MQTT broker, kept by Mosquitto's dynamic-security plugin.

IoTFlow renders the broker's configuration and seeds its accounts, then
connects as the broker's admin to give every device an account that may use
only its own topics and connect only with its own client id.
"""

import base64
import getpass
import glob
import hashlib
import hmac
import json
import secrets
import string
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings

CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "mosquitto.conf.template"
DYNSEC_FILE_NAME = "dynamic-security.json"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
PLATFORM_ROLE = "iotflow-platform"
ADMIN_ROLE = "iotflow-admin"
PLUGIN_FILE = "mosquitto_dynamic_security.so"
PLUGIN_DIRS = ["/usr/lib/*", "/usr/lib", "/usr/local/lib", "/opt/homebrew/lib"]
# The plugin itself hashes with 101 iterations; the two seeded accounts log in rarely and can afford more.
SEED_HASH_ITERATIONS = 10_000
# Kept in a device account's textdescription: which password IoTFlow last gave the account.
FINGERPRINT_PREFIX = "iotflow-password-hmac-sha256:"
FINGERPRINT_KEY = b"iotflow-mqtt-password-fingerprint"


class BrokerError(Exception):
    """The broker refused a request or did not answer in time."""


def find_dynsec_plugin() -> str:
    """Path of the dynamic-security plugin: the MQTT_DYNSEC_PLUGIN setting, else the usual install places."""
    configured = getattr(settings, "MQTT_DYNSEC_PLUGIN", "")
    if configured:
        return configured
    for directory in PLUGIN_DIRS:
        found = sorted(glob.glob(f"{directory}/{PLUGIN_FILE}"))
        if found:
            return found[0]
    raise BrokerError(f"{PLUGIN_FILE} not found; install mosquitto 2.x or set MQTT_DYNSEC_PLUGIN.")


def render_config(
    port: int, data_dir: str | Path, *, bind_address: str = "", plugin_path: str = "", user: str = ""
) -> str:
    """mosquitto.conf for IoTFlow's broker listening on ``port`` and keeping its state in ``data_dir``."""
    text = string.Template(CONFIG_TEMPLATE.read_text()).substitute(
        port=int(port),
        data_dir=Path(data_dir).resolve(),
        bind_address=bind_address,
        plugin_path=plugin_path or find_dynsec_plugin(),
        user=user or getpass.getuser(),
    )
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def hash_password(password: str, iterations: int = SEED_HASH_ITERATIONS) -> dict[str, Any]:
    """The plugin's stored form of a password: PBKDF2-HMAC-SHA512 over base64-decoded salt."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def platform_acls() -> list[dict[str, Any]]:
    """The consumer reads every IoTFlow topic (also as a shared subscription) and sends commands."""
    share_group = getattr(settings, "MQTT_SHARE_GROUP", "iotflow")
    return [
        acl("subscribePattern", "iotflow/#"),
        # Mosquitto 2.0 checks a shared subscription against its full $share/... filter.
        acl("subscribePattern", f"$share/{share_group}/iotflow/#"),
        acl("publishClientReceive", "iotflow/#"),
        acl("publishClientSend", "iotflow/devices/+/commands"),
        acl("publishClientSend", "iotflow/fleet/+/commands"),
    ]


def admin_acls() -> list[dict[str, Any]]:
    """The admin manages accounts and nothing else."""
    return [
        acl("publishClientSend", "$CONTROL/dynamic-security/#"),
        acl("subscribePattern", "$CONTROL/dynamic-security/#"),
        acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
    ]


def device_acls(device_id: int, group_ids: list[int] | tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """A device uses only iotflow/devices/{id}/... and hears its groups' fleet commands."""
    own = f"iotflow/devices/{device_id}/#"
    acls = [acl("publishClientSend", own), acl("subscribePattern", own), acl("publishClientReceive", own)]
    for group_id in group_ids:
        fleet = f"iotflow/fleet/{int(group_id)}/commands"
        acls += [acl("subscribePattern", fleet), acl("publishClientReceive", fleet)]
    return acls


def initial_dynsec_config(
    admin_username: str, admin_password: str, platform_username: str, platform_password: str
) -> dict[str, Any]:
    """The plugin's starting file: IoTFlow's admin and platform accounts, everything else denied."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {"username": admin_username, **hash_password(admin_password), "roles": [{"rolename": ADMIN_ROLE}]},
            {"username": platform_username, **hash_password(platform_password), "roles": [{"rolename": PLATFORM_ROLE}]},
        ],
        "roles": [
            {"rolename": ADMIN_ROLE, "acls": admin_acls()},
            {"rolename": PLATFORM_ROLE, "acls": platform_acls()},
        ],
        "groups": [],
    }


def write_dynsec_config(path: str | Path, config: dict[str, Any]) -> None:
    """Write the plugin's file readable by its owner only: it holds password hashes."""
    path = Path(path)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def device_username(device_id: int) -> str:
    return f"device-{int(device_id)}"


def device_client_id(device_id: int) -> str:
    """The only MQTT client id the device's account may connect with (the broker refuses any other).

    Mosquitto drops an existing connection when another one arrives with the same client id; without the
    binding, any device could push any other off the broker by borrowing its id.
    """
    return device_username(device_id)


def password_fingerprint(password: str) -> str:
    """What a device account records of its password, so a later sync can tell whether it is still right.

    The plugin never reveals a stored password, and trying a login would have to use the device's own
    client id and so disconnect the device. The derived password is a 256-bit HMAC, so this keyed digest
    of it reveals nothing the plugin's own stored hash does not.
    """
    digest = hmac.new(FINGERPRINT_KEY, password.encode(), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest


def device_binding(device_id: int, password: str) -> dict[str, str]:
    """The account fields that tie a device account to its client id and record its password's fingerprint."""
    return {"clientid": device_client_id(device_id), "textdescription": password_fingerprint(password)}


class BrokerAccounts:
    """A connection as the broker's admin that creates, changes and removes device accounts.

    Use as a context manager; every call waits for the plugin's answer.
    """

    def __init__(
        self, host: str, port: int, username: str, password: str, *, tls: bool = False, timeout: float = 5.0
    ) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"iotflow-admin-{uuid.uuid4().hex}")
        self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._ready = threading.Event()
        self._failure = ""
        self._answered = threading.Condition()
        self._waiting: set[str] = set()
        self._responses: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_settings(cls) -> "BrokerAccounts":
        url = urlsplit(getattr(settings, "MQTT_URL", "mqtt://127.0.0.1:1883"))
        tls = url.scheme in {"mqtts", "ssl"}
        return cls(
            url.hostname or "127.0.0.1",
            url.port or (8883 if tls else 1883),
            getattr(settings, "MQTT_ADMIN_USERNAME", "iotflow-admin"),
            getattr(settings, "MQTT_ADMIN_PASSWORD", ""),
            tls=tls,
            timeout=getattr(settings, "MQTT_ADMIN_TIMEOUT", 5.0),
        )

    def __enter__(self) -> "BrokerAccounts":
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._client.connect(self.host, self.port)
        except OSError as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}")
        self._client.loop_start()
        if not self._ready.wait(self.timeout):
            self.close()
            raise BrokerError(f"the MQTT broker at {self.host}:{self.port} did not accept the admin in time")
        if self._failure:
            self.close()
            raise BrokerError(self._failure)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ensure_device(self, device_id: int, password: str, group_ids: list[int] | tuple[int, ...] = ()) -> None:
        """Create the device's account and role, or bring existing ones up to date.

        The plugin drops every connection of a client it modifies, so the client is touched only
        when its password fingerprint or client id binding is wrong (once for an account made before
        either existed) or its role is missing; role ACLs change live.
        """
        name = device_username(device_id)
        binding = device_binding(device_id, password)
        create_role, modify_role, create_client, current = self.run(
            {"command": "createRole", "rolename": name},
            {"command": "modifyRole", "rolename": name, "acls": device_acls(device_id, group_ids)},
            {
                "command": "createClient",
                "username": name,
                "password": password,
                **binding,
                "roles": [{"rolename": name}],
            },
            {"command": "getClient", "username": name},
            check=False,
        )
        for response in (create_role, modify_role, create_client, current):
            if response.get("error") and "already exists" not in response["error"]:
                raise BrokerError(f"{response.get('command')} {name}: {response['error']}")
        if not create_client.get("error"):
            return
        client = current.get("data", {}).get("client", {})
        if name not in {role.get("rolename") for role in client.get("roles", [])}:
            self.run({"command": "addClientRole", "username": name, "rolename": name})
        if any(client.get(field) != value for field, value in binding.items()):
            self.run({"command": "modifyClient", "username": name, "password": password, **binding})

    def remove_device(self, device_id: int) -> None:
        """Delete the device's account and role; an already absent one is fine."""
        name = device_username(device_id)
        for response in self.run(
            {"command": "deleteClient", "username": name}, {"command": "deleteRole", "rolename": name}, check=False
        ):
            if response.get("error") and "not found" not in response["error"].lower():
                raise BrokerError(f"{response['command']} {name}: {response['error']}")

    def set_device_password(self, device_id: int, password: str) -> None:
        """Give the account a new password in one change, keeping its fingerprint and binding in step."""
        name = device_username(device_id)
        self.run(
            {"command": "modifyClient", "username": name, "password": password, **device_binding(device_id, password)}
        )

    def device_account(self, device_id: int) -> dict[str, Any]:
        """The plugin's view of the device's account (getClient): client id, description, roles."""
        (response,) = self.run({"command": "getClient", "username": device_username(device_id)})
        return response.get("data", {}).get("client", {})

    def list_clients(self) -> list[str]:
        (response,) = self.run({"command": "listClients", "verbose": False, "count": -1, "offset": 0})
        return response.get("data", {}).get("clients", [])

    def run(self, *commands: dict[str, Any], check: bool = True) -> list[dict[str, Any]]:
        """Send commands in one message and return their responses in order."""
        keys = [uuid.uuid4().hex for _ in commands]
        tagged = [{**command, "correlationData": key} for command, key in zip(commands, keys, strict=True)]
        with self._answered:
            self._waiting.update(keys)
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        with self._answered:
            done = self._answered.wait_for(lambda: all(key in self._responses for key in keys), self.timeout)
            responses = [self._responses.pop(key) for key in keys if key in self._responses]
            self._waiting.difference_update(keys)
        if not done:
            raise BrokerError(f"no answer from the broker's dynamic-security plugin within {self.timeout}s")
        for response in responses if check else []:
            if response.get("error"):
                raise BrokerError(f"{response.get('command')}: {response['error']}")
        return responses

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._failure = f"the MQTT broker refused the admin login: {reason_code}"
            client.disconnect()
            self._ready.set()
        else:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            self._failure = f"the admin may not read {RESPONSE_TOPIC}"
        self._ready.set()

    def _on_message(self, client, userdata, message) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._answered:
            for response in responses:
                key = response.get("correlationData")
                if key in self._waiting:
                    self._responses[key] = response
            self._answered.notify_all()
