"""Notifications: saved per user and pushed live to their open pages."""


def notify(*args, **kwargs):
    from .notify import notify as _notify

    return _notify(*args, **kwargs)
