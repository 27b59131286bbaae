"""Live path: telemetry stored over HTTP to the owner's browser socket, as ``make run`` serves it.

The web process is gunicorn (deploy/gunicorn.conf.py), the ws process daphne, both on a fresh
PostgreSQL database and a Redis of the run's own that carries the channel layer (the layer of
iotflow/settings.py; ``--layer list`` swaps in channels_redis' list-based ``RedisChannelLayer``
for comparison). Sockets are asyncio clients (autobahn, which daphne already depends on) holding
the owner's session cookie, got by logging in through the login page, and an Origin of the site.

- ``ws_latency_p50_ms`` / ``ws_latency_p95_ms``: from just before ``POST /api/v1/telemetry``
  (the device's key) until one socket subscribed to the device holds the message carrying that
  reading; ``--samples`` readings at ``--rate`` per second. ``ws_http_p50_ms`` is the POST's own
  round trip, the part of the latency the web process spends before the message leaves it.
- ``ws_clients``: sockets all subscribed to one device while it sends one reading a second;
  the count is raised step by step (``--steps``) and each step measures the delivery latency to
  every socket for ``--seconds`` readings. The figure is the largest step whose p95 stayed under
  ``--limit-ms`` with every message delivered.

    .venv/bin/python bench/ws.py [--only latency,clients] [--daphnes 1] [--layer pubsub|list]
"""

import argparse
import asyncio
import functools
import http.client
import http.cookiejar
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol  # noqa: E402

from bench.services import cpu_seconds, fresh_database, postgres_available, private_redis  # noqa: E402
from bench.services import p95 as quantile_p95  # noqa: E402
from bench.web import serve  # noqa: E402

# These figures have been reported with the inclusive quantile method from the start.
p95 = functools.partial(quantile_p95, method="inclusive")

PASSWORD = "bench-pass-123"
LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "list": "channels_redis.core.RedisChannelLayer",
}
CONNECT_CONCURRENCY = 50


def raise_fd_limit() -> int:
    """Open files up to the hard limit, here and in the servers started from here (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_env(db_url: str, redis_url: str, layer: str) -> dict[str, str]:
    """What deploy/scripts/run.sh gives web and ws processes, with rate limits off and no broker to manage."""
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "CHANNEL_LAYER_BACKEND": LAYERS[layer],
        "RATE_LIMITS_ENABLED": "0",
        "MQTT_MANAGE_ACCOUNTS": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


SEED = f"""
import json
from accounts.models import User
from devices.models import Device
owner = User.objects.create_user("bench-ws", password="{PASSWORD}")
device = Device(owner=owner, name="live")
key = device.set_new_api_key()
device.save()
print(json.dumps([device.pk, key]))
"""


def seed(env: dict[str, str]) -> tuple[int, str]:
    """The owner and one device; returns (device id, clear-text key).

    In a child process: Django's apps import daphne, which ties txaio to Twisted, and the
    sockets here are autobahn's asyncio flavour; one process cannot hold both.
    """
    child_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "iotflow.settings"}
    # Pages need the hashed static files, as deploy/scripts/run.sh collects them (STATIC_ROOT of the run's own).
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], cwd=ROOT, env=child_env,
                   check=True)  # fmt: skip
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, env=child_env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    device, key = json.loads(done.stdout.strip().splitlines()[-1])
    return device, key


def log_in(base_url: str) -> str:
    """The session id the login page sets for the owner (the form, its CSRF token and all)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/accounts/login/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": "bench-ws", "password": PASSWORD, "csrfmiddlewaretoken": token})
    with opener.open(f"{base_url}/accounts/login/", data=form.encode(), timeout=10) as response:
        response.read()
    sessions = [cookie.value for cookie in jar if cookie.name == "sessionid"]
    if not sessions:
        raise RuntimeError("logging in through the login page set no session cookie")
    return sessions[0]


class Ingest:
    """``POST /api/v1/telemetry`` with the device's key; a fresh connection each, as gunicorn's sync workers close."""

    def __init__(self, base_url: str, key: str):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.key = key

    def post(self, seq: int) -> float:
        """Store reading ``seq``; returns the round trip in ms."""
        started = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            body = json.dumps({"data": {"seq": seq}})
            headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
            connection.request("POST", "/api/v1/telemetry", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"POST /api/v1/telemetry answered {response.status}")
        finally:
            connection.close()
        return (time.perf_counter() - started) * 1000


@dataclass
class Clock:
    """When each reading was sent, and the latencies of its arrivals."""

    sent: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def arrival(self, seq: int, at: float) -> None:
        if seq in self.sent:
            self.latencies.append((at - self.sent[seq]) * 1000)

    def reset(self) -> None:
        self.sent.clear()
        self.latencies.clear()


