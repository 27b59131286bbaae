"""Operators read the command audit log and cancel open commands from the admin."""

import pytest

from devices import commands
from devices.models import Command


@pytest.fixture
def operator_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_audit_log_lists_commands_of_every_source(operator_client, device):
    commands.send(device.device, "turn_on", source=Command.Source.SCHEDULE)
    commands.send(device.device, "turn_off", source=Command.Source.USER)
    page = operator_client.get("/admin/devices/command/")
    assert page.status_code == 200
    assert {c.action for c in page.context["cl"].result_list} == {"turn_on", "turn_off"}
    filtered = operator_client.get("/admin/devices/command/", {"source__exact": "schedule"})
    assert [c.action for c in filtered.context["cl"].result_list] == ["turn_on"]


def test_device_page_shows_its_commands_and_health(operator_client, device):
    commands.send(device.device, "reboot")
    page = operator_client.get(f"/admin/devices/device/{device.pk}/change/")
    assert page.status_code == 200
    assert "Commands (audit log)" in page.text and "reboot" in page.text
    assert "never seen" in page.text


def test_cancel_action_cancels_only_open_commands(operator_client, device):
    open_command = commands.send(device.device, "turn_on")
    done = commands.send(device.device, "turn_off")
    commands.acknowledge(device.device, done.pk, ok=True)
    operator_client.post(
        "/admin/devices/command/",
        {"action": "cancel_commands", "_selected_action": [str(open_command.pk), str(done.pk)]},
    )
    open_command.refresh_from_db()
    done.refresh_from_db()
    assert open_command.status == Command.Status.CANCELLED
    assert done.status == Command.Status.ACKNOWLEDGED
