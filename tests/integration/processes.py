"""Start IoTFlow's own processes (Celery worker, beat) against the test database and a private broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database this test runs on, for a child process to share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_env(broker, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "MQTT_URL": f"mqtt://{broker.host}:{broker.port}",
            "MQTT_USERNAME": broker.platform_username,
            "MQTT_PASSWORD": broker.platform_password,
            "MQTT_ADMIN_USERNAME": broker.admin_username,
            "MQTT_ADMIN_PASSWORD": broker.admin_password,
            "CELERY_BROKER_URL": extra.pop("CELERY_BROKER_URL", "memory://"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_worker(broker, node: str, log_path: Path, **env: str) -> subprocess.Popen:
    """A real ``celery -A iotflow worker`` (with its MQTT consumer); stop it with stop_process()."""
    command = [
        sys.executable, "-m", "celery", "-A", "iotflow", "worker", "--pool=solo", "-n", f"{node}@localhost",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip
    with log_path.open("a") as log:
        return subprocess.Popen(command, cwd=ROOT, env=child_env(broker, **env), stdout=log, stderr=subprocess.STDOUT)


def start_beat(broker, log_path: Path, schedule: Path, **env: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "iotflow", "beat", "-s", str(schedule), "-l", "info"]
    with log_path.open("a") as log:
        return subprocess.Popen(command, cwd=ROOT, env=child_env(broker, **env), stdout=log, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, timeout: float, what: str, log_path: Path | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")