class Socket(WebSocketClientProtocol):
    """A page's live socket: opens, subscribes to the device, and notes when each reading arrives."""

    arrived_at = 0.0

    def data_received(self, data: bytes) -> None:
        # Arrival is when the bytes are read, before autobahn parses the frame.
        self.arrived_at = time.perf_counter()
        super().data_received(data)

    def onOpen(self) -> None:  # noqa: N802 (autobahn's names)
        self.factory.opened.set_result(self)

    def onMessage(self, payload: bytes, is_binary: bool) -> None:  # noqa: N802
        at = self.arrived_at
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "telemetry":
            self.factory.clock.arrival(message["data"]["seq"], at)
        elif kind == "subscribed" and not self.factory.subscribed.done():
            self.factory.subscribed.set_result(message["devices"])

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        for waiter in (self.factory.opened, self.factory.subscribed):
            if not waiter.done():
                waiter.set_exception(RuntimeError(f"socket closed: {code} {reason}"))
        self.factory.closed = True


async def open_socket(ws_port: int, origin: str, session: str, device_id: int, clock: Clock):
    """One subscribed socket, or an exception saying why not."""
    loop = asyncio.get_running_loop()
    factory = WebSocketClientFactory(
        f"ws://127.0.0.1:{ws_port}/ws/notifications/", origin=origin, headers={"Cookie": f"sessionid={session}"}
    )
    # Like a browser: no client-side pings, and no UTF-8 validation cost charged to the server's figure.
    factory.setProtocolOptions(autoPingInterval=0, utf8validateIncoming=False, openHandshakeTimeout=30)
    factory.protocol = Socket
    factory.clock, factory.closed = clock, False
    factory.opened, factory.subscribed = loop.create_future(), loop.create_future()
    await loop.create_connection(factory, "127.0.0.1", ws_port)
    socket = await asyncio.wait_for(factory.opened, 30)
    socket.sendMessage(json.dumps({"type": "subscribe", "devices": [device_id]}).encode())
    if await asyncio.wait_for(factory.subscribed, 30) != [device_id]:
        raise RuntimeError("subscription refused")
    return socket


