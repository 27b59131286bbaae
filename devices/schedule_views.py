"""The device page's schedules tab: the weekly plan, its schedules, their run history, and overrides.

Everything works as plain forms and redirects; HTMX only swaps the override panel in place (and
refreshes it when the override ends). Schedules are checked by ``schedules.validation_errors``,
overrides go through ``overrides.start``/``cancel``: the same rules as the API and the admin.
Access is the device's: its owner and staff; to anyone else every URL here is a 404.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from . import overrides
from .forms import OverrideForm, ScheduleForm, format_params
from .models import Device, Override, Schedule, ScheduleRun
from .schedules import DAY, DAY_NAMES, END, START, upcoming, validation_errors, weekly_spans
from .views import device_for

HISTORY_ROWS = 25
LATE = timedelta(minutes=1)  # a run fired this long after its due time shows when it was due (a catch-up)
WEEKDAYS = tuple(range(5))
COLOURS = 6
MIN_BLOCK = 5.0  # percent of a day: shorter pieces are drawn this tall, so their label stays readable


@dataclass(frozen=True)
class Block:
    """The part of a schedule's span that falls on one day of the weekly view."""

    schedule: Schedule
    top: float
    height: float
    label: str
    title: str
    colour: int


def schedules_of(device: Device) -> QuerySet[Schedule]:
    """The schedules that drive the device, directly or through one of its groups."""
    return Schedule.objects.filter(Q(device=device) | Q(group__devices=device)).distinct().select_related("group")


def schedule_of(device: Device, pk: int) -> Schedule:
    return get_object_or_404(schedules_of(device), pk=pk)


def tab_url(device: Device, anchor: str = "") -> str:
    return reverse("devices:schedules", args=[device.pk]) + (f"#{anchor}" if anchor else "")


def week_columns(schedules: list[Schedule]) -> list[dict]:
    """Seven day columns, Monday first, with each schedule's spans cut at midnight."""
    columns = [{"day": day, "name": name.capitalize(), "blocks": []} for day, name in enumerate(DAY_NAMES)]
    for index, schedule in enumerate(schedules):
        span_text = f"{schedule.start_time:%H:%M}–{schedule.end_time:%H:%M}"
        for begins, ends in weekly_spans(schedule.days, schedule.start_time, schedule.end_time):
            first_day = begins // DAY
            for day, start, end in _cut_at_midnight(begins, ends):
                starts_here = day == first_day
                height = max(100 * (end - start) / DAY, MIN_BLOCK)
                columns[day]["blocks"].append(
                    Block(
                        schedule=schedule,
                        top=round(min(100 * start / DAY, 100 - height), 3),
                        height=round(height, 3),
                        label=span_text if starts_here else f"… {span_text}",
                        title=_span_title(schedule, first_day),
                        colour=index % COLOURS,
                    )
                )
    for column in columns:
        column["blocks"].sort(key=lambda block: (block.schedule.enabled, block.top))  # enabled ones drawn on top
    return columns


def _cut_at_midnight(begins: int, ends: int) -> list[tuple[int, int, int]]:
    pieces = []
    while begins < ends:
        day = begins // DAY
        cut = min(ends, (day + 1) * DAY)
        pieces.append((day, begins - day * DAY, cut - day * DAY))
        begins = cut
    return pieces


def _span_title(schedule: Schedule, day: int) -> str:
    start_day = DAY_NAMES[day].capitalize()
    end_day = DAY_NAMES[(day + 1) % 7].capitalize() + " " if schedule.overnight else ""
    state = "" if schedule.enabled else " (disabled)"
    return f"{schedule.name}: {start_day} {schedule.start_time:%H:%M} – {end_day}{schedule.end_time:%H:%M}{state}"


def days_text(days: list[int]) -> str:
    days = sorted(set(days))
    if len(days) == 7:
        return "Every day"
    if tuple(days) == WEEKDAYS:
        return "Mon–Fri"
    return ", ".join(DAY_NAMES[day][:3].capitalize() for day in days)


def schedule_rows(schedules: list[Schedule]) -> list[dict]:
    rows = []
    for schedule in schedules:
        following = upcoming(schedule) if schedule.enabled else {START: None, END: None}
        rows.append(
            {
                "schedule": schedule,
                "days": days_text(schedule.days),
                "params": format_params(schedule.start_params),
                "next_start": following[START],
                "next_end": following[END],
            }
        )
    return rows


def run_rows(device: Device) -> list[dict]:
    """The device's latest runs, newest first; a late one (fired in a catch-up) also shows when it was due."""
    runs = ScheduleRun.objects.filter(device=device).select_related("schedule", "command")[:HISTORY_ROWS]
    return [
        {
            "run": run,
            "late": run.fired_at - run.due_at >= LATE,
            "params": format_params(run.command.params) if run.command else "",
        }
        for run in runs
    ]


