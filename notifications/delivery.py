"""``notify()``: the one way any part of IoTFlow tells a user something (``notifications.notify``).

A notification of a kind the user muted is neither saved nor pushed: muting means "do not
tell me", and a notification center full of muted entries would still tell.
"""

from .live import publish, user_group
from .models import Notification

__all__ = ["is_muted", "notify", "user_group"]


def is_muted(user, kind: str) -> bool:
    return bool(kind) and kind in (getattr(user, "muted_notification_kinds", None) or ())


def notify(user, level: str, title: str, message: str = "", device=None, kind: str = "") -> Notification | None:
    """Save a notification and push it to the user's open pages once the transaction commits.

    Returns None, and does nothing, when the user muted ``kind``.
    """
    if is_muted(user, kind):
        return None
    notification = Notification.objects.create(
        user=user, level=level, title=title, message=message, device=device, kind=kind
    )
    publish(user_group(user.pk), notification.as_message())
    return notification
