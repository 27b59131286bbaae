"""Notifications: saved per user and pushed live to their open pages."""


def notify(*args, **kwargs):
    """``notifications.delivery.notify``, importable before the app registry is ready."""
    from .delivery import notify as _notify

    return _notify(*args, **kwargs)


def notify_many(*args, **kwargs):
    """``notifications.delivery.notify_many``, importable before the app registry is ready."""
    from .delivery import notify_many as _notify_many

    return _notify_many(*args, **kwargs)
