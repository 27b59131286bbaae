"""``notify()``: the one way any part of IoTFlow tells a user something."""

import logging

from asgiref.sync import async_to_sync
from django.db import transaction

from .models import Notification

log = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def notify(user, level: str, title: str, message: str = "", device=None, kind: str = "") -> Notification:
    """Save a notification and push it to the user's open pages once the transaction commits."""
    notification = Notification.objects.create(
        user=user, level=level, title=title, message=message, device=device, kind=kind
    )
    transaction.on_commit(lambda: _push(notification))
    return notification


def _push(notification: Notification) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            user_group(notification.user_id), {"type": "notify", "message": notification.as_message()}
        )
    except Exception:  # the notification is saved; live delivery is best effort
        log.warning("Live delivery of notification %s failed", notification.pk, exc_info=True)