async def open_sockets(count: int, ws_ports: list[int], origin: str, session: str, device_id: int, clock: Clock):
    """``count`` sockets spread over the ws processes, at most CONNECT_CONCURRENCY opening at once."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int):
        async with gate:
            return await open_socket(ws_ports[index % len(ws_ports)], origin, session, device_id, clock)

    return await asyncio.gather(*(one(i) for i in range(count)))


def process_cpu_seconds(port: int) -> float:
    """User + system CPU seconds of the daphne listening on ``port`` (found by its command line)."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if any(b"daphne" in part for part in command) and str(port).encode() in command:
                return cpu_seconds(proc / "stat")
        except (OSError, ValueError):
            continue
    raise RuntimeError(f"no daphne process on port {port}")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def send_readings(ingest: Ingest, clock: Clock, first: int, count: int, rate: float) -> list[float]:
    """``count`` readings at ``rate`` a second, each POST in a thread so a slow one delays no other."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    posts = []
    for i in range(count):
        seq = first + i
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        clock.sent[seq] = time.perf_counter()
        posts.append(loop.run_in_executor(None, ingest.post, seq))
    return await asyncio.gather(*posts)


async def settle(clock: Clock, expected: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while len(clock.latencies) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


async def measure_latency(args, ingest: Ingest, ws_ports: list[int], origin: str, session: str, device: int) -> dict:
    clock = Clock()
    socket = await open_socket(ws_ports[0], origin, session, device, clock)
    http_ms = await send_readings(ingest, clock, 0, args.samples, args.rate)
    await settle(clock, args.samples, 5)
    socket.transport.close()
    if len(clock.latencies) < args.samples:
        raise RuntimeError(f"latency: {len(clock.latencies)} of {args.samples} readings reached the socket")
    return {"latencies": clock.latencies, "http": http_ms}


async def measure_clients(args, ingest: Ingest, ws_ports: list[int], origin: str, session: str, device: int) -> dict:
    clock = Clock()
    sockets: list = []
    steps = []
    seq = 1_000_000
    for count in (int(step) for step in args.steps.split(",")):
        started = time.perf_counter()
        try:
            sockets += await open_sockets(count - len(sockets), ws_ports, origin, session, device, clock)
        except Exception as exc:
            steps.append({"clients": count, "error": f"opening sockets: {exc!r}"})
            break
        opened_s = time.perf_counter() - started
        await asyncio.sleep(1)
        clock.reset()
        cpu_before, own_before = sum(process_cpu_seconds(port) for port in ws_ports), own_cpu_seconds()
        await send_readings(ingest, clock, seq, args.seconds, 1.0)
        await settle(clock, count * args.seconds, args.limit_ms / 1000 + 2)
        ws_cpu = sum(process_cpu_seconds(port) for port in ws_ports) - cpu_before
        own_cpu = own_cpu_seconds() - own_before
        seq += args.seconds
        expected = count * args.seconds
        delivered = len(clock.latencies)
        lost = expected - delivered
        # A message that never came counts as slower than any that did.
        samples = clock.latencies + [float("inf")] * lost
        step = {
            "clients": count,
            "p50": statistics.median(samples),
            "p95": p95(samples),
            "lost": lost,
            "open_s": opened_s,
            "closed": sum(s.factory.closed for s in sockets),
            "ws_cpu_us": ws_cpu / max(delivered, 1) * 1e6,
            "own_cpu_us": own_cpu / max(delivered, 1) * 1e6,
        }
        steps.append(step)
        if step["p95"] >= args.limit_ms or lost:
            break
    for socket in sockets:
        socket.transport.close()
    await asyncio.sleep(0.5)
    return {"steps": steps}


async def run(args, base_url: str, ws_ports: list[int], key: str, device: int) -> dict:
    session = log_in(base_url)
    origin = base_url  # pages come from the web process; its host is one of ALLOWED_HOSTS
    ingest = Ingest(base_url, key)
    # Warm-up: the first request of each web worker imports, connects and starts its live sender.
    await send_readings(ingest, Clock(), -40, 40, args.rate)
    only = args.only.split(",")
    results = {}
    if "latency" in only:
        results["latency"] = await measure_latency(args, ingest, ws_ports, origin, session, device)
    if "clients" in only:
        results["clients"] = await measure_clients(args, ingest, ws_ports, origin, session, device)
    return results


def spread(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):7.1f} ms   p95 {p95(samples):7.1f} ms"


def report(args, results: dict, fd_limit: int) -> None:
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"web: gunicorn -c deploy/gunicorn.conf.py ({os.environ.get('WEB_CONCURRENCY', '2')} workers); "
          f"ws: {args.daphnes} daphne process(es); layer: {LAYERS[args.layer]}; open files: {fd_limit}")  # fmt: skip
    if "latency" in results:
        latencies, http_ms = results["latency"]["latencies"], results["latency"]["http"]
        title = f"ingest → socket, {len(latencies)} readings at {args.rate:g}/s"
        print(f"{title:<48}{spread(latencies)}   max {max(latencies):.1f} ms")
        print(f"{'  of which the POST round trip':<48}{spread(http_ms)}")
        print(f"ws_latency_p50_ms: {statistics.median(latencies):.1f}")
        print(f"ws_latency_p95_ms: {p95(latencies):.1f}")
        print(f"ws_http_p50_ms: {statistics.median(http_ms):.1f}")
    if "clients" in results:
        best = 0
        for step in results["clients"]["steps"]:
            if "error" in step:
                print(f"{step['clients']:>6} sockets   {step['error']}")
                continue
            print(
                f"{step['clients']:>6} sockets (opened in {step['open_s']:4.1f} s)   delivery "
                f"p50 {step['p50']:7.1f} ms   p95 {step['p95']:7.1f} ms   lost {step['lost']}   closed {step['closed']}"
                f"   CPU a delivery: daphne {step['ws_cpu_us']:.0f} µs, client {step['own_cpu_us']:.0f} µs"
            )
            if step["p95"] < args.limit_ms and not step["lost"]:
                best = step["clients"]
        print(f"ws_clients: {best}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="latency,clients")
    parser.add_argument("--samples", type=int, default=300, help="readings timed for the latency figure")
    parser.add_argument("--rate", type=float, default=20, help="readings a second for the latency figure")
    parser.add_argument("--steps", default="250,500,1000,1500,2000", help="socket counts of the clients figure")
    parser.add_argument("--seconds", type=int, default=10, help="readings (one a second) per step")
    parser.add_argument("--limit-ms", type=float, default=250, help="p95 delivery latency a step must stay under")
    parser.add_argument("--daphnes", type=int, default=1, help="ws processes; sockets are spread over them")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="pubsub")
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("bench/ws.py needs PostgreSQL on 127.0.0.1:5432")
    fd_limit = raise_fd_limit()
    db_url = fresh_database("iotflow_bench_ws")
    with private_redis() as redis_url, ExitStack() as servers, tempfile.TemporaryDirectory() as static_root:
        env = {**server_env(db_url, redis_url, args.layer), "STATIC_ROOT": static_root}
        device, key = seed(env)
        base_url = servers.enter_context(serve("gunicorn", env, ROOT / "var" / "bench-ws-web.log"))
        ws_ports = [
            urllib.parse.urlsplit(servers.enter_context(serve("daphne", env, ROOT / "var" / f"bench-ws-{i}.log"))).port
            for i in range(args.daphnes)
        ]
        results = asyncio.run(run(args, base_url, ws_ports, key, device))
    report(args, results, fd_limit)


if __name__ == "__main__":
    main()
