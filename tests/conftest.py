"""Shared fixtures: users, devices with their keys, and API clients that act as them."""

import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class PrivateBroker:
    """A Mosquitto of the test's own, on a free port, with IoTFlow's config and seeded accounts.

    ``configure`` writes the configuration and accounts into ``data_dir``; ``start`` and ``stop``
    may be called again, and the broker keeps its state (persistence, accounts) between them.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=lambda: _free_port("127.0.0.1"))
    admin_username: str = "iotflow-admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    platform_username: str = "iotflow-platform"
    platform_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def configure(self, extra_config: str = "") -> None:
        """IoTFlow's rendered configuration (plus ``extra_config``) and seeded accounts; skips without Mosquitto."""
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
        if not binary:
            pytest.skip("mosquitto is not installed")
        try:
            plugin = find_dynsec_plugin()
        except BrokerError as exc:
            pytest.skip(str(exc))
        self.binary = binary
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_text = render_config(self.port, self.data_dir, bind_address=self.host, plugin_path=plugin)
        (self.data_dir / "mosquitto.conf").write_text(self.config_text + extra_config)
        accounts = initial_dynsec_config(
            self.admin_username, self.admin_password, self.platform_username, self.platform_password
        )
        write_dynsec_config(self.data_dir / DYNSEC_FILE_NAME, accounts)

    def start(self, timeout: float = 10.0) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.data_dir / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"mosquitto did not listen on {self.port} within {timeout}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def accounts(self, timeout: float = 5.0) -> BrokerAccounts:
        """An admin connection; use it as a context manager."""
        return BrokerAccounts(self.host, self.port, self.admin_username, self.admin_password, timeout=timeout)

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""


@pytest.fixture
def private_broker(tmp_path) -> Iterator[PrivateBroker]:
    """Start a private Mosquitto with the dynamic-security plugin; stop it after the test."""
    broker = PrivateBroker(tmp_path / "broker")
    broker.configure()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(timeout=5)


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
