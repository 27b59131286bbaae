"""Serving layouts side by side: the same hello view and single-reading POST under each, the same wrk load.

Layouts (bench/web.py): gunicorn with deploy/gunicorn.conf.py as sync workers (2 and 4) and as
gunicorn's threaded workers (gthread: 2×4, 2×8, 4×4), IoTFlow's balanced threaded worker (2×4, the
product's layout), and daphne, the ws process (one process, ASGI; Django's
sync views run in its thread pool). Each layout serves ``/bench/hello`` (a bare JSON view) and
``POST /api/v1/telemetry`` (one reading, the next of 200 devices) to wrk with 8 connections.
The layouts are visited twice, forwards then backwards, and each figure is the mean of its two
visits, so a layout is not favoured by when the shared machine was quiet.

    .venv/bin/python bench/serving.py [--seconds 3] [--layouts gunicorn-sync-2,gunicorn-gthread-2x4,...]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk  # noqa: E402
from bench.http_ingest import Runner, server_env  # noqa: E402
from bench.services import fresh_database, make_devices, postgres_available, private_redis, setup_django  # noqa: E402
from bench.web import LAYOUTS, serve  # noqa: E402

DEFAULT_LAYOUTS = [kind for kind in LAYOUTS if kind != "gunicorn"]


def measure(kind: str, env: dict, devices_file: str, seconds: float, connections: int, next_ts: int) -> tuple:
    """(hello result, ingest result, the next unused timestamp) of one layout."""
    with serve(kind, env, ROOT / "var" / f"bench-serving-{kind}.log") as base_url:
        runner = Runner(base_url, devices_file, seconds, connections)
        runner.next_base_ts = next_ts
        runner.run("hello.lua", seconds=1)
        runner.run("telemetry_post.lua", seconds=1)  # imports, connections, keys cached
        hello = runner.run("hello.lua")[0]
        ingest = runner.run("telemetry_post.lua")[0]
        return hello, ingest, runner.next_base_ts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS))
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("bench/serving.py needs PostgreSQL on 127.0.0.1:5432")
    wrk.binary()
    layouts = args.layouts.split(",")
    results: dict[str, list[tuple]] = {kind: [] for kind in layouts}
    db_url = fresh_database("iotflow_bench_serving")
    with private_redis() as redis_url, tempfile.NamedTemporaryFile("w", suffix=".txt") as devices_file:
        env = server_env(db_url, redis_url)
        setup_django(env)
        devices_file.write("".join(f"{pk} {key}\n" for pk, key in make_devices("bench-http", 200)))
        devices_file.flush()
        next_ts = int(time.time() * 1000) - 3 * 86_400_000
        for kind in [*layouts, *reversed(layouts)]:
            hello, ingest, next_ts = measure(kind, env, devices_file.name, args.seconds, args.connections, next_ts)
            results[kind].append((hello, ingest))
    print(f"wrk: {args.connections} connections, {args.seconds:g} s a run; each layout measured twice")
    print(f"{'layout':<24}{'hello req/s':>12}{'p99 ms':>8}{'POST req/s':>12}{'p99 ms':>8}{'POST/hello':>12}")
    for kind, runs in results.items():
        hello = statistics.mean(h.per_second for h, _ in runs)
        ingest = statistics.mean(i.per_second for _, i in runs)
        hello_p99 = statistics.mean(h.p99_ms for h, _ in runs)
        ingest_p99 = statistics.mean(i.p99_ms for _, i in runs)
        print(f"{kind:<24}{hello:>12,.0f}{hello_p99:>8.1f}{ingest:>12,.0f}{ingest_p99:>8.1f}{ingest / hello:>12.2f}")
        name = kind.replace("gunicorn-", "").replace("-", "_")
        print(f"serving_{name}_hello_per_s: {hello:.0f}")
        print(f"serving_{name}_ingest_per_s: {ingest:.0f}")


if __name__ == "__main__":
    main()
