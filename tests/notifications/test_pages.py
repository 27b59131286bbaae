"""Pages of the notification center, alerts and alert rules."""

import pytest

from notifications import notify
from notifications.models import Alert, AlertRule, Notification
from tests.conftest import session_client


@pytest.fixture
def rule(alice, device) -> AlertRule:
    return AlertRule.objects.create(
        owner=alice, name="Too hot", device=device.device, measurement="temperature", operator=">", threshold=30
    )


def test_rule_form_creates_a_rule_that_fires(alice, device):
    client = session_client(alice)
    response = client.post(
        "/alerts/rules/new",
        {"name": "Too hot", "device": device.pk, "measurement": "temperature", "operator": ">",
         "threshold": "30", "severity": "high", "cooldown": "60", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    device.client().post("/api/v1/telemetry", {"data": {"temperature": 35}}, format="json")
    alert = Alert.objects.get()
    assert (alert.name, alert.severity, alert.value) == ("Too hot", "high", 35.0)
    page = client.get("/alerts/").content.decode()
    assert "Too hot" in page and "Acknowledge" in page
    overview = client.get("/").content.decode()
    assert '<span class="stat-tile__value">1</span><span class="stat-tile__label">Open alerts' in overview


def test_rule_needs_a_device_or_a_group(alice, device):
    response = session_client(alice).post(
        "/alerts/rules/new",
        {"name": "x", "measurement": "t", "operator": ">", "threshold": "1", "severity": "low", "cooldown": "0"},
    )
    assert response.status_code == 200 and "Choose either a device or a group." in response.content.decode()


def test_acknowledge_then_resolve(alice, rule, device):
    device.client().post("/api/v1/telemetry", {"data": {"temperature": 40}}, format="json")
    alert = Alert.objects.get()
    client = session_client(alice)
    client.post(f"/alerts/{alert.pk}/acknowledge", follow=True)
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == alice
    page = client.post(f"/alerts/{alert.pk}/resolve", {"next": "/alerts/?status=resolved"}, follow=True)
    assert page.redirect_chain == [("/alerts/?status=resolved", 302)]
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert "Too hot" not in client.get("/alerts/").content.decode(), "resolved alerts leave the default list"
    assert "Too hot" in client.get("/alerts/?status=resolved").content.decode()


def test_others_rules_and_alerts_are_not_found(bob, rule, device):
    device.client().post("/api/v1/telemetry", {"data": {"temperature": 40}}, format="json")
    alert = Alert.objects.get()
    client = session_client(bob)
    assert client.get(f"/alerts/rules/{rule.pk}/edit").status_code == 404
    assert client.post(f"/alerts/{alert.pk}/resolve").status_code == 404
    assert "Too hot" not in client.get("/alerts/").content.decode()
    alert.refresh_from_db()
    assert alert.status == "open"


def test_notification_center_marks_read(alice, bob):
    first = notify(alice, "info", "First")
    notify(alice, "warning", "Second")
    notify(bob, "info", "Bob's own")
    client = session_client(alice)
    page = client.get("/notifications/").content.decode()
    assert "First" in page and "Second" in page and "Bob's own" not in page
    assert 'data-count="2"' in page
    client.post(f"/notifications/{first.pk}/read")
    assert "First" not in client.get("/notifications/?unread=1").content.decode()
    client.post("/notifications/read-all")
    assert not Notification.objects.filter(user=alice, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=bob, read_at__isnull=True).count() == 1
    assert session_client(bob).post(f"/notifications/{first.pk}/read").status_code == 404
