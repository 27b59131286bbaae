"""IoTFlow's web process as ``make run`` starts it (gunicorn with deploy/gunicorn.conf.py), and the ASGI servers.

Every server gets ``bench.settings`` (IoTFlow's settings plus the ``/bench/hello`` baseline view),
so a figure and its baseline are served by the same process, workers and middleware.
"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from bench.services import ROOT, free_port

BIN = Path(sys.executable).parent


def commands(port: int) -> dict[str, list[str]]:
    """How each server is started; ``gunicorn`` is the web process of deploy/Procfile.template."""
    asgi = "iotflow.asgi:application"
    return {
        "gunicorn": [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "iotflow.wsgi"],
        "daphne": [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), asgi],
        "uvicorn": [
            str(BIN / "uvicorn"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            asgi,
        ],  # fmt: skip
        "uvicorn-2": [
            str(BIN / "uvicorn"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            "2",
            asgi,
        ],  # fmt: skip
    }


def wait_answering(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a loopback URL of ours)
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def serve(kind: str, env: dict[str, str], log_path: Path):
    """Start server ``kind`` on a free port with ``env`` (plus bench.settings); yield its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as metrics_dir, log_path.open("w") as log:
        process_env = {
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "IOTFLOW_PORT": str(port),
            # As deploy/scripts/run.sh: gunicorn workers share Prometheus counters through files.
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        }
        process = subprocess.Popen(commands(port)[kind], cwd=ROOT, env=process_env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_answering(f"{base}/bench/hello")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
