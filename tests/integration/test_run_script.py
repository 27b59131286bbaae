"""What ``make run`` starts (deploy/scripts/run.sh) comes up as a whole platform from a checkout.

The script runs in a copy of the project's tracked files (and its built static/vendor/), with its
own ports and its own Redis, so nothing it writes (var/, the SQLite database, the broker's files)
meets the suite's. It must answer on its health check, serve pages through the balanced gunicorn
worker, give the demo user the simulator's devices, and store what they send.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import _free_port
from tests.integration.processes import ROOT, wait_for

SIMULATED = 2


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The tracked files of the project, its built browser libraries and its virtualenv, in a fresh directory."""
    if not (ROOT / "static" / "vendor" / ".built").exists():
        pytest.fail("static/vendor/ is not built: run `make vendor`")
    target = tmp_path / "iotflow"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "static" / "vendor", target / "static" / "vendor")
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (a loopback URL of ours)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a loopback URL of ours)
            return response.status, response.read()
    except OSError:
        return 0, b""


def test_the_run_script_starts_the_whole_platform(checkout, tmp_path):
    port = _free_port("127.0.0.1")
    env = {
        # What a user's shell has, and nothing of the suite's (its database, its in-memory Celery broker).
        **{name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TERM") if name in os.environ},
        "IOTFLOW_PORT": str(port),
        "IOTFLOW_WS_PORT": str(_free_port("127.0.0.1")),
        "IOTFLOW_MQTT_PORT": str(_free_port("127.0.0.1")),
        "IOTFLOW_REDIS_PORT": str(_free_port("127.0.0.1")),  # nothing answers there: the script starts its own
        "IOTFLOW_SIMULATED_DEVICES": str(SIMULATED),
        "IOTFLOW_SIMULATOR_INTERVAL": "1",
    }
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["deploy/scripts/run.sh"], cwd=checkout, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/health")[0] == 200, 180, "the platform's health check", log)
        health = json.loads(get(f"{base}/health")[1])
        assert health["status"] == "healthy"
        text = log.read_text()
        assert "Using worker: iotflow.gunicorn_worker.BalancedThreadWorker" in text
        token = re.search(r"demo API token: (\S+)", text).group(1)

        def simulated_devices_reporting():
            status, body = get(f"{base}/api/v1/devices", token)
            devices = json.loads(body)["results"] if status == 200 else []
            reporting = [d for d in devices if d["is_online"]]
            return reporting if len(reporting) >= SIMULATED else None

        reporting = wait_for(simulated_devices_reporting, 90, "the simulated devices online", log)
        status, body = get(f"{base}/api/v1/telemetry/{reporting[0]['id']}/latest", token)
        assert status == 200, body[:300]
        assert json.loads(body)["data"], "a simulated device online with no values stored"
        assert get(f"{base}/accounts/login/")[0] == 200  # pages, with their static files collected
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # honcho stops every process it started
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
