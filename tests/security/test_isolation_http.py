"""HTTP isolation matrix: one device's key and one user's login against every URL holding another's objects.

Every URL pattern with an object id is filled with the victim's objects (and, where a URL names two
objects, with the attacker's own first object and the victim's second), then requested with GET and
each modifying method carrying a plausible body. Each attempt must be refused (401/403/404, or the
login redirect for a page) and leave every row of the product's tables as it was.
"""

import json

import pytest
from django.test import Client
from django.urls import resolve
from rest_framework.test import APIClient

from devices.authentication import DeviceKeyAuthentication
from tests.conftest import session_client

from ._matrix import MODIFYING, Estate, Route, Tally, build_estate, changes, record_figure, routes, snapshot

pytestmark = pytest.mark.django_db

# Plausible fields of the product's forms and serializers, so a missing ownership check would act.
HOSTILE_BODY = {
    "name": "taken-over",
    "title": "taken-over",
    "description": "taken-over",
    "status": "inactive",
    "action": "reboot",
    "params": {"power": "off"},
    "configuration": {"interval": 1},
    "measurement": "temperature",
    "measurements": ["temperature"],
    "operator": "<",
    "threshold": 1,
    "enabled": False,
    "devices": [],
    "duration_minutes": 5,
    "minutes": 5,
    "days": [0],
    "start_time": "01:00",
    "end_time": "02:00",
}
# Where the generic body would be refused as malformed before reaching the ownership check.
ROUTE_BODIES = {"api/v1/devices/commands/<uuid:command_id>/ack": {"status": "ok", "result": {"state": {"power": "on"}}}}


@pytest.fixture
def victim(make_user) -> Estate:
    return build_estate(make_user("victim"), "victim")


@pytest.fixture
def attacker(make_user) -> Estate:
    return build_estate(make_user("attacker"), "attacker")


def targets(attacker: Estate, victim: Estate) -> list[tuple[Route, str]]:
    """Every URL with ids, filled with the victim's objects, plus the attacker's parent with the victim's child."""
    found = []
    for route in routes():
        if not route.params:
            continue
        found.append((route, route.fill(victim.values_for(route))))
        if len(route.params) > 1:
            found.append((route, route.fill(attacker.values_for(route, foreign=victim))))
    return found


def accepts_device_keys(url: str) -> bool:
    view_class = getattr(resolve(url).func, "cls", None)
    return any(issubclass(a, DeviceKeyAuthentication) for a in getattr(view_class, "authentication_classes", []))


def attempt(client, method: str, route: Route, url: str):
    """One request; API requests carry JSON, pages a form post as a browser would send it."""
    call = getattr(client, method)
    body = ROUTE_BODIES.get(route.route, HOSTILE_BODY)
    if method == "get":
        return call(url)
    if route.is_api:
        return call(url, json.dumps(body), content_type="application/json")
    form = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in body.items()}
    if method == "post":
        return call(url, form)
    return call(url, "&".join(f"{k}={v}" for k, v in form.items()), content_type="application/x-www-form-urlencoded")


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and "/accounts/login/" in response.get("Location", "")


def run_matrix(client, tally: Tally, urls: list[tuple[Route, str]], *, api_only: bool = False, redirect_ok=False):
    before = snapshot()
    for route, url in urls:
        if api_only and not route.is_api:
            continue
        for method in ("get", *MODIFYING):
            response = attempt(client, method, route, url)
            after = snapshot()
            changed, before = changes(before, after), after
            status = response.status_code
            if redirect_ok and is_login_redirect(response):
                status = 401
            tally.record(f"{method.upper()} {url}", status, changed=bool(changed))


def test_every_route_with_an_id_is_classified(attacker, victim):
    urls = targets(attacker, victim)

    assert len({route.route for route, _ in urls}) >= 50, "the resolver walk lost most of the site"
    assert any(route.route.startswith("api/v1/telemetry/") for route, _ in urls)
    assert any(route.route.startswith("dashboards/") for route, _ in urls)


