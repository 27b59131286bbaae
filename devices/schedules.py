"""Weekly schedules: which edges fall due when, and firing each edge exactly once.

Beat calls ``tick()`` every SCHEDULE_TICK_SECONDS. It looks back SCHEDULE_CATCH_UP_SECONDS, so an
edge that fell due while beat or the workers were down still fires when they return, and it
writes each firing as a ScheduleRun row whose unique slot lets only one writer win, so nothing
fires twice. The time arithmetic is pure functions of (days, times, zone, window): tests pass
any clock they like.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from notifications import notify

from . import commands, overrides
from .models import Command, Device, Override, Schedule, ScheduleRun, validate_time_zone

log = logging.getLogger(__name__)

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86_400
WEEK = 7 * DAY
START, END = ScheduleRun.Edge.START.value, ScheduleRun.Edge.END.value


@dataclass(frozen=True)
class Edge:
    """A moment a schedule acts: the start or end of the span that starts on ``slot_date``."""

    slot_date: date
    kind: str
    at: datetime


def wall_clock_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant a local wall-clock time names.

    A time the clock repeats (autumn) names its first occurrence; a time the clock skips
    (spring) names the moment the clock jumps, the first valid moment after it.
    """
    naive = datetime.combine(day, at)
    instant = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    return _end_of_gap(naive, zone)


def _end_of_gap(naive: datetime, zone: ZoneInfo) -> datetime:
    low, high = sorted(int(naive.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1))

    def wall(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, zone).replace(tzinfo=None)

    # The wall clock reads before `naive` at `low` and at or after it at `high`: find the jump.
    while high - low > 1:
        middle = (low + high) // 2
        if wall(middle) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def edges_between(
    days: Iterable[int], start: time, end: time, zone: ZoneInfo, since: datetime, until: datetime
) -> list[Edge]:
    """The edges due in (since, until], in time order.

    ``days`` are the weekdays a span starts on (0 = Monday); an end earlier than the start falls
    on the next day but belongs to the span (same ``slot_date``). A span the clock skips
    entirely (both edges inside a spring-forward gap) does not run that day.
    """
    days = set(days)
    edges = []
    day = since.astimezone(zone).date() - timedelta(days=1)
    while day <= until.astimezone(zone).date():
        if day.weekday() in days:
            begins = wall_clock_instant(day, start, zone)
            ends = wall_clock_instant(day + timedelta(days=1) if end < start else day, end, zone)
            if begins < ends:
                edges += [Edge(day, START, begins), Edge(day, END, ends)]
        day += timedelta(days=1)
    return sorted((e for e in edges if since < e.at <= until), key=lambda e: e.at)


def schedule_edges(schedule: Schedule, since: datetime, until: datetime) -> list[Edge]:
    return edges_between(schedule.days, schedule.start_time, schedule.end_time, schedule.zone, since, until)


def upcoming(schedule: Schedule, now: datetime | None = None) -> dict[str, datetime | None]:
    """The next start and end, for people to check a schedule does what they meant."""
    now = now or timezone.now()
    edges = schedule_edges(schedule, now, now + timedelta(days=8))
    return {kind: next((e.at for e in edges if e.kind == kind), None) for kind in (START, END)}


def tick(now: datetime | None = None) -> list[ScheduleRun]:
    """Fire every edge of every enabled schedule that fell due within the catch-up window."""
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.SCHEDULE_CATCH_UP_SECONDS)
    due = due_edges(since, now)
    fired_before = _fired_slots(due)
    runs = []
    for schedule, edge in due:
        fired = []
        for device_id in schedule.targets().values_list("pk", flat=True):
            if (schedule.pk, device_id, edge.slot_date, edge.kind) in fired_before:
                continue
            try:
                run = fire(schedule, edge, device_id, now)
            except Exception:  # one broken schedule must not stop the others; the next tick retries it
                log.exception("Firing %s of schedule %s on device %s failed", edge.kind, schedule.pk, device_id)
                continue
            if run is not None:
                fired.append(run)
        if fired:
            _tell_owner(schedule, edge, fired)
            runs += fired
    return runs


def due_edges(since: datetime, until: datetime) -> list[tuple[Schedule, Edge]]:
    """Due edges of enabled schedules in time order; at one instant ends go before starts."""
    due = []
    for schedule in Schedule.objects.filter(enabled=True).select_related("device__owner", "group__owner"):
        due += [(schedule, edge) for edge in schedule_edges(schedule, since, until)]
    return sorted(due, key=lambda pair: (pair[1].at, pair[1].kind == START))


def _fired_slots(due: list[tuple[Schedule, Edge]]) -> set[tuple]:
    """Slots of these edges that already have a run, so a tick does not try them again."""
    if not due:
        return set()
    runs = ScheduleRun.objects.filter(
        schedule__in={schedule.pk for schedule, _ in due}, slot_date__gte=min(edge.slot_date for _, edge in due)
    )
    return set(runs.values_list("schedule_id", "device_id", "slot_date", "edge"))


