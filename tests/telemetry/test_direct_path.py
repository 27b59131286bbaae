"""The direct path of ``POST /telemetry`` and ``GET /telemetry/<id>/latest`` answers as the DRF views do.

Every request here is sent twice: through the product's URLs, where the direct path answers
plain requests and hands the rest to the DRF view, and through URLs serving the DRF views alone
(tests/telemetry/drf_only_urls.py). Status, headers and body must be the same byte for byte;
which of the two answered shows in the response's class (DRF answers with its ``Response``).
"""

import json

import psycopg
import pytest
from django.db import connection
from rest_framework.response import Response

from devices.models import Device
from iotflow.throttling import RateThrottle
from telemetry.backends import get_backend
from tests.integration.processes import wait_for

DRF_ONLY = "tests.telemetry.drf_only_urls"
READING = {"data": {"temperature": 21.5, "online": True, "mode": "eco"}, "timestamp": 1751466600000}
BATCH = [
    {"data": {"temperature": 20.0}, "timestamp": 1751466601000},
    {"data": {"temperature": 20.5, "humidity": 40}, "timestamp": 1751466602000, "metadata": {"fw": "1.2"}},
]


def answer(response) -> tuple[int, dict, bytes]:
    if response["Content-Type"].startswith("text/html"):
        # DRF's browsable page shows the URL and the view's breadcrumbs: its bytes differ between the URL sets.
        return response.status_code, {"Content-Type": response["Content-Type"]}, b""
    return response.status_code, dict(response.headers), response.content


def twice(settings, send):
    """The answer through the product's URLs, whether the direct path gave it, and the DRF views' answer."""
    product = send()
    urlconf = settings.ROOT_URLCONF
    settings.ROOT_URLCONF = DRF_ONLY
    try:
        reference = send()
    finally:
        settings.ROOT_URLCONF = urlconf
    assert isinstance(reference, Response)
    return answer(product), not isinstance(product, Response), answer(reference)


