"""Owners manage schedules and overrides over the API; mistakes come back as clear field errors."""

from datetime import UTC, date, datetime, timedelta

import pytest

from devices import overrides
from devices.models import DeviceGroup, Override, Schedule, ScheduleRun
from devices.schedules import tick

SCHEDULES = "/api/v1/schedules"


def morning(target, **fields) -> dict:
    return {
        "name": "Morning clean",
        "device": target.pk,
        "days": ["monday", "wed", 4],
        "start_time": "08:00",
        "end_time": "09:30",
        "start_params": {"power": "on", "fan_speed": 3},
        **fields,
    }


def create(client, body):
    return client.post(SCHEDULES, body, format="json")


@pytest.fixture
def purifier(device):
    device.device.reported_state = {"power": "off", "fan_speed": 2}
    device.device.save(update_fields=["reported_state"])
    return device.device


def test_owner_creates_a_schedule_with_sensible_defaults(alice_client, alice, purifier):
    alice.time_zone = "Europe/Berlin"
    alice.save(update_fields=["time_zone"])

    response = create(alice_client, morning(purifier))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["days"] == ["monday", "wednesday", "friday"]
    assert (body["start_time"], body["end_time"], body["overnight"]) == ("08:00:00", "09:30:00", False)
    assert (body["start_action"], body["end_action"], body["time_zone"]) == ("set_state", "turn_off", "Europe/Berlin")
    assert body["enabled"] is True and body["group"] is None
    next_start = datetime.fromisoformat(body["next_start"])
    assert next_start.astimezone(Schedule.objects.get().zone).strftime("%A %H:%M") in {
        "Monday 08:00",
        "Wednesday 08:00",
        "Friday 08:00",
    }


def test_list_detail_update_and_delete(alice_client, purifier, make_device, alice):
    other = make_device(alice, "bedroom").device
    first = create(alice_client, morning(purifier)).json()
    create(alice_client, morning(other, name="Bedroom"))

    listed = alice_client.get(SCHEDULES, {"device": purifier.pk}).json()
    assert [s["id"] for s in listed["results"]] == [first["id"]]
    assert alice_client.get(SCHEDULES).json()["count"] == 2

    url = f"{SCHEDULES}/{first['id']}"
    assert alice_client.get(url).json()["name"] == "Morning clean"
    changed = alice_client.patch(url, {"end_time": "10:00", "enabled": False}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["end_time"], changed.json()["enabled"], changed.json()["next_start"]) == (
        "10:00:00",
        False,
        None,
    )
    assert alice_client.delete(url).status_code == 204
    assert alice_client.get(url).status_code == 404


def test_listing_by_device_includes_its_groups_schedules(alice_client, alice, purifier):
    group = DeviceGroup.objects.create(owner=alice, name="downstairs")
    group.devices.add(purifier)
    body = morning(purifier, device=None, group=group.pk, name="Downstairs")
    assert create(alice_client, body).status_code == 201
    listed = alice_client.get(SCHEDULES, {"device": purifier.pk}).json()["results"]
    assert [s["name"] for s in listed] == ["Downstairs"]


def test_history_shows_each_firing_with_its_command(alice_client, purifier):
    schedule_id = create(alice_client, morning(purifier, time_zone="UTC")).json()["id"]
    tick(datetime(2025, 1, 6, 8, 0, 10, tzinfo=UTC))  # a Monday
    tick(datetime(2025, 1, 6, 9, 30, 10, tzinfo=UTC))

    response = alice_client.get(f"{SCHEDULES}/{schedule_id}/history")
    assert response.status_code == 200
    runs = response.json()["results"]
    assert [(r["edge"], r["result"], r["command"]["action"]) for r in runs] == [
        ("end", "sent", "turn_off"),
        ("start", "sent", "set_state"),
    ]
    assert runs[1]["slot_date"] == "2025-01-06" and runs[1]["due_at"] == "2025-01-06T08:00:00Z"
    assert runs[1]["command"]["status"] == "pending"
    starts = alice_client.get(f"{SCHEDULES}/{schedule_id}/history", {"edge": "start"}).json()["results"]
    assert [r["edge"] for r in starts] == ["start"]


