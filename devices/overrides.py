"""Overrides (the pre-clean): apply parameters now, restore the saved state when the time is up.

An override lives in the database. Its end is armed twice: a Celery task with ``eta=ends_at``,
and beat's sweep, which restores every active override past its end; so a lost task, a
restarted worker or a broker outage still restores it, at most OVERRIDE_SWEEP_SECONDS late.
A schedule edge during an override does not send its command: it changes what the override
restores (``hold()``), so the device ends in the state the schedule wants.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import live, notify

from . import commands
from .models import Command, Device, Override

log = logging.getLogger(__name__)

APPLY_ACTION = "set_state"  # the command that applies a set of parameters; schedules use it to restore too
ACTIVE = Override.Status.ACTIVE


class OverrideConflict(Exception):
    """The device already has an active override (or has none to cancel)."""


def current_state(device: Device, keys: Iterable[str]) -> dict:
    """The device's value for each key: what it reported, else what IoTFlow last asked for."""
    state = {}
    for key in keys:
        if key in device.reported_state:
            state[key] = device.reported_state[key]
        elif key in device.desired_state:
            state[key] = device.desired_state[key]
    return state


def state_before(device: Device, keys: Iterable[str], override: Override | None) -> dict:
    """The state to come back to later: under an override, the state the override will restore."""
    keys = list(keys)
    state = current_state(device, keys)
    if override is not None:
        state.update({key: override.saved_state[key] for key in keys if key in override.saved_state})
    return state


def active_for(device: Device) -> Override | None:
    return Override.objects.filter(device=device, status=ACTIVE).first()


def start(device: Device, params: dict, duration: timedelta, *, user=None, now: datetime | None = None) -> Override:
    """Save the state the params change, apply them now and arm the restore at the end."""
    now = now or timezone.now()
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        running = active_for(device)
        if running is not None:
            raise OverrideConflict(
                f"An override is already active on this device until {running.ends_at:%Y-%m-%d %H:%M:%S} UTC."
            )
        override = Override(
            device=device,
            params=params,
            duration=duration,
            saved_state=current_state(device, commands.expected_state(APPLY_ACTION, params)),
            started_at=now,
            ends_at=now + duration,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        try:
            with transaction.atomic():
                override.save()
        except IntegrityError:
            raise OverrideConflict("An override is already active on this device.") from None
        override.apply_command = commands.send(device, APPLY_ACTION, params, source=Command.Source.OVERRIDE, user=user)
        override.save(update_fields=["apply_command"])
        transaction.on_commit(lambda: _arm(override.pk, override.ends_at))
        _announce(override, started=True)
    return override


def _arm(override_id: int, eta: datetime) -> None:
    from .tasks import restore_override

    try:
        restore_override.apply_async((override_id,), eta=eta)
    except Exception:  # the broker is down: beat's sweep restores the override instead
        log.warning("Could not arm the restore of override %s; the sweep will restore it", override_id, exc_info=True)


def hold(override: Override, action: str, params: dict) -> None:
    """Let the override keep the device, and make its end restore the state this command asks for."""
    override.saved_state = {**override.saved_state, **commands.expected_state(action, params)}
    override.save(update_fields=["saved_state"])


def finish(override_id: int, *, now: datetime | None = None, cancelled: bool = False, user=None) -> Override | None:
    """Restore the saved state and close the override; None when it is not (or not yet) due.

    Safe to call any number of times from any process: only the first call past the end does anything.
    """
    now = now or timezone.now()
    with transaction.atomic():
        device_id = Override.objects.filter(pk=override_id).values_list("device_id", flat=True).first()
        if device_id is None:
            return None
        device = Device.objects.select_for_update().get(pk=device_id)
        override = Override.objects.select_for_update().filter(pk=override_id, status=ACTIVE).first()
        if override is None or (not cancelled and override.ends_at > now):
            return None
        if override.saved_state:
            override.restore_command = commands.send(
                device, APPLY_ACTION, override.saved_state, source=Command.Source.OVERRIDE, user=user
            )
        override.status = Override.Status.CANCELLED if cancelled else Override.Status.RESTORED
        override.ended_at = now
        override.save(update_fields=["restore_command", "status", "ended_at"])
        override.device = device
        _announce(override, started=False)
    return override


def cancel(device: Device, *, user=None, now: datetime | None = None) -> Override:
    """End the device's active override now, restoring its saved state."""
    running = active_for(device)
    finished = finish(running.pk, now=now, cancelled=True, user=user) if running else None
    if finished is None:
        raise OverrideConflict("This device has no active override.")
    return finished


def restore_overdue(now: datetime | None = None) -> int:
    """Restore every active override past its end: the safety net for restore tasks that were lost."""
    now = now or timezone.now()
    due = Override.objects.filter(status=ACTIVE, ends_at__lte=now).values_list("pk", flat=True)
    return sum(1 for pk in list(due) if finish(pk, now=now) is not None)


def _announce(override: Override, *, started: bool) -> None:
    device = override.device
    owner = device.owner
    if started:
        until = override.ends_at.astimezone(ZoneInfo(owner.time_zone or "UTC")).strftime("%H:%M")
        minutes = int(override.duration.total_seconds() // 60)
        title, kind = f"Override started on {device.name}", "override_started"
        message = f"{_describe(override.params)} for {minutes} min, until {until}."
    else:
        verb = "cancelled" if override.status == Override.Status.CANCELLED else "ended"
        title, kind = f"Override {verb} on {device.name}", "override_ended"
        saved = override.saved_state
        message = (
            f"Restored {_describe(saved)}." if saved else "Nothing to restore: the device had reported none of it."
        )
    notify(owner, "info", title, message, device=device, kind=kind)
    live.publish_device_event(
        device.pk,
        "override",
        {
            "id": override.pk,
            "status": override.status,
            "ends_at": override.ends_at.isoformat(),
            "params": override.params,
        },
    )


def _describe(state: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in state.items())
