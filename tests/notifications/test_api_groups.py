"""Device groups over the user API: an owner's groups hold only the owner's devices."""

import pytest

from devices.models import DeviceGroup

pytestmark = pytest.mark.django_db

URL = "/api/v1/groups"


def test_owner_creates_renames_and_deletes_a_group(alice_client, alice, device):
    created = alice_client.post(URL, {"name": "Kitchen", "devices": [device.pk]}, format="json")
    assert created.status_code == 201, created.json()
    group = created.json()
    assert (group["owner"], group["devices"], group["device_count"]) == ("alice", [device.pk], 1)

    url = f"{URL}/{group['id']}"
    renamed = alice_client.patch(url, {"name": "Kitchen and hall"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Kitchen and hall"
    assert alice_client.delete(url).status_code == 204
    assert not DeviceGroup.objects.exists()
    device.device.refresh_from_db()  # the device stays


def test_add_list_and_remove_devices(alice_client, alice, make_device):
    one, two = make_device(alice, "one"), make_device(alice, "two")
    group = alice_client.post(URL, {"name": "Floor 1"}, format="json").json()
    url = f"{URL}/{group['id']}/devices"

    added = alice_client.post(url, {"devices": [one.pk, two.pk]}, format="json")
    assert added.status_code == 200 and added.json()["devices"] == [one.pk, two.pk]
    listed = alice_client.get(url).json()
    assert [d["name"] for d in listed["results"]] == ["one", "two"]

    assert alice_client.delete(f"{url}/{one.pk}").status_code == 204
    assert alice_client.get(f"{URL}/{group['id']}").json()["devices"] == [two.pk]
    assert alice_client.delete(f"{url}/{one.pk}").status_code == 404, "not in the group any more"


def test_another_users_device_cannot_join(alice_client, other_device):
    response = alice_client.post(URL, {"name": "Mine", "devices": [other_device.pk]}, format="json")
    assert response.status_code == 400 and "devices" in response.json()["errors"]
    group = alice_client.post(URL, {"name": "Mine"}, format="json").json()
    added = alice_client.post(f"{URL}/{group['id']}/devices", {"devices": [other_device.pk]}, format="json")
    assert added.status_code == 400 and "devices" in added.json()["errors"]


def test_staff_cannot_mix_owners_in_a_group(admin_client_api, alice, device, other_device):
    group = DeviceGroup.objects.create(owner=alice, name="Alice's")
    response = admin_client_api.post(f"{URL}/{group.pk}/devices", {"devices": [other_device.pk]}, format="json")
    assert response.status_code == 400
    added = admin_client_api.post(f"{URL}/{group.pk}/devices", {"devices": [device.pk]}, format="json")
    assert added.status_code == 200 and added.json()["devices"] == [device.pk]


def test_duplicate_name_is_a_field_error(alice_client, bob_client):
    assert alice_client.post(URL, {"name": "Boilers"}, format="json").status_code == 201
    again = alice_client.post(URL, {"name": "Boilers"}, format="json")
    assert again.status_code == 400 and "name" in again.json()["errors"]
    assert bob_client.post(URL, {"name": "Boilers"}, format="json").status_code == 201, "names are per owner"


def test_others_groups_are_404_and_staff_see_all(alice_client, bob_client, admin_client_api, bob):
    group = DeviceGroup.objects.create(owner=bob, name="Bob's")
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("get", "/devices"), ("post", "/devices")]:
        response = getattr(alice_client, method)(f"{URL}/{group.pk}{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    assert alice_client.get(URL).json()["count"] == 0
    assert [g["name"] for g in admin_client_api.get(URL).json()["results"]] == ["Bob's"]
