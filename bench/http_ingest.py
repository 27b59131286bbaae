"""HTTP ingest and reads through IoTFlow's web process, each against a baseline measured right beside it.

The web process is started as ``make run`` starts it (gunicorn -c deploy/gunicorn.conf.py
iotflow.wsgi, same workers) on a fresh PostgreSQL database and a Redis of the run's own,
with rate limits off. The load generator is wrk (bench/wrk.py); every figure alternates with
its baseline so both see the same machine at the same moment:

- ``http_ingest_vs_hello``: single-reading ``POST /api/v1/telemetry`` requests/s (each from
  the next of many devices, with its key; no timestamp repeats, and the stored count is
  checked) ÷ requests/s of a bare Django view returning a small JSON (``/bench/hello``).
- ``http_batch_points_per_s`` and ``http_batch_vs_copy``: points/s stored through 1,000-point
  batch requests ÷ points/s of raw psycopg ``COPY`` + ``INSERT … ON CONFLICT`` of the same rows
  (read back from the points table) into an equivalent table of the same database.
- ``latest_p99_ms``: p99 of ``GET /api/v1/telemetry/{id}/latest`` under concurrent load,
  cycling through every device's key.

Beside the single-reading ratio it prints the machine's CPU per request of each kind (the web
workers', PostgreSQL's, Redis's and wrk's, from /proc), since at saturation the ratio is the
inverse ratio of these totals: ``http_ingest_cpu_ms`` and ``http_hello_cpu_ms``.

    .venv/bin/python bench/http_ingest.py [--seconds 5] [--rounds 3] [--devices 1000]
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk  # noqa: E402
from bench.services import (  # noqa: E402
    cpu_seconds,
    fresh_database,
    make_devices,
    postgres_available,
    private_redis,
    settle,
    setup_django,
)
from bench.web import serve  # noqa: E402

DAY_MS = 86_400_000
RUN_SPAN_MS = 10**6  # each writing wrk run's timestamps stay inside its own span, so no point repeats another's
COLUMNS = "device_id, measurement, ts, value_type, value_float, value_text"
COPY_TABLE = "bench_copy_points"


def server_env(db_url: str, redis_url: str) -> dict[str, str]:
    """What deploy/scripts/run.sh gives the web process, with rate limits off and no broker to manage."""
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "RATE_LIMITS_ENABLED": "0",
        "MQTT_MANAGE_ACCOUNTS": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


def stored_points() -> int:
    from django.db import close_old_connections

    from telemetry.backends import get_backend

    close_old_connections()
    return get_backend().count()


ROLES = {"gunicorn": "web", "postgres": "PostgreSQL", "redis-server": "Redis"}


def cpu_by_role() -> dict[str, float]:
    """CPU seconds so far of the processes of each role on the machine (web workers, PostgreSQL, Redis)."""
    found: dict[str, float] = defaultdict(float)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            program = " ".join(part.decode(errors="replace") for part in command[:2])
            role = next((role for marker, role in ROLES.items() if marker in program), None)
            if role:
                found[role] += cpu_seconds(f"/proc/{pid}/stat")
        except OSError:
            continue  # ended meanwhile
    return found


class Runner:
    """wrk against one server, every run with its own span of timestamps."""

    def __init__(self, base_url: str, devices_file: str, seconds: float, connections: int):
        self.base_url = base_url
        self.devices_file = devices_file
        self.seconds = seconds
        self.connections = connections
        self.next_base_ts = int(time.time() * 1000) - 3 * DAY_MS
        self.offset = 0
        # script -> role -> CPU seconds, and "requests": what the machine spent on each script's runs
        self.cpu: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def cpu_per_request_ms(self, script: str) -> dict[str, float]:
        spent = self.cpu[script]
        return {role: seconds / spent["requests"] * 1000 for role, seconds in spent.items() if role != "requests"}

    def run(self, script: str, *, seconds: float | None = None, connections: int | None = None, **env):
        base_ts = self.next_base_ts
        if script != "hello.lua" and not script.endswith("_get.lua"):
            self.next_base_ts += RUN_SPAN_MS  # reads leave the timeline alone: it must not run into the future
        before, wrk_before = cpu_by_role(), resource.getrusage(resource.RUSAGE_CHILDREN)
        result = wrk.run(
            self.base_url,
            script,
            seconds=seconds or self.seconds,
            connections=connections or self.connections,
            env={
                "BENCH_DEVICES": self.devices_file,
                "BENCH_BASE_TS": str(base_ts),
                "BENCH_OFFSET": str(self.offset),
                **env,
            },
        )
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = self.cpu[script]
        for role, seconds in cpu_by_role().items():
            spent[role] += seconds - before.get(role, 0.0)
        spent["wrk"] += wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime
        spent["requests"] += result.requests
        self.offset += result.requests
        if result.errors:
            raise RuntimeError(f"{script}: {result.errors} failed requests of {result.requests}")
        return result, base_ts


def warm_up(runner: "Runner", devices: int) -> None:
    """Every device posts twice first, as in a running fleet: keys cached, devices online, caches filled."""
    sent = 0
    while sent < 2 * devices:
        sent += runner.run("telemetry_post.lua", seconds=2)[0].requests


def beside_hello(runner: Runner, rounds: int, measure) -> list[tuple[float, float]]:
    """``rounds`` pairs (figure, baseline) in the order hello, figure, hello, figure, ..., hello.

    Each figure is paired with the mean of the hello runs just before and after it.
    """
    hellos = [runner.run("hello.lua")[0].per_second]
    pairs = []
    for _ in range(rounds):
        figure = measure()
        hellos.append(runner.run("hello.lua")[0].per_second)
        pairs.append((figure, (hellos[-2] + hellos[-1]) / 2))
    return pairs


def measure_single(runner: Runner, rounds: int) -> dict:
    time.sleep(0.5)  # the warm-up's last requests
    before = stored_points()
    sent = []

    def one() -> float:
        result, _ = runner.run("telemetry_post.lua")
        sent.append(result.requests)
        return result.per_second

    runner.cpu.clear()  # from here on: the measured runs only
    pairs = beside_hello(runner, rounds, one)
    cpu = {"POST": runner.cpu_per_request_ms("telemetry_post.lua"), "hello": runner.cpu_per_request_ms("hello.lua")}
    time.sleep(0.5)  # requests still in flight when wrk stopped
    stored = stored_points() - before
    # wrk counts answered requests; up to one per connection may be cut off at the end of a run, yet stored.
    if not sum(sent) <= stored <= sum(sent) + runner.connections * rounds:
        raise RuntimeError(f"single readings: {sum(sent)} answered 201 but {stored} points stored")
    return {"pairs": pairs, "answered": sum(sent), "stored": stored, "cpu": cpu}


def copy_rows(db_url: str, rows: list[tuple], batch: int, connections: int) -> float:
    """Points/s of COPY + INSERT … ON CONFLICT of ``rows`` in ``batch``-row transactions over ``connections``."""
    import psycopg

    chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    staging = (
        "CREATE TEMP TABLE IF NOT EXISTS bench_staging (device_id bigint, measurement varchar(128), ts bigint, "
        "value_type smallint, value_float double precision, value_text text) ON COMMIT DELETE ROWS"
    )
    merge = (
        f"INSERT INTO {COPY_TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM bench_staging "
        "ON CONFLICT (device_id, measurement, ts) DO NOTHING"
    )
    conninfo = db_url.replace("postgres://", "postgresql://")
    links = [psycopg.connect(conninfo) for _ in range(connections)]
    for link in links:
        link.execute(staging)
        link.commit()

    def work(link, mine: list[list[tuple]]) -> None:
        for chunk in mine:
            with link.transaction(), link.cursor() as cursor:
                with cursor.copy(f"COPY bench_staging ({COLUMNS}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
                cursor.execute(merge)

    threads = [
        threading.Thread(target=work, args=(link, chunks[i :: len(links)])) for i, link in enumerate(links)
    ]  # fmt: skip
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for link in links:
        link.close()
    return len(rows) / elapsed


def rows_between(start: int, end: int) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS} FROM telemetry_telemetrypoint WHERE ts >= %s AND ts < %s ORDER BY ts, measurement",
            [start, end],
        )
        return cursor.fetchall()


def measure_batch(runner: Runner, db_url: str, rounds: int, records: int, fields: int, workers: int) -> dict:
    """HTTP batch rounds, each followed by COPY of the very rows it stored into the equivalent table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        cursor.execute(f"CREATE TABLE {COPY_TABLE} (LIKE telemetry_telemetrypoint INCLUDING ALL)")
    points_per_request = records * fields
    pairs, answered, stored = [], 0, 0
    for _ in range(rounds):
        result, base_ts = runner.run("batch_post.lua", BENCH_RECORDS=str(records), BENCH_FIELDS=str(fields))
        time.sleep(0.5)
        rows = rows_between(base_ts, base_ts + RUN_SPAN_MS)
        answered += result.requests * points_per_request
        stored += len(rows)
        http = result.per_second * points_per_request
        pairs.append((http, copy_rows(db_url, rows, points_per_request, workers)))
    if not answered <= stored <= answered + runner.connections * rounds * points_per_request:
        raise RuntimeError(f"batches: {answered} points answered 201 but {stored} stored")
    return {"pairs": pairs, "answered": answered, "stored": stored}


