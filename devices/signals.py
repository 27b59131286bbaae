"""Keep cached key lookups and the device's broker account true to the database whenever a device changes."""

import logging

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save
from django.dispatch import receiver

from .keys import forget_key_hashes
from .models import Device

log = logging.getLogger(__name__)


@receiver(post_init, sender=Device)
def remember_loaded_key(sender, instance: Device, **kwargs) -> None:
    instance._loaded_key_hash = instance.api_key_hash
    instance._synced_key_hash = instance.api_key_hash


@receiver(post_save, sender=Device)
@receiver(post_delete, sender=Device)
def forget_cached_key(sender, instance: Device, **kwargs) -> None:
    forget_key_hashes(instance._loaded_key_hash, instance.api_key_hash)
    instance._loaded_key_hash = instance.api_key_hash


def _sync_account_later(device_id: int) -> None:
    from django.conf import settings

    if not settings.MQTT_MANAGE_ACCOUNTS:
        return

    def enqueue() -> None:
        from .tasks import sync_device_account

        try:
            sync_device_account.delay(device_id)
        except Exception:  # the task queue is down: the periodic reconcile repairs the account
            log.warning("Could not queue broker account sync of device %s", device_id, exc_info=True)

    transaction.on_commit(enqueue)


@receiver(post_save, sender=Device)
def sync_broker_account(sender, instance: Device, created: bool, **kwargs) -> None:
    if created or instance._synced_key_hash != instance.api_key_hash:
        _sync_account_later(instance.pk)
    instance._synced_key_hash = instance.api_key_hash


@receiver(post_delete, sender=Device)
def remove_broker_account(sender, instance: Device, **kwargs) -> None:
    _sync_account_later(instance.pk)


@receiver(m2m_changed, sender=Device.groups.through)
def sync_fleet_topics(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    device_ids = (pk_set or []) if reverse else [instance.pk]
    if reverse and action == "post_clear":
        device_ids = []  # the cleared devices are unknown here; the periodic reconcile covers them
    for device_id in device_ids:
        _sync_account_later(device_id)
