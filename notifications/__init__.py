"""Notifications: saved per user and pushed live to their open pages."""


def notify(*args, **kwargs):
    """``notifications.delivery.notify``, importable before the app registry is ready."""
    from .delivery import notify as _notify

    return _notify(*args, **kwargs)
