"""An operator rotates a device's API key from the admin, in a real browser."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import hash_secret
from devices.models import Device

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect

SCREENSHOT = settings.VAR_DIR / "screenshots" / "admin-device.png"


def test_operator_rotates_a_device_key(page, make_user, make_device):
    make_user("root", password="operator-pass-123", is_staff=True, is_superuser=True)
    owner = make_user("alice")
    device = make_device(owner, "greenhouse-1", location="Greenhouse A")
    old_key = device.key
    reading = {"data": {"temperature": 21.5, "humidity": 64, "door_open": False}}
    assert device.client().post("/api/v1/telemetry", reading, format="json").status_code == 201

    page.goto("/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_have_text("IoTFlow administration")

    page.click("#content-main a[href$='/devices/device/']")
    page.get_by_role("link", name="greenhouse-1", exact=True).click()
    expect(page.get_by_role("heading", name=f"greenhouse-1 (#{device.pk})")).to_be_visible()
    expect(page.locator("table.latest-values")).to_contain_text("humidity")
    expect(page.get_by_role("link", name="3 points")).to_be_visible()
    page.get_by_role("link", name="Rotate API key").click()
    page.get_by_role("button", name="Yes, rotate the key").click()

    message = page.locator(".messagelist .warning")
    expect(message).to_contain_text("New API key")
    new_key = message.locator("code").inner_text()
    device.device.refresh_from_db()
    assert device.device.api_key_hash == hash_secret(new_key)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    api = APIClient()
    assert api.get("/api/v1/devices/status", HTTP_X_API_KEY=old_key).status_code == 401
    assert api.get("/api/v1/devices/status", HTTP_X_API_KEY=new_key).status_code == 200
    assert Device.objects.get(pk=device.pk).key_rotated_at is not None

    page.reload()
    expect(page.locator(".messagelist")).to_have_count(0)
    assert new_key not in page.content()
