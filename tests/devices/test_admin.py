"""Operators manage devices in the admin: keys, status, groups, configuration, telemetry at a glance."""

import pytest

from accounts.models import hash_secret
from devices.models import Device, DeviceConfiguration, DeviceGroup

CHANGELIST = "/admin/devices/device/"
STATUS = "/api/v1/devices/status"


def api_status(key: str, client) -> int:
    return client.get(STATUS, HTTP_X_API_KEY=key).status_code


def run_action(admin_client, action: str, *devices):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [d.pk for d in devices]})


def test_changelist_searches_and_filters(admin_client, device, other_device):
    group = DeviceGroup.objects.create(owner=device.device.owner, name="greenhouse")
    device.device.groups.add(group)

    page = admin_client.get(CHANGELIST, {"q": "alice"})
    assert page.status_code == 200
    assert "alice-sensor" in page.text and "bob-sensor" not in page.text
    assert device.device.api_key_prefix in page.text
    assert device.device.api_key_hash not in page.text

    filters = {
        "status__exact": "active",
        "device_type__exact": "sensor",
        "owner__id__exact": device.device.owner_id,
        "groups__id__exact": group.pk,
    }
    page = admin_client.get(CHANGELIST, filters)
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [device.device]


def test_rotate_action_replaces_the_key_at_once(admin_client, client, device, shown_secrets):
    old_hash = device.device.api_key_hash
    assert api_status(device.key, client) == 200  # the old key's lookup is now cached

    response = run_action(admin_client, "rotate_api_keys", device)
    assert response.status_code == 302
    [new_key] = shown_secrets(response)

    device.device.refresh_from_db()
    assert device.device.api_key_hash == hash_secret(new_key) != old_hash
    assert api_status(device.key, client) == 401
    assert api_status(new_key, client) == 200


def test_rotate_action_gives_each_selected_device_its_own_key(admin_client, make_device, alice, shown_secrets):
    first, second = make_device(alice, "one"), make_device(alice, "two")

    keys = shown_secrets(run_action(admin_client, "rotate_api_keys", first, second))

    assert len(set(keys)) == 2
    assert {Device.objects.get(api_key_hash=hash_secret(k)).name for k in keys} == {"one", "two"}


@pytest.mark.parametrize(
    ("action", "status", "api_answer"),
    [("mark_inactive", "inactive", 403), ("mark_maintenance", "maintenance", 200), ("mark_active", "active", 200)],
)
def test_status_actions_take_effect_on_the_device_api_at_once(admin_client, client, device, action, status, api_answer):
    if status == "active":
        device.device.status = Device.Status.INACTIVE
        device.device.save()
    api_status(device.key, client)  # cache the lookup with the old status

    assert run_action(admin_client, action, device).status_code == 302

    device.device.refresh_from_db()
    assert device.device.status == status
    assert api_status(device.key, client) == api_answer


def test_added_device_shows_its_key_once_and_the_key_works(admin_client, client, alice, shown_secrets):
    form = {
        "name": "gateway-7",
        "owner": alice.pk,
        "device_type": "gateway",
        "status": "active",
        "configuration-TOTAL_FORMS": "1",
        "configuration-INITIAL_FORMS": "0",
        "configuration-0-key": "interval",
        "configuration-0-value": "30",
    }
    response = admin_client.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [key] = shown_secrets(response)

    device = Device.objects.get(name="gateway-7")
    assert device.api_key_hash == hash_secret(key)
    assert DeviceConfiguration.objects.get(device=device).value == 30
    assert client.get("/api/v1/devices/config", HTTP_X_API_KEY=key).json()["configuration"] == {"interval": 30}

    assert key in admin_client.get(response.url).text
    assert key not in admin_client.get(response.url).text


def test_device_page_shows_latest_values_and_point_count(admin_client, device):
    for record in [
        {"data": {"temperature": 23.5, "mode": "eco"}, "timestamp": "2025-07-02T14:30:00Z"},
        {"data": {"temperature": 24.0}, "timestamp": "2025-07-02T14:31:00Z"},
    ]:
        assert device.client().post("/api/v1/telemetry", record, format="json").status_code == 201

    page = admin_client.get(f"{CHANGELIST}{device.pk}/change/")

    assert page.status_code == 200
    assert "<td>temperature</td><td>24.0</td><td>2025-07-02T14:31:00.000Z</td>" in page.text
    assert "<td>mode</td><td>eco</td>" in page.text
    assert f'?device__id__exact={device.pk}">3 points</a>' in page.text
    assert device.device.api_key_hash not in page.text


def test_device_page_without_telemetry_says_so(admin_client, device):
    page = admin_client.get(f"{CHANGELIST}{device.pk}/change/")
    assert "No telemetry yet." in page.text and "0 points" in page.text


def test_rotate_button_on_the_device_page_asks_then_rotates(admin_client, client, device, shown_secrets):
    url = f"{CHANGELIST}{device.pk}/rotate-key/"
    assert url in admin_client.get(f"{CHANGELIST}{device.pk}/change/").text

    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Yes, rotate the key" in confirm.text
    assert api_status(device.key, client) == 200

    response = admin_client.post(url)
    assert response.status_code == 302 and response.url == f"{CHANGELIST}{device.pk}/change/"
    [new_key] = shown_secrets(response)
    assert api_status(device.key, client) == 401
    assert api_status(new_key, client) == 200


def test_staff_without_change_permission_cannot_rotate(client, staff, device):
    client.force_login(staff)
    assert client.post(f"{CHANGELIST}{device.pk}/rotate-key/").status_code == 403
    assert api_status(device.key, client) == 200


def test_groups_list_counts_devices(admin_client, device, make_device, alice):
    group = DeviceGroup.objects.create(owner=alice, name="greenhouse")
    group.devices.add(device.device, make_device(alice, "second").device)
    DeviceGroup.objects.create(owner=alice, name="cellar")

    page = admin_client.get("/admin/devices/devicegroup/", {"q": "green"})

    assert page.status_code == 200
    [row] = page.context["cl"].result_list
    assert row == group and row.device_count == 2


def test_configuration_list_searches_by_key(admin_client, device):
    DeviceConfiguration.objects.create(device=device.device, key="interval", value=30)
    DeviceConfiguration.objects.create(device=device.device, key="mode", value="eco")

    page = admin_client.get("/admin/devices/deviceconfiguration/", {"q": "interval"})

    assert page.status_code == 200
    assert [c.key for c in page.context["cl"].result_list] == ["interval"]


@pytest.mark.parametrize("url", [CHANGELIST, "/admin/devices/devicegroup/", "/admin/devices/deviceconfiguration/"])
def test_people_who_are_not_staff_are_sent_to_login(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
