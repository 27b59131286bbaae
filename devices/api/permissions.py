"""Who may act on which device: a device on itself, a user on their own, staff on all."""

from django.db.models import QuerySet
from rest_framework import exceptions, permissions

from devices.models import Device


class IsDevice(permissions.BasePermission):
    message = "This endpoint needs a device's X-API-Key header."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Device)


class IsDeviceOrUser(permissions.BasePermission):
    message = "Authenticate with a device's X-API-Key, a personal token or a session."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Device) or bool(request.user and request.user.is_authenticated)


def devices_visible_to(user) -> QuerySet[Device]:
    qs = Device.objects.select_related("owner")
    return qs if user.is_staff else qs.filter(owner=user)


def device_for_request(request, device_id: int) -> Device:
    """The device the caller may act on, or 403 (another device's key) / 404 (not the user's)."""
    if isinstance(request.auth, Device):
        if request.auth.pk != device_id:
            raise exceptions.PermissionDenied("A device may access only its own data.")
        return request.auth
    try:
        return devices_visible_to(request.user).get(pk=device_id)
    except Device.DoesNotExist:
        raise exceptions.NotFound("Device not found.") from None