def post(client, body, content_type="application/json", **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda: client.generic("POST", "/api/v1/telemetry", raw, content_type=content_type, **extra)


@pytest.mark.parametrize("body", [READING, BATCH], ids=["one record", "batch"])
@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_a_plain_post_is_answered_directly_as_drf_answers_it(settings, device, body, accept):
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    direct, answered_directly, reference = twice(settings, post(device.client(), body, **extra))
    assert answered_directly
    assert direct == reference
    assert direct[0] == 201
    assert json.loads(direct[2])["points"] == sum(len(record["data"]) for record in (body if body is BATCH else [body]))
    assert get_backend().latest(device.pk)["temperature"].value in (21.5, 20.5)


@pytest.mark.parametrize(
    ("case", "body", "content_type", "extra", "status"),
    [
        ("invalid JSON", b'{"data": ', "application/json", {}, 400),
        ("NaN", b'{"data": {"temperature": NaN}}', "application/json", {}, 400),
        ("invalid value", {"data": {"temperature": [1, 2]}}, "application/json", {}, 400),
        ("no data", {"timestamp": 1751466600000}, "application/json", {}, 400),
        ("empty batch", [], "application/json", {}, 400),
        ("not UTF-8", '{"data": {"t\u00e9mp": 1}}'.encode("latin-1"), "application/json", {}, 400),
        ("Latin-1 declared", b'{"data": {"temperature": 1}}', "application/json; charset=latin-1", {}, 201),
        ("form body", b"data=1", "application/x-www-form-urlencoded", {}, 400),
        ("browsable API", READING, "application/json", {"HTTP_ACCEPT": "text/html"}, 201),
        ("format override", READING, "application/json", {"QUERY_STRING": "format=json"}, 201),
        ("unknown Accept", READING, "application/json", {"HTTP_ACCEPT": "application/xml"}, 406),
    ],
)
def test_anything_but_a_plain_valid_post_gets_the_drf_answer(settings, device, case, body, content_type, extra, status):
    direct, answered_directly, reference = twice(settings, post(device.client(), body, content_type, **extra))
    assert not answered_directly, case
    assert direct == reference, case
    assert direct[0] == status, (case, direct)


def test_posts_without_a_usable_key_get_the_drf_answer(settings, device, make_device, alice, client):
    inactive = make_device(alice, "retired")
    Device.objects.filter(pk=inactive.pk).update(status=Device.Status.INACTIVE)
    for case, extra, status in [
        ("no key", {}, 401),
        ("unknown key", {"HTTP_X_API_KEY": "not-a-key"}, 401),
        ("blank key", {"HTTP_X_API_KEY": "  "}, 401),
        ("inactive device", {"HTTP_X_API_KEY": inactive.key}, 403),
    ]:
        direct, answered_directly, reference = twice(settings, post(client, READING, **extra))
        assert not answered_directly, case
        assert direct == reference, case
        assert direct[0] == status, (case, direct)


def test_rate_limits_count_each_request_once_whichever_path_answers(settings, monkeypatch, device):
    settings.RATE_LIMITS_ENABLED = True
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "telemetry": "3/1m"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(RateThrottle, "THROTTLE_RATES", rates)  # DRF binds the rates when it imports
    client = device.client()
    statuses = []
    for body in (b"{", READING, READING, READING):
        response = post(client, body)()
        statuses.append((response.status_code, isinstance(response, Response)))
    # The bad body counts (the view's throttle runs before parsing), the two good posts are answered
    # directly and count, the fourth is over the limit and answered by the view.
    assert statuses == [(400, True), (201, False), (201, False), (429, True)]
    assert response.headers["Retry-After"]


def test_a_device_reads_its_latest_values_directly_as_drf_answers(settings, device):
    client = device.client()
    assert post(client, READING)().status_code == 201
    for query in ("", "fields=temperature,mode", "fields=", "fields=unknown"):
        send = lambda query=query: client.get(f"/api/v1/telemetry/{device.pk}/latest", QUERY_STRING=query)  # noqa: E731
        direct, answered_directly, reference = twice(settings, send)
        assert answered_directly, query
        assert direct == reference, query
        assert direct[0] == 200
    body = json.loads(direct[2])
    assert body["data"] == {}  # fields=unknown
    full = json.loads(client.get(f"/api/v1/telemetry/{device.pk}/latest").content)
    assert full["data"]["temperature"] == {"value": 21.5, "timestamp": "2025-07-02T14:30:00.000Z"}
    assert full["device_name"] == device.device.name


def test_other_latest_reads_get_the_drf_answer(settings, device, other_device, alice_client):
    for case, client, device_id, extra, status in [
        ("another device's values", other_device.client(), device.pk, {}, 403),
        ("unknown device", device.client(), 999_999, {}, 403),
        ("owner with a token", alice_client, device.pk, {}, 200),
        ("browsable API", device.client(), device.pk, {"HTTP_ACCEPT": "text/html"}, 200),
        ("HEAD", device.client(), device.pk, {"REQUEST_METHOD": "HEAD"}, 200),
    ]:
        method = extra.pop("REQUEST_METHOD", "GET")
        send = lambda c=client, d=device_id, m=method, e=extra: c.generic(m, f"/api/v1/telemetry/{d}/latest", **e)  # noqa: E731
        direct, answered_directly, reference = twice(settings, send)
        assert not answered_directly, case
        assert direct == reference, case
        assert direct[0] == status, (case, direct)


@pytest.mark.django_db(transaction=True)
def test_a_dead_database_connection_costs_a_latest_read_nothing(device):
    """The direct read skips Django's per-request connection check; the view it hands over to reconnects."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a PostgreSQL server connection to terminate; this run uses SQLite")
    client = device.client()
    assert post(client, READING)().status_code == 201
    url = f"/api/v1/telemetry/{device.pk}/latest"
    first = client.get(url)
    assert first.status_code == 200 and not isinstance(first, Response)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k not in ("cursor_factory", "context")}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: not connection.is_usable(), 5, "the connection to be gone")

    again = client.get(url)

    assert again.status_code == 200, again.content
    assert isinstance(again, Response)  # handed to the view, which reconnected
    assert json.loads(again.content)["data"]["temperature"]["value"] == 21.5
    third = client.get(url)
    assert third.status_code == 200 and not isinstance(third, Response)
