"""Celery tasks of devices: command delivery, broker accounts, schedules, overrides and beat's periodic sweeps."""

import logging

from celery import shared_task

from telemetry.mqtt import Publisher, command_topic

from . import commands, health, overrides, schedules
from .broker import BrokerAccounts, BrokerError, device_username
from .models import Device, mqtt_password_for

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def deliver_command(command_id: str) -> None:
    """One delivery attempt; the sweep resends it if no acknowledgement arrives in time."""
    command = commands.claim_delivery(command_id)
    if command is None:
        return
    try:
        Publisher.publish(
            command_topic(command.device_id), command.as_message(), expiry=commands.message_lifetime(command)
        )
    except (ConnectionError, OSError, ValueError, RuntimeError):
        Publisher.reset()
        log.warning("Publishing command %s failed; it will be retried", command_id, exc_info=True)


@shared_task(ignore_result=True)
def sweep_commands() -> int:
    """Deliver commands whose task was lost and resend (or time out) unanswered ones."""
    due = commands.due_for_delivery()
    for command_id in due:
        deliver_command(str(command_id))
    return len(due)


@shared_task(ignore_result=True)
def sweep_health() -> int:
    return health.sweep()


@shared_task(ignore_result=True, autoretry_for=(BrokerError, OSError), retry_backoff=True, max_retries=8)
def sync_device_account(device_id: int) -> None:
    """Create, update or remove the device's broker account to match the database."""
    device = Device.objects.filter(pk=device_id).first()
    with BrokerAccounts.from_settings() as accounts:
        if device is None:
            accounts.remove_device(device_id)
        else:
            group_ids = list(device.groups.values_list("pk", flat=True))
            accounts.ensure_device(device.pk, mqtt_password_for(device), group_ids)


@shared_task(ignore_result=True)
def reconcile_broker_accounts() -> dict:
    """Bring every device account in step, and remove accounts of devices that no longer exist."""
    with BrokerAccounts.from_settings() as accounts:
        return reconcile(accounts)


def reconcile(accounts: BrokerAccounts) -> dict:
    """Safe to repeat: an account already in step is left alone and its device stays connected.

    An account that lacks the client id binding or the password fingerprint (one made by an older
    release) is changed once, which disconnects its device; it must then use ``device-<id>`` as client id.
    """
    devices = Device.objects.prefetch_related("groups")
    known = set()
    for device in devices:
        accounts.ensure_device(device.pk, mqtt_password_for(device), [g.pk for g in device.groups.all()])
        known.add(device_username(device.pk))
    stale = [name for name in accounts.list_clients() if name.startswith("device-") and name not in known]
    for name in stale:
        accounts.remove_device(int(name.removeprefix("device-")))
    return {"devices": len(known), "removed": len(stale)}


@shared_task(ignore_result=True)
def fire_schedules() -> int:
    """Beat's schedule tick: fire the edges that fell due within the catch-up window."""
    return len(schedules.tick())


@shared_task(ignore_result=True)
def restore_override(override_id: int) -> None:
    """Armed with ``eta`` at the override's end; does nothing if it was cancelled or already restored."""
    overrides.finish(override_id)


@shared_task(ignore_result=True)
def sweep_overrides() -> int:
    """Restore active overrides past their end whose timed task was lost (a restart, a broker outage)."""
    return overrides.restore_overdue()
