"""``notify()``: the one way any part of IoTFlow tells a user something (``notifications.notify``).

A notification of a kind the user muted is neither saved nor pushed: muting means "do not
tell me", and a notification center full of muted entries would still tell.
"""

from .live import publish, user_group
from .models import Notification

__all__ = ["is_muted", "notify", "notify_many", "user_group"]


def is_muted(user, kind: str) -> bool:
    return bool(kind) and kind in (getattr(user, "muted_notification_kinds", None) or ())


def notify(user, level: str, title: str, message: str = "", device=None, kind: str = "") -> Notification | None:
    """Save a notification and push it to the user's open pages once the transaction commits.

    Returns None, and does nothing, when the user muted ``kind``.
    """
    saved = notify_many([Notification(user=user, level=level, title=title, message=message, device=device, kind=kind)])
    return saved[0] if saved else None


def notify_many(notifications: list[Notification]) -> list[Notification]:
    """``notify`` for many unsaved notifications at once: one INSERT, each pushed once the transaction commits.

    Those of a kind their user muted are left out; returns the ones saved, in the order given.
    """
    wanted = [n for n in notifications if not is_muted(n.user, n.kind)]
    if not wanted:
        return []
    Notification.objects.bulk_create(wanted)
    for notification in wanted:
        publish(user_group(notification.user_id), notification.as_message())
    return wanted
