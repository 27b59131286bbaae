"""A deleted device takes its telemetry with it, in every tier and whichever backend holds it."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from devices.models import Device

from .backends import BackendUnavailable, get_backend

log = logging.getLogger(__name__)


@receiver(post_delete, sender=Device)
def delete_telemetry(sender, instance: Device, **kwargs) -> None:
    """Once the deletion is committed, delete the device's points, rollups and markers.

    Rows with a foreign key to the device are already gone with it; this clears what has none
    (rollup markers, IoTDB series). An unreachable store is retried by a task, and the
    retention pass deletes any series left of devices that no longer exist.
    """
    device_id = instance.pk
    transaction.on_commit(lambda: _purge(device_id))


def _purge(device_id: int) -> None:
    from .tasks import purge_device

    try:
        get_backend().delete_device(device_id)
    except BackendUnavailable:
        log.warning("Telemetry store unavailable; deleting device %s's telemetry later", device_id)
        try:
            purge_device.apply_async((device_id,), countdown=60)
        except Exception:  # no task broker either: the retention pass removes the orphaned series
            log.warning("Could not queue the purge of device %s's telemetry", device_id, exc_info=True)
