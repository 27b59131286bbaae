"""The 24-hour, 1-minute mean of one device, in a points table of 10 million rows over 1,000 devices.

A fresh PostgreSQL database gets 1,000 devices of one measurement each, a point every 10 s
(10,000 points a device, the last 27.8 hours), loaded with COPY from a generator (the table's
indexes are built after the load, as a restore would). The rollups are then what the product
keeps: the 1-minute and 1-hour tiers the rollup pass computes, brought up to date with the same
aggregation in one set statement per tier, and markers left on each device's last two minutes, as
between two runs of the pass, so a query also reads raw points for those.

Timed: ``get_backend().aggregate(...)``, the call ``GET /api/v1/telemetry/{id}/aggregated``
makes, for ``aggregation=mean&window=1m`` over the last 24 hours of a random device each time;
then the same request through that endpoint (Django's test client, server time, no network).
Every answer is checked against the mean computed from the raw points. The database is dropped
at the end.

    .venv/bin/python bench/aggregate.py [--devices 1000] [--points 10000] [--queries 200]
"""

import argparse
import random
import statistics
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.services import (  # noqa: E402
    drop_database,
    fresh_database,
    make_devices,
    p95,
    postgres_available,
    setup_django,
    timed,
)

DATABASE = "iotflow_bench_aggregate"
MEASUREMENT = "temperature"
INTERVAL_MS = 10_000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
POINTS_TABLE = "telemetry_telemetrypoint"
COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0)  # signature, no flags, no extension
COPY_TRAILER = struct.pack(">h", -1)


def daily_values() -> list[float]:
    """A slow daily wave with two decimals (the same double whether sent as text or in binary)."""
    steps = DAY_MS // INTERVAL_MS
    return [round(20 + 5 * step / steps, 2) for step in range(steps)]


def blocks(device_ids: list[int], points: int, end: int):
    """Binary COPY rows of the points of these devices (device, measurement, ts, float type, value, no text).

    Each device's wave starts at its own phase. Rows are joined in C (``bytes.join``, ``map``) from
    parts packed once, so generating 10 million rows costs a few seconds, not minutes; in binary,
    PostgreSQL parses no numbers.
    """
    first = end - (points - 1) * INTERVAL_MS
    name = MEASUREMENT.encode()
    # Every field is its length then its bytes: measurement, ts, value_type 0 (float), then value_float's length.
    middles = [
        struct.pack(f">i{len(name)}siqihi", len(name), name, 8, ts, 2, 0, 8)
        for ts in range(first, end + 1, INTERVAL_MS)
    ]
    wave = [struct.pack(">d", value) for value in daily_values()]
    no_text = struct.pack(">i", -1)
    for device_id in device_ids:
        phase = device_id * 37 % len(wave)
        values = (wave[phase:] + wave[:phase]) * (points // len(wave) + 1)
        head = struct.pack(">hiq", 6, 8, device_id)  # six fields, the first the 8-byte device id
        yield head + (no_text + head).join(map(bytes.__add__, middles, values)) + no_text


def load(device_ids: list[int], points: int, end: int) -> tuple[float, float]:
    """COPY the points in over two connections, then build the table's indexes; returns (copy s, index s).

    The table is unlogged in this throw-away database (reads are the same; the load writes no WAL),
    and its indexes are built after the load, as a restore does.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE telemetry_telemetrypoint DROP CONSTRAINT telemetry_point_identity")
        cursor.execute("DROP INDEX telemetry_device_ts")
        for table in ("telemetry_telemetrypoint", "telemetry_rollupminute", "telemetry_rolluphour"):
            cursor.execute(f"ALTER TABLE {table} SET UNLOGGED")
    started = time.perf_counter()
    halves = [device_ids[0::2], device_ids[1::2]]
    with ThreadPoolExecutor(len(halves)) as pool:
        list(pool.map(lambda half: copy_points(half, points, end), halves))
    copied = time.perf_counter()
    in_parallel(
        [
            (f"CREATE UNIQUE INDEX telemetry_point_identity ON {POINTS_TABLE} (device_id, measurement, ts)", []),
            (f"CREATE INDEX telemetry_device_ts ON {POINTS_TABLE} (device_id, ts)", []),
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE telemetry_telemetrypoint ADD CONSTRAINT telemetry_point_identity "
            "UNIQUE USING INDEX telemetry_point_identity"
        )
        cursor.execute("ANALYZE telemetry_telemetrypoint")
    return copied - started, time.perf_counter() - copied


def copy_points(device_ids: list[int], points: int, end: int) -> None:
    statement = (
        "COPY telemetry_telemetrypoint (device_id, measurement, ts, value_type, value_float, value_text) FROM STDIN "
        "(FORMAT BINARY)"
    )
    with loader() as link, link.cursor().copy(statement) as copy:
        copy.write(COPY_HEADER)
        for block in blocks(device_ids, points, end):
            copy.write(block)
        copy.write(COPY_TRAILER)


def loader():
    """A connection of its own for loading: its rows skip the per-row foreign-key triggers (the devices exist)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    link = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])
    link.execute("SET session_replication_role = replica")
    link.execute("SET work_mem = '256MB'")
    link.execute("SET maintenance_work_mem = '512MB'")
    return link


