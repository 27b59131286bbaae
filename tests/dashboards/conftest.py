"""Dashboards and charts of the usual users, and telemetry to draw."""

import pytest

from dashboards.models import Chart, Dashboard
from telemetry.backends import get_backend
from telemetry.points import Point
from telemetry.timeparse import now_ms


@pytest.fixture
def write_points():
    """Store points straight through the configured backend: ``write_points(device_id, name, [(ts, v), ...])``."""

    def write(device_id: int, measurement: str, samples) -> None:
        get_backend().write([Point(device_id, measurement, ts, value) for ts, value in samples])

    return write


@pytest.fixture
def dashboard(alice) -> Dashboard:
    return Dashboard.objects.create(owner=alice, name="Home")


@pytest.fixture
def chart(dashboard, device) -> Chart:
    chart = Chart.objects.create(
        dashboard=dashboard, title="Temperature", measurements=["temperature"], time_range="24h"
    )
    chart.devices.add(device.device)
    return chart


@pytest.fixture
def recent_temperatures(device, write_points):
    """An hour of readings every 10 s, the last one now."""
    end = now_ms()
    write_points(device.pk, "temperature", [(end - i * 10_000, 20.0 + (i % 7)) for i in range(360)])
    return end
