"""The schedules tab in a real browser: a schedule added with the form shows in the weekly view, an
override's countdown ticks and ends, and the override panel follows changes made elsewhere.

The live override messages need the ASGI app: ``live_socket`` runs daphne beside the live server
(see conftest.py). The countdown and the panel's refresh when it ends need no socket.
"""

import re
from datetime import datetime, time, timedelta
from time import sleep

import pytest
from django.utils import timezone

from devices import overrides
from devices.models import Override, Schedule
from devices.schedules import tick
from tests.browser.conftest import log_in, screenshot, wait_until_following
from tests.conftest import token_client

expect = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install playwright").expect

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


@pytest.fixture
def purifier(make_user, make_device, settings):
    settings.MQTT_MANAGE_ACCOUNTS = False
    alice = make_user("alice", time_zone="Europe/Berlin")
    device = make_device(alice, "Living room purifier", device_type="air_purifier", location="Living room").device
    device.reported_state = {"power": "on", "fan_speed": 2}
    device.save(update_fields=["reported_state"])
    return device


def blocks(page, schedule: Schedule, day: int | None = None):
    track = ".week__track" if day is None else f'.week__track[data-day="{day}"]'
    return page.locator(f'{track} .week__block[data-schedule="{schedule.pk}"]')


def add_schedule(page, name: str, days: list[str], start: str, end: str, params: str) -> None:
    form = page.locator("#add-schedule")
    form.get_by_label("Name").fill(name)
    for day in days:
        form.get_by_label(day, exact=True).check()
    form.get_by_label(re.compile(r"^Start")).fill(start)
    form.get_by_label(re.compile(r"^End")).fill(end)
    form.get_by_label("Parameters at the start").fill(params)
    form.get_by_role("button", name="Add schedule").click()


def test_a_schedule_added_on_the_tab_shows_in_the_weekly_view(page, purifier):
    log_in(page, "alice")
    page.goto(f"/devices/{purifier.pk}/")
    page.get_by_role("navigation", name="Device sections").get_by_role("link", name="Schedules").click()
    expect(page.get_by_text("No schedules yet")).to_be_visible()

    add_schedule(page, "Weekday mornings", WEEKDAYS, "07:30", "09:00", "power=on, fan_speed=3")

    expect(page.get_by_text("Schedule “Weekday mornings” created.")).to_be_visible()
    mornings = Schedule.objects.get(name="Weekday mornings")
    assert (mornings.days, mornings.start_time, mornings.start_params) == (
        [0, 1, 2, 3, 4],
        time(7, 30),
        {"power": "on", "fan_speed": 3},
    )
    assert mornings.time_zone == "Europe/Berlin", "the owner's zone"
    expect(blocks(page, mornings)).to_have_count(5)
    for day in range(5):
        expect(blocks(page, mornings, day)).to_contain_text("Weekday mornings 07:30–09:00")
    expect(blocks(page, mornings, 5)).to_have_count(0)
    row = page.locator(f"#schedule-{mornings.pk}")
    expect(row).to_contain_text("Mon–Fri")
    expect(row.locator('[data-field="next-start"] time')).to_have_text(re.compile(r"^(Mon|Tue|Wed|Thu|Fri) .* 07:30$"))

    add_schedule(page, "Friday nights", ["Friday"], "22:00", "06:00", "fan_speed=1")
    nights = Schedule.objects.get(name="Friday nights")
    expect(blocks(page, nights, 4)).to_contain_text("22:00–06:00")
    expect(blocks(page, nights, 5)).to_contain_text("… 22:00–06:00")  # Saturday morning, the same span
    expect(page.locator(f"#schedule-{nights.pk}")).to_contain_text("next day")

    add_schedule(page, "Sunday night", ["Sunday"], "23:00", "08:00", "fan_speed=1")
    expect(page.get_by_role("alert")).to_contain_text(
        "Overlaps the schedule “Weekday mornings”"
        f" (#{mornings.pk}) on Living room purifier: both run on Monday from 07:30 to 08:00 (Europe/Berlin)."
    )
    assert not Schedule.objects.filter(name="Sunday night").exists()

    page.get_by_role("button", name="Disable Friday nights").click()
    expect(page.locator(f"#schedule-{nights.pk}")).to_contain_text("Off")
    expect(blocks(page, nights, 4)).to_have_class(re.compile(r"week__block--off"))


