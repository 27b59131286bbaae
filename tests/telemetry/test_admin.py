"""Operators browse stored telemetry in the admin, read-only, by device and measurement."""

import pytest

POINTS = "/admin/telemetry/telemetrypoint/"
LATEST = "/admin/telemetry/latestvalue/"


@pytest.fixture
def telemetry(device, other_device):
    for sender, data in [(device, {"temperature": 23.5, "mode": "eco"}), (other_device, {"humidity": 40})]:
        body = {"data": data, "timestamp": "2025-07-02T14:30:00Z"}
        assert sender.client().post("/api/v1/telemetry", body, format="json").status_code == 201


def test_points_filter_by_device_and_search_by_measurement(admin_client, device, telemetry):
    page = admin_client.get(POINTS, {"device__id__exact": device.pk})
    assert page.status_code == 200
    assert {p.measurement for p in page.context["cl"].result_list} == {"temperature", "mode"}
    assert "2025-07-02T14:30:00.000Z" in page.text and "23.5" in page.text
    assert page.context["cl"].show_full_result_count is False

    page = admin_client.get(POINTS, {"q": "temp"})
    assert [p.measurement for p in page.context["cl"].result_list] == ["temperature"]


def test_points_are_read_only(admin_client, device, telemetry):
    page = admin_client.get(POINTS)
    assert f"{POINTS}add/" not in page.text
    assert "delete_selected" not in page.text
    assert admin_client.get(f"{POINTS}add/").status_code == 403

    point = page.context["cl"].result_list[0]
    detail = admin_client.get(f"{POINTS}{point.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.text
    assert admin_client.post(f"{POINTS}{point.pk}/change/", {}).status_code == 403
    assert admin_client.post(f"{POINTS}{point.pk}/delete/", {"post": "yes"}).status_code == 403


def test_latest_values_list(admin_client, device, telemetry):
    page = admin_client.get(LATEST, {"q": "alice-sensor"})
    assert page.status_code == 200
    assert {v.measurement for v in page.context["cl"].result_list} == {"temperature", "mode"}
    assert f"{LATEST}add/" not in page.text


def test_people_who_are_not_staff_are_sent_to_login(client, alice):
    client.force_login(alice)
    for url in (POINTS, LATEST):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_operator_sets_a_device_retention_policy(admin_client, device):
    device = device.device
    from telemetry.models import RetentionPolicy

    page = admin_client.post(
        "/admin/telemetry/retentionpolicy/add/",
        {"device": device.pk, "raw_days": 7, "minute_days": "", "hour_days": 0},
    )
    assert page.status_code == 302, page.context["adminform"].errors if page.context else page
    policy = RetentionPolicy.objects.get(device=device)
    assert (policy.raw_days, policy.minute_days, policy.hour_days) == (7, None, 0)
    assert device.name in admin_client.get("/admin/telemetry/retentionpolicy/").text