def test_other_users_cannot_see_or_use_someone_elses_schedules(alice_client, bob_client, purifier, other_device):
    schedule_id = create(alice_client, morning(purifier)).json()["id"]
    assert bob_client.get(SCHEDULES).json()["count"] == 0
    for path in (f"{SCHEDULES}/{schedule_id}", f"{SCHEDULES}/{schedule_id}/history"):
        assert bob_client.get(path).status_code == 404
    assert bob_client.delete(f"{SCHEDULES}/{schedule_id}").status_code == 404
    refused = create(bob_client, morning(purifier))
    assert refused.status_code == 400 and "device" in refused.json()["errors"]
    assert create(alice_client, morning(other_device.device)).status_code == 400


def test_staff_see_and_manage_every_schedule(admin_client_api, alice_client, purifier):
    schedule_id = create(alice_client, morning(purifier)).json()["id"]
    assert admin_client_api.get(SCHEDULES).json()["count"] == 1
    assert admin_client_api.patch(f"{SCHEDULES}/{schedule_id}", {"name": "x"}, format="json").status_code == 200


def test_anonymous_callers_are_refused(client, purifier):
    assert client.get(SCHEDULES).status_code in (401, 403)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"days": []}, "days", "one or more days"),
        ({"days": ["funday"]}, "days", "not a day of the week"),
        ({"days": "monday"}, "days", "list of days"),
        ({"end_time": "08:00"}, "end_time", "must differ"),
        ({"start_time": "25:00"}, "start_time", "format"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone"),
        ({"start_params": {}}, "start_params", "parameters to apply"),
        ({"end_action": "explode"}, "end_action", "not a valid choice"),
        ({"device": None}, "device", "Give the device"),
        ({"name": ""}, "name", "blank"),
    ],
)
def test_validation_errors_name_the_field(alice_client, purifier, changes, field, fragment):
    response = create(alice_client, morning(purifier, **changes))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert fragment in " ".join(errors[field])


def test_device_and_group_together_are_refused(alice_client, alice, purifier):
    group = DeviceGroup.objects.create(owner=alice, name="all")
    response = create(alice_client, morning(purifier, group=group.pk))
    assert response.status_code == 400
    assert "not both" in response.json()["errors"]["device"][0]


def overlap_error(response) -> str:
    assert response.status_code == 400, response.json()
    return response.json()["errors"]["non_field_errors"][0]


def test_overlapping_schedules_on_one_device_are_refused(alice_client, purifier):
    create(alice_client, morning(purifier))  # Mon, Wed, Fri 08:00-09:30
    message = overlap_error(create(alice_client, morning(purifier, name="Later", days=["friday"], start_time="09:00")))
    assert "Morning clean" in message and "on Friday from 09:00 to 09:30" in message


def test_overnight_overlap_into_the_next_day_is_refused(alice_client, purifier):
    create(alice_client, morning(purifier, name="Night", days=["sunday"], start_time="22:00", end_time="06:00"))
    message = overlap_error(create(alice_client, morning(purifier, days=["monday"], start_time="05:00")))
    assert "Night" in message and "on Monday from 05:00 to 06:00" in message


def test_back_to_back_and_other_devices_and_disabled_schedules_do_not_overlap(
    alice_client, purifier, make_device, alice
):
    assert create(alice_client, morning(purifier)).status_code == 201
    assert (
        create(alice_client, morning(purifier, name="After", start_time="09:30", end_time="10:00")).status_code == 201
    )
    other = make_device(alice, "bedroom").device
    assert create(alice_client, morning(other, name="Elsewhere")).status_code == 201
    assert create(alice_client, morning(purifier, name="Spare", enabled=False)).status_code == 201


def test_enabling_or_moving_into_an_overlap_is_refused(alice_client, purifier):
    create(alice_client, morning(purifier))
    spare = create(alice_client, morning(purifier, name="Spare", enabled=False)).json()
    overlap_error(alice_client.patch(f"{SCHEDULES}/{spare['id']}", {"enabled": True}, format="json"))

    later = create(alice_client, morning(purifier, name="Later", start_time="10:00", end_time="11:00")).json()
    overlap_error(alice_client.patch(f"{SCHEDULES}/{later['id']}", {"start_time": "09:00"}, format="json"))
    # a schedule never overlaps itself
    moved = alice_client.patch(f"{SCHEDULES}/{later['id']}", {"start_time": "10:30"}, format="json")
    assert moved.status_code == 200


def test_a_group_schedule_overlapping_a_member_devices_schedule_is_refused(alice_client, alice, purifier):
    group = DeviceGroup.objects.create(owner=alice, name="downstairs")
    group.devices.add(purifier)
    create(alice_client, morning(purifier))
    message = overlap_error(create(alice_client, morning(purifier, device=None, group=group.pk, name="Group")))
    assert purifier.name in message


