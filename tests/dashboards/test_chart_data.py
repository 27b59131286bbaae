"""The JSON chart data: bounded, the owner's only, and right for relative and absolute ranges."""

from datetime import UTC, datetime

import pytest

from dashboards.models import Chart
from tests.conftest import session_client


def test_chart_data_is_downsampled_to_the_limit(alice, chart, recent_temperatures, settings):
    settings.CHART_MAX_POINTS = 50
    body = session_client(alice).get(f"/dashboards/charts/{chart.pk}/data").json()
    (series,) = body["series"]
    assert body["type"] == "line" and body["relative"] == "24h"
    assert 0 < len(series["ts"]) <= 50
    assert len(series["ts"]) == len(series["value"]) == len(series["min"]) == len(series["max"])
    assert series["label"] == "temperature" and series["device_name"] == "alice-sensor"
    assert series["latest"] == {"value": 20.0, "ts": recent_temperatures}
    assert body["end"] - body["start"] == 24 * 3_600_000
    assert body["window_ms"] >= (body["end"] - body["start"]) / 49


def test_absolute_range_and_chosen_window(alice, chart, device, write_points):
    write_points(device.pk, "temperature", [(1_750_000_000_000 + i * 60_000, float(i)) for i in range(120)])
    chart.time_range = ""
    chart.start_at = datetime.fromtimestamp(1_750_000_000, UTC)
    chart.end_at = datetime.fromtimestamp(1_750_000_000 + 7200, UTC)
    chart.window = "15m"
    chart.aggregation = "max"
    chart.save()
    body = session_client(alice).get(f"/dashboards/charts/{chart.pk}/data").json()
    assert body["relative"] == "" and body["window_ms"] == 900_000
    (series,) = body["series"]
    assert len(series["ts"]) == 9  # two hours in 15-minute windows aligned to the epoch
    assert series["value"][-1] == 119.0


def test_several_devices_label_their_series(alice, chart, make_device, recent_temperatures):
    second = make_device(alice, "greenhouse")
    chart.devices.add(second.device)
    body = session_client(alice).get(f"/dashboards/charts/{chart.pk}/data").json()
    labels = sorted(s["label"] for s in body["series"])
    assert labels == ["alice-sensor · temperature", "greenhouse · temperature"]


def test_someone_elses_chart_is_not_found(bob, staff, chart):
    assert session_client(bob).get(f"/dashboards/charts/{chart.pk}/data").status_code == 404
    assert session_client(staff).get(f"/dashboards/charts/{chart.pk}/data").status_code == 200


def test_series_query_for_the_builder(alice, device, recent_temperatures):
    client = session_client(alice)
    body = client.get(f"/dashboards/api/series?device={device.pk}&measurement=temperature&range=1h").json()
    (series,) = body["series"]
    assert body["relative"] == "1h" and sum(series["count"]) >= 359


@pytest.mark.parametrize(
    "query",
    [
        "measurement=temperature",
        "device=1",
        "device=1&measurement=temperature&range=custom",
        "device=1&measurement=temperature&range=forever",
        "device=1&measurement=temperature&aggregation=median",
    ],
)
def test_series_query_errors(alice, device, query):
    query = query.replace("device=1", f"device={device.pk}")
    response = session_client(alice).get(f"/dashboards/api/series?{query}")
    assert response.status_code == 400


def test_series_of_another_users_device_is_not_found(bob, device):
    response = session_client(bob).get(f"/dashboards/api/series?device={device.pk}&measurement=temperature")
    assert response.status_code == 404


def test_chart_draws_only_devices_its_owner_still_has(alice, bob, chart, device):
    device.device.owner = bob
    device.device.save()
    body = session_client(alice).get(f"/dashboards/charts/{chart.pk}/data").json()
    assert body["series"] == []
    assert Chart.objects.get(pk=chart.pk).devices.count() == 1
