"""A user commands a device; the device gets it, answers, and every step is in the audit log."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import commands
from devices.models import Command, DeviceGroup
from notifications.models import Notification

Status = Command.Status


def send_via_api(client, device, action="turn_on", **extra):
    return client.post(f"/api/v1/devices/{device.pk}/commands", {"action": action, **extra}, format="json")


def test_owner_sends_a_command_and_sees_it_in_history(alice_client, device):
    response = send_via_api(alice_client, device, "set_fan_speed", params={"fan_speed": 3})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["action"] == "set_fan_speed" and body["source"] == "user"

    history = alice_client.get(f"/api/v1/devices/{device.pk}/commands").json()
    assert [c["id"] for c in history["results"]] == [body["id"]]
    detail = alice_client.get(f"/api/v1/devices/{device.pk}/commands/{body['id']}").json()
    assert detail["params"] == {"fan_speed": 3}
    device.device.refresh_from_db()
    assert device.device.desired_state == {"fan_speed": 3}


def test_history_filters_by_status(alice_client, device):
    first = commands.send(device.device, "turn_on")
    commands.send(device.device, "turn_off")
    commands.cancel(first)
    cancelled = alice_client.get(f"/api/v1/devices/{device.pk}/commands", {"status": "cancelled"}).json()
    assert [c["action"] for c in cancelled["results"]] == ["turn_on"]


def test_other_users_cannot_command_or_read(bob_client, device):
    assert send_via_api(bob_client, device).status_code == 404
    command = commands.send(device.device, "turn_on")
    assert bob_client.get(f"/api/v1/devices/{device.pk}/commands").status_code == 404
    assert bob_client.get(f"/api/v1/devices/{device.pk}/commands/{command.pk}").status_code == 404


def test_staff_commands_are_marked_admin(admin_client_api, device):
    response = send_via_api(admin_client_api, device)
    assert response.status_code == 201 and response.json()["source"] == "admin"


def test_bad_command_body_gets_field_errors(alice_client, device):
    response = send_via_api(alice_client, device, action="", params="x")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"action", "params"}


def test_http_device_polls_and_acknowledges(device):
    command = commands.send(device.device, "turn_on")
    client = device.client()

    polled = client.get("/api/v1/devices/commands/pending").json()["commands"]
    assert [c["id"] for c in polled] == [str(command.pk)]
    assert polled[0]["action"] == "turn_on"
    # Polling again within the ack timeout hands out the same command without a new attempt.
    assert client.get("/api/v1/devices/commands/pending").json()["commands"][0]["id"] == str(command.pk)
    command.refresh_from_db()
    assert command.status == Status.SENT and command.attempts == 1

    ack = client.post(
        f"/api/v1/devices/commands/{command.pk}/ack",
        {"status": "ok", "result": {"state": {"power": "on", "fan_speed": 2}}},
        format="json",
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    device.device.refresh_from_db()
    assert device.device.reported_state == {"power": "on", "fan_speed": 2}
    assert client.get("/api/v1/devices/commands/pending").json()["commands"] == []


def test_device_cannot_acknowledge_another_devices_command(device, other_device):
    command = commands.send(device.device, "turn_on")
    response = other_device.client().post(f"/api/v1/devices/commands/{command.pk}/ack", {"status": "ok"}, format="json")
    assert response.status_code == 404
    command.refresh_from_db()
    assert command.status == Status.PENDING


def test_error_ack_marks_failed_and_notifies_owner(device, alice):
    command = commands.send(device.device, "reboot")
    commands.claim_delivery(command.pk)
    commands.acknowledge(device.device, command.pk, ok=False, result={"error": "busy"})
    command.refresh_from_db()
    assert command.status == Status.FAILED and command.error == "busy"
    assert Notification.objects.filter(user=alice, kind="command_failed").exists()


def test_unacknowledged_command_is_retried_then_times_out(device, alice, settings):
    settings.COMMAND_MAX_ATTEMPTS = 3
    command = commands.send(device.device, "turn_on")
    start = timezone.now()
    for attempt in range(1, 4):
        later = start + timedelta(seconds=31 * attempt)
        assert command.pk in commands.due_for_delivery(later) or attempt == 1
        claimed = commands.claim_delivery(command.pk, later)
        assert claimed is not None and claimed.attempts == attempt
    final = start + timedelta(seconds=31 * 4)
    assert command.pk in commands.due_for_delivery(final)
    assert commands.claim_delivery(command.pk, final) is None
    command.refresh_from_db()
    assert command.status == Status.TIMEOUT and command.attempts == 3
    assert Notification.objects.filter(user=alice, kind="command_timeout", device=device.device).count() == 1


def test_expired_command_is_never_delivered(device):
    command = commands.send(device.device, "turn_on", expires_in=10)
    assert commands.claim_delivery(command.pk, timezone.now() + timedelta(seconds=11)) is None
    command.refresh_from_db()
    assert command.status == Status.EXPIRED and command.attempts == 0
    assert device.client().get("/api/v1/devices/commands/pending").json()["commands"] == []


def test_cancel_only_open_commands(alice_client, device):
    command = commands.send(device.device, "turn_on")
    url = f"/api/v1/devices/{device.pk}/commands/{command.pk}/cancel"
    assert alice_client.post(url).json()["status"] == "cancelled"
    assert alice_client.post(url).status_code == 400
    assert commands.claim_delivery(command.pk) is None


def test_repeated_ack_changes_nothing(device):
    command = commands.send(device.device, "turn_on")
    first = commands.acknowledge(device.device, command.pk, ok=True, result={"n": 1})
    second = commands.acknowledge(device.device, command.pk, ok=False, result={"n": 2})
    assert first.acknowledged_at == second.acknowledged_at and second.status == Status.ACKNOWLEDGED


@pytest.fixture
def fleet(alice, make_device, device):
    group = DeviceGroup.objects.create(owner=alice, name="Floor 1")
    second = make_device(alice, "second")
    group.devices.add(device.device, second.device)
    return group, device, second


def test_group_command_creates_one_command_per_device_with_rollup(alice_client, fleet):
    group, first, second = fleet
    response = alice_client.post(f"/api/v1/groups/{group.pk}/commands", {"action": "turn_off"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["devices"] == 2 and body["rollup"]["pending"] == 2

    command = Command.objects.get(device=first.device, fleet_command=body["id"])
    commands.acknowledge(first.device, command.pk, ok=True)
    rollup = alice_client.get(f"/api/v1/groups/{group.pk}/commands/{body['id']}").json()
    assert rollup["rollup"]["acknowledged"] == 1 and rollup["rollup"]["pending"] == 1
    assert {c["device"] for c in rollup["commands"]} == {first.pk, second.pk}
    assert all(c["source"] == "fleet" for c in rollup["commands"])


def test_group_commands_are_owner_only(bob_client, fleet):
    group, *_ = fleet
    assert bob_client.post(f"/api/v1/groups/{group.pk}/commands", {"action": "x"}, format="json").status_code == 404


def test_state_fields_in_telemetry_become_the_reported_state(device):
    client = device.client()
    client.post("/api/v1/telemetry", {"data": {"power": "on", "fan_speed": 2, "pm25": 12.5}}, format="json")
    device.device.refresh_from_db()
    assert device.device.reported_state == {"power": "on", "fan_speed": 2}
    first_change = device.device.reported_state_at

    client.post("/api/v1/telemetry", {"data": {"fan_speed": 4}}, format="json")
    device.device.refresh_from_db()
    assert device.device.reported_state == {"power": "on", "fan_speed": 4}
    assert device.device.reported_state_at >= first_change
