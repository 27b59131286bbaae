"""Shared fixtures: users, devices with their keys, and API clients that act as them."""

import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from devices.broker import (
    DYNSEC_FILE_NAME,
    BrokerAccounts,
    BrokerError,
    find_dynsec_plugin,
    initial_dynsec_config,
    render_config,
    write_dynsec_config,
)
from devices.models import Device

# Figures that tests measured, in the terminal summary; loaded here so the xdist controller prints them too.
pytest_plugins = ["tests.figures"]


@dataclass
class KeyedDevice:
    """A device together with the clear-text key only its owner saw once."""

    device: Device
    key: str

    @property
    def pk(self) -> int:
        return self.device.pk

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.key)
        return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s a password by design; tests need many users, not that strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _last_seen_written_at_once(settings):
    """Requests write last-seen times before answering, so tests can read them right after.

    The buffered writer servers use (LAST_SEEN_FLUSH_SECONDS > 0) has its own tests in tests/devices/test_health.py.
    """
    settings.LAST_SEEN_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db):
    def make(username: str, *, password: str = "s3cret-pass-123", **extra) -> User:
        return User.objects.create_user(username, password=password, **extra)

    return make


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice")


@pytest.fixture
def bob(make_user) -> User:
    return make_user("bob")


@pytest.fixture
def staff(make_user) -> User:
    return make_user("operator", is_staff=True)


@pytest.fixture
def make_device(db):
    def make(owner: User, name: str = "sensor-1", **fields) -> KeyedDevice:
        device = Device(owner=owner, name=name, **fields)
        key = device.set_new_api_key()
        device.save()
        return KeyedDevice(device, key)

    return make


@pytest.fixture
def device(make_device, alice) -> KeyedDevice:
    return make_device(alice, "alice-sensor")


@pytest.fixture
def other_device(make_device, bob) -> KeyedDevice:
    return make_device(bob, "bob-sensor")


def token_client(user: User, keyword: str = "Token") -> APIClient:
    _, raw = ApiToken.issue(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


@pytest.fixture
def alice_client(alice) -> APIClient:
    return token_client(alice)


@pytest.fixture
def bob_client(bob) -> APIClient:
    return token_client(bob)


@pytest.fixture
def admin_client_api(staff) -> APIClient:
    """The v1 admin header ``Authorization: admin <token>`` with a staff user's token."""
    return token_client(staff, "admin")


@dataclass
class PrivateBroker:
    """A Mosquitto of the test's own, on a free port, with IoTFlow's config and seeded accounts."""

    host: str
    port: int
    admin_username: str
    admin_password: str
    platform_username: str
    platform_password: str
    data_dir: Path

    def accounts(self, timeout: float = 5.0) -> BrokerAccounts:
        """An admin connection; use it as a context manager."""
        return BrokerAccounts(self.host, self.port, self.admin_username, self.admin_password, timeout=timeout)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_until_listening(broker: PrivateBroker, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection((broker.host, broker.port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"mosquitto did not listen on {broker.port} within 5s:\n{log.read_text()}")


@pytest.fixture
def private_broker(tmp_path) -> Iterator[PrivateBroker]:
    """Start a private Mosquitto with the dynamic-security plugin; stop it after the test."""
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not binary:
        pytest.skip("mosquitto is not installed")
    try:
        plugin = find_dynsec_plugin()
    except BrokerError as exc:
        pytest.skip(str(exc))
    host = "127.0.0.1"
    broker = PrivateBroker(
        host=host,
        port=_free_port(host),
        admin_username="iotflow-admin",
        admin_password=secrets.token_urlsafe(12),
        platform_username="iotflow-platform",
        platform_password=secrets.token_urlsafe(12),
        data_dir=tmp_path / "broker",
    )
    broker.data_dir.mkdir()
    config = broker.data_dir / "mosquitto.conf"
    config.write_text(render_config(broker.port, broker.data_dir, bind_address=host, plugin_path=plugin))
    accounts = initial_dynsec_config(
        broker.admin_username, broker.admin_password, broker.platform_username, broker.platform_password
    )
    write_dynsec_config(broker.data_dir / DYNSEC_FILE_NAME, accounts)
    log = broker.data_dir / "mosquitto.log"
    with log.open("w") as output:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(broker, process, log)
        yield broker
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render without `collectstatic`: the manifest storage would fail on every `{% static %}`."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def shown_secrets():
    """The keys and tokens an admin response put in its messages (each inside ``<code>``)."""

    def found(response) -> list[str]:
        return [s for m in get_messages(response.wsgi_request) for s in re.findall(r"<code>([^<]+)</code>", str(m))]

    return found


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Passwords still get checked for real; a cheap hasher only keeps the suite quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def session_client(user: User, password: str = "s3cret-pass-123"):
    """A browser-like client logged in through the real session login."""
    from django.test import Client

    client = Client()
    assert client.login(username=user.username, password=password), f"login of {user.username} failed"
    return client


@dataclass
class PrivateRedis:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A Redis of the test's own on a free port (Celery's broker for worker/beat integration tests)."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/local/sbin")
    if not binary:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(_free_port("127.0.0.1"))
    process = subprocess.Popen(
        [binary, "--port", str(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", redis.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.02)
        yield redis
    finally:
        process.terminate()
        process.wait(5)
