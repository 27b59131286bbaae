"""A user's notification center over the API, and muting kinds of notifications."""

import pytest

from devices import health
from devices.models import HealthEvent
from notifications import notify
from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"


def test_list_shows_only_the_callers_notifications_newest_first(alice_client, alice, bob):
    notify(alice, "info", "First")
    notify(bob, "info", "Bob's")
    notify(alice, "warning", "Second", kind="device_offline")
    titles = [n["title"] for n in alice_client.get(URL).json()["results"]]
    assert titles == ["Second", "First"]


def test_staff_see_only_their_own_notifications_too(admin_client_api, alice, staff):
    notify(alice, "info", "For alice")
    notify(staff, "info", "For the operator")
    assert [n["title"] for n in admin_client_api.get(URL).json()["results"]] == ["For the operator"]


def test_unread_count_mark_read_and_read_all(alice_client, alice):
    first = notify(alice, "info", "One")
    notify(alice, "info", "Two")
    notify(alice, "info", "Three")
    assert alice_client.get(f"{URL}/unread-count").json() == {"unread": 3}

    read = alice_client.post(f"{URL}/{first.pk}/read")
    assert read.status_code == 200 and read.json()["is_read"] is True
    read_at = read.json()["read_at"]
    assert alice_client.post(f"{URL}/{first.pk}/read").json()["read_at"] == read_at, "the first read time stays"
    assert alice_client.get(f"{URL}/unread-count").json() == {"unread": 2}
    assert [n["title"] for n in alice_client.get(URL, {"unread": "true"}).json()["results"]] == ["Three", "Two"]

    assert alice_client.post(f"{URL}/read-all").json() == {"marked": 2}
    assert alice_client.get(f"{URL}/unread-count").json() == {"unread": 0}


def test_another_users_notification_is_404(bob_client, alice):
    notification = notify(alice, "info", "Private")
    assert bob_client.get(f"{URL}/{notification.pk}").status_code == 404
    assert bob_client.post(f"{URL}/{notification.pk}/read").status_code == 404
    assert bob_client.delete(f"{URL}/{notification.pk}").status_code == 404
    assert bob_client.post(f"{URL}/read-all").json() == {"marked": 0}
    notification.refresh_from_db()
    assert notification.read_at is None


def test_filters_by_kind_and_level(alice_client, alice):
    notify(alice, "warning", "Offline", kind="device_offline")
    notify(alice, "error", "Failed", kind="command_failed")
    assert [n["title"] for n in alice_client.get(URL, {"kind": "command_failed"}).json()["results"]] == ["Failed"]
    assert [n["title"] for n in alice_client.get(URL, {"level": "warning"}).json()["results"]] == ["Offline"]


def test_anonymous_callers_are_refused():
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code in (401, 403)


class TestMuting:
    def test_preferences_list_kinds_and_save_muted_ones(self, alice_client, alice):
        body = alice_client.get(f"{URL}/preferences").json()
        assert body["muted_kinds"] == []
        assert {"kind": "device_offline", "label": "Device offline"} in body["kinds"]

        saved = alice_client.put(f"{URL}/preferences", {"muted_kinds": ["device_online", "alert"]}, format="json")
        assert saved.status_code == 200 and saved.json()["muted_kinds"] == ["alert", "device_online"]
        alice.refresh_from_db()
        assert alice.muted_notification_kinds == ["alert", "device_online"]

    def test_unknown_kind_is_refused(self, alice_client):
        response = alice_client.put(f"{URL}/preferences", {"muted_kinds": ["everything"]}, format="json")
        assert response.status_code == 400 and "muted_kinds" in response.json()["errors"]

    def test_muted_kind_is_neither_saved_nor_pushed(self, alice):
        alice.muted_notification_kinds = ["device_offline"]
        alice.save()
        assert notify(alice, "warning", "Gone", kind="device_offline") is None
        assert notify(alice, "warning", "Still told", kind="device_stale") is not None
        assert notify(alice, "info", "No kind, never muted") is not None
        assert list(Notification.objects.values_list("title", flat=True).order_by("id")) == [
            "Still told",
            "No kind, never muted",
        ]

    def test_muted_health_changes_are_still_recorded(self, alice, device):
        alice.muted_notification_kinds = ["device_online"]
        alice.save()
        health.mark_seen(device.device, reason="heartbeat", force=True)
        assert HealthEvent.objects.filter(device=device.device, state="online").exists()
        assert not Notification.objects.exists()
