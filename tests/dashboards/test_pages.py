"""Dashboard pages: create, rename, reorder and delete dashboards; build, edit, move and delete charts."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dashboards.models import Chart, Dashboard
from dashboards.overview import sparkline
from notifications.models import Alert, AlertRule
from telemetry.timeparse import now_ms
from tests.conftest import session_client


def test_pages_need_a_login(dashboard, chart):
    for url in ["/", "/dashboards/", f"/dashboards/{dashboard.pk}/", f"/dashboards/charts/{chart.pk}/data"]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_create_rename_reorder_and_delete_dashboards(alice):
    client = session_client(alice)
    for name in ["Home", "Garden", "Workshop"]:
        response = client.post("/dashboards/", {"name": name})
        assert response.status_code == 302
    assert client.post("/dashboards/", {"name": "Home"}).status_code == 200, "a duplicate name is refused"
    names = lambda: list(Dashboard.objects.filter(owner=alice).values_list("name", flat=True))  # noqa: E731
    assert names() == ["Home", "Garden", "Workshop"]

    workshop = Dashboard.objects.get(name="Workshop")
    client.post(f"/dashboards/{workshop.pk}/move", {"direction": "up"})
    assert names() == ["Home", "Workshop", "Garden"]
    client.post(f"/dashboards/{workshop.pk}/move", {"direction": "up"})
    client.post(f"/dashboards/{workshop.pk}/move", {"direction": "up"})
    assert names() == ["Workshop", "Home", "Garden"], "moving past the top stays at the top"

    client.post(f"/dashboards/{workshop.pk}/edit", {"name": "Shed"})
    page = client.get("/dashboards/").content.decode()
    assert page.index("Shed") < page.index("Home") < page.index("Garden")

    assert client.post(f"/dashboards/{workshop.pk}/delete").status_code == 302
    assert names() == ["Home", "Garden"]


def test_chart_builder_saves_a_chart(alice, dashboard, device, recent_temperatures):
    client = session_client(alice)
    page = client.get(f"/dashboards/{dashboard.pk}/charts/new").content.decode()
    assert 'value="temperature"' in page, "the builder offers measurements the devices reported"
    response = client.post(
        f"/dashboards/{dashboard.pk}/charts/new",
        {
            "title": "Room temperature",
            "chart_type": "area",
            "devices": [device.pk],
            "measurements": ["temperature"],
            "time_range": "7d",
            "aggregation": "max",
            "window": "1h",
            "width": 4,
            "height": "large",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    chart = Chart.objects.get(dashboard=dashboard)
    assert (chart.chart_type, chart.time_range, chart.aggregation, chart.window, chart.width) == (
        "area",
        "7d",
        "max",
        "1h",
        4,
    )
    assert list(chart.devices.all()) == [device.device] and chart.measurements == ["temperature"]
    page = client.get(f"/dashboards/{dashboard.pk}/").content.decode()
    assert "Room temperature" in page and f"/dashboards/charts/{chart.pk}/data" in page


def test_custom_range_needs_start_and_end(alice, dashboard, device, recent_temperatures):
    form = {"title": "T", "chart_type": "line", "devices": [device.pk], "measurements": ["temperature"],
            "time_range": "custom", "aggregation": "mean", "width": 2, "height": "medium"}  # fmt: skip
    client = session_client(alice)
    response = client.post(f"/dashboards/{dashboard.pk}/charts/new", form)
    assert response.status_code == 200 and "A custom range needs a start and an end." in response.content.decode()
    form.update({"start_at": "2025-07-01T10:00", "end_at": "2025-07-02T10:00"})
    assert client.post(f"/dashboards/{dashboard.pk}/charts/new", form).status_code == 302
    chart = Chart.objects.get()
    assert chart.time_range == "" and chart.start_at.isoformat() == "2025-07-01T10:00:00+00:00"


def test_custom_range_is_read_in_the_users_time_zone(alice, dashboard, device, recent_temperatures):
    alice.time_zone = "Europe/Berlin"
    alice.save()
    form = {"title": "T", "chart_type": "line", "devices": [device.pk], "measurements": ["temperature"],
            "time_range": "custom", "start_at": "2025-07-01T10:00", "end_at": "2025-07-01T12:00",
            "aggregation": "mean", "width": 2, "height": "medium"}  # fmt: skip
    assert session_client(alice).post(f"/dashboards/{dashboard.pk}/charts/new", form).status_code == 302
    assert Chart.objects.get().start_at.isoformat() == "2025-07-01T08:00:00+00:00"


def test_builder_refuses_devices_and_measurements_not_offered(alice, bob, dashboard, make_device, recent_temperatures):
    foreign = make_device(bob, "bobs")
    form = {"title": "T", "chart_type": "line", "devices": [foreign.pk], "measurements": ["temperature"],
            "time_range": "24h", "aggregation": "mean", "width": 2, "height": "medium"}  # fmt: skip
    response = session_client(alice).post(f"/dashboards/{dashboard.pk}/charts/new", form)
    assert response.status_code == 200 and not Chart.objects.exists()


def test_measurement_options_follow_the_ticked_devices(alice, device, make_device, write_points):
    other = make_device(alice, "meter")
    write_points(device.pk, "temperature", [(1_750_000_000_000, 1.0)])
    write_points(other.pk, "power", [(1_750_000_000_000, 1.0)])
    client = session_client(alice)
    only_meter = client.get(f"/dashboards/api/measurements?devices={other.pk}&measurements=power").content.decode()
    assert 'value="power" checked' in only_meter and "temperature" not in only_meter
    both = client.get(f"/dashboards/api/measurements?devices={other.pk}&devices={device.pk}").content.decode()
    assert 'value="power"' in both and 'value="temperature"' in both


def test_edit_move_and_delete_charts(alice, dashboard, chart, device):
    second = Chart.objects.create(dashboard=dashboard, title="Second", measurements=["t"], position=5)
    client = session_client(alice)
    client.post(f"/dashboards/charts/{second.pk}/move", {"direction": "up"})
    assert list(dashboard.charts.values_list("title", flat=True)) == ["Second", "Temperature"]
    page = client.get(f"/dashboards/charts/{chart.pk}/edit").content.decode()
    assert 'value="Temperature"' in page
    assert client.post(f"/dashboards/charts/{chart.pk}/delete").status_code == 302
    assert list(dashboard.charts.values_list("title", flat=True)) == ["Second"]


@pytest.mark.parametrize(
    "url",
    ["/dashboards/{d}/", "/dashboards/{d}/edit", "/dashboards/{d}/delete", "/dashboards/{d}/charts/new",
     "/dashboards/charts/{c}/edit", "/dashboards/charts/{c}/delete"],
)  # fmt: skip
def test_another_users_dashboards_and_charts_are_not_found(bob, dashboard, chart, url):
    url = url.format(d=dashboard.pk, c=chart.pk)
    client = session_client(bob)
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "mine now", "title": "x"}).status_code == 404
    assert Dashboard.objects.get(pk=dashboard.pk).name == "Home" and Chart.objects.filter(pk=chart.pk).exists()


def test_staff_may_open_any_dashboard(staff, dashboard):
    assert session_client(staff).get(f"/dashboards/{dashboard.pk}/").status_code == 200


def test_forms_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/dashboards/", {"name": "Forged"}).status_code == 403
    page = client.get("/dashboards/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post("/dashboards/", {"name": "Real", "csrfmiddlewaretoken": token}).status_code == 302


def sparkline_xs(device_id: int) -> list[float]:
    return [float(pair.split(",")[0]) for pair in sparkline(device_id).points.split()]


def test_a_sparkline_puts_each_reading_at_its_time_of_day(device, write_points):
    end = now_ms()
    write_points(device.pk, "temperature", [(end, 20.0)])  # one reading: one window, wherever its bounds fall
    xs = sparkline_xs(device.pk)
    assert len(xs) == 2 and all(x >= 115 for x in xs), "a reading of a moment ago: a dash at the right end"
    assert sparkline(device.pk).points.endswith(",16.0"), "one value: drawn at mid-height"

    hour = 3_600_000
    write_points(device.pk, "temperature", [(end - 22 * hour - i * 60_000, 10.0) for i in range(60)])
    xs = sparkline_xs(device.pk)
    assert xs[0] < 15 and xs[-1] > 115, "readings 22 hours ago at the left end, the latest at the right"
    assert not [x for x in xs if 15 <= x <= 110], "the silent hours between them take the width they lasted"


def test_overview_counts_messages_and_draws_sparklines(alice, device, make_device, recent_temperatures):
    make_device(alice, "quiet", status="maintenance")
    page = session_client(alice).get("/").content.decode()
    assert re.search(r'stat-tile__value">2</span><span class="stat-tile__label">Devices', page)
    assert re.search(r'stat-tile__value">1</span><span class="stat-tile__label">In maintenance', page)
    assert "<polyline points=" in page and "temperature over the last 24 hours" in page
    today = re.search(r'stat-tile__value">(\d+)</span><span class="stat-tile__label">Messages today', page)
    assert 1 <= int(today.group(1)) <= 360, "readings since midnight in the user's zone"


def test_the_overview_says_when_an_open_alert_fired(alice, device):
    AlertRule.objects.create(
        owner=alice, name="Too warm", device=device.device, measurement="temperature", operator=">", threshold=30
    )
    assert device.client().post("/api/v1/telemetry", {"data": {"temperature": 35.0}}, format="json").status_code == 201
    client = session_client(alice)
    assert re.search(r"Too warm</a> on \S+ <span class=\"muted\">just now</span>", client.get("/").content.decode())
    Alert.objects.update(triggered_at=timezone.now() - timedelta(hours=3, minutes=5))
    assert re.search(r"<span class=\"muted\">3\s+hours, 5\s+minutes ago</span>", client.get("/").content.decode())