def measure_latest(runner: Runner, rounds: int, connections: int) -> dict:
    runner.run("latest_get.lua", seconds=2, connections=connections)  # every thread's connection open, plans cached
    latest = [runner.run("latest_get.lua", connections=connections)[0] for _ in range(rounds)]
    hello = runner.run("hello.lua", connections=connections)[0]
    return {"latest": latest, "hello": hello}


def ratio_of(pairs: list[tuple[float, float]]) -> float:
    return statistics.median(figure / baseline for figure, baseline in pairs)


def report_single(single: dict) -> None:
    for figure, hello in single["pairs"]:
        print(f"{'POST /telemetry, 1 reading (req/s)':<44}{figure:>12,.0f}   hello {hello:,.0f}")
    print(f"{'single readings answered 201 / stored':<44}{single['answered']:>12,} / {single['stored']:,}")
    for kind, spent in single["cpu"].items():
        parts = ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(spent.items(), key=lambda item: -item[1]))
        print(f"{'CPU per request, ' + kind + ' (ms)':<44}{sum(spent.values()):>12.2f}   {parts}")
    print(f"http_hello_per_s: {statistics.median(h for _, h in single['pairs']):.0f}")
    print(f"http_ingest_per_s: {statistics.median(f for f, _ in single['pairs']):.0f}")
    print(f"http_ingest_vs_hello: {ratio_of(single['pairs']):.2f}")
    print(f"http_ingest_cpu_ms: {sum(single['cpu']['POST'].values()):.2f}")
    print(f"http_hello_cpu_ms: {sum(single['cpu']['hello'].values()):.2f}")


