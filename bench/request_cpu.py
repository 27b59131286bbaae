"""CPU per request of the hello view, single-reading ingest and latest values, in-process.

Django's WSGI handler is called as gunicorn calls it (same middleware, bench.settings), against
a fresh PostgreSQL database and a Redis of the run's own, with ``--devices`` devices posting in
turn after two warm-up posts each. CPU is the process's (background threads included) and the
calling thread's alone, per request: a profile of what the web process spends, free of the load
generator and of the machine's noise that throughput figures carry.

    .venv/bin/python bench/request_cpu.py [--requests 3000] [--devices 1000] [--threads]

``--threads`` adds each thread's CPU per request (from /proc/self/task): the request thread
and the process's background threads (live sender, last-seen buffer, key subscription).
"""

import argparse
import io
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_ingest import server_env  # noqa: E402
from bench.services import cpu_seconds, fresh_database, make_devices, private_redis  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="timed requests of each kind")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--threads", action="store_true", help="each thread's CPU per request too")
    args = parser.parse_args()
    with private_redis() as redis_url:
        env = server_env(fresh_database("iotflow_bench_request_cpu"), redis_url)
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "bench.settings"})  # the hello view beside the API
        import django

        django.setup()
        from iotflow.wsgi import application as app

        devices = make_devices("bench-cpu", args.devices)
        clock = [int(time.time() * 1000) - 86_400_000]

        def call(method: str, path: str, body: bytes = b"", key: str | None = None) -> str:
            environ = {
                "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": "application/json",
            }  # fmt: skip
            if key:
                environ["HTTP_X_API_KEY"] = key
            status: list[str] = []
            response = app(environ, lambda line, headers: status.append(line))
            b"".join(response)
            response.close()
            return status[0]

        def hello(n: int) -> None:
            call("GET", "/bench/hello")

        def ingest(n: int) -> None:
            _, key = devices[n % len(devices)]
            clock[0] += 1
            body = json.dumps({"data": {"temperature": 20 + n % 7}, "timestamp": clock[0]}).encode()
            status = call("POST", "/api/v1/telemetry", body, key)
            assert status.startswith("201"), status

        def latest(n: int) -> None:
            device_id, key = devices[n % len(devices)]
            status = call("GET", f"/api/v1/telemetry/{device_id}/latest", key=key)
            assert status.startswith("200"), status

        for n in range(2 * len(devices)):
            ingest(n)
            latest(n)
            hello(n)
        print(f"{'request':<10} {'process CPU ms':>15} {'thread CPU ms':>15} {'wall ms':>10}")
        for name, request in (("hello", hello), ("ingest", ingest), ("latest", latest)):
            by_thread = thread_cpu_seconds()
            cpu, thread, wall = time.process_time(), time.thread_time(), time.perf_counter()
            for n in range(args.requests):
                request(n)
            per = [(time.process_time() - cpu), (time.thread_time() - thread), (time.perf_counter() - wall)]
            print(f"{name:<10} {per[0] / args.requests * 1000:>15.3f} {per[1] / args.requests * 1000:>15.3f} "
                  f"{per[2] / args.requests * 1000:>10.3f}")  # fmt: skip
            if args.threads:
                for thread_name, seconds in thread_cpu_seconds().items():
                    used = (seconds - by_thread.get(thread_name, 0.0)) / args.requests * 1000
                    print(f"  {thread_name:<20} {used:>11.3f} ms")


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of each live thread of this process, by thread name."""
    found = {}
    for thread in threading.enumerate():
        try:
            found[thread.name] = cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")
        except OSError:
            continue  # ended meanwhile
    return found


if __name__ == "__main__":
    main()
