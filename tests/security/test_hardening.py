"""Hardening: secrets stored as hashes only and never logged, deployment checks, headers, admin, login throttling."""

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from devices.models import Device, mqtt_password_for
from tests.conftest import session_client

from ._matrix import Tally, build_estate, record_figure

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pass-123"


def every_stored_value() -> str:
    """All rows of all tables Django knows (sessions and admin log too), as one string to search."""
    dump = []
    for model in apps.get_models(include_auto_created=True):
        for row in model._default_manager.values_list():
            dump.append(json.dumps(row, default=str))
    return "\n".join(dump)


def register_device(owner_password: str = PASSWORD, name: str = "purifier") -> dict:
    body = {"name": name, "username": "alice", "password": owner_password}
    response = APIClient().post("/api/v1/devices/register", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["device"]


def issue_token_on_page(client: Client) -> str:
    response = client.post("/accounts/tokens/", {"name": "ci"})
    token = response.context["new_token"]
    assert token and token in response.text
    return token


def test_keys_and_tokens_are_stored_only_as_hashes(alice):
    """No clear-text key, token, MQTT password or user password in any column of any table."""
    device = register_device()
    client = session_client(alice)
    token = issue_token_on_page(client)
    rotated = client.post(f"/devices/{device['id']}/keys/rotate").context["api_key"]
    shown = {
        "api key": device["api_key"],
        "rotated api key": rotated,
        "personal token": token,
        "mqtt password": mqtt_password_for(Device.objects.get(pk=device["id"])),
        "user password": PASSWORD,
    }

    stored = every_stored_value()

    assert not [label for label, value in shown.items() if value in stored]
    row = ApiToken.objects.get(user=alice, name="ci")
    assert len(row.token_hash) == 64 and token.startswith(row.token_prefix) and len(row.token_prefix) < 16
    assert Device.objects.get(pk=device["id"]).api_key_prefix == rotated[:8]


def test_no_secret_reaches_the_logs(caplog, alice):
    """Register, rotate, log in (right and wrong), use tokens and keys, with every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    device = register_device()
    key = device["api_key"]
    APIClient().post("/api/v1/devices/register", {"name": "x", "username": "alice", "password": "wrong-pass"})
    browser = Client()
    browser.post("/accounts/login/", {"username": "alice", "password": "not-" + PASSWORD})
    browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    token = issue_token_on_page(browser)
    rotated = browser.post(f"/devices/{device['id']}/keys/rotate").context["api_key"]
    keyed = APIClient()
    for used_key in (key, rotated, rotated + "x"):
        keyed.credentials(HTTP_X_API_KEY=used_key)
        keyed.post("/api/v1/telemetry", {"data": {"temperature": 20}}, format="json")
        keyed.get("/api/v1/devices/mqtt-credentials")
    mqtt_password = mqtt_password_for(Device.objects.get(pk=device["id"]))
    tokened = APIClient()
    for used_token in (token, token + "x"):
        tokened.credentials(HTTP_AUTHORIZATION=f"Token {used_token}")
        tokened.get("/api/v1/devices")
    assert caplog.records, "nothing was logged at all: the capture is not working"

    secrets_used = {"key": key, "rotated": rotated, "token": token, "password": PASSWORD, "mqtt": mqtt_password}
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert not [label for label, value in secrets_used.items() if value in logged]


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    """The variables docs/operations.md names as required in production, nothing more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DEBUG"))}
    env.update(
        IOTFLOW_PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="iot.example.com",
        MQTT_PASSWORD=secrets.token_urlsafe(16),
        MQTT_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        IOTFLOW_VAR_DIR=str(tmp_path),
        **extra,
    )
    return env


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_defaults(tmp_path):
    result = run_manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_debug_left_on_in_production(tmp_path):
    result = run_manage(production_env(tmp_path, DEBUG="1"), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0 and "security.W018" in result.stderr + result.stdout


PRODUCTION_PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.test import Client
response = Client().get("/api/v1/devices", secure=True, HTTP_HOST="iot.example.com")
plain = Client().get("/api/v1/devices", HTTP_HOST="iot.example.com")
print(json.dumps({
    "status": response.status_code,
    "hsts": response.get("Strict-Transport-Security", ""),
    "plain_http": [plain.status_code, plain.get("Location", "")],
    "cookies": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY, settings.CSRF_COOKIE_SECURE],
}))
"""


def test_production_sends_hsts_redirects_to_https_and_marks_cookies_secure(tmp_path):
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE="iotflow.settings")
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["status"] == 401
    assert "max-age=31536000" in seen["hsts"] and "includeSubDomains" in seen["hsts"]
    assert seen["plain_http"] == [301, "https://iot.example.com/api/v1/devices"]
    assert seen["cookies"] == [True, True, True], "session cookie Secure + HttpOnly, CSRF cookie Secure"


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/devices", "/no-such-page", "/health"])
def test_every_response_carries_the_security_headers(path):
    response = Client().get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_session_cookie_is_http_only(alice):
    response = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"] is True
    assert response.cookies["sessionid"]["samesite"] == "Lax"


def test_login_after_too_many_failures_is_refused_even_with_the_right_password(request, alice, settings):
    browser = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert browser.post("/accounts/login/", {"username": "alice", "password": "guess"}).status_code == 200

    response = browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200 and "_auth_user_id" not in browser.session
    assert Client().post("/accounts/login/", {"username": "bob", "password": "x"}).status_code == 200
    record_figure(
        request, "login: attempt after the failure limit refused", "1/1", f"limit {settings.LOGIN_FAILURE_LIMIT}"
    )


def admin_urls() -> list[str]:
    """The admin's index, and each registered model's list, add, change, delete and history pages."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls += [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        obj = model._default_manager.first()
        if obj is not None:
            for view in ("change", "delete", "history"):
                urls.append(reverse(f"{name}_{view}", args=[obj.pk]))
    return urls


def test_admin_sends_non_staff_to_its_login(request, make_user):
    build_estate(make_user("victim"), "victim")
    attacker = build_estate(make_user("attacker"), "attacker")
    browser = session_client(attacker.user)
    tally = Tally()

    for url in admin_urls():
        for method in ("get", "post"):
            response = getattr(browser, method)(url)
            to_login = response.status_code == 302 and response["Location"].startswith("/admin/login/")
            tally.record(f"{method.upper()} {url}", 403 if to_login else response.status_code)

    record_figure(request, "admin: non-staff user on every admin page", tally.figure)
    assert not tally.holes, tally.holes


def test_staff_without_permissions_sees_and_changes_no_model(make_user, device):
    clerk = make_user("clerk", is_staff=True)
    browser = session_client(clerk)

    index = browser.get("/admin/")
    assert index.status_code == 200 and not index.context["app_list"]
    assert browser.get("/admin/devices/device/").status_code == 403
    assert browser.get(f"/admin/devices/device/{device.pk}/change/").status_code == 403
    assert browser.get("/admin/accounts/apitoken/").status_code == 403
    assert browser.post(f"/admin/devices/device/{device.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Device.objects.filter(pk=device.pk).exists()


def test_staff_with_view_permission_only_cannot_change(make_user, device):
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_device"))
    browser = session_client(clerk)

    assert browser.get("/admin/devices/device/").status_code == 200
    change = browser.post(
        f"/admin/devices/device/{device.pk}/change/", {"name": "renamed", "owner": device.device.owner_id}
    )
    assert change.status_code == 403
    assert browser.post(f"/admin/devices/device/{device.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Device.objects.get(pk=device.pk).name == "alice-sensor"
    assert browser.get("/admin/accounts/user/").status_code == 403
