"""A user logs in and finds the overview: device counts, today's messages, alerts, notifications, sparklines."""

import math

import pytest
from django.utils import timezone

from devices.models import Device
from notifications import notify
from notifications.models import AlertRule
from telemetry import ingest
from telemetry.points import Point
from telemetry.timeparse import now_ms
from tests.browser.conftest import go_to, log_in, screenshot

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect


def test_log_in_see_the_overview_and_log_out(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    end = now_ms()
    names = ["Living room", "Bedroom purifier", "Workshop meter", "Greenhouse", "Cellar"]
    for index, name in enumerate(names):
        keyed = make_device(alice, name, location=name.split()[0])
        readings = [round(20 + 3 * math.sin(i / 20 + index), 2) for i in range(144)]
        ingest.store([Point(keyed.pk, "temperature", end - i * 600_000, v) for i, v in enumerate(readings)], "test")
    Device.objects.filter(name__in=names[:3]).update(health="online", last_seen=timezone.now())
    Device.objects.filter(name="Cellar").update(status="maintenance")
    Device.objects.filter(name="Greenhouse").update(health="offline")
    rule = AlertRule.objects.create(
        owner=alice, name="Greenhouse too cold", device=Device.objects.get(name="Greenhouse"),
        measurement="temperature", operator="<", threshold=5, severity="high",
    )  # fmt: skip
    make_device(alice, "spare")  # a device that never sent anything
    greenhouse = Device.objects.get(name="Greenhouse")
    ingest.store([Point(greenhouse.pk, "temperature", end + 1000, 3.5)], "test")
    notify(alice, "info", "Firmware 2.1 available", "For the workshop meter.")
    assert rule.alerts.count() == 1

    page.goto("/")
    expect(page).to_have_url("/accounts/login/?next=/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")

    log_in(page, "alice")
    figures = page.locator(".stats")
    expect(figures).to_contain_text("6Devices")
    expect(figures).to_contain_text("1In maintenance")
    expect(figures).to_contain_text("1Open alerts")
    expect(figures).to_contain_text("3Online")
    expect(page.locator(".device-card svg polyline")).to_have_count(5)
    expect(page.locator("#recent-notifications")).to_contain_text("Firmware 2.1 available")
    expect(page.locator("#recent-notifications")).to_contain_text("Greenhouse too cold")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    screenshot(page, "overview")

    go_to(page, "Alerts")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("acknowledged", exact=False).first).to_be_visible()

    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to IoTFlow")).to_be_visible()
