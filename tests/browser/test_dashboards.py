"""A user builds a dashboard chart in the chart builder and watches it follow new telemetry."""

import math

import pytest

from dashboards.models import Chart, Dashboard
from telemetry.backends import get_backend
from telemetry.points import Point
from telemetry.timeparse import now_ms
from tests.browser.conftest import charts_drawn, go_to, log_in, screenshot, wait_until_following

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect

HOUR = 3_600_000


def a_day_of(device_id: int, measurement: str, base: float, every_ms: int = 60_000) -> None:
    end = now_ms() - 30_000
    get_backend().write(
        [
            Point(device_id, measurement, end - i * every_ms, round(base + 3 * math.sin(i / 120), 2))
            for i in range(24 * HOUR // every_ms)
        ]
    )


def test_build_a_chart_and_watch_it_update_live(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    greenhouse = make_device(alice, "Greenhouse")
    make_device(alice, "Cellar")
    a_day_of(greenhouse.pk, "temperature", 21)
    a_day_of(greenhouse.pk, "humidity", 60)
    log_in(page, "alice")

    go_to(page, "Dashboards")
    page.get_by_label("Name").fill("Garden")
    page.get_by_role("button", name="Create dashboard").click()
    page.get_by_role("link", name="Build the first chart").click()

    page.get_by_label("Title").fill("Greenhouse climate")
    page.get_by_label("Type").select_option("area")
    page.get_by_label("Greenhouse (#").check()
    measurement = page.get_by_label("temperature")
    expect(measurement).to_be_visible()
    measurement.check()
    page.get_by_label("Time range").select_option("24h")
    page.get_by_label("Width").select_option("4")
    preview = page.locator("#chart-preview")
    expect(preview).to_have_attribute("data-state", "ready")
    expect(preview.locator("canvas")).to_have_count(1)
    screenshot(page, "chart-builder")
    page.get_by_role("button", name="Save chart").click()

    chart = Chart.objects.get(title="Greenhouse climate")
    assert chart.measurements == ["temperature"] and chart.chart_type == "area"
    card = page.locator(f'[data-chart-card="{chart.pk}"] [data-chart]')
    expect(card).to_have_attribute("data-state", "ready")
    points = int(card.get_attribute("data-points"))
    assert 0 < points <= 600, "24 hours of minutely points arrive downsampled"
    wait_until_following(page, greenhouse.pk)
    page.evaluate("window.notReloaded = true")

    greenhouse.client().post("/api/v1/telemetry", {"data": {"temperature": 42.5}}, format="json")
    expect(card.locator(".chart__latest")).to_have_text("42.5")
    assert page.evaluate("window.notReloaded") is True
    assert Dashboard.objects.get(owner=alice).name == "Garden"


def test_dashboard_of_several_chart_types(page, live_socket, make_user, make_device):
    alice = make_user("alice", time_zone="Europe/Berlin")
    devices = [make_device(alice, name) for name in ("Living room", "Bedroom", "Workshop")]
    for index, keyed in enumerate(devices):
        a_day_of(keyed.pk, "temperature", 19 + 2 * index, every_ms=300_000)
        a_day_of(keyed.pk, "humidity", 45 + 5 * index, every_ms=300_000)
    dashboard = Dashboard.objects.create(owner=alice, name="Home")
    specs = [
        ("Temperature", "line", ["temperature"], devices, 4, {}),
        ("Humidity", "area", ["humidity"], devices[:1], 2, {}),
        ("Bedroom now", "gauge", ["temperature"], devices[1:2], 1, {"min_value": 0, "max_value": 40}),
        ("Workshop humidity", "stat", ["humidity"], devices[2:], 1, {}),
    ]
    for position, (title, kind, measurements, chosen, width, extra) in enumerate(specs):
        chart = Chart.objects.create(
            dashboard=dashboard, title=title, chart_type=kind, measurements=measurements, width=width,
            position=position, **extra,
        )  # fmt: skip
        chart.devices.set([d.device for d in chosen])
    log_in(page, "alice")
    page.goto(f"/dashboards/{dashboard.pk}/")
    charts_drawn(page, 4)
    expect(page.locator(".gauge")).to_be_visible()
    wait_until_following(page, devices[1].pk)
    devices[1].client().post("/api/v1/telemetry", {"data": {"temperature": 30.5}}, format="json")
    expect(page.locator(".gauge")).to_have_attribute("aria-label", "temperature: 30.5 on a scale from 0 to 40")
    page.locator(".toast__close").evaluate_all("buttons => buttons.forEach((b) => b.click())")
    screenshot(page, "dashboard")


def test_a_chart_spans_its_whole_range_when_data_covers_part_of_it(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    purifier = make_device(alice, "Purifier")
    end = now_ms()
    get_backend().write([Point(purifier.pk, "voc", end - i * 5_000, 150.0 + i) for i in range(12)])
    dashboard = Dashboard.objects.create(owner=alice, name="Air")
    for position, kind in enumerate(("line", "bar")):
        chart = Chart.objects.create(
            dashboard=dashboard, title=f"VOC {kind}", chart_type=kind, measurements=["voc"], time_range="15m",
            position=position,
        )  # fmt: skip
        chart.devices.set([purifier.device])
    log_in(page, "alice")
    page.goto(f"/dashboards/{dashboard.pk}/")
    charts_drawn(page, 2)
    spans = page.evaluate(
        "[...window.IoTFlowCharts.charts].map((c) => ({type: c.type, min: c.plot.scales.x.min,"
        " max: c.plot.scales.x.max, start: c.data.start, end: c.data.end, first: c.data.series[0].ts[0]}))"
    )
    assert {span["type"] for span in spans} == {"line", "bar"}
    for span in spans:
        assert span["end"] - span["first"] < 120_000, "the readings cover the last minute only"
        assert span["min"] <= span["start"] and span["max"] >= span["end"], span
        assert span["max"] - span["min"] < 16 * 60_000, span
