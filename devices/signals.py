"""Keep cached key lookups true to the database whenever a device changes."""

from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from .keys import forget_key_hashes
from .models import Device


@receiver(post_init, sender=Device)
def remember_loaded_key(sender, instance: Device, **kwargs) -> None:
    instance._loaded_key_hash = instance.api_key_hash


@receiver(post_save, sender=Device)
@receiver(post_delete, sender=Device)
def forget_cached_key(sender, instance: Device, **kwargs) -> None:
    forget_key_hashes(instance._loaded_key_hash, instance.api_key_hash)
    instance._loaded_key_hash = instance.api_key_hash
