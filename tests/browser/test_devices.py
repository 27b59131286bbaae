"""A user adds a device, watches its telemetry arrive live, commands it; another user cannot see it.

Live updates need the ASGI app: the ``live_socket`` fixture runs daphne (the ws process) beside
the live server, both on the test's own Redis channel layer (see conftest.py).
"""

import re
from datetime import UTC, datetime

import pytest

from devices.models import Command, Device
from telemetry.timeparse import now_ms
from tests.browser.conftest import charts_drawn, go_to, log_in, screenshot, wait_until_following
from tests.conftest import KeyedDevice

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect


def add_device(page, name: str) -> KeyedDevice:
    go_to(page, "Devices")
    page.get_by_role("link", name="Add a device").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Type").fill("temperature_sensor")
    page.get_by_label("Location").fill("Greenhouse")
    page.get_by_role("button", name="Add device").click()
    expect(page.get_by_role("heading", name=f"{name} is registered")).to_be_visible()
    key = page.locator("#api-key").inner_text()
    return KeyedDevice(Device.objects.get(name=name), key)


def test_telemetry_shows_up_live_on_the_device_page(page, live_socket, make_user):
    make_user("alice")
    log_in(page, "alice")
    device = add_device(page, "Greenhouse sensor")
    expect(page.locator("#mqtt-username")).to_have_text(f"device-{device.pk}")

    page.get_by_role("link", name="Go to Greenhouse sensor").click()
    page.get_by_role("link", name="Live values").click()
    expect(page.get_by_text("No telemetry yet.")).to_be_visible()
    wait_until_following(page, device.pk)
    page.evaluate("window.notReloaded = true")

    response = device.client().post("/api/v1/telemetry", {"data": {"temperature": 21.5, "humidity": 64}}, format="json")
    assert response.status_code == 201

    tile = page.locator('.live-value[data-measurement="temperature"]')
    expect(tile.locator(".live-value__value")).to_have_text("21.5")
    expect(page.locator('.live-value[data-measurement="humidity"] .live-value__value')).to_have_text("64")
    expect(page.locator(f'[data-health-for="{device.pk}"]').first).to_have_text("Online")
    assert page.evaluate("window.notReloaded") is True, "the values arrived without a reload"

    device.client().post("/api/v1/telemetry", {"data": {"temperature": 22.25}}, format="json")
    expect(tile.locator(".live-value__value")).to_have_text("22.25")
    screenshot(page, "device")


