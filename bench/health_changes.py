"""Wall and CPU time of many devices changing health at once: a fleet coming back, then a sweep.

``--devices`` devices that were never seen are heard from in one last-seen round (the web
process's thread writes them with ``health.record_seen``): each goes online with its health
event, its owner's notification and a live message. Then the health sweep, run a day later,
finds every one of them silent and marks it offline. Prints the wall and CPU seconds of each
step in this process (PostgreSQL's share is left out) and checks every change was recorded.

    .venv/bin/python bench/health_changes.py [--devices 1000]
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_ingest import server_env  # noqa: E402
from bench.services import fresh_database, make_devices, private_redis, setup_django  # noqa: E402


def wall_and_cpu(step) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    with private_redis() as redis_url:
        setup_django(server_env(fresh_database("iotflow_bench_health"), redis_url))
        from django.utils import timezone

        from devices import health
        from devices.models import Device, Health, HealthEvent
        from notifications.models import Notification

        devices = make_devices("bench-health", args.devices, online=False)
        now = timezone.now()
        entries = {pk: health.Seen(now, None, "telemetry") for pk, _ in devices}

        wall, cpu, _ = wall_and_cpu(lambda: health.record_seen(entries))
        online = Device.objects.filter(health=Health.ONLINE).count()
        print(f"{args.devices:,} devices online: {wall:.2f} s wall, {cpu:.2f} s CPU")
        wall_off, cpu_off, changed = wall_and_cpu(lambda: health.sweep(now + timedelta(days=1)))
        print(f"{changed:,} marked offline by the sweep: {wall_off:.2f} s wall, {cpu_off:.2f} s CPU")

        events = HealthEvent.objects.count()
        notes = Notification.objects.count()
        if not online == changed == args.devices or events != notes or events != 2 * args.devices:
            raise SystemExit(f"expected {args.devices} changes each way: {online} online, {changed} offline, "
                             f"{events} events, {notes} notifications")  # fmt: skip
        print(f"health_online_cpu_ms_per_device: {cpu / args.devices * 1000:.3f}")
        print(f"health_sweep_cpu_ms_per_device: {cpu_off / args.devices * 1000:.3f}")


if __name__ == "__main__":
    main()
