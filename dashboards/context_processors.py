"""What the header of every page needs: the unread count and where the live socket is."""

from django.conf import settings
from django.http import HttpRequest

from notifications.models import Notification


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    context = {"signup_enabled": settings.SIGNUP_ENABLED, "live_websocket_url": settings.LIVE_WEBSOCKET_URL}
    if user is not None and user.is_authenticated:
        context["unread_notifications"] = lambda: Notification.objects.filter(user=user, read_at__isnull=True).count()
    return context