# Overrides


def override_url(device, suffix="") -> str:
    return f"/api/v1/devices/{device.pk}/override{suffix}"


def test_owner_starts_follows_and_cancels_an_override(alice_client, purifier):
    assert alice_client.get(override_url(purifier)).json() == {
        "active": False,
        "time_left_seconds": 0,
        "override": None,
    }

    started = alice_client.post(
        override_url(purifier), {"params": {"fan_speed": 5}, "duration_minutes": 10}, format="json"
    )
    assert started.status_code == 201, started.json()
    body = started.json()
    assert (body["status"], body["params"], body["saved_state"], body["duration_minutes"]) == (
        "active",
        {"fan_speed": 5},
        {"fan_speed": 2},
        10,
    )
    assert 590 <= body["time_left_seconds"] <= 600

    status = alice_client.get(override_url(purifier)).json()
    assert status["active"] is True and status["override"]["id"] == body["id"]
    assert 0 < status["time_left_seconds"] <= 600

    again = alice_client.post(
        override_url(purifier), {"params": {"fan_speed": 4}, "duration_minutes": 5}, format="json"
    )
    assert again.status_code == 409 and "already active" in again.json()["detail"]

    cancelled = alice_client.post(override_url(purifier, "/cancel"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["restore_command"] is not None
    status = alice_client.get(override_url(purifier)).json()
    assert (status["active"], status["time_left_seconds"], status["override"]["status"]) == (False, 0, "cancelled")
    assert alice_client.post(override_url(purifier, "/cancel")).status_code == 409


def test_preclean_shape_turns_the_fan_up_for_a_while(alice_client, purifier):
    response = alice_client.post(
        f"/api/v1/devices/{purifier.pk}/preclean", {"fanMode": 5, "duration": 10}, format="json"
    )
    assert response.status_code == 201, response.json()
    override = Override.objects.get(pk=response.json()["id"])
    assert override.params == {"power": "on", "fan_speed": 5}
    assert override.saved_state == {"power": "off", "fan_speed": 2}
    assert override.duration == timedelta(minutes=10)
    assert alice_client.get(f"/api/v1/devices/{purifier.pk}/preclean").json()["active"] is True
    assert alice_client.post(f"/api/v1/devices/{purifier.pk}/preclean/cancel").json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"params", "duration_minutes"}),
        ({"params": {"fan_speed": 5}}, {"duration_minutes"}),
        ({"params": {}, "duration_minutes": 5}, {"params"}),
        ({"params": "fast", "duration_minutes": 0}, {"params", "duration_minutes"}),
        ({"params": {"fan_speed": 5}, "duration_minutes": 100_000}, {"duration_minutes"}),
        ({"fanMode": 9, "duration": 10}, {"fanMode"}),
        ({"fanMode": 5}, {"duration"}),
        ({"fanMode": 5, "duration": 10, "params": {"fan_speed": 5}}, {"non_field_errors"}),
    ],
)
def test_override_validation_errors(alice_client, purifier, body, fields):
    response = alice_client.post(override_url(purifier), body, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == fields
    assert not Override.objects.exists()


def test_other_users_cannot_override_someone_elses_device(bob_client, purifier):
    body = {"params": {"fan_speed": 5}, "duration_minutes": 10}
    assert bob_client.post(override_url(purifier), body, format="json").status_code == 404
    assert bob_client.get(override_url(purifier)).status_code == 404
    overrides.start(purifier, {"fan_speed": 5}, timedelta(minutes=10))
    assert bob_client.post(override_url(purifier, "/cancel")).status_code == 404
    assert Override.objects.get().is_active


def test_history_shows_a_firing_held_by_an_override(alice_client, purifier):
    schedule_id = create(alice_client, morning(purifier, time_zone="UTC")).json()["id"]
    now = datetime(2025, 1, 6, 7, 55, tzinfo=UTC)
    overrides.start(purifier, {"fan_speed": 5}, timedelta(minutes=10), now=now)
    tick(datetime(2025, 1, 6, 8, 0, 10, tzinfo=UTC))
    (run,) = alice_client.get(f"{SCHEDULES}/{schedule_id}/history").json()["results"]
    assert (run["result"], run["command"]) == ("held", None)
    assert ScheduleRun.objects.get().slot_date == date(2025, 1, 6)
