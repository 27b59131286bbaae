"""The device lane answers plain device requests as Django's full stack does, and hands it the rest.

Every request here goes to the product's WSGI application (the lane in front of Django's
handler) and to Django's handler alone: status, headers and body must be the same byte for
byte. Which of the two answered shows in the sender of ``request_started``.
"""

import io
import json
import logging
import sys

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from prometheus_client import REGISTRY

from iotflow.device_lane import DeviceLane
from telemetry import ingest
from telemetry.backends import get_backend

READING = {"data": {"temperature": 21.5, "mode": "eco"}, "timestamp": 1751466600000}
BATCH = [{"data": {"temperature": 20.0}, "timestamp": 1751466601000}, {"data": {"humidity": 40}}]


class Sent:
    def __init__(self, status: int, headers: list, body: bytes, senders: list):
        self.status, self.headers, self.body, self.senders = status, headers, body, senders

    @property
    def answer(self) -> tuple:
        return self.status, self.headers, self.body


def call(app, method: str, path: str, body: bytes | dict | list = b"", query: str = "", **headers) -> Sent:
    """``app`` called as gunicorn calls it, its answer read and closed."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/json",
        **headers,
    }  # fmt: skip
    started: list = []
    heard = lambda sender, **kwargs: started.append(sender)  # noqa: E731
    request_started.connect(heard)
    status: list = []
    try:
        result = app(environ, lambda line, response_headers: status.append((line, response_headers)))
        try:
            content = b"".join(result)
        finally:
            result.close()
    finally:
        request_started.disconnect(heard)
    return Sent(int(status[0][0].split()[0]), status[0][1], content, started)


@pytest.fixture
def keep_test_connection():
    """As Django's test client: a test's transaction survives the request signals closing old connections."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def apps(keep_test_connection):
    """The product's application and Django's handler alone."""
    django = WSGIHandler()
    return DeviceLane(django), django


def both(apps, *args, **kwargs) -> tuple[Sent, Sent]:
    lane, django = apps
    return call(lane, *args, **kwargs), call(django, *args, **kwargs)


def answered_by_lane(sent: Sent) -> bool:
    """The lane starts every request it looks at; one it hands over is started again by Django's handler."""
    return sent.senders == [DeviceLane]


@pytest.mark.parametrize("body", [READING, BATCH], ids=["one record", "batch"])
def test_a_plain_post_is_answered_in_the_lane_as_django_answers_it(apps, device, body):
    lane, django = both(apps, "POST", "/api/v1/telemetry", body, HTTP_X_API_KEY=device.key)
    assert answered_by_lane(lane)
    assert lane.answer == django.answer
    assert lane.status == 201
    assert dict(lane.headers)["X-Frame-Options"] == "DENY"  # the middleware that matter ran
    assert dict(lane.headers)["X-Content-Type-Options"] == "nosniff"
    assert "temperature" in get_backend().latest(device.pk)


def test_a_device_reads_its_latest_values_in_the_lane(apps, device):
    assert call(apps[0], "POST", "/api/v1/telemetry", READING, HTTP_X_API_KEY=device.key).status == 201
    for query in ("", "fields=mode"):
        lane, django = both(
            apps, "GET", f"/api/v1/telemetry/{device.pk}/latest", query=query, HTTP_X_API_KEY=device.key
        )
        assert answered_by_lane(lane), query
        assert lane.answer == django.answer, query
        assert lane.status == 200
    assert json.loads(lane.body)["data"] == {"mode": {"value": "eco", "timestamp": "2025-07-02T14:30:00.000Z"}}


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "extra", "status"),
    [
        ("invalid JSON (read, then given back)", "POST", "/api/v1/telemetry", b'{"data": ', {}, 400),
        ("invalid value", "POST", "/api/v1/telemetry", {"data": {"temperature": [1]}}, {}, 400),
        ("no key", "POST", "/api/v1/telemetry", READING, {"HTTP_X_API_KEY": ""}, 401),
        ("unknown key", "POST", "/api/v1/telemetry", READING, {"HTTP_X_API_KEY": "not-a-key"}, 401),
        ("too large", "POST", "/api/v1/telemetry", READING, {"CONTENT_LENGTH": "999999999"}, 413),
        ("bad length", "POST", "/api/v1/telemetry", READING, {"CONTENT_LENGTH": "many"}, 400),
        ("host not allowed", "POST", "/api/v1/telemetry", READING, {"HTTP_HOST": "evil.example"}, 400),
        ("browsable API", "POST", "/api/v1/telemetry", READING, {"HTTP_ACCEPT": "text/html"}, 201),
        ("another device's latest", "GET", "/api/v1/telemetry/999999/latest", b"", {}, 403),
        (
            "history",
            "GET",
            "/api/v1/telemetry/{pk}",
            b"",
            {"QUERY_STRING": "start_time=2025-07-01T00:00:00Z&end_time=2025-07-03T00:00:00Z"},
            200,
        ),
        ("unknown path", "GET", "/api/v1/telemetry/nothing", b"", {}, 404),
        # As a server passes "/telemetry/%C4%80/latest": UTF-8 bytes, each as a Latin-1 character (PEP 3333).
        ("path beyond ASCII", "GET", "/api/v1/telemetry/\xc4\x80/latest", b"", {}, 404),
    ],
)
def test_anything_else_goes_to_django_untouched(apps, device, case, method, path, body, extra, status):
    headers = {"HTTP_X_API_KEY": device.key, **extra}
    lane, django = both(apps, method, path.format(pk=device.pk), body, **headers)
    assert not answered_by_lane(lane), case
    if b"<html" in django.body:  # the browsable API's page carries a fresh CSRF token
        assert (lane.status, dict(lane.headers)["Content-Type"]) == (
            django.status,
            dict(django.headers)["Content-Type"],
        )
    else:
        assert lane.answer == django.answer, case
    assert lane.status == status, (case, lane.body)
    if case.startswith("invalid JSON"):
        assert b"JSON parse error" in lane.body  # DRF parsed the body the lane had read


