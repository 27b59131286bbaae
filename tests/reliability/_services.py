"""Services a fault test can break and mend: a cuttable TCP proxy, a restartable Redis, a real web server."""

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.integration.processes import ROOT, child_env, wait_for


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


class TcpProxy:
    """Forwards a local port to a target; ``cut()`` acts like the target going down, ``restore()`` like its return.

    Cutting closes every open connection and the listening socket, so clients see what a stopped
    server gives them (reset connections, refused connects) without stopping the shared server.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._listener.start()

    def cut(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(2)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    restore = start

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.target, timeout=2)
                except OSError:
                    _close(client)
                    continue
                client.settimeout(None)
                upstream.settimeout(None)
                with self._lock:
                    self._sockets |= {client, upstream}
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)
            with self._lock:
                self._sockets -= {source, sink}


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class RedisServer:
    """A private redis-server that can be stopped and started again on the same port (its data is lost, as
    after a restart without persistence)."""

    def __init__(self, directory: Path):
        self.binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/local/sbin")
        if not self.binary:
            pytest.skip("redis-server is not installed")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(self.directory)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 5, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        wait_for(lambda: not port_open(self.port), 5, "redis-server to close its port")


def start_web(broker, log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """The production web process (gunicorn with deploy/gunicorn.conf.py) on a free port; returns it and its URL."""
    port = free_port()
    settings = {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "RATE_LIMIT_TELEMETRY": "100000/1m"}
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "iotflow.wsgi"]
    with log_path.open("a") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(broker, **settings, **env), stdout=log, stderr=subprocess.STDOUT
        )
    wait_for(lambda: process.poll() is not None or port_open(port), 20, "gunicorn to listen", log_path)
    if process.poll() is not None:
        raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
    return process, f"http://127.0.0.1:{port}"


def with_port(database_url: str, port: int) -> str:
    """The same database URL, reached through another port (a proxy's)."""
    url = urlparse(database_url)
    return url._replace(netloc=f"{url.netloc.rsplit(':', 1)[0]}:{port}").geturl()


class LiveListener:
    """Listens to Channels groups on Redis the way the WebSocket process does, recording what arrives and when."""

    def __init__(self, redis_url: str, groups: list[str], prefix: str = "iotflow"):
        self.redis_url, self.groups, self.prefix = redis_url, groups, prefix
        self.messages: list[tuple[float, dict]] = []
        self.errors = 0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)
        self._thread.start()
        if not self.ready.wait(10):
            raise AssertionError("the live listener could not join its groups")

    async def _listen(self) -> None:
        from channels_redis.pubsub import RedisPubSubChannelLayer

        layer = RedisPubSubChannelLayer(hosts=[self.redis_url], prefix=self.prefix)
        channel = await layer.new_channel()
        for group in self.groups:
            await layer.group_add(group, channel)
        self.ready.set()
        while not self._stop.is_set():
            try:
                envelope = await asyncio.wait_for(layer.receive(channel), 0.5)
            except TimeoutError:
                continue
            except Exception:  # Redis is away: keep listening, as the WebSocket process does
                self.errors += 1
                await asyncio.sleep(0.5)
                continue
            self.messages.append((time.monotonic(), envelope["message"]))
        with contextlib.suppress(Exception):
            await layer.flush()

    def since(self, moment: float, kind: str) -> list[tuple[float, dict]]:
        return [(at, message) for at, message in self.messages if at >= moment and message.get("type") == kind]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def start_prefork_worker(broker, node: str, log_path: Path, concurrency: int = 2, **env: str) -> subprocess.Popen:
    """A worker with the production pool (prefork), whose task processes can be killed one by one.

    Returns once this process is ready and its MQTT consumer subscribed: the log may already hold
    those lines from an earlier worker under the same node name, so new ones are counted.
    """
    command = [
        sys.executable, "-m", "celery", "-A", "iotflow", "worker", "--pool=prefork", f"--concurrency={concurrency}",
        "-n", f"{node}@localhost", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip
    signs = [f"{node}@localhost ready.", "MQTT consumer subscribed as"]
    seen = _count_lines(log_path, signs)
    with log_path.open("a") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(broker, **env), stdout=log, stderr=subprocess.STDOUT
        )

    def started() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker {node} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        return all(now > before for now, before in zip(_count_lines(log_path, signs), seen, strict=True))

    wait_for(started, 180, f"worker {node} and its MQTT consumer", log_path)
    return process


def _count_lines(log_path: Path, texts: list[str]) -> list[int]:
    log = log_path.read_text() if log_path.exists() else ""
    return [log.count(text) for text in texts]


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