def test_device_key_reaches_no_other_devices_objects(request, attacker, victim):
    """Device A's key on every URL naming device B's objects: refused, nothing changes."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=attacker.key)
    urls = targets(attacker, victim)
    device_urls = [(r, u) for r, u in urls if accepts_device_keys(u)]
    other_urls = [(r, u) for r, u in urls if not accepts_device_keys(u)]
    assert device_urls, "no endpoint accepts device keys any more?"

    on_device_endpoints, elsewhere = Tally(), Tally()
    run_matrix(client, on_device_endpoints, device_urls)
    run_matrix(client, elsewhere, other_urls, redirect_ok=True)

    record_figure(request, "device key A on device endpoints of device B", on_device_endpoints.figure)
    record_figure(request, "device key A on every other URL with B's ids", elsewhere.figure)
    assert not on_device_endpoints.holes, on_device_endpoints.holes
    assert not elsewhere.holes, elsewhere.holes


def test_telemetry_naming_another_device_in_its_body_stays_with_the_sender(attacker, victim):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=attacker.key)
    before = snapshot()

    response = client.post(
        "/api/v1/telemetry",
        {"device_id": victim.device.pk, "device": victim.device.pk, "data": {"temperature": -40}},
        format="json",
    )

    assert response.status_code == 201 and response.json()["device_id"] == attacker.device.pk
    changed = changes(before, snapshot())
    victim_rows = [row for rows in changed.values() for row in rows if str(victim.device.pk) in row[:3]]
    assert not any("victim" in "".join(row) for row in victim_rows), changed


def test_user_reaches_no_other_users_objects(request, attacker, victim):
    """User A's session on every page and API URL, and A's token on every API URL, naming B's objects."""
    urls = targets(attacker, victim)
    by_session, by_token = Tally(), Tally()

    run_matrix(session_client(attacker.user), by_session, urls)
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {attacker.token}")
    run_matrix(token, by_token, urls, api_only=True)

    record_figure(request, "user A (session) on pages + API with B's objects", by_session.figure)
    record_figure(request, "user A (token) on API with B's objects", by_token.figure)
    assert not by_session.holes, by_session.holes
    assert not by_token.holes, by_token.holes


def test_anonymous_reaches_no_objects(request, attacker, victim):
    tally = Tally()

    run_matrix(Client(), tally, targets(attacker, victim), redirect_ok=True)

    record_figure(request, "anonymous on every URL with B's objects", tally.figure)
    assert not tally.holes, tally.holes


STAFF_VISIBLE = (
    "api/v1/devices/<int:pk>",
    "api/v1/telemetry/",
    "api/v1/admin/",
    "api/v1/dashboards/",
    "api/v1/charts/",
)


def test_staff_reads_every_device_and_its_data(request, staff, attacker, victim):
    """Staff see all devices and their telemetry, commands and dashboards (notifications stay personal)."""
    client = APIClient()
    client.force_authenticate(staff)
    granted, tried, refused = 0, 0, []
    for route in routes():
        if not route.params or not route.route.startswith(STAFF_VISIBLE):
            continue
        url = route.fill(victim.values_for(route))
        response = client.get(url, {"field": "temperature"} if url.endswith("/aggregated") else None)
        if response.status_code == 405:
            continue
        tried += 1
        if response.status_code == 200:
            granted += 1
        else:
            refused.append(f"GET {url} -> {response.status_code}")

    record_figure(
        request, "staff reads of B's devices, data and dashboards", f"{granted}/{tried}", name="granted/attempts"
    )
    assert tried >= 10
    assert not refused, refused


def test_rotated_device_key_is_refused_at_once(request, attacker):
    """The owner's "new key" button: the old key fails on the very next request, even right after a cached use."""
    old = APIClient()
    old.credentials(HTTP_X_API_KEY=attacker.key)
    assert old.get("/api/v1/devices/status").status_code == 200  # the key is now cached

    response = session_client(attacker.user).post(f"/devices/{attacker.device.pk}/keys/rotate")

    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    telemetry = old.post("/api/v1/telemetry", {"data": {"t": 1}}, format="json")
    refused = [old.get("/api/v1/devices/status").status_code, telemetry.status_code]
    assert refused == [401, 401]
    record_figure(request, "HTTP: old device key refused right after rotation", f"{refused.count(401)}/{len(refused)}")


def test_revoked_token_is_refused_at_once(request, attacker):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {attacker.token}")
    assert client.get("/api/v1/devices").status_code == 200

    session_client(attacker.user).post(f"/accounts/tokens/{attacker.ids['token']}/revoke")

    refused = [client.get("/api/v1/devices").status_code, client.post("/api/v1/groups", {"name": "x"}).status_code]
    assert refused == [401, 401]
    record_figure(request, "HTTP: revoked personal token refused at once", f"{refused.count(401)}/{len(refused)}")


def test_token_and_session_of_a_deactivated_user_are_refused(attacker):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {attacker.token}")
    browser = session_client(attacker.user)
    attacker.user.is_active = False
    attacker.user.save()

    assert client.get("/api/v1/devices").status_code == 401
    assert is_login_redirect(browser.get("/devices/"))
