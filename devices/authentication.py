"""DRF authentication of devices by their ``X-API-Key`` header."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .keys import device_for_key
from .models import Device

HEADER = "HTTP_X_API_KEY"


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a device: ``request.auth`` is the Device, ``request.user`` stays anonymous."""

    def authenticate(self, request: Request):
        raw = request.META.get(HEADER)
        if raw is None:
            return None
        raw = raw.strip()
        device = device_for_key(raw) if raw else None
        if device is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if device.status == Device.Status.INACTIVE:
            raise exceptions.PermissionDenied("Device is inactive.")
        return AnonymousUser(), device

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"
