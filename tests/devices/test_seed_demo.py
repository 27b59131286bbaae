"""`manage.py seed_demo`: the demo account `make run` starts with, its devices' history and their health."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import User
from devices.management.commands.seed_demo import DEMO_DEVICES
from devices.models import Device
from telemetry.backends import get_backend
from telemetry.timeparse import to_datetime

Health = Device.Health


def history_devices():
    return Device.objects.filter(owner__username="demo", name__in=[name for name, _, _ in DEMO_DEVICES])


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--base-url", "http://iot.example:8000/", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_devices_were_heard_from_until_their_last_reading_and_are_offline_since(settings):
    settings.DEVICE_OFFLINE_SECONDS = 120
    seed()
    devices = history_devices()
    assert devices.count() == len(DEMO_DEVICES)
    for device in devices:
        latest = get_backend().latest(device.pk)
        newest = max(point.ts for point in latest.values())
        assert device.last_seen == to_datetime(newest), "last seen is the newest reading of its history"
        oldest = get_backend().history(device.pk, start=0, end=newest + 1, limit=1, descending=False)[0]
        assert device.created_at == to_datetime(oldest.ts), "registered when its history starts"
        assert device.health == Health.OFFLINE and device.health_reason == "silence"
        assert device.health_since == device.last_seen + timedelta(seconds=120)
        events = list(device.health_events.order_by("at").values_list("previous", "state"))
        assert events == [(Health.NEVER_SEEN, Health.ONLINE), (Health.ONLINE, Health.OFFLINE)]


@pytest.mark.django_db
def test_a_demo_device_still_within_the_offline_limit_is_online(settings):
    settings.DEVICE_OFFLINE_SECONDS = 3600
    seed()
    for device in history_devices():
        assert device.health == Health.ONLINE and device.last_seen is not None
        assert list(device.health_events.values_list("state", flat=True)) == [Health.ONLINE]


@pytest.mark.django_db
def test_the_printed_secrets_work_once_and_a_second_run_creates_nothing(client):
    out = seed()
    password = re.search(r"user:\s+demo / (\S+)", out).group(1)
    assert client.login(username="demo", password=password)
    device_id, key = re.search(r"device #(\d+) 'Living room sensor': X-API-Key (\S+)", out).groups()
    page = client.get("/devices/").content.decode()
    assert f'data-health-for="{device_id}">Offline<' in page
    answer = APIClient().post("/api/v1/telemetry", {"data": {"temperature": 22.5}}, format="json", HTTP_X_API_KEY=key)
    assert answer.status_code == 201, answer.content
    assert get_backend().latest(int(device_id))["temperature"].value == 22.5
    assert "http://iot.example:8000/dashboards/" in out

    again = seed()
    assert "demo data not created" in again and key not in again
    assert User.objects.count() == 2 and history_devices().count() == len(DEMO_DEVICES)
