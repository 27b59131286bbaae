"""Account pages: log in and out, password change, sign-up switch, profile and time zone, API tokens."""

import re
from datetime import UTC, datetime

from django.test import Client

from accounts.models import ApiToken, User
from devices.models import Device
from tests.conftest import session_client, token_client


def test_log_in_and_out(alice):
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in page and "csrfmiddlewaretoken" in page
    bad = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 200 and "enter a correct username and password" in bad.content.decode()
    good = client.post(
        "/accounts/login/?next=/devices/", {"username": "alice", "password": "s3cret-pass-123", "next": "/devices/"}
    )
    assert good["Location"] == "/devices/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_change_password(alice):
    client = session_client(alice)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "s3cret-pass-123",
            "new_password1": "a-new-long-pass-42",
            "new_password2": "a-new-long-pass-42",
        },
    )
    assert response["Location"] == "/accounts/password/done/"
    alice.refresh_from_db()
    assert alice.check_password("a-new-long-pass-42")


def test_sign_up_is_off_by_default(db):
    assert Client().get("/accounts/signup/").status_code == 404
    assert "Sign up" not in Client().get("/accounts/login/").content.decode()


def test_sign_up_when_switched_on(db, settings):
    settings.SIGNUP_ENABLED = True
    client = Client()
    assert "Sign up" in client.get("/accounts/login/").content.decode()
    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "email": "c@example.com", "time_zone": "Asia/Tokyo",
         "password1": "carol-long-pass-7", "password2": "carol-long-pass-7"},
    )  # fmt: skip
    assert response.status_code == 302
    assert User.objects.get(username="carol").time_zone == "Asia/Tokyo"
    assert client.get("/").status_code == 200, "signed in at once"


def test_profile_sets_time_zone_and_muted_kinds_and_every_time_follows(alice, device):
    client = session_client(alice)
    response = client.post(
        "/accounts/profile/",
        {"email": "a@example.com", "time_zone": "America/New_York", "muted_notification_kinds": ["device_online"]},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.time_zone == "America/New_York" and alice.muted_notification_kinds == ["device_online"]
    Device.objects.filter(pk=device.pk).update(created_at=datetime(2025, 7, 1, 12, 0, tzinfo=UTC))
    page = client.get(f"/devices/{device.pk}/").content.decode()
    assert "Jul 1, 2025, 8:00:00 AM" in page, "12:00 UTC is 8 a.m. in New York"
    assert "times shown in America/New_York" in page


def test_tokens_are_shown_once_and_revocable(alice):
    client = session_client(alice)
    response = client.post("/accounts/tokens/", {"name": "backup"})
    raw = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=alice)
    assert token.name == "backup" and raw.startswith(token.token_prefix)
    assert raw not in client.get("/accounts/tokens/").content.decode()

    api = Client(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.get("/api/v1/devices").status_code == 200
    client.post(f"/accounts/tokens/{token.pk}/revoke")
    assert api.get("/api/v1/devices").status_code == 401


def test_tokens_of_others_cannot_be_revoked(alice, bob):
    token, _ = ApiToken.issue(bob)
    assert session_client(alice).post(f"/accounts/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.is_active
    assert token_client(bob).get("/api/v1/devices").status_code == 200
