"""The command pipeline: ``send()`` records a command, workers deliver it, devices acknowledge it.

pending → sent → acknowledged | failed | timeout | expired | cancelled. A command
is resent when no acknowledgement arrives within COMMAND_ACK_TIMEOUT_SECONDS, at most
COMMAND_MAX_ATTEMPTS times; one that expires before delivery is never delivered.
Every transition is a row update under a lock, so concurrent workers never deliver
a command twice at once and the audit log stays exact.
"""

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications import live, notify

from .models import Command, Device, DeviceGroup, FleetCommand

log = logging.getLogger(__name__)

Status = Command.Status

# Actions whose effect on the device state is known without asking the device.
ACTION_STATE = {
    "turn_on": {"power": "on"},
    "turn_off": {"power": "off"},
}


class CommandRejected(Exception):
    """The command cannot be changed the way the caller asked (e.g. cancelling an acknowledged one)."""


def expected_state(action: str, params: dict) -> dict:
    """The state a device should be in once it has executed this command."""
    state = dict(ACTION_STATE.get(action, {}))
    if action == "set_fan_speed" and "speed" in params:
        state["fan_speed"] = params["speed"]
    state.update({k: v for k, v in params.items() if k != "speed" or action != "set_fan_speed"})
    return state


def send(
    device: Device,
    action: str,
    params: dict | None = None,
    *,
    source: str = Command.Source.USER,
    user=None,
    expires_in: int | None = None,
    fleet: FleetCommand | None = None,
) -> Command:
    """Record a command and hand it to a worker for delivery once the transaction commits."""
    params = params or {}
    now = timezone.now()
    expiry = expires_in if expires_in is not None else settings.COMMAND_DEFAULT_EXPIRY_SECONDS
    with transaction.atomic():
        command = Command.objects.create(
            device=device,
            action=action,
            params=params,
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            created_at=now,
            expires_at=now + timedelta(seconds=expiry),
            fleet_command=fleet,
        )
        desired = {**device.desired_state, **expected_state(action, params)}
        Device.objects.filter(pk=device.pk).update(desired_state=desired, desired_state_at=now)
        transaction.on_commit(lambda: _enqueue(command.pk))
        live.publish_command(command)
    return command


def send_to_group(group: DeviceGroup, action: str, params: dict | None = None, *, user=None, **kwargs):
    """One tracked command per device of the group, tied together for a roll-up."""
    with transaction.atomic():
        fleet = FleetCommand.objects.create(group=group, action=action, params=params or {}, created_by=user)
        for device in group.devices.all():
            send(device, action, params, source=Command.Source.FLEET, user=user, fleet=fleet, **kwargs)
    return fleet


def _enqueue(command_id) -> None:
    from .tasks import deliver_command

    try:
        deliver_command.delay(str(command_id))
    except Exception:  # the broker is down: the periodic sweep delivers pending commands later
        log.warning("Could not queue delivery of command %s; the sweep will deliver it", command_id, exc_info=True)


def _finish(command: Command, status: str, error: str = "") -> None:
    command.status = status
    command.completed_at = timezone.now()
    command.error = error or command.error
    command.save(update_fields=["status", "completed_at", "error"])
    live.publish_command(command)


def _notify_failure(command: Command, what: str) -> None:
    device = command.device
    notify(
        device.owner,
        "error",
        f"Command {command.action} {what}",
        f"{command.action} to {device.name}: {command.error or what}",
        device=device,
        kind=f"command_{command.status}",
    )


def claim_delivery(command_id, now=None) -> Command | None:
    """Count one delivery attempt and return the command to publish, or None when it must not go out."""
    now = now or timezone.now()
    with transaction.atomic():
        command = Command.objects.select_for_update().select_related("device__owner").filter(pk=command_id).first()
        if command is None or not command.is_open:
            return None
        if command.expires_at and command.expires_at <= now:
            command.error = "Expired before the device acknowledged it."
            _finish(command, Status.EXPIRED)
            return None
        if command.attempts >= settings.COMMAND_MAX_ATTEMPTS:
            command.error = f"No acknowledgement after {command.attempts} attempts."
            _finish(command, Status.TIMEOUT)
            _notify_failure(command, "timed out")
            return None
        command.attempts += 1
        command.sent_at = now
        command.status = Status.SENT
        command.save(update_fields=["attempts", "sent_at", "status"])
        live.publish_command(command)
    return command