def countdown_text(seconds: int) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour up: what the page's countdown shows before its script runs."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def override_context(
    device: Device, form: OverrideForm | None = None, notice: str = "", level: str = "success"
) -> dict:
    active = overrides.active_for(device)
    latest = active or Override.objects.filter(device=device).first()
    seconds = active.seconds_left() if active else 0
    return {
        "device": device,
        "override": active,
        "last_override": None if active else latest,
        "override_params": format_params(latest.params) if latest else "",
        "override_saved": format_params(latest.saved_state) if latest else "",
        "seconds_left": seconds,
        "countdown": countdown_text(seconds),
        "override_form": form or OverrideForm(),
        "override_notice": notice,
        "override_notice_level": level,
    }


def render_tab(
    request: HttpRequest, device: Device, *, form: ScheduleForm | None = None, override_form: OverrideForm | None = None
) -> HttpResponse:
    schedules = list(schedules_of(device))
    context = {
        "device": device,
        "tab": "schedules",
        "live_devices": [device.pk],
        "form": form or ScheduleForm(device=device),
        "columns": week_columns(schedules),
        "hours": [(hour, round(100 * hour / 24, 3)) for hour in range(0, 25, 3)],
        "rows": schedule_rows(schedules),
        "runs": run_rows(device),
        **override_context(device, override_form),
    }
    return render(request, "devices/device_schedules.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def schedules_tab(request: HttpRequest, pk: int) -> HttpResponse:
    """The tab; a POST creates a schedule for this device."""
    device = device_for(request.user, pk)
    form = ScheduleForm(request.POST or None, device=device)
    if request.method == "POST" and form.is_valid():
        schedule = form.save()
        messages.success(request, f"Schedule “{schedule.name}” created.")
        return redirect(tab_url(device, f"schedule-{schedule.pk}"))
    return render_tab(request, device, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    schedule = schedule_of(device, schedule_pk)
    form = ScheduleForm(request.POST or None, device=device, instance=schedule)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Schedule “{schedule.name}” saved.")
        return redirect(tab_url(device, f"schedule-{schedule.pk}"))
    context = {"device": device, "tab": "schedules", "live_devices": [device.pk], "form": form, "schedule": schedule}
    return render(request, "devices/schedule_edit.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_delete(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    """A confirmation page; the POST deletes the schedule with its history (the device stays as it is)."""
    device = device_for(request.user, pk)
    schedule = schedule_of(device, schedule_pk)
    if request.method == "POST":
        schedule.delete()
        messages.success(request, f"Schedule “{schedule.name}” deleted.")
        return redirect(tab_url(device, "schedules"))
    context = {"device": device, "tab": "schedules", "live_devices": [device.pk], "schedule": schedule}
    return render(request, "devices/schedule_confirm_delete.html", context)


@login_required
@require_POST
def schedule_enabled(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    """Enable (``enabled=1``) or disable (``enabled=0``) a schedule; enabling checks overlaps again."""
    device = device_for(request.user, pk)
    schedule = schedule_of(device, schedule_pk)
    schedule.enabled = request.POST.get("enabled") == "1"
    errors = validation_errors(schedule) if schedule.enabled else {}
    if errors:
        problems = " ".join(message for found in errors.values() for message in found)
        messages.error(request, f"Schedule “{schedule.name}” stays disabled. {problems}")
    else:
        schedule.save(update_fields=["enabled", "updated_at"])
        state = "enabled" if schedule.enabled else "disabled"
        messages.success(request, f"Schedule “{schedule.name}” {state}.")
    return redirect(tab_url(device, f"schedule-{schedule.pk}"))


@login_required
@require_http_methods(["GET", "POST"])
def override(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the override panel (HTMX refreshes it); POST: start an override with the form's parameters."""
    device = device_for(request.user, pk)
    if request.method == "GET":
        if not request.htmx:
            return redirect(tab_url(device, "override"))
        return render(request, "devices/_override_panel.html", override_context(device))
    form = OverrideForm(request.POST)
    notice, level = "", "success"
    if form.is_valid():
        minutes = form.cleaned_data["duration_minutes"]
        try:
            overrides.start(device, form.cleaned_data["params"], timedelta(minutes=minutes), user=request.user)
        except overrides.OverrideConflict as exc:  # shown with the running override, whose panel has no form
            notice, level = str(exc), "error"
        else:
            notice = f"Override started for {minutes} min."
    if request.htmx:
        context = override_context(device, None if notice else form, notice, level)
        return render(request, "devices/_override_panel.html", context)
    if not notice:
        return render_tab(request, device, override_form=form)
    (messages.success if level == "success" else messages.error)(request, notice)
    return redirect(tab_url(device, "override"))


@login_required
@require_POST
def override_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """End the active override now; the device gets its saved state back."""
    device = device_for(request.user, pk)
    try:
        overrides.cancel(device, user=request.user)
    except overrides.OverrideConflict as exc:
        notice, ok = str(exc), False
    else:
        notice, ok = "Override cancelled; the saved state is restored.", True
    if request.htmx:
        context = override_context(device, notice=notice, level="success" if ok else "error")
        return render(request, "devices/_override_panel.html", context)
    (messages.success if ok else messages.error)(request, notice)
    return redirect(tab_url(device, "override"))
