"""Device pages: list and filters, adding a device, the tabs, keys, commands, groups, and who may see what."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.utils.formats import date_format

from accounts.models import hash_secret
from devices.models import Command, Device, DeviceConfiguration, DeviceGroup, mqtt_password_for
from telemetry.backends import get_backend
from telemetry.points import Point
from tests.conftest import session_client


@pytest.fixture(autouse=True)
def _no_broker(settings):
    settings.MQTT_MANAGE_ACCOUNTS = False


def test_add_a_device_shows_its_key_and_mqtt_credentials_once(alice):
    client = session_client(alice)
    response = client.post("/devices/add", {"name": "Greenhouse", "device_type": "sensor", "location": "Garden"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    page = response.content.decode()
    device = Device.objects.get(owner=alice, name="Greenhouse")
    key = re.search(r'id="api-key">([^<]+)<', page).group(1)
    assert device.api_key_hash == hash_secret(key)
    assert f'id="mqtt-username">device-{device.pk}<' in page
    assert f'id="mqtt-client-id">device-{device.pk}<' in page
    assert mqtt_password_for(device) in page and f"iotflow/devices/{device.pk}/telemetry" in page
    assert key not in client.get(f"/devices/{device.pk}/").content.decode(), "the key is never shown again"


def test_duplicate_device_name_is_refused(alice, device):
    response = session_client(alice).post("/devices/add", {"name": "alice-sensor", "device_type": "sensor"})
    assert response.status_code == 200 and "already have a device with this name" in response.content.decode()


def test_list_filters_search_and_pagination(alice, make_device):
    group = DeviceGroup.objects.create(owner=alice, name="Garden")
    for i in range(30):
        kind = "meter" if i % 3 == 0 else "sensor"
        made = make_device(alice, f"dev-{i:02d}", device_type=kind, location="Shed" if i == 7 else "")
        if i < 4:
            made.device.groups.add(group)
    Device.objects.filter(name="dev-05").update(health="online")
    Device.objects.filter(name="dev-06").update(status="maintenance")
    client = session_client(alice)

    def names(query: str) -> list[str]:
        return re.findall(r'href="/devices/\d+/">(dev-\d\d)<', client.get(f"/devices/?{query}").content.decode())

    assert len(names("")) == 25 and names("page=2") == [f"dev-{i}" for i in range(25, 30)]
    assert names(f"group={group.pk}") == ["dev-00", "dev-01", "dev-02", "dev-03"]
    assert len(names("type=meter")) == 10
    assert names("status=online") == ["dev-05"] and names("status=maintenance") == ["dev-06"]
    assert names("q=shed") == ["dev-07"]
    assert names("type=meter&page=1&q=dev-0") == ["dev-00", "dev-03", "dev-06", "dev-09"]


def test_htmx_filtering_answers_with_the_results_only(alice, device):
    response = session_client(alice).get("/devices/?q=alice", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="device-results")
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="device-results"') and "alice-sensor" in page


def test_a_user_sees_only_their_own_devices(bob, device, other_device):
    client = session_client(bob)
    listing = client.get("/devices/").content.decode()
    assert "bob-sensor" in listing and "alice-sensor" not in listing
    for tab in ["", "live", "history", "history.csv", "commands", "keys", "delete"]:
        assert client.get(f"/devices/{device.pk}/{tab}").status_code == 404, tab
    assert client.post(f"/devices/{device.pk}/keys/rotate").status_code == 404
    assert client.post(f"/devices/{device.pk}/commands", {"action": "turn_on"}).status_code == 404
    assert (
        client.post(f"/devices/{device.pk}/", {"name": "stolen", "device_type": "x", "status": "active"}).status_code
        == 404
    )
    assert not Command.objects.exists() and Device.objects.get(pk=device.pk).name == "alice-sensor"


def test_staff_see_every_device(staff, device):
    client = session_client(staff)
    assert "alice-sensor" in client.get("/devices/").content.decode()
    assert client.get(f"/devices/{device.pk}/").status_code == 200


def test_the_facts_card_writes_its_times_in_one_format(alice, device):
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    Device.objects.filter(pk=device.pk).update(created_at=moment, health_since=moment, key_rotated_at=moment)
    page = session_client(alice).get(f"/devices/{device.pk}/").content.decode()
    start = page.index(">Facts</h2>")
    facts = page[start : page.index("</dl>", start)]
    written = date_format(moment, "SHORT_DATETIME_FORMAT")
    assert facts.count(written) == 3, facts


def test_edit_details_and_configuration(alice, device):
    client = session_client(alice)
    response = client.post(
        f"/devices/{device.pk}/",
        {"name": "Kitchen", "device_type": "thermometer", "location": "Kitchen", "status": "maintenance"},
    )
    assert response.status_code == 302
    device.device.refresh_from_db()
    assert (device.device.name, device.device.status) == ("Kitchen", "maintenance")

    client.post(f"/devices/{device.pk}/configuration", {"key": "interval", "value": "30"})
    client.post(f"/devices/{device.pk}/configuration", {"key": "mode", "value": "eco"})
    client.post(f"/devices/{device.pk}/configuration", {"key": "limits", "value": '{"max": 5}'})
    config = {c.key: c.value for c in DeviceConfiguration.objects.filter(device=device.device)}
    assert config == {"interval": 30, "mode": "eco", "limits": {"max": 5}}
    assert device.client().get("/api/v1/devices/config").json()["configuration"] == config
    page = client.get(f"/devices/{device.pk}/").content.decode()
    assert 'value="{&quot;max&quot;: 5}"' in page
    client.post(f"/devices/{device.pk}/configuration", {"key": "mode", "value": ""})
    assert not DeviceConfiguration.objects.filter(device=device.device, key="mode").exists()


def test_rotating_the_key_shows_the_new_one_once(alice, device):
    response = session_client(alice).post(f"/devices/{device.pk}/keys/rotate")
    new_key = re.search(r'id="api-key">([^<]+)<', response.content.decode()).group(1)
    assert response["Cache-Control"] == "no-store"
    assert device.client().get("/api/v1/devices/status").status_code == 401
    device.key = new_key
    assert device.client().get("/api/v1/devices/status").status_code == 200


def test_send_a_command_and_see_it_in_the_history(alice, device):
    client = session_client(alice)
    response = client.post(f"/devices/{device.pk}/commands", {"action": "set_fan_speed", "params": '{"speed": 3}'})
    assert response.status_code == 302
    command = Command.objects.get(device=device.device)
    assert (command.action, command.params, command.created_by) == ("set_fan_speed", {"speed": 3}, alice)
    page = client.get(f"/devices/{device.pk}/commands").content.decode()
    assert f'id="command-{command.pk}"' in page and "status--pending" in page
    bad = client.post(f"/devices/{device.pk}/commands", {"action": "x", "params": "[1]"})
    assert bad.status_code == 200 and "Enter a JSON object" in bad.content.decode()


def test_live_tab_shows_latest_values(alice, device):
    device.client().post("/api/v1/telemetry", {"data": {"temperature": 21.5, "door": "open"}}, format="json")
    page = session_client(alice).get(f"/devices/{device.pk}/live").content.decode()
    assert 'data-measurement="temperature"' in page and "21.5" in page and 'data-measurement="door"' in page


def test_history_csv_streams_every_point_of_the_range(alice, device, monkeypatch):
    monkeypatch.setattr("devices.export.PAGE_SIZE", 7)
    start = 1_750_000_000_000
    points = [Point(device.pk, name, start + i * 1000, i) for i in range(20) for name in ("a", "b", "c")]
    get_backend().write(points)
    query = "range=custom&start=2025-06-15T15:06:40&end=2025-06-15T15:07:00"  # start .. start + 20 s (UTC)
    response = session_client(alice).get(f"/devices/{device.pk}/history.csv?{query}")
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["timestamp", "measurement", "value"]
    assert len(rows) == 61 and rows[1] == ["2025-06-15T15:06:40.000Z", "a", "0"]
    assert len({tuple(r) for r in rows[1:]}) == 60, "no point repeated across pages"


def test_groups_create_edit_and_delete(alice, device):
    client = session_client(alice)
    assert client.post("/devices/groups/", {"name": "Garden", "devices": [device.pk]}).status_code == 302
    group = DeviceGroup.objects.get(owner=alice)
    assert list(group.devices.all()) == [device.device]
    client.post(f"/devices/groups/{group.pk}/", {"name": "Back garden", "devices": []})
    group.refresh_from_db()
    assert group.name == "Back garden" and not group.devices.exists()
    client.post(f"/devices/groups/{group.pk}/delete")
    assert not DeviceGroup.objects.exists() and Device.objects.filter(pk=device.pk).exists()


def test_groups_of_others_are_not_found_nor_their_devices_offered(alice, bob, other_device):
    group = DeviceGroup.objects.create(owner=bob, name="Bob's")
    client = session_client(alice)
    assert client.get(f"/devices/groups/{group.pk}/").status_code == 404
    response = client.post("/devices/groups/", {"name": "Mine", "devices": [other_device.pk]})
    assert response.status_code == 200 and not DeviceGroup.objects.filter(owner=alice).exists()


def test_delete_a_device(alice, device):
    client = session_client(alice)
    assert client.post(f"/devices/{device.pk}/delete").status_code == 302
    assert not Device.objects.filter(pk=device.pk).exists()