def test_a_redirect_to_https_is_djangos(settings, keep_test_connection, device):
    settings.SECURE_SSL_REDIRECT = True
    lane, django = both((DeviceLane(WSGIHandler()), WSGIHandler()), "POST", "/api/v1/telemetry", READING,
                        HTTP_X_API_KEY=device.key)  # fmt: skip
    assert not answered_by_lane(lane)
    assert lane.answer == django.answer
    assert lane.status == 301


def test_requests_with_a_session_cookie_go_to_django(apps, device, alice, client):
    """The session middleware answers them as it sees fit (a stale session's cookie is deleted, say)."""
    client.force_login(alice)
    for cookie in (f"sessionid={client.cookies['sessionid'].value}", "sessionid=stale"):
        lane, django = both(apps, "POST", "/api/v1/telemetry", READING, HTTP_X_API_KEY=device.key, HTTP_COOKIE=cookie)
        assert not answered_by_lane(lane)
        assert lane.answer == django.answer
        assert lane.status == 201


def test_other_cookies_change_nothing(apps, device):
    lane, django = both(apps, "POST", "/api/v1/telemetry", READING, HTTP_X_API_KEY=device.key, HTTP_COOKIE="theme=dark")
    assert answered_by_lane(lane)
    assert lane.answer == django.answer
    assert dict(lane.headers)["Vary"] == "Accept, Cookie"


def test_an_error_in_the_view_is_answered_as_django_answers_it(apps, device, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest, "accept", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        lane, django = both(apps, "POST", "/api/v1/telemetry", READING, HTTP_X_API_KEY=device.key)
    assert answered_by_lane(lane)
    assert lane.answer == django.answer
    assert lane.status == 500
    assert [r.exc_info[1].args[0] for r in caplog.records if r.exc_info] == ["disk on fire", "disk on fire"]


def django_counts() -> dict:
    """Every count of django_prometheus's request metrics (totals and histogram counts), by labels."""
    found = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name.startswith("django_http_") and sample.name.endswith(("_total", "_count")):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def counted(send) -> dict:
    before = django_counts()
    send()
    after = django_counts()
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/telemetry"), ("GET", "/api/v1/telemetry/{pk}/latest")],
    ids=["post", "latest"],
)
def test_the_lane_counts_requests_in_the_same_metrics(apps, device, method, path):
    lane, django = apps
    body = READING if method == "POST" else b""
    url = path.format(pk=device.pk)
    by_lane = counted(lambda: call(lane, method, url, body, HTTP_X_API_KEY=device.key))
    by_django = counted(lambda: call(django, method, url, body, HTTP_X_API_KEY=device.key))
    assert by_lane == by_django
    status = "201" if method == "POST" else "200"
    assert any(name == "django_http_responses_total_by_status_view_method_total" and ("status", status) in labels
               for name, labels in by_lane)  # fmt: skip


def test_a_middleware_without_a_decision_turns_the_lane_off(settings, keep_test_connection, device, caplog):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    with caplog.at_level(logging.WARNING, logger="iotflow.device_lane"):
        lane = DeviceLane(WSGIHandler())
    assert "GZipMiddleware" in caplog.text
    sent = call(lane, "POST", "/api/v1/telemetry", READING, HTTP_X_API_KEY=device.key)
    assert sent.status == 201
    assert not answered_by_lane(sent)


def test_the_product_serves_through_the_lane():
    from iotflow import wsgi

    assert isinstance(wsgi.application, DeviceLane)
    assert wsgi.application.enabled


@pytest.mark.django_db(transaction=True)
def test_the_request_signals_run_as_under_gunicorn(device):
    """Connections are checked at the start and the end of a lane request, as Django's handler checks them."""
    finished: list = []
    heard = lambda sender, **kwargs: finished.append(sender)  # noqa: E731
    request_finished.connect(heard)
    try:
        lane = DeviceLane(WSGIHandler())
        for second in range(3):
            body = {**READING, "timestamp": READING["timestamp"] + second * 1000}
            sent = call(lane, "POST", "/api/v1/telemetry", body, HTTP_X_API_KEY=device.key)
            assert sent.status == 201 and answered_by_lane(sent)
    finally:
        request_finished.disconnect(heard)
    assert finished == [DeviceLane] * 3
    assert get_backend().count(device.pk) == 6
