import math
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from dashboards.demo import create_demo_dashboard
from devices.models import Device, DeviceGroup, Health, HealthEvent
from telemetry import ingest
from telemetry.points import Point
from telemetry.timeparse import now_ms, to_datetime

DEMO_DEVICES = [
    ("Living room sensor", "temperature_sensor", "Living room"),
    ("Bedroom air purifier", "air_purifier", "Bedroom"),
    ("Workshop power meter", "industrial_sensor", "Workshop"),
]


class Command(BaseCommand):
    help = "Create a demo user, an operator and a few devices with a day of telemetry, if the database is empty."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the platform answers, for the printed links."
        )

    def handle(self, *args, **options) -> None:
        if User.objects.exists():
            self.stdout.write("Database already has users; demo data not created.")
            return
        with transaction.atomic():
            lines = self._create(options["base_url"].rstrip("/"))
        self.stdout.write(self.style.SUCCESS("Demo data created. These secrets are shown only now:"))
        for line in lines:
            self.stdout.write(f"  {line}")

    def _create(self, base_url: str) -> list[str]:
        demo_password = secrets.token_urlsafe(9)
        admin_password = secrets.token_urlsafe(9)
        demo = User.objects.create_user("demo", password=demo_password, email="demo@example.com")
        User.objects.create_superuser("admin", password=admin_password, email="admin@example.com")
        _, token = ApiToken.issue(demo, name="demo")
        group = DeviceGroup.objects.create(owner=demo, name="Home", description="Demo devices")
        lines = [
            f"operator: admin / {admin_password}  ({base_url}/admin/)",
            f"user:     demo / {demo_password}",
            f"demo API token: {token}",
        ]
        for index, (name, device_type, location) in enumerate(DEMO_DEVICES):
            device = Device(owner=demo, name=name, device_type=device_type, location=location)
            key = device.set_new_api_key()
            device.save()
            device.groups.add(group)
            points = self._day_of_telemetry(device.pk, index)
            ingest.store(points, "demo")
            self._heard_from(device, points)
            lines.append(f"device #{device.pk} {name!r}: X-API-Key {key}")
        dashboard = create_demo_dashboard(demo)
        lines.append(f"demo dashboard: {base_url}/dashboards/{dashboard.pk}/ (live charts of the simulator)")
        return lines

    @staticmethod
    def _heard_from(device: Device, points: list) -> None:
        """Registered, heard from and health as if the device had sent its day of history live, then gone quiet."""
        first, last = to_datetime(min(p.ts for p in points)), to_datetime(max(p.ts for p in points))
        events = [
            HealthEvent(device=device, state=Health.ONLINE, previous=Health.NEVER_SEEN, reason="telemetry", at=first)
        ]
        state, since, reason = Health.ONLINE, first, "telemetry"
        offline_at = last + timedelta(seconds=settings.DEVICE_OFFLINE_SECONDS)
        if offline_at <= timezone.now():
            state, since, reason = Health.OFFLINE, offline_at, "silence"
            events.append(HealthEvent(device=device, state=state, previous=Health.ONLINE, reason=reason, at=since))
        HealthEvent.objects.bulk_create(events)
        Device.objects.filter(pk=device.pk).update(
            created_at=first, last_seen=last, health=state, health_since=since, health_reason=reason
        )

    @staticmethod
    def _day_of_telemetry(device_id: int, phase: int) -> list:
        end = now_ms()
        points = []
        for step in range(288):  # every 5 minutes for 24 hours
            ts = end - (288 - step) * 300_000
            angle = step / 288 * 2 * math.pi + phase
            points.append(Point(device_id, "temperature", ts, round(21 + 3 * math.sin(angle), 2)))
            points.append(Point(device_id, "humidity", ts, round(50 + 10 * math.cos(angle), 2)))
        return points
