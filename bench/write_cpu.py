"""CPU per reading of the PostgreSQL telemetry write, readings written 1, 4 or 8 to a statement.

What group commit buys: the same readings through ``get_backend().write`` on one connection,
alone or several to a statement, with the PostgreSQL backend's CPU (from /proc) and this
process's per reading, and the wall time per statement, on a fresh database.

    .venv/bin/python bench/write_cpu.py [--readings 4000] [--rounds 2] [--parts]

``--parts`` then writes single readings with parts of the statement left out (the rollup
markers, the latest values, both), without the foreign key from points to devices, and with
``synchronous_commit = off`` for the session: what each part and the commit's WAL flush cost
PostgreSQL. These variants are measurements only; IoTFlow writes with the whole statement.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_ingest import server_env  # noqa: E402
from bench.services import cpu_seconds, fresh_database, make_devices, postgres_available, private_redis  # noqa: E402

DEVICES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=4000, help="readings written for each statement size")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", action="store_true", help="also single readings with parts left out")
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("bench/write_cpu.py needs PostgreSQL on 127.0.0.1:5432")
    with private_redis() as redis_url:
        os.environ.update({**server_env(fresh_database("iotflow_bench_write_cpu"), redis_url)})
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        from django.db import connection

        from telemetry.backends import get_backend
        from telemetry.points import Point

        device_ids = [pk for pk, _ in make_devices("bench-write", DEVICES)]
        backend = get_backend()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_stat = f"/proc/{cursor.fetchone()[0]}/stat"
        base = int(time.time() * 1000) - 86_400_000
        print(f"{'per statement':<14} {'PostgreSQL ms':>14} {'client ms':>10} {'wall ms/statement':>18}")
        for round_ in range(args.rounds):
            for size in (1, 4, 8):
                statements = args.readings // size
                ts = base + (round_ * 10 + size) * 10**6
                pg, client, wall = cpu_seconds(backend_stat), time.process_time(), time.perf_counter()
                for i in range(statements):
                    backend.write(
                        [Point(device_ids[(i * size + j) % DEVICES], "temperature", ts + i, 21.5) for j in range(size)]
                    )
                readings = statements * size
                print(
                    f"{size:<14} {(cpu_seconds(backend_stat) - pg) / readings * 1000:>14.3f} "
                    f"{(time.process_time() - client) / readings * 1000:>10.3f} "
                    f"{(time.perf_counter() - wall) / statements * 1000:>18.3f}"
                )
        if args.parts:
            parts(backend, backend_stat, device_ids, base + 100 * 10**6, args.readings, args.rounds)


def parts(backend, backend_stat: str, device_ids: list[int], base: int, readings: int, rounds: int) -> None:
    """PostgreSQL CPU per single-reading statement, whole and with parts left out (same parameters)."""
    import psycopg
    from django.db import connection

    from telemetry.backends import sql
    from telemetry.points import Point

    points, markers, latest = backend._batch_parts
    unused_markers = "SELECT %s::bigint[], %s::varchar[], %s::bigint[]"  # the parameters, bound but not used
    unused_latest = f"SELECT {sql.ARRAYS}"
    whole = backend._batch_statement
    variants = [
        ("whole statement", whole, None),
        ("no rollup markers", f"WITH stored AS ({points}), marked AS ({unused_markers}) {latest}", None),
        ("no latest values", f"WITH stored AS ({points}), marked AS ({markers}) {unused_latest}", None),
        ("points only", f"WITH stored AS ({points}), marked AS ({unused_markers}) {unused_latest}", None),
        ("no foreign key", whole, "foreign key"),
        ("commit not flushed", whole, "SET synchronous_commit = off"),
    ]
    print(f"\n{'single readings':<20} {'PostgreSQL ms':>14} {'wall ms':>8}")
    connection.ensure_connection()
    ts = base
    for _ in range(rounds):
        for name, statement, change in variants:
            constraint = None
            with connection.cursor() as cursor:
                if change == "foreign key":
                    cursor.execute(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = %s::regclass AND contype = 'f'",
                        [backend.points_table],
                    )
                    constraint = cursor.fetchone()
                    cursor.execute(f"ALTER TABLE {backend.points_table} DROP CONSTRAINT {constraint[0]}")
                elif change:
                    cursor.execute(change)
            pg, wall = cpu_seconds(backend_stat), time.perf_counter()
            for i in range(readings):
                ts += 1
                batch = [Point(device_ids[i % DEVICES], "temperature", ts, 21.5)]
                with psycopg.Cursor(connection.connection) as cursor:
                    cursor.execute(statement, sql.batch_parameters(batch), prepare=True)
            used = (cpu_seconds(backend_stat) - pg) / readings * 1000
            print(f"{name:<20} {used:>14.3f} {(time.perf_counter() - wall) / readings * 1000:>8.3f}")
            with connection.cursor() as cursor:
                if constraint:
                    cursor.execute(f"ALTER TABLE {backend.points_table} ADD CONSTRAINT {constraint[0]} {constraint[1]}")
                cursor.execute("RESET ALL")


if __name__ == "__main__":
    main()
