"""IoTFlow's web process as ``make run`` starts it (gunicorn with deploy/gunicorn.conf.py), its variants, and daphne.

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


# How each server is started. ``gunicorn`` is the web process of deploy/Procfile.template (deploy/gunicorn.conf.py,
# whose workers and threads follow WEB_CONCURRENCY and GUNICORN_THREADS); the others are the serving layouts
# bench/serving.py compares with it: ``gthread`` is gunicorn's own threaded worker, ``balanced`` the product's
# (iotflow/gunicorn_worker.py). ``daphne`` is the ws process.
LAYOUTS: dict[str, dict[str, str]] = {
    "gunicorn": {},
    "gunicorn-sync-2": {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "1"},
    "gunicorn-sync-4": {"WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "1"},
    "gunicorn-gthread-2x4": {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "GUNICORN_WORKER_CLASS": "gthread"},
    "gunicorn-gthread-2x8": {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "8", "GUNICORN_WORKER_CLASS": "gthread"},
    "gunicorn-gthread-4x4": {"WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "4", "GUNICORN_WORKER_CLASS": "gthread"},
    "gunicorn-balanced-2x4": {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"},
    "gunicorn-balanced-2x2": {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"},
    "gunicorn-balanced-3x2": {"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "2"},
    "gunicorn-balanced-4x2": {"WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "2"},
    "daphne": {},
}


def commands(port: int) -> dict[str, list[str]]:
    asgi = "iotflow.asgi:application"
    gunicorn = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "iotflow.wsgi"]
    return {
        **{kind: gunicorn for kind in LAYOUTS if kind.startswith("gunicorn")},
        "daphne": [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), asgi],
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
            **LAYOUTS[kind],
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
