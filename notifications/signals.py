"""Keep every process's cached alert rules true to the database."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from devices.models import Device

from .alerts import rules_changed
from .models import AlertRule


@receiver(post_save, sender=AlertRule)
@receiver(post_delete, sender=AlertRule)
def forget_rules(sender, **kwargs) -> None:
    rules_changed()


@receiver(m2m_changed, sender=Device.groups.through)
def forget_rules_of_moved_devices(sender, action: str, **kwargs) -> None:
    """A device joining or leaving a group gains or loses the group's rules."""
    if action in ("post_add", "post_remove", "post_clear"):
        rules_changed()
