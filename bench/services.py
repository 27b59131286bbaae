"""Private services for benchmarks: a Mosquitto with IoTFlow's config on a free port, a fresh database."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def setup_django(env: dict[str, str]) -> None:
    """Set up Django in this process against the run's services (``env`` as the servers get it)."""
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "iotflow.settings"})
    import django

    django.setup()


def make_devices(owner_name: str, count: int) -> list[tuple[int, str]]:
    """``count`` devices of one new owner; returns (id, clear-text key) pairs."""
    from accounts.models import User
    from devices.models import Device

    owner = User.objects.create_user(owner_name)
    devices, keys = [], []
    for index in range(count):
        device = Device(owner=owner, name=f"bench-{index}")
        keys.append(device.set_new_api_key())
        devices.append(device)
    Device.objects.bulk_create(devices)
    return [(device.pk, key) for device, key in zip(devices, keys, strict=True)]


def postgres_available() -> bool:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2").close()
        return True
    except Exception:
        return False


def fresh_database(name: str) -> str:
    """An empty, migrated database for the run: PostgreSQL when one answers, else SQLite."""
    if postgres_available():
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        path = ROOT / "var" / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
        check=True,
    )  # fmt: skip
    return url


@contextmanager
def private_broker(admin_password: str, platform_password: str, port: int):
    """IoTFlow's broker configuration on ``port`` (Django must be set up); yields the port."""
    from devices.broker import DYNSEC_FILE_NAME, initial_dynsec_config, render_config, write_dynsec_config

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        user = "root" if os.geteuid() == 0 else ""
        (data / "mosquitto.conf").write_text(render_config(port, data, bind_address="127.0.0.1", user=user))
        write_dynsec_config(
            data / DYNSEC_FILE_NAME,
            initial_dynsec_config("iotflow-admin", admin_password, "iotflow-platform", platform_password),
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        process = subprocess.Popen([binary, "-c", str(data / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_listening(port)
            yield port
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def private_redis():
    """A redis-server of the run's own on a free port (nothing saved); yields its URL."""
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory() as tmp:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)
