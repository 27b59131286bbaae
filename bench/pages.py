"""Server time of the device page and of a dashboard with a 7-day chart of a device sending every 10 s.

60,480 points (7 days × 8,640 a day) sit in the SQL backend. Each page is requested through
Django's test client in this process, so the figures are server time (view, queries, template)
without network or browser. The baseline is what the chart would cost without downsampling:
reading every point of the range and serialising it.

Prints ``name: value`` lines (milliseconds unless the name says otherwise).
"""

import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.services import fresh_database, p95, timed  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_PAGE_REQUESTS", "100"))
WARMUP = 5
INTERVAL_MS = 10_000
DAYS = 7


def setup_django(db_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "iotflow.settings",
            "DATABASE_URL": db_url,
            "MQTT_MANAGE_ACCOUNTS": "0",
            "CELERY_BROKER_URL": "memory://",
        }
    )
    import django

    django.setup()
    from django.test.utils import override_settings

    # Pages render without collectstatic; the manifest storage would need it.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        ALLOWED_HOSTS=["testserver"],
    ).enable()


def seed():
    from accounts.models import User
    from dashboards.models import Chart, Dashboard
    from devices.models import Device
    from telemetry.backends import get_backend
    from telemetry.points import Point
    from telemetry.timeparse import now_ms

    user = User.objects.create_user("bench", password="bench-pass-123", time_zone="Europe/Berlin")
    device = Device(owner=user, name="every 10 s", device_type="sensor")
    device.set_new_api_key()
    device.save()
    end = now_ms()
    count = DAYS * 86_400_000 // INTERVAL_MS
    points = [Point(device.pk, "temperature", end - i * INTERVAL_MS, 20 + (i % 360) / 36) for i in range(count)]
    for i in range(0, len(points), 10_000):
        get_backend().write(points[i : i + 10_000])
    refresh = getattr(get_backend(), "refresh_rollups", None)
    if refresh:  # beat keeps rollups current in a running installation
        refresh()
    dashboard = Dashboard.objects.create(owner=user, name="Bench")
    chart = Chart.objects.create(
        dashboard=dashboard, title="7 days", chart_type="line", measurements=["temperature"], time_range="7d", width=4
    )
    chart.devices.add(device)
    return user, device, dashboard, chart, count


def get(client, url: str):
    def call():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return call


def main() -> None:
    setup_django(fresh_database("iotflow_bench_pages"))
    from django.db import connection
    from django.test import Client

    from telemetry.backends import get_backend

    user, device, dashboard, chart, count = seed()
    client = Client()
    client.force_login(user)
    print(f"database: {connection.vendor}")
    print(f"stored_points: {count}")

    figures = {
        "device_page": timed(get(client, f"/devices/{device.pk}/"), REQUESTS, WARMUP),
        "device_history_page": timed(get(client, f"/devices/{device.pk}/history?range=7d"), REQUESTS, WARMUP),
        "dashboard_page": timed(get(client, f"/dashboards/{dashboard.pk}/"), REQUESTS, WARMUP),
        "chart_data_7d": timed(get(client, f"/dashboards/charts/{chart.pk}/data"), REQUESTS, WARMUP),
    }
    page, data = get(client, f"/dashboards/{dashboard.pk}/"), get(client, f"/dashboards/charts/{chart.pk}/data")
    figures["dashboard_with_chart"] = timed(lambda: (page(), data()), REQUESTS, WARMUP)
    body = data().json()
    print(f"chart_points_shipped: {sum(len(s['ts']) for s in body['series'])}")
    print(f"chart_json_bytes: {len(json.dumps(body))}")

    def raw():
        found = get_backend().history(device.pk, start=body["start"], end=body["end"], limit=count, descending=False)
        return json.dumps([[p.ts, p.value] for p in found])

    figures["baseline_raw_7d"] = timed(raw, max(REQUESTS // 5, 5), WARMUP)
    print(f"baseline_raw_json_bytes: {len(raw())}")
    for name, samples in figures.items():
        print(f"{name}_p50_ms: {statistics.median(samples):.1f}")
        print(f"{name}_p95_ms: {p95(samples):.1f}")


if __name__ == "__main__":
    main()
