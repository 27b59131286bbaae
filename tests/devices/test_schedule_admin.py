"""Operators see schedules, their history and overrides in the admin, under the same rules as the API."""

from datetime import UTC, datetime, time, timedelta

from devices import overrides
from devices.models import Override, Schedule
from devices.schedules import tick


def admin_form(device, **fields) -> dict:
    return {
        "name": "Morning",
        "device": device.pk,
        "days": "[0, 2]",
        "start_time": "08:00",
        "end_time": "09:00",
        "start_action": "set_state",
        "start_params": '{"power": "on"}',
        "end_action": "turn_off",
        "time_zone": "",
        "enabled": "on",
        **fields,
    }


def test_operator_adds_a_schedule_and_an_overlap_is_refused(admin_client, device, alice):
    response = admin_client.post("/admin/devices/schedule/add/", admin_form(device.device))
    assert response.status_code == 302, response.context["adminform"].errors
    schedule = Schedule.objects.get()
    assert (schedule.days, schedule.time_zone) == ([0, 2], alice.time_zone)

    refused = admin_client.post("/admin/devices/schedule/add/", admin_form(device.device, name="Clash", days="[2]"))
    assert refused.status_code == 200
    assert "Overlaps the schedule" in refused.text
    assert Schedule.objects.count() == 1


def test_schedule_page_links_its_history(admin_client, device):
    schedule = Schedule.objects.create(
        device=device.device,
        name="Morning",
        days=[0],
        start_time=time(8),
        end_time=time(9),
        start_params={"power": "on"},
        time_zone="UTC",
    )
    tick(datetime(2025, 1, 6, 8, 0, 10, tzinfo=UTC))
    page = admin_client.get(f"/admin/devices/schedule/{schedule.pk}/change/")
    assert page.status_code == 200 and "1 firing(s)" in page.text
    history = admin_client.get("/admin/devices/schedulerun/", {"schedule__id__exact": schedule.pk})
    assert history.status_code == 200 and len(history.context["cl"].result_list) == 1
    assert admin_client.get("/admin/devices/schedule/").status_code == 200


def test_operator_cancels_an_active_override(admin_client, device):
    override = overrides.start(device.device, {"fan_speed": 5}, timedelta(minutes=10))
    assert admin_client.get("/admin/devices/override/").status_code == 200
    response = admin_client.post(
        "/admin/devices/override/", {"action": "cancel_overrides", "_selected_action": [override.pk]}
    )
    assert response.status_code == 302
    assert Override.objects.get().status == "cancelled"