def message_lifetime(command: Command, now=None) -> int:
    """Seconds the broker may keep this attempt's message for a device that is away.

    A device with a persistent session gets queued messages when it returns; past the command's
    expiry, or once the platform has stopped waiting for the last attempt's acknowledgement, the
    message must be gone, so a command is never run after it expired or timed out.
    """
    now = now or timezone.now()
    attempts_left = max(settings.COMMAND_MAX_ATTEMPTS - command.attempts + 1, 1)
    seconds = settings.COMMAND_ACK_TIMEOUT_SECONDS * attempts_left
    if command.expires_at:
        seconds = min(seconds, (command.expires_at - now).total_seconds())
    return max(1, math.ceil(seconds))


def acknowledge(device: Device, command_id, ok: bool, result: Any = None, error: str = "") -> Command:
    """Record the device's answer; the device's reported state follows a successful command."""
    now = timezone.now()
    with transaction.atomic():
        command = Command.objects.select_for_update().select_related("device__owner").get(pk=command_id, device=device)
        if command.status == Status.CANCELLED:
            raise CommandRejected("The command was cancelled.")
        if command.status in (Status.ACKNOWLEDGED, Status.FAILED):
            return command  # a repeated acknowledgement changes nothing
        command.status = Status.ACKNOWLEDGED if ok else Status.FAILED
        command.acknowledged_at = command.completed_at = now
        command.response = result
        command.error = "" if ok else (error or _error_from(result) or "The device reported an error.")
        command.save(update_fields=["status", "acknowledged_at", "completed_at", "response", "error"])
        live.publish_command(command)
        if ok:
            reported = result.get("state") if isinstance(result, dict) else None
            state = reported if isinstance(reported, dict) else expected_state(command.action, command.params)
            update_reported_state(device.pk, state, now)
        else:
            _notify_failure(command, "failed")
    return command


def _error_from(result: Any) -> str:
    return str(result.get("error", "")) if isinstance(result, dict) else ""


def update_reported_state(device_id: int, state: dict, when=None) -> None:
    if not state:
        return
    with transaction.atomic():
        device = Device.objects.select_for_update().only("reported_state").get(pk=device_id)
        merged = {**device.reported_state, **state}
        if merged != device.reported_state:
            when = when or timezone.now()
            Device.objects.filter(pk=device_id).update(reported_state=merged, reported_state_at=when)
            live.publish_device_event(
                device_id, "device_state", {"reported_state": merged, "reported_state_at": when.isoformat()}
            )


def cancel(command: Command) -> Command:
    with transaction.atomic():
        command = Command.objects.select_for_update().get(pk=command.pk)
        if not command.is_open:
            raise CommandRejected(f"A command that is {command.status} cannot be cancelled.")
        _finish(command, Status.CANCELLED)
    return command


def pending_for(device: Device, limit: int = 20) -> list[Command]:
    """Commands an HTTP-polling device should execute now.

    A command handed out less than COMMAND_ACK_TIMEOUT_SECONDS ago is returned again without
    counting a new attempt, so a device may poll often; the device deduplicates by ``id``.
    """
    now = timezone.now()
    ack_deadline = now - timedelta(seconds=settings.COMMAND_ACK_TIMEOUT_SECONDS)
    result = []
    for command in Command.objects.filter(device=device, status__in=Command.OPEN).order_by("created_at")[:limit]:
        if command.status == Status.SENT and command.sent_at and command.sent_at > ack_deadline:
            if not command.expires_at or command.expires_at > now:
                result.append(command)
            continue
        claimed = claim_delivery(command.pk, now)
        if claimed is not None:
            result.append(claimed)
    return result


def due_for_delivery(now=None) -> list:
    """Commands a sweep must (re)deliver: never sent, or sent without an answer for too long."""
    now = now or timezone.now()
    ack_deadline = now - timedelta(seconds=settings.COMMAND_ACK_TIMEOUT_SECONDS)
    pending = Command.objects.filter(status=Status.PENDING, created_at__lt=now - timedelta(seconds=2))
    unanswered = Command.objects.filter(status=Status.SENT, sent_at__lt=ack_deadline)
    return list(pending.values_list("pk", flat=True)) + list(unanswered.values_list("pk", flat=True))


def rollup(fleet: FleetCommand) -> dict[str, int]:
    counts = {status: 0 for status in Status.values}
    for status in fleet.commands.values_list("status", flat=True):
        counts[status] += 1
    return counts