def test_last_seen_reads_the_same_before_and_after_a_live_update(page, live_socket, make_user, make_device):
    alice = make_user("alice", time_zone="Europe/Paris")
    device = make_device(alice, "Hall sensor")
    make_device(alice, "Cellar sensor")
    Device.objects.filter(pk=device.pk).update(last_seen=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    log_in(page, "alice")

    page.goto(f"/devices/{device.pk}/")
    header = page.locator(f'.subtitle [data-last-seen-for="{device.pk}"]')
    written = page.evaluate("IoTFlowLive.formatTime('2026-01-02T03:04:05Z')")
    assert "4:04:05" in written, "the browser's format, with seconds, in the user's time zone"
    expect(header).to_have_text(written)

    wait_until_following(page, device.pk)
    an_hour_ago = {"data": {"temperature": 20.5}, "timestamp": now_ms() - 3_600_000}
    response = device.client().post("/api/v1/telemetry", an_hour_ago, format="json")
    assert response.status_code == 201
    expect(header).not_to_have_text(written)
    device.device.refresh_from_db()
    updated = page.evaluate("(ts) => IoTFlowLive.formatTime(ts)", device.device.last_seen.isoformat())
    expect(header).to_have_text(updated)  # heard from now, though the reading is an hour old

    go_to(page, "Devices")
    row_time = page.locator(f'#device-results [data-last-seen-for="{device.pk}"]')
    expect(row_time).to_have_text(updated)
    page.get_by_label("Search").fill("Hall")
    expect(page.get_by_text("Cellar sensor")).to_have_count(0)
    expect(row_time).to_have_text(updated)


def test_times_read_alike_whichever_side_wrote_them(page, live_server, live_socket, make_user, make_device):
    alice = make_user("alice", time_zone="Europe/Paris")
    device = make_device(alice, "Porch light")
    earlier = Command.objects.create(device=device.device, action="turn_on")
    Command.objects.filter(pk=earlier.pk).update(created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    german = page.context.browser.new_context(base_url=live_server.url, locale="de-DE")
    try:
        browser_page = german.new_page()
        log_in(browser_page, "alice")
        browser_page.goto(f"/devices/{device.pk}/commands")
        server_written = browser_page.locator(f"#command-{earlier.pk} time")
        expect(server_written).to_have_text("Jan 2, 2026, 4:04:05 AM")
        browser_written = "(ts) => IoTFlowLive.formatTime(ts)"
        assert browser_page.evaluate(browser_written, "2026-01-02T03:04:05Z") == "Jan 2, 2026, 4:04:05 AM", (
            "the page's language, not the browser's German"
        )

        wait_until_following(browser_page, device.pk)
        browser_page.get_by_label("Action").fill("turn_off")
        browser_page.get_by_role("button", name="Send command").click()
        latest = Command.objects.exclude(pk=earlier.pk).get(device=device.device)
        live_row = browser_page.locator(f"#command-{latest.pk} time")
        expect(live_row).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M$"))
    finally:
        german.close()


def test_live_tiles_read_the_same_before_and_after_a_live_update(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    door = make_device(alice, "Garage door")
    reading = {"locked": True, "humidity": 60.0, "temperature": 21.123456, "door": "open", "battery": 87}
    assert door.client().post("/api/v1/telemetry", {"data": reading}, format="json").status_code == 201
    log_in(page, "alice")
    page.goto(f"/devices/{door.pk}/live")
    tiles = page.locator("#live-values .live-value__value")
    server_written = tiles.all_inner_texts()
    assert server_written == ["87", "open", "60", "true", "21.123"], "battery, door, humidity, locked, temperature"

    wait_until_following(page, door.pk)
    page.evaluate("document.querySelectorAll('#live-values .live-value__value').forEach((v) => (v.textContent = ''))")
    assert door.client().post("/api/v1/telemetry", {"data": reading}, format="json").status_code == 201
    expect(tiles).to_have_text(server_written)

    catching_up = {"data": {"battery": 12, "co2": 420}, "timestamp": now_ms() - 3_600_000}
    assert door.client().post("/api/v1/telemetry", catching_up, format="json").status_code == 201
    names = page.locator("#live-values .live-value__name")
    expect(names).to_have_text(["battery", "co2", "door", "humidity", "locked", "temperature"])
    # The hour-old battery reading is not the newest: the tile keeps 87, as a reload shows.
    expect(tiles).to_have_text(["87", "420", "open", "60", "true", "21.123"])
    page.reload()
    expect(tiles).to_have_text(["87", "420", "open", "60", "true", "21.123"])


def test_the_history_tab_marks_a_few_readings_and_says_why_text_has_no_chart(page, make_user, make_device):
    alice = make_user("alice")
    door = make_device(alice, "Garage door")
    for state in ("open", "closed"):
        reading = {"door": state, "battery": 87, "locked": True}
        assert door.client().post("/api/v1/telemetry", {"data": reading}, format="json").status_code == 201
    log_in(page, "alice")
    page.goto(f"/devices/{door.pk}/history")
    charts_drawn(page, 3)
    text_card = page.get_by_role("region", name="door history")
    expect(text_card).to_contain_text("Text values are not charted; the newest is shown above.")
    expect(text_card.locator(".chart__latest")).to_have_text("closed")
    marked = page.evaluate(
        "Object.fromEntries([...IoTFlowCharts.charts].filter((c) => c.plot)"
        ".map((c) => [c.data.series[0].measurement, c.plot.series[1].points.show(c.plot, 1)]))"
    )
    assert marked == {"battery": True, "locked": True}, "one window each: a mark, not an invisible line"


def test_a_command_sent_from_the_page_changes_status_live(page, live_socket, make_user, make_device):
    alice = make_user("alice")
    device = make_device(alice, "Bedroom purifier", device_type="air_purifier")
    log_in(page, "alice")
    page.goto(f"/devices/{device.pk}/commands")
    page.get_by_label("Action").fill("set_fan_speed")
    page.get_by_label("Parameters").fill('{"speed": 3}')
    page.get_by_role("button", name="Send command").click()

    command = Command.objects.get(device=device.device)
    row = page.locator(f"#command-{command.pk}")
    expect(row.locator('[data-field="status"]')).to_have_text("pending")
    wait_until_following(page, device.pk)
    page.evaluate("window.notReloaded = true")

    answer = device.client().post(f"/api/v1/devices/commands/{command.pk}/ack", {"status": "ok"}, format="json")
    assert answer.status_code == 200, answer.content
    expect(row.locator('[data-field="status"]')).to_have_text("acknowledged")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "device-commands")


def test_a_second_user_cannot_see_the_first_users_device(page, make_user, make_device):
    alice = make_user("alice")
    make_user("bob")
    device = make_device(alice, "Alice's secret sensor")
    log_in(page, "bob")
    go_to(page, "Devices")
    expect(page.get_by_text("No devices match.")).to_be_visible()
    expect(page.get_by_text("Alice's secret sensor")).to_have_count(0)
    response = page.goto(f"/devices/{device.pk}/live")
    assert response.status == 404
    assert "Alice's secret sensor" not in page.content()
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
