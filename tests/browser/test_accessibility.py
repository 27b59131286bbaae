"""Every page a user works with passes axe-core's accessibility rules and reflows to a phone's width.

axe-core (WCAG 2.x A and AA, best practices) comes from npm (package.json's devDependencies,
installed by `make vendor`) and runs in the page as the browser renders it, charts, live status
and htmx parts included. Reflow (WCAG 1.4.10): at 320 CSS pixels wide no page scrolls sideways;
wide tables scroll inside their own box.
"""

import pytest

from dashboards.models import Chart, Dashboard
from devices.models import Command, DeviceGroup
from notifications.models import Alert, AlertRule
from tests.browser.conftest import ROOT, log_in
from tests.browser.test_dashboards import a_day_of

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map((v) => ({
  rule: v.id, impact: v.impact, help: v.help,
  where: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\\s+/g, " ")),
}))"""
SIDEWAYS = "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"


@pytest.fixture
def a_users_pages(make_user, make_device) -> list[str]:
    """A user with a device, its history, a group, an alert rule that fired, a command and a dashboard of
    every chart type: the addresses of the pages they work with, after logging in."""
    alice = make_user("alice", time_zone="Europe/Paris")
    purifier = make_device(alice, "Bedroom purifier", device_type="air_purifier", location="Bedroom")
    a_day_of(purifier.pk, "temperature", 21, every_ms=300_000)
    a_day_of(purifier.pk, "humidity", 50, every_ms=300_000)
    group = DeviceGroup.objects.create(owner=alice, name="Home")
    purifier.device.groups.add(group)
    AlertRule.objects.create(
        owner=alice, name="Too warm", device=purifier.device, measurement="temperature", operator=">", threshold=30
    )
    assert (
        purifier.client().post("/api/v1/telemetry", {"data": {"temperature": 35.0}}, format="json").status_code == 201
    )
    assert Alert.objects.filter(rule__name="Too warm").exists(), "the alerts page and the bell have something to show"
    Command.objects.create(device=purifier.device, action="set_fan_speed", params={"speed": 3})
    dashboard = Dashboard.objects.create(owner=alice, name="Home")
    for position, kind in enumerate(("line", "bar", "gauge", "stat")):
        chart = Chart.objects.create(
            dashboard=dashboard, title=f"Temperature {kind}", chart_type=kind, measurements=["temperature"],
            position=position,
        )  # fmt: skip
        chart.devices.set([purifier.device])
    device = f"/devices/{purifier.pk}"
    return [
        "/", "/devices/", "/devices/add", "/devices/groups/", f"{device}/", f"{device}/live", f"{device}/history",
        f"{device}/commands", f"{device}/schedules/", f"{device}/keys", "/notifications/", "/alerts/",
        "/alerts/rules/", "/alerts/rules/new", "/dashboards/", f"/dashboards/{dashboard.pk}/",
        f"/dashboards/{dashboard.pk}/charts/new", "/accounts/profile/", "/accounts/tokens/", "/accounts/password/",
        "/no/such/page",
    ]  # fmt: skip


def open_and_settle(page, path: str) -> None:
    page.goto(path)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    charts = page.locator("[data-chart]")
    for index in range(charts.count()):
        expect(charts.nth(index)).not_to_have_attribute("data-state", "loading")


def violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def test_the_pages_of_a_users_day_have_no_accessibility_violations(page, live_socket, a_users_pages):
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make vendor` (npm ci)")
    page.goto("/accounts/login/")
    found = {"/accounts/login/": violations(page)}
    log_in(page, "alice")
    for path in a_users_pages:
        open_and_settle(page, path)
        found[path] = violations(page)
    failing = {path: found_here for path, found_here in found.items() if found_here}
    assert not failing, failing


def test_every_page_reflows_to_a_phones_width(page, live_socket, a_users_pages):
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto("/accounts/login/")
    widths = {"/accounts/login/": page.evaluate(SIDEWAYS)}
    log_in(page, "alice")
    for path in a_users_pages:
        open_and_settle(page, path)
        widths[path] = page.evaluate(SIDEWAYS)
    sideways = {path: scroll for path, (scroll, visible) in widths.items() if scroll > visible}
    assert not sideways, f"pages wider than the 320 px screen (their width): {sideways}"
