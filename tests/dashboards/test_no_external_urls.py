"""Every page works offline: no script, style or link points to another host (no CDN)."""

import re

import pytest

from dashboards.models import Chart, Dashboard
from tests.conftest import session_client

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


@pytest.fixture
def pages(alice, device, settings):
    settings.SIGNUP_ENABLED = True
    dashboard = Dashboard.objects.create(owner=alice, name="Home")
    chart = Chart.objects.create(dashboard=dashboard, title="T", measurements=["t"])
    d, c, v = dashboard.pk, chart.pk, device.pk
    return [
        "/", "/devices/", "/devices/add", "/devices/groups/", f"/devices/{v}/", f"/devices/{v}/live",
        f"/devices/{v}/history", f"/devices/{v}/commands", f"/devices/{v}/keys", "/dashboards/", f"/dashboards/{d}/",
        f"/dashboards/{d}/charts/new", f"/dashboards/charts/{c}/edit", "/notifications/", "/alerts/", "/alerts/rules/",
        "/alerts/rules/new", "/accounts/profile/", "/accounts/tokens/", "/accounts/password/",
    ]  # fmt: skip


def other_hosts(html: str) -> list[str]:
    return [url for url in URL.findall(html) if not re.match(r"(https?:)?//testserver(/|$)", url)]


def test_no_page_loads_anything_from_another_host(alice, pages):
    client = session_client(alice)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert other_hosts(response.content.decode()) == [], url


def test_anonymous_pages_too(db, settings):
    settings.SIGNUP_ENABLED = True
    from django.test import Client

    for url in ["/accounts/login/", "/accounts/signup/"]:
        assert other_hosts(Client().get(url).content.decode()) == [], url


def test_the_check_would_catch_a_cdn():
    assert other_hosts('<script src="https://cdn.example.com/x.js"></script><a href="//evil.test/">') == [
        "https://cdn.example.com/x.js",
        "//evil.test/",
    ]