def test_an_override_counts_down_and_is_cancelled(page, live_socket, purifier):
    Schedule.objects.create(
        name="Weekday mornings",
        device=purifier,
        days=[0, 1, 2, 3, 4],
        start_time=time(7, 30),
        end_time=time(9, 0),
        start_params={"power": "on", "fan_speed": 3},
    )
    Schedule.objects.create(
        name="Weekend evenings",
        device=purifier,
        days=[5, 6],
        start_time=time(18, 0),
        end_time=time(23, 0),
        start_params={"fan_speed": 2},
        end_action=Schedule.EndAction.RESTORE,
    )
    Schedule.objects.create(
        name="Night boost",
        device=purifier,
        days=[2],
        start_time=time(23, 30),
        end_time=time(5, 0),
        start_params={"fan_speed": 4},
        enabled=False,
    )
    fire_last_mondays_edges()

    log_in(page, "alice")
    page.goto(f"/devices/{purifier.pk}/schedules/")
    expect(page.locator("[data-run]")).to_have_count(2)
    wait_until_following(page, purifier.pk)
    panel = page.locator("#override")
    panel.get_by_label("Parameters").fill("fan_speed=5")
    panel.get_by_label("Duration (minutes)").fill("10")
    page.evaluate("window.notReloaded = true")
    panel.get_by_role("button", name="Start override").click()

    expect(panel.get_by_text("Override started for 10 min.")).to_be_visible()
    clock = panel.locator("[data-countdown]")
    expect(clock).to_have_text(re.compile(r"^(10:00|9:[0-5]\d)$"))
    shown = clock.inner_text()
    expect(clock).not_to_have_text(shown)  # it ticks
    assert page.evaluate("window.notReloaded") is True, "the panel was swapped in place"
    override = Override.objects.get()
    assert (override.status, override.params, override.saved_state) == ("active", {"fan_speed": 5}, {"fan_speed": 2})
    toast = page.locator(".toast").filter(has_text="Override started on Living room purifier")
    expect(toast).to_contain_text("fan_speed=5 for 10 min")
    toast.get_by_role("button", name="Dismiss notification").click()
    screenshot(page, "device-schedules")

    panel.get_by_role("button", name="Cancel override").click()

    expect(panel.get_by_role("button", name="Start override")).to_be_visible()
    expect(panel).to_contain_text("Last override: fan_speed=5, cancelled at")
    override.refresh_from_db()
    assert override.status == "cancelled" and override.restore_command.params == {"fan_speed": 2}


def test_the_sockets_report_of_a_start_or_cancel_does_not_wipe_its_confirmation(
    page, live_socket, purifier, monkeypatch
):
    """The socket reports the page's own start or cancel while its answer is still on its way.

    Here each answer leaves the server a second after its report: a reload of the panel begun on the
    report would be answered first, and the answer would then land in the panel it replaced.
    """
    from notifications import live

    def answered_late(change):
        def slowly(*args, **kwargs):
            done = change(*args, **kwargs)
            live.wait_until_sent(5)
            sleep(1)
            return done

        return slowly

    monkeypatch.setattr(overrides, "start", answered_late(overrides.start))
    monkeypatch.setattr(overrides, "cancel", answered_late(overrides.cancel))
    reloads = []
    page.on("request", lambda r: reloads.append(r.url) if r.method == "GET" and "/override" in r.url else None)

    log_in(page, "alice")
    page.goto(f"/devices/{purifier.pk}/schedules/")
    wait_until_following(page, purifier.pk)
    panel = page.locator("#override")
    panel.get_by_label("Parameters").fill("fan_speed=5")
    panel.get_by_label("Duration (minutes)").fill("10")
    panel.get_by_role("button", name="Start override").click()

    expect(panel.get_by_text("Override started for 10 min.")).to_be_visible()
    expect(panel.get_by_role("button", name="Cancel override")).to_be_visible()

    panel.get_by_role("button", name="Cancel override").click()

    expect(panel.get_by_text("Override cancelled; the saved state is restored.")).to_be_visible()
    assert reloads == [], "the panel reloaded on its own start or cancel"
    assert list(Override.objects.values_list("status", flat=True)) == ["cancelled"]


def fire_last_mondays_edges() -> None:
    """Fill the run history: a past Monday's start and end of the weekday schedule, as beat fired them."""
    zone = Schedule.objects.get(name="Weekday mornings").zone
    today = timezone.localdate(timezone=zone)
    monday = today - timedelta(days=today.weekday() + 7)
    for clock in (time(7, 30, 4), time(9, 0, 3)):
        tick(now=datetime.combine(monday, clock, tzinfo=zone))


def test_the_panel_shows_the_end_of_an_override_when_its_time_is_up(page, purifier):
    override = overrides.start(
        purifier, {"fan_speed": 5}, timedelta(minutes=1), now=timezone.now() - timedelta(seconds=56)
    )
    log_in(page, "alice")
    page.goto(f"/devices/{purifier.pk}/schedules/")
    panel = page.locator("#override")

    expect(panel).to_contain_text("Time is up: restoring the saved state…")  # the countdown reached zero
    assert overrides.restore_overdue(now=override.ends_at) == 1  # as beat's sweep or the timed task does

    expect(panel).to_contain_text("Last override: fan_speed=5, restored at")  # the panel polls while it waits
    expect(panel.get_by_role("button", name="Start override")).to_be_visible()


def test_the_panel_follows_overrides_started_and_cancelled_elsewhere(page, live_socket, purifier):
    log_in(page, "alice")
    page.goto(f"/devices/{purifier.pk}/schedules/")
    wait_until_following(page, purifier.pk)
    page.evaluate("window.notReloaded = true")
    api = token_client(purifier.owner)
    panel = page.locator("#override")

    started = api.post(f"/api/v1/devices/{purifier.pk}/preclean", {"fanMode": 5, "duration": 15}, format="json")
    assert started.status_code == 201, started.content

    expect(panel.locator("[data-countdown]")).to_have_text(re.compile(r"^(15:00|14:[0-5]\d)$"))
    expect(panel).to_contain_text("power=on, fan_speed=5")
    assert api.post(f"/api/v1/devices/{purifier.pk}/override/cancel").status_code == 200
    expect(panel).to_contain_text("Last override: power=on, fan_speed=5, cancelled at")
    assert page.evaluate("window.notReloaded") is True, "the socket's override messages refreshed the panel"
