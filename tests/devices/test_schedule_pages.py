"""The device page's schedules tab: the weekly view, schedule forms, run history and override controls.

Plain Django test client, no JavaScript: every control works as a form post and a redirect; the
HTMX variants answer with the override panel alone.
"""

import re
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from devices import overrides
from devices.models import Command, DeviceGroup, Override, Schedule, ScheduleRun
from devices.schedules import END, START, tick, upcoming
from tests.conftest import session_client

MONDAY = datetime(2025, 1, 6, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_broker(settings):
    settings.MQTT_MANAGE_ACCOUNTS = False


@pytest.fixture
def purifier(device):
    device.device.reported_state = {"power": "on", "fan_speed": 2}
    device.device.save(update_fields=["reported_state"])
    return device.device


def make_schedule(device, name="Weekday mornings", **fields) -> Schedule:
    values = {
        "days": [0, 1, 2, 3, 4],
        "start_time": time(7, 30),
        "end_time": time(9, 0),
        "start_params": {"power": "on", "fan_speed": 3},
        **fields,
    }
    return Schedule.objects.create(name=name, device=device, **values)


def form_data(**fields) -> dict:
    return {
        "name": "Morning clean",
        "days": ["0", "2"],
        "start_time": "07:30",
        "end_time": "09:00",
        "start_params": "power=on, fan_speed=3",
        "start_action": "set_state",
        "end_action": "turn_off",
        "time_zone": "",
        "enabled": "on",
        **fields,
    }


def tab(device) -> str:
    return f"/devices/{device.pk}/schedules/"


class WeekBlocks(HTMLParser):
    """The weekly view's blocks: (day, schedule id, top %, height %, muted) for each block drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.day: int | None = None
        self.blocks: list[tuple[int, int, float, float, bool]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "ul" and "week__track" in classes:
            self.day = int(attributes["data-day"])
        elif tag == "li" and "week__block" in classes:
            style = dict(part.split(":") for part in attributes["style"].replace("%", "").split(";") if part.strip())
            top, height = float(style["top"]), float(style[" height"])
            self.blocks.append((self.day, int(attributes["data-schedule"]), top, height, "week__block--off" in classes))


def week_blocks(page: str) -> list[tuple[int, int, float, float, bool]]:
    parser = WeekBlocks()
    parser.feed(page)
    return parser.blocks


def row_of(page: str, schedule: Schedule) -> str:
    match = re.search(rf'<tr id="schedule-{schedule.pk}".*?</tr>', page, re.S)
    assert match, f"no table row for {schedule.name}"
    return match.group(0)


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def test_the_tab_is_in_the_device_pages_tab_bar(alice, device):
    page = session_client(alice).get(f"/devices/{device.pk}/").content.decode()
    assert f'href="/devices/{device.pk}/schedules/">Schedules</a>' in page
    response = session_client(alice).get(tab(device))
    assert response.status_code == 200
    assert re.search(r'href="[^"]+/schedules/" aria-current="page">Schedules<', response.content.decode())
    assert "No schedules yet" in response.content.decode() and "No runs yet." in response.content.decode()


def test_weekly_view_draws_spans_and_wraps_overnight_ones_into_the_next_day(alice, device):
    mornings = make_schedule(device.device)
    sunday_night = make_schedule(
        device.device, "Sunday night", days=[6], start_time=time(22, 0), end_time=time(6, 0), enabled=False
    )

    page = session_client(alice).get(tab(device)).content.decode()

    blocks = week_blocks(page)
    assert sorted(b for b in blocks if b[1] == mornings.pk) == [
        (day, mornings.pk, 31.25, 6.25, False) for day in range(5)
    ], "07:30-09:00 from Monday to Friday, nothing at the weekend"
    assert sorted(b for b in blocks if b[1] == sunday_night.pk) == [
        (0, sunday_night.pk, 0.0, 25.0, True),  # Monday 00:00-06:00, the rest of Sunday's span
        (6, sunday_night.pk, 91.667, 8.333, True),  # Sunday 22:00-24:00
    ]
    row = text(row_of(page, mornings))
    assert "Weekday mornings Mon–Fri 07:30 09:00 power=on, fan_speed=3 turn off On Disable" in row
    night = text(row_of(page, sunday_night))
    assert "Sun 22:00 06:00 next day" in night and "Off Enable" in night
    assert re.search(r'data-field="next-start">—<', row_of(page, sunday_night)), "a disabled schedule never starts"


def test_next_start_and_end_are_shown_in_the_users_time_zone(alice, device):
    alice.time_zone = "America/New_York"
    alice.save(update_fields=["time_zone"])
    schedule = make_schedule(device.device, days=list(range(7)), time_zone="Europe/Berlin")

    row = row_of(session_client(alice).get(tab(device)).content.decode(), schedule)

    following = upcoming(schedule)
    new_york = ZoneInfo("America/New_York")
    for field, kind in (("next-start", START), ("next-end", END)):
        local = following[kind].astimezone(new_york)
        cell = re.search(rf'data-field="{field}"><time datetime="([^"]+)">([^<]+)<', row)
        assert cell.group(2) == f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
        assert datetime.fromisoformat(cell.group(1)) == following[kind]
    assert "07:30 Europe/Berlin" in text(row), "the schedule's own times and zone"


def test_create_a_schedule_with_the_form(alice, device):
    alice.time_zone = "Europe/Berlin"
    alice.save(update_fields=["time_zone"])
    client = session_client(alice)

    response = client.post(tab(device), form_data())

    schedule = Schedule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{tab(device)}#schedule-{schedule.pk}"
    assert (schedule.device, schedule.group, schedule.days) == (device.device, None, [0, 2])
    assert (schedule.start_time, schedule.end_time, schedule.enabled) == (time(7, 30), time(9, 0), True)
    assert schedule.start_params == {"power": "on", "fan_speed": 3}
    assert (schedule.start_action, schedule.end_action, schedule.time_zone) == (
        "set_state",
        "turn_off",
        "Europe/Berlin",
    )
    page = client.get(tab(device)).content.decode()
    assert "Schedule “Morning clean” created." in page
    assert {(day, pk) for day, pk, *_ in week_blocks(page)} == {(0, schedule.pk), (2, schedule.pk)}


def test_params_may_be_json_and_an_end_before_the_start_ends_the_next_day(alice, device):
    client = session_client(alice)
    data = form_data(start_time="22:00", end_time="06:00", days=["4"], start_params='{"fan_speed": 1, "mode": "night"}')

    assert client.post(tab(device), data).status_code == 302

    schedule = Schedule.objects.get()
    assert schedule.overnight and schedule.start_params == {"fan_speed": 1, "mode": "night"}
    page = client.get(tab(device)).content.decode()
    assert sorted((day, top, height) for day, _, top, height, _ in week_blocks(page)) == [
        (4, 91.667, 8.333),  # Friday 22:00-24:00
        (5, 0.0, 25.0),  # Saturday 00:00-06:00
    ]
    assert "next day" in text(row_of(page, schedule))


def test_field_errors_are_shown_on_the_fields_and_nothing_is_saved(alice, device):
    data = form_data(days=[], start_time="08:00", end_time="08:00", start_params="fan_speed")
    del data["days"]

    response = session_client(alice).post(tab(device), data)

    assert response.status_code == 200 and not Schedule.objects.exists()
    page = response.content.decode()
    assert re.search(r'<p class="error" id="id_days_error">Give one or more days of the week.</p>', page)
    assert "“fan_speed” is not a key=value pair" in page

    data = form_data(start_time="08:00", end_time="08:00")
    page = session_client(alice).post(tab(device), data).content.decode()
    assert re.search(r'id="id_end_time_error">The end must differ from the start \(an end before the start', page)
    data = form_data(start_params="", start_time="25:00")
    page = session_client(alice).post(tab(device), data).content.decode()
    assert 'id="id_start_time_error">Enter a valid time.' in page
    page = session_client(alice).post(tab(device), form_data(start_params="")).content.decode()
    assert 'id="id_start_params_error">Give the parameters to apply at the start' in page
    page = session_client(alice).post(tab(device), form_data(time_zone="Mars/Base")).content.decode()
    assert 'id="id_time_zone_error">Select a valid choice.' in page
    assert not Schedule.objects.exists()


def test_an_overlapping_schedule_is_refused_with_a_clear_message(alice, device):
    mornings = make_schedule(device.device)
    sunday_night = form_data(name="Sunday night", days=["6"], start_time="23:00", end_time="08:00")

    response = session_client(alice).post(tab(device), sunday_night)

    assert response.status_code == 200 and Schedule.objects.count() == 1
    alert = re.search(r'<div class="message message--error" role="alert">(.*?)</div>', response.content.decode(), re.S)
    assert text(alert.group(1)) == (
        f"Overlaps the schedule “Weekday mornings” (#{mornings.pk}) on alice-sensor: both run on Monday from "
        "07:30 to 08:00 (UTC). Change the days or times, or disable one of them."
    )
    assert 'value="Sunday night"' in response.content.decode(), "the form keeps what was typed"
    sunday_night["enabled"] = ""
    del sunday_night["enabled"]
    assert session_client(alice).post(tab(device), sunday_night).status_code == 302, "a disabled one may overlap"


def test_edit_a_schedule(alice, device):
    schedule = make_schedule(device.device)
    other = make_schedule(device.device, "Evenings", days=[0], start_time=time(18, 0), end_time=time(20, 0))
    client = session_client(alice)
    edit = f"{tab(device)}{schedule.pk}/edit"

    page = client.get(edit).content.decode()
    assert 'value="07:30"' in page and 'value="09:00"' in page and 'value="power=on, fan_speed=3"' in page
    assert len(re.findall(r'name="days" value="\d" [^>]*checked', page)) == 5

    response = client.post(edit, form_data(name="Mornings", days=["5", "6"], start_params="fan_speed=4"))
    assert response.status_code == 302 and response["Location"] == f"{tab(device)}#schedule-{schedule.pk}"
    schedule.refresh_from_db()
    assert (schedule.name, schedule.days, schedule.start_params) == ("Mornings", [5, 6], {"fan_speed": 4})

    clash = form_data(name="Mornings", days=["0"], start_time="19:00", end_time="21:00")
    page = client.post(edit, clash).content.decode()
    assert f"Overlaps the schedule “Evenings” (#{other.pk})" in page
    schedule.refresh_from_db()
    assert schedule.days == [5, 6]


def test_delete_a_schedule_after_confirming(alice, device):
    schedule = make_schedule(device.device, days=[0], start_time=time(8, 0), end_time=time(9, 0))
    tick(now=MONDAY + timedelta(hours=8, seconds=5))
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    client = session_client(alice)
    delete = f"{tab(device)}{schedule.pk}/delete"

    page = client.get(delete).content.decode()
    assert "Delete the schedule “Weekday mornings”?" in page and Schedule.objects.exists()
    response = client.post(delete)

    assert response.status_code == 302 and response["Location"] == f"{tab(device)}#schedules"
    assert not Schedule.objects.exists() and not ScheduleRun.objects.exists()
    assert "Schedule “Weekday mornings” deleted." in client.get(tab(device)).content.decode()


def test_disable_and_enable_a_schedule(alice, device):
    schedule = make_schedule(device.device)
    client = session_client(alice)
    toggle = f"{tab(device)}{schedule.pk}/enabled"

    assert client.get(toggle).status_code == 405
    assert client.post(toggle, {"enabled": "0"}).status_code == 302
    schedule.refresh_from_db()
    assert not schedule.enabled
    page = client.get(tab(device)).content.decode()
    assert "Schedule “Weekday mornings” disabled." in page and "Off Enable" in text(row_of(page, schedule))
    assert all(muted for _, pk, _, _, muted in week_blocks(page) if pk == schedule.pk)

    client.post(toggle, {"enabled": "1"})
    schedule.refresh_from_db()
    assert schedule.enabled


def test_enabling_an_overlapping_schedule_is_refused(alice, device):
    make_schedule(device.device)
    late = make_schedule(device.device, "Late mornings", start_time=time(8, 0), end_time=time(10, 0), enabled=False)
    client = session_client(alice)

    client.post(f"{tab(device)}{late.pk}/enabled", {"enabled": "1"})

    late.refresh_from_db()
    assert not late.enabled
    page = client.get(tab(device)).content.decode()
    assert "Schedule “Late mornings” stays disabled. Overlaps the schedule “Weekday mornings”" in page


def test_group_schedules_show_on_the_devices_of_the_group(alice, device):
    group = DeviceGroup.objects.create(owner=alice, name="Living room")
    group.devices.add(device.device)
    schedule = Schedule.objects.create(
        name="Whole room", group=group, days=[3], start_time=time(12, 0), end_time=time(13, 0), start_params={"a": 1}
    )

    page = session_client(alice).get(tab(device)).content.decode()

    assert [(day, pk) for day, pk, *_ in week_blocks(page)] == [(3, schedule.pk)]
    assert "via the group Living room" in row_of(page, schedule)


def test_run_history_shows_times_in_the_users_time_zone(alice, purifier):
    alice.time_zone = "Asia/Tokyo"  # UTC+9 all year
    alice.save(update_fields=["time_zone"])
    make_schedule(purifier, days=[0], start_time=time(8, 0), end_time=time(9, 0), time_zone="UTC")
    tick(now=MONDAY + timedelta(hours=8, seconds=10))
    tick(now=MONDAY + timedelta(hours=9, minutes=3))  # beat was down: the end fires late, in the catch-up

    page = session_client(alice).get(tab(purifier)).content.decode()

    runs = [text(row) for row in re.findall(r"<tr data-run=.*?</tr>", page, re.S)]
    assert runs == [
        "2025-01-06 18:03:00 (due 18:00:00) Weekday mornings End turn_off pending command sent",
        "2025-01-06 17:00:10 Weekday mornings Start set_state power=on, fan_speed=3 pending command sent",
    ]


def test_start_and_cancel_an_override_without_javascript(alice, purifier):
    client = session_client(alice)

    response = client.post(f"/devices/{purifier.pk}/override", {"params": "fan_speed=5", "duration_minutes": "10"})

    assert response.status_code == 302 and response["Location"] == f"{tab(purifier)}#override"
    override = Override.objects.get()
    assert (override.status, override.params, override.saved_state) == ("active", {"fan_speed": 5}, {"fan_speed": 2})
    assert override.duration == timedelta(minutes=10) and override.created_by == alice
    page = client.get(tab(purifier)).content.decode()
    assert "Override started for 10 min." in page
    seconds = int(re.search(r'data-countdown data-seconds-left="(\d+)"', page).group(1))
    assert 0 < seconds <= 600
    minutes, rest = divmod(seconds, 60)
    assert f'role="timer">{minutes}:{rest:02d}</span> left' in page
    assert "At the end the device gets back <code>fan_speed=2</code>" in page
    assert "Start override" not in page

    response = client.post(f"/devices/{purifier.pk}/override/cancel")

    assert response.status_code == 302
    override.refresh_from_db()
    assert override.status == "cancelled"
    assert override.restore_command.params == {"fan_speed": 2}
    page = client.get(tab(purifier)).content.decode()
    assert "Override cancelled; the saved state is restored." in page
    assert "Last override: <code>fan_speed=5</code>, cancelled at" in page and "Start override" in page


def test_override_controls_answer_htmx_with_the_panel_alone(alice, purifier):
    client = session_client(alice)
    url = f"/devices/{purifier.pk}/override"

    started = client.post(
        url, {"params": '{"fan_speed": 5, "power": "on"}', "duration_minutes": "5"}, HTTP_HX_REQUEST="true"
    )

    panel = started.content.decode()
    assert panel.lstrip().startswith('<section id="override"') and "<html" not in panel
    assert "Override started for 5 min." in panel and "Cancel override" in panel
    assert Override.objects.get().params == {"fan_speed": 5, "power": "on"}

    second = client.post(url, {"params": "fan_speed=1", "duration_minutes": "5"}, HTTP_HX_REQUEST="true")
    assert "An override is already active on this device until" in second.content.decode()
    assert Override.objects.count() == 1

    assert client.get(url, HTTP_HX_REQUEST="true").content.decode().lstrip().startswith('<section id="override"')
    assert client.get(url)["Location"] == f"{tab(purifier)}#override"

    cancelled = client.post(f"{url}/cancel", HTTP_HX_REQUEST="true").content.decode()
    assert "Override cancelled" in cancelled and "Start override" in cancelled
    again = client.post(f"{url}/cancel", HTTP_HX_REQUEST="true").content.decode()
    assert 'message--error" role="status">This device has no active override.' in again


def test_override_form_errors(alice, purifier, settings):
    settings.OVERRIDE_MAX_MINUTES = 60
    client = session_client(alice)
    url = f"/devices/{purifier.pk}/override"

    page = client.post(url, {"params": "", "duration_minutes": "0"}).content.decode()
    assert 'id="id_params_error">Give the parameters to apply, e.g. fan_speed=5.' in page
    assert 'id="id_duration_minutes_error">Ensure this value is greater than or equal to 1.' in page
    page = client.post(url, {"params": "[1, 2]", "duration_minutes": "61"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="id_duration_minutes_error">At most 60 minutes.' in page
    assert "“[1” is not a key=value pair" in page
    assert not Override.objects.exists() and not Command.objects.exists()


def test_an_override_past_its_end_shows_as_ending_until_restored(alice, purifier):
    overrides.start(purifier, {"fan_speed": 5}, timedelta(minutes=10), now=timezone.now() - timedelta(minutes=11))
    client = session_client(alice)

    page = client.get(tab(purifier)).content.decode()
    assert "Time is up: restoring the saved state…" in page and "data-countdown" not in page
    assert 'hx-trigger="override-changed from:body, every 3s"' in page, "the panel polls until the restore"

    assert overrides.restore_overdue() == 1
    panel = client.get(f"/devices/{purifier.pk}/override", HTTP_HX_REQUEST="true").content.decode()
    assert "Last override: <code>fan_speed=5</code>, restored at" in panel and "every 3s" not in panel


def test_another_user_gets_404_on_every_schedule_and_override_url(bob, purifier):
    schedule = make_schedule(purifier)
    overrides.start(purifier, {"fan_speed": 5}, timedelta(minutes=10))
    client = session_client(bob)
    base = tab(purifier)

    for url in [base, f"{base}{schedule.pk}/edit", f"{base}{schedule.pk}/delete", f"/devices/{purifier.pk}/override"]:
        assert client.get(url).status_code == 404, url
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404, url
    posts = {
        base: form_data(),
        f"{base}{schedule.pk}/edit": form_data(name="stolen"),
        f"{base}{schedule.pk}/delete": {},
        f"{base}{schedule.pk}/enabled": {"enabled": "0"},
        f"/devices/{purifier.pk}/override": {"params": "fan_speed=1", "duration_minutes": "5"},
        f"/devices/{purifier.pk}/override/cancel": {},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url
    schedule.refresh_from_db()
    assert (schedule.name, schedule.enabled, Schedule.objects.count()) == ("Weekday mornings", True, 1)
    assert Override.objects.get().is_active


def test_a_schedule_of_another_device_is_404_under_this_device(alice, device, make_device):
    other = make_device(alice, "second").device
    schedule = make_schedule(other)
    client = session_client(alice)
    assert client.get(f"{tab(device)}{schedule.pk}/edit").status_code == 404
    assert client.post(f"{tab(device)}{schedule.pk}/delete").status_code == 404
    assert Schedule.objects.filter(pk=schedule.pk).exists()


def test_staff_see_and_change_any_device(staff, purifier):
    client = session_client(staff)
    assert client.get(tab(purifier)).status_code == 200
    assert client.post(tab(purifier), form_data()).status_code == 302
    assert Schedule.objects.get().device == purifier

    client.post(f"/devices/{purifier.pk}/override", {"params": "fan_speed=4", "duration_minutes": "3"})
    assert Override.objects.get().created_by == staff


def test_posts_need_the_csrf_token_and_a_login(alice, device):
    schedule = make_schedule(device.device)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.post(tab(device), form_data(name="Forged")).status_code == 403
    assert client.post(f"{tab(device)}{schedule.pk}/enabled", {"enabled": "0"}).status_code == 403
    assert client.post(f"/devices/{device.pk}/override", {"params": "a=1", "duration_minutes": "5"}).status_code == 403
    assert Schedule.objects.get().enabled and not Override.objects.exists()

    page = client.get(tab(device)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(tab(device), form_data(name="Real", days=["6"], csrfmiddlewaretoken=token)).status_code == 302

    anonymous = Client().get(tab(device))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