def in_parallel(statements: list[tuple[str, list]]) -> None:
    """Run each statement on a loader connection of its own, all at once (one a core)."""

    def one(statement: tuple[str, list]) -> None:
        with loader() as link:
            link.execute(*statement)

    with ThreadPoolExecutor(len(statements)) as pool:
        list(pool.map(one, statements))


def build_rollups(end: int) -> float:
    """The rollup tiers the rollup pass keeps, computed for the whole table at once; markers on the last minutes."""
    from django.db import connection

    from telemetry.backends.sql_rollups import HOUR_FROM_MINUTES, HOURS, MARKERS, MINUTES, POINTS

    started = time.perf_counter()
    last_minute = end // MINUTE_MS * MINUTE_MS
    # The rollup pass's own aggregations (MINUTE_FROM_POINTS, HOUR_FROM_MINUTES) over every key at once,
    # half of the devices on each core.
    minutes = (
        f"INSERT INTO {MINUTES} (device_id, measurement, bucket, count, minimum, maximum, total, source_pruned) "
        f"SELECT device_id, measurement, ts / {MINUTE_MS} * {MINUTE_MS}, COUNT(value_float), MIN(value_float), "
        f"MAX(value_float), SUM(value_float), FALSE FROM {POINTS} WHERE value_float IS NOT NULL "
        "AND ts < %s AND device_id %% 2 = %s GROUP BY 1, 2, 3"
    )
    # The minute tier's two indexes are built after its 1.7 million rows, as the points' are.
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {MINUTES} DROP CONSTRAINT rollup_minute_identity")
        cursor.execute("DROP INDEX rollupminute_device_bucket")
    in_parallel([(minutes, [last_minute - MINUTE_MS, half]) for half in (0, 1)])
    in_parallel(
        [
            (f"CREATE UNIQUE INDEX rollup_minute_identity ON {MINUTES} (device_id, measurement, bucket)", []),
            (f"CREATE INDEX rollupminute_device_bucket ON {MINUTES} (device_id, bucket)", []),
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {MINUTES} ADD CONSTRAINT rollup_minute_identity UNIQUE USING INDEX rollup_minute_identity"
        )
        keys = f"SELECT DISTINCT device_id, measurement, bucket / 3600000 * 3600000 AS bucket FROM {MINUTES}"
        cursor.execute(
            f"WITH k AS ({keys}) INSERT INTO {HOURS} (device_id, measurement, bucket, count, minimum, maximum, "
            f"total, source_pruned) {HOUR_FROM_MINUTES}"
        )
        # Between two runs of the pass: the newest two minutes of every device are still marked.
        # Through each device's (device, ts) index: the table has no index on ts alone.
        cursor.execute(
            f"INSERT INTO {MARKERS} (device_id, measurement, bucket) SELECT DISTINCT p.device_id, p.measurement, "
            f"p.ts / {MINUTE_MS} * {MINUTE_MS} FROM devices_device d CROSS JOIN LATERAL (SELECT device_id, "
            f"measurement, ts FROM {POINTS} WHERE device_id = d.id AND ts >= %s) p",
            [last_minute - MINUTE_MS],
        )
        for table in (MINUTES, HOURS, MARKERS):
            cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def expected_means(device_id: int, start: int, end: int) -> dict[int, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ts / {MINUTE_MS} * {MINUTE_MS}, AVG(value_float) FROM telemetry_telemetrypoint "
            "WHERE device_id = %s AND measurement = %s AND ts >= %s AND ts < %s GROUP BY 1",
            [device_id, MEASUREMENT, start, end],
        )
        return dict(cursor.fetchall())


def check(device_id: int, start: int, end: int, buckets: list) -> None:
    expected = expected_means(device_id, start, end)
    got = {bucket.ts: bucket.value for bucket in buckets}
    if got.keys() != expected.keys() or any(abs(got[ts] - expected[ts]) > 1e-9 for ts in got):
        raise RuntimeError(f"device {device_id}: the aggregate differs from the raw points' means")


def measure_backend(device_ids: list[int], queries: int) -> tuple[list[float], float]:
    from telemetry.backends import get_backend
    from telemetry.timeparse import now_ms

    backend = get_backend()

    def one() -> tuple[int, int, int, list]:
        device_id = random.choice(device_ids)
        end = now_ms()
        start = end - DAY_MS
        series = backend.aggregate(device_id, [MEASUREMENT], start=start, end=end, window_ms=MINUTE_MS, function="mean")
        return device_id, start, end, series[MEASUREMENT]

    started = time.perf_counter()
    device_id, start, end, buckets = one()  # the first query, with cold plans and caches
    first = (time.perf_counter() - started) * 1000
    check(device_id, start, end, buckets)
    if len(buckets) < 1380:  # a bucket per minute of the day, but for minutes since the load ended
        raise RuntimeError(f"expected a bucket per minute of the day, got {len(buckets)}")
    samples = timed(one, queries)
    for _ in range(3):
        check(*one())
    return samples, first


def measure_http(devices: list[tuple[int, str]], queries: int) -> list[float]:
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()

    def one() -> None:
        device_id, key = random.choice(devices)
        url = f"/api/v1/telemetry/{device_id}/aggregated?field={MEASUREMENT}&aggregation=mean&window=1m"
        response = client.get(url + "&start_time=-24h", HTTP_X_API_KEY=key)
        if response.status_code != 200 or len(response.json()["series"][MEASUREMENT]) < 1380:
            raise RuntimeError(f"{url}: {response.status_code} {response.content[:200]!r}")

    with override_settings(ALLOWED_HOSTS=["testserver"], RATE_LIMITS_ENABLED=False):
        for _ in range(5):
            one()
        return timed(one, queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000, help="points per device, one every 10 s")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="leave the database for a look afterwards")
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("bench/aggregate.py needs PostgreSQL on 127.0.0.1:5432")
    db_url = fresh_database(DATABASE)
    env = {"DATABASE_URL": db_url, "MQTT_MANAGE_ACCOUNTS": "0", "CELERY_BROKER_URL": "memory://"}
    setup_django({**env, "TELEMETRY_BACKEND": "sql"})
    from django.db import connection

    from telemetry.timeparse import now_ms

    try:
        devices = make_devices("bench-aggregate", args.devices)
        device_ids = [pk for pk, _ in devices]
        end = now_ms() // INTERVAL_MS * INTERVAL_MS
        copy_s, index_s = load(device_ids, args.points, end)
        load_s = copy_s + index_s
        rollup_s = build_rollups(end)
        backend, first = measure_backend(device_ids, args.queries)
        http = measure_http(devices, args.queries // 2)
    finally:
        connection.close()
        if not args.keep:
            drop_database(DATABASE)
    rows = args.devices * args.points
    print(f"points table: {rows:,} rows over {args.devices:,} devices; loaded in {load_s:.1f} s (COPY {copy_s:.1f} s, "
          f"{rows / copy_s:,.0f} rows/s; indexes {index_s:.1f} s), rollups in {rollup_s:.1f} s")  # fmt: skip
    print(f"{'24 h, 1-min mean via backend (ms)':<44}p50 {statistics.median(backend):.1f}   p95 {p95(backend):.1f}"
          f"   first {first:.1f}")  # fmt: skip
    print(f"{'24 h, 1-min mean via HTTP endpoint (ms)':<44}p50 {statistics.median(http):.1f}   p95 {p95(http):.1f}")
    print(f"aggregate_rows: {rows}")
    print(f"aggregate_load_s: {load_s:.1f}")
    print(f"aggregate_24h_ms: {statistics.median(backend):.1f}")
    print(f"aggregate_24h_p95_ms: {p95(backend):.1f}")
    print(f"aggregate_24h_http_ms: {statistics.median(http):.1f}")
    print(f"aggregate_24h_http_p95_ms: {p95(http):.1f}")


if __name__ == "__main__":
    main()
