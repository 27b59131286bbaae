"""The demo user's dashboard: history of the demo devices and live charts of a simulated purifier."""

from django.db import transaction

from devices.models import Device

from .models import Chart, Dashboard

# The device `manage.py simulate_devices --owner demo` (run by `make run`) sends for first:
# it reuses a device of this name, so the demo dashboard can point at it before it starts.
SIMULATED_PURIFIER = "Simulated air_purifier 1"


def simulated_purifier(owner) -> Device:
    device = Device.objects.filter(owner=owner, name=SIMULATED_PURIFIER).first()
    if device is None:
        device = Device(owner=owner, name=SIMULATED_PURIFIER, device_type="air_purifier", location="Bedroom")
        device.set_new_api_key()  # replaced by the simulator, which needs a key it knows
        device.save()
    return device


def _chart(dashboard: Dashboard, position: int, devices, **fields) -> Chart:
    chart = Chart.objects.create(dashboard=dashboard, position=position, **fields)
    chart.devices.set(devices)
    return chart


@transaction.atomic
def create_demo_dashboard(owner) -> Dashboard:
    """Create (or recreate) the owner's "Home" dashboard over their devices."""
    Dashboard.objects.filter(owner=owner, name="Home").delete()
    dashboard = Dashboard.objects.create(owner=owner, name="Home", position=0)
    purifier = simulated_purifier(owner)
    others = list(Device.objects.filter(owner=owner).exclude(pk=purifier.pk).order_by("pk")[:3])
    _chart(dashboard, 0, [purifier], title="Purifier: temperature and humidity, live", chart_type="line",
           measurements=["temperature", "humidity"], time_range="15m", width=2)  # fmt: skip
    _chart(dashboard, 1, [purifier], title="Air quality (VOC)", chart_type="gauge", measurements=["voc"],
           time_range="15m", width=1, min_value=0, max_value=500)  # fmt: skip
    _chart(dashboard, 2, [purifier], title="Noise now", chart_type="stat", measurements=["sound"],
           time_range="15m", width=1)  # fmt: skip
    if others:
        _chart(dashboard, 3, others, title="Temperature, last 24 hours", chart_type="line",
               measurements=["temperature"], time_range="24h", width=2)  # fmt: skip
        _chart(dashboard, 4, others[:1], title="Humidity per hour", chart_type="bar", measurements=["humidity"],
               time_range="24h", window="1h", aggregation="mean", width=2)  # fmt: skip
    return dashboard
