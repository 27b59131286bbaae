"""The web process's gunicorn workers share connections that arrive together (iotflow/gunicorn_worker.py).

A real gunicorn with deploy/gunicorn.conf.py (2 workers × 2 threads) serves a WSGI app that holds
each request and answers with its process id; several keep-alive connections open at once.
"""

import http.client
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import _free_port
from tests.integration.processes import ROOT, stop_process, wait_for

GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture
def web(tmp_path):
    """(port, log) of gunicorn as the web process runs, 2 workers × 2 threads, with both workers up."""
    port = _free_port("127.0.0.1")
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"}
    for name in ("GUNICORN_WORKER_CLASS", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    log = tmp_path / "gunicorn.log"
    command = [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "tests.iotflow.pid_app:application"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(re.findall(r"Booting worker", log.read_text())) >= 2, 30, "two workers", log)
        wait_for(lambda: answers(port, 0), 30, "the first answer", log)
        yield port, log
    finally:
        stop_process(process)


def answers(port: int, hold: float) -> str | None:
    try:
        return request(http.client.HTTPConnection("127.0.0.1", port, timeout=10), hold)
    except OSError:
        return None


def request(connection: http.client.HTTPConnection, hold: float) -> str:
    connection.request("GET", f"/?hold={hold}")
    response = connection.getresponse()
    assert response.status == 200
    return response.read().decode()


def at_once(port: int, count: int, hold: float) -> list[str]:
    """Open ``count`` connections together and send one held request on each; the serving pid of each."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(count)]
    start = threading.Barrier(count)
    pids: list[str] = []

    def send(connection):
        start.wait()
        pids.append(request(connection, hold))

    threads = [threading.Thread(target=send, args=(connection,)) for connection in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for connection in connections:
        connection.close()
    return pids


def test_the_web_process_uses_the_balanced_worker(web):
    _, log = web
    assert "Using worker: iotflow.gunicorn_worker.BalancedThreadWorker" in log.read_text()


def test_connections_opened_together_are_shared_by_the_workers(web):
    port, _ = web
    pids = at_once(port, 4, hold=1.0)
    assert len(pids) == 4
    # Each worker takes connections only while it has a free thread: two each, never three on one.
    assert sorted(Counter(pids).values()) == [2, 2]


def test_a_connection_arriving_while_every_thread_is_busy_is_served_once_one_frees(web):
    port, _ = web
    pids = at_once(port, 6, hold=1.0)
    assert len(pids) == 6  # nothing refused or dropped: the last two waited in the kernel's queue
    assert set(Counter(pids).values()) <= {2, 3, 4}
    assert len(Counter(pids)) == 2


def test_kept_alive_connections_stay_served_when_their_worker_stops_accepting(web):
    port, _ = web
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    first = request(kept, 0)
    # Both threads of every worker busy for a moment; the kept-alive connection then asks again.
    busy = threading.Thread(target=at_once, args=(port, 4, 1.0))
    busy.start()
    assert request(kept, 0) == first  # the same worker, once it has a thread for it
    busy.join(60)
    assert request(kept, 0) == first
    kept.close()