def fire(schedule: Schedule, edge: Edge, device_id: int, now: datetime) -> ScheduleRun | None:
    """Fire one edge on one device, or return None when it already fired.

    The run row is inserted first: a concurrent writer of the same slot waits for this
    transaction and then fails on the unique constraint, so exactly one command goes out.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                run = ScheduleRun.objects.create(
                    schedule=schedule,
                    device_id=device_id,
                    slot_date=edge.slot_date,
                    edge=edge.kind,
                    due_at=edge.at,
                    fired_at=now,
                    result=ScheduleRun.Result.SKIPPED,
                )
        except IntegrityError:
            return None
        device = Device.objects.select_for_update().get(pk=device_id)
        override = Override.objects.select_for_update().filter(device=device, status=Override.Status.ACTIVE).first()
        action, params = _command_for(schedule, run, device, override)
        if action is None:
            run.detail = "Nothing was recorded at the start to restore."
        elif override is not None:
            overrides.hold(override, action, params)
            run.result = ScheduleRun.Result.HELD
            run.detail = f"Override #{override.pk} holds the device; its end restores this state."
        else:
            run.command = commands.send(device, action, params, source=Command.Source.SCHEDULE)
            run.result = ScheduleRun.Result.SENT
        run.save(update_fields=["command", "result", "detail", "saved_state"])
    return run


def _command_for(
    schedule: Schedule, run: ScheduleRun, device: Device, override: Override | None
) -> tuple[str | None, dict]:
    """What this edge sends; a start also records the state it replaces, for a restoring end."""
    if run.edge == START:
        keys = commands.expected_state(schedule.start_action, schedule.start_params)
        run.saved_state = overrides.state_before(device, keys, override)
        return schedule.start_action, schedule.start_params
    if schedule.end_action == Schedule.EndAction.TURN_OFF:
        return "turn_off", {}
    start = ScheduleRun.objects.filter(schedule=schedule, device=device, slot_date=run.slot_date, edge=START).first()
    saved = start.saved_state if start else {}
    return (overrides.APPLY_ACTION, saved) if saved else (None, {})


def _tell_owner(schedule: Schedule, edge: Edge, runs: list[ScheduleRun]) -> None:
    what = "started" if edge.kind == START else "ended"
    lines = [f"{run.device.name}: {run.get_result_display()}" for run in runs]
    notify(
        schedule.owner,
        "info",
        f"Schedule “{schedule.name}” {what}",
        "; ".join(lines),
        device=runs[0].device if len(runs) == 1 else None,
        kind="schedule_executed",
    )


def validation_errors(schedule: Schedule) -> dict[str, list[str]]:
    """Everything wrong with a schedule, by field; an overlap is checked once the rest is right."""
    errors: dict[str, list[str]] = {}
    if schedule.device_id is None and schedule.group_id is None:
        errors["device"] = ["Give the device (or the group) this schedule drives."]
    elif schedule.device_id is not None and schedule.group_id is not None:
        errors["device"] = ["A schedule drives one device or one group, not both."]
    days = schedule.days
    if not isinstance(days, list) or not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
        errors["days"] = ["Give one or more days of the week."]
    if schedule.start_time == schedule.end_time:
        errors["end_time"] = ["The end must differ from the start (an end before the start ends the next day)."]
    if schedule.time_zone:
        try:
            validate_time_zone(schedule.time_zone)
        except ValidationError as exc:
            errors["time_zone"] = exc.messages
    if schedule.start_action == overrides.APPLY_ACTION and not schedule.start_params:
        errors["start_params"] = ['Give the parameters to apply at the start, e.g. {"power": "on", "fan_speed": 3}.']
    if not errors and schedule.enabled:
        conflict = overlap_message(schedule)
        if conflict:
            errors[NON_FIELD_ERRORS] = [conflict]
    return errors


def weekly_spans(days: Iterable[int], start: time, end: time) -> list[tuple[int, int]]:
    """The seconds of the week [from, to) a schedule covers, split where a span wraps past Sunday."""
    spans = []
    for day in sorted(set(days)):
        begins = day * DAY + _seconds(start)
        ends = day * DAY + _seconds(end) + (DAY if end < start else 0)
        spans += _wrapped(begins, ends)
    return spans


def _seconds(at: time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def _wrapped(begins: int, ends: int) -> list[tuple[int, int]]:
    begins, ends = begins % WEEK, begins % WEEK + (ends - begins)
    return [(begins, ends)] if ends <= WEEK else [(begins, WEEK), (0, ends - WEEK)]


def first_overlap(ours: list[tuple[int, int]], theirs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The earliest stretch both lists of spans cover, or None; back-to-back spans do not overlap."""
    hits = [(max(a, c), min(b, d)) for a, b in ours for c, d in theirs if a < d and c < b]
    return min(hits) if hits else None


def overlap_message(schedule: Schedule) -> str:
    """Why this schedule cannot run, if another enabled schedule drives a device of it at the same time."""
    device_ids = set(schedule.targets().values_list("pk", flat=True))
    if not device_ids:
        return ""
    others = (
        Schedule.objects.filter(enabled=True)
        .filter(Q(device__in=device_ids) | Q(group__devices__in=device_ids))
        .exclude(pk=schedule.pk)
        .distinct()
        .order_by("pk")
    )
    now = timezone.now()
    ours = weekly_spans(schedule.days, schedule.start_time, schedule.end_time)
    for other in others:
        shift = _utc_offset(schedule.zone, now) - _utc_offset(other.zone, now)
        theirs = [
            piece
            for a, b in weekly_spans(other.days, other.start_time, other.end_time)
            for piece in _wrapped(a + shift, b + shift)
        ]
        hit = first_overlap(ours, theirs)
        if hit:
            shared = other.targets().filter(pk__in=device_ids).order_by("pk").first()
            return (
                f"Overlaps the schedule “{other.name}” (#{other.pk}) on {shared.name}: both run "
                f"{_describe(hit)} ({schedule.zone.key}). Change the days or times, or disable one of them."
            )
    return ""


def _utc_offset(zone: ZoneInfo, now: datetime) -> int:
    return int(now.astimezone(zone).utcoffset().total_seconds())


def _describe(span: tuple[int, int]) -> str:
    begins, ends = span
    return f"on {DAY_NAMES[begins // DAY].capitalize()} from {_clock(begins)} to {_clock(ends)}"


def _clock(seconds: int) -> str:
    seconds %= DAY
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
