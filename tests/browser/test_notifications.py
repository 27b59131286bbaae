"""An alert rule fires: the toast and the unread count appear live, on whatever page is open."""

import pytest

from notifications.models import Alert
from tests.browser.conftest import go_to, log_in, wait_until_following

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect


def test_an_alert_rule_fires_and_the_toast_and_unread_count_appear(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    device = make_device(alice, "Server room")
    log_in(page, "alice")
    go_to(page, "Alerts")
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Server room too hot")
    page.get_by_label("Device").select_option(str(device.pk))
    page.get_by_label("Measurement").fill("temperature")
    page.get_by_label("Operator").select_option(">")
    page.get_by_label("Threshold").fill("30")
    page.get_by_label("Severity").select_option("critical")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("cell", name="Server room too hot")).to_be_visible()

    go_to(page, "Dashboards")
    badge = page.locator("#unread-badge")
    expect(badge).to_be_hidden()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    device.client().post("/api/v1/telemetry", {"data": {"temperature": 35.5}}, format="json")

    toast = page.locator(".toast").filter(has_text="Server room too hot")
    expect(toast).to_be_visible()
    assert Alert.objects.get().value == 35.5
    expect(badge).to_be_visible()
    unread = int(badge.inner_text())
    assert unread >= 1, "the alert's notification (and the device coming online) count as unread"
    toast.get_by_role("button", name="Dismiss notification").click()
    expect(toast).to_have_count(0)

    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_text("Server room too hot").first).to_be_visible()


def test_a_notification_reaches_every_open_page(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    device = make_device(alice, "Pump")
    log_in(page, "alice")
    page.goto(f"/devices/{device.pk}/")
    wait_until_following(page, device.pk)
    from notifications import notify

    notify(alice, "warning", "Maintenance window", "The pump stops at noon.", device=device.device)
    expect(page.locator(".toast--warning")).to_contain_text("The pump stops at noon.")
    expect(page.locator("#unread-badge")).to_have_text("1")