def report_batch(batch: dict) -> None:
    for http, copy in batch["pairs"]:
        print(f"{'POST /telemetry, batches (points/s)':<44}{http:>12,.0f}   COPY {copy:,.0f}")
    print(f"{'batch points answered 201 / stored':<44}{batch['answered']:>12,} / {batch['stored']:,}")
    print(f"http_batch_points_per_s: {statistics.median(h for h, _ in batch['pairs']):.0f}")
    print(f"http_copy_points_per_s: {statistics.median(c for _, c in batch['pairs']):.0f}")
    print(f"http_batch_vs_copy: {ratio_of(batch['pairs']):.2f}")


def report_latest(latest: dict) -> None:
    for result in [*latest["latest"], latest["hello"]]:
        name = "GET /bench/hello" if result is latest["hello"] else "GET .../latest"
        print(f"{name + ' p50 / p99 (ms)':<44}{result.p50_ms:>12.1f} / {result.p99_ms:.1f}"
              f"   {result.per_second:,.0f} req/s")  # fmt: skip
    print(f"latest_p99_ms: {statistics.median(r.p99_ms for r in latest['latest']):.1f}")
    print(f"latest_per_s: {statistics.median(r.per_second for r in latest['latest']):.0f}")
    print(f"latest_hello_p99_ms: {latest['hello'].p99_ms:.1f}")  # the bare view's p99 under the same load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="figure/baseline pairs per figure")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8, help="wrk connections for throughput runs")
    parser.add_argument("--latest-connections", type=int, default=8, help="wrk connections for GET .../latest")
    parser.add_argument("--batch-records", type=int, default=250)
    parser.add_argument("--batch-fields", type=int, default=4, help="measurements per record of a batch")
    parser.add_argument("--only", default="single,batch,latest", help="which figures, comma-separated")
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("bench/http_ingest.py needs PostgreSQL on 127.0.0.1:5432")
    wrk.binary()

    db_url = fresh_database("iotflow_bench_http")
    log_path = ROOT / "var" / "bench-http-web.log"
    with private_redis() as redis_url, tempfile.NamedTemporaryFile("w", suffix=".txt") as devices_file:
        env = server_env(db_url, redis_url)
        setup_django(env)
        devices_file.write("".join(f"{pk} {key}\n" for pk, key in make_devices("bench-http", args.devices)))
        devices_file.flush()
        with serve("gunicorn", env, log_path) as base_url:
            workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
            threads = int(os.environ.get("GUNICORN_THREADS", "4"))
            runner = Runner(base_url, devices_file.name, args.seconds, args.connections)
            # Warm up: imports, connections, every device's key in the cache.
            runner.run("hello.lua", seconds=2)
            warm_up(runner, args.devices)
            only = args.only.split(",")
            single = measure_single(runner, args.rounds) if "single" in only else None
            batch = None
            if "batch" in only:
                batch = measure_batch(runner, db_url, args.rounds, args.batch_records, args.batch_fields, workers)
            latest = None
            if "latest" in only:
                settle(db_url)  # the upkeep of the points just stored is not the reads' to pay
                latest = measure_latest(runner, args.rounds, args.latest_connections)
    print(f"server: gunicorn -c deploy/gunicorn.conf.py iotflow.wsgi ({workers} workers × {threads} threads); "
          f"load: wrk, {args.connections} connections, {args.seconds:g} s runs")  # fmt: skip
    for figures, report in ((single, report_single), (batch, report_batch), (latest, report_latest)):
        if figures is not None:
            report(figures)


if __name__ == "__main__":
    main()
