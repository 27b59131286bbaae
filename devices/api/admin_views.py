"""The operators' API of the v1 contract: ``Authorization: admin <staff token>`` or a staff session."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AdminTokenAuthentication
from devices.keys import cache_key, forget_key_hashes
from devices.models import Device
from telemetry.backends import get_backend
from telemetry.timeparse import to_iso

from .serializers import AdminDeviceSerializer, StatusSerializer


class AdminMixin:
    authentication_classes = [AdminTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]


class AdminDeviceListView(AdminMixin, generics.ListAPIView):
    serializer_class = AdminDeviceSerializer
    queryset = Device.objects.select_related("owner").prefetch_related("groups").order_by("id")
    filterset_fields = ["status", "device_type", "owner"]

    def get_queryset(self):
        qs = super().get_queryset()
        search = self.request.query_params.get("search")
        return qs.filter(name__icontains=search) if search else qs


class AdminDeviceDetailView(AdminMixin, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = AdminDeviceSerializer
    queryset = Device.objects.select_related("owner").prefetch_related("groups")
    http_method_names = ["get", "put", "patch", "delete"]

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        device = self.get_object()
        body = self.get_serializer(device).data
        backend = get_backend()
        body["telemetry"] = {
            "points": backend.count(device.pk),
            "latest": {m: {"value": p.value, "timestamp": to_iso(p.ts)} for m, p in backend.latest(device.pk).items()},
        }
        return Response(body)

    def update(self, request: Request, *args, **kwargs) -> Response:
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: Device) -> None:
        get_backend().delete(instance.pk)
        instance.delete()


class AdminDeviceStatusView(AdminMixin, APIView):
    @extend_schema(
        request=StatusSerializer,
        responses={
            200: inline_serializer(
                "AdminDeviceStatusChange", {"message": serializers.CharField(), "device": AdminDeviceSerializer()}
            )
        },
    )
    def put(self, request: Request, pk: int) -> Response:
        device = get_object_or_404(Device, pk=pk)
        serializer = StatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device.status = serializer.validated_data["status"]
        device.save(update_fields=["status", "updated_at"])
        return Response(
            {"message": f"Device status set to {device.status}", "device": AdminDeviceSerializer(device).data}
        )


STATS = inline_serializer(
    "AdminStats",
    {
        "devices": serializers.DictField(),
        "users": serializers.IntegerField(),
        "telemetry": serializers.DictField(),
        "timestamp": serializers.DateTimeField(),
    },
)
CACHE_STATS = inline_serializer(
    "DeviceCacheStats",
    {
        "cache_backend": serializers.CharField(),
        "devices": serializers.IntegerField(),
        "cached_entries": serializers.IntegerField(),
        "cached_devices": serializers.IntegerField(),
    },
)
CACHE_CLEARED = inline_serializer(
    "DeviceCacheCleared",
    {
        "message": serializers.CharField(),
        "devices": serializers.IntegerField(required=False),
        "device_id": serializers.IntegerField(required=False),
    },
)


class AdminStatsView(AdminMixin, APIView):
    @extend_schema(responses=STATS)
    def get(self, request: Request) -> Response:
        by_status = dict(Device.objects.values_list("status").annotate(n=Count("id")))
        backend = get_backend()
        return Response(
            {
                "devices": {
                    "total": sum(by_status.values()),
                    "by_status": {s: by_status.get(s, 0) for s in Device.Status.values},
                    "online": Device.objects.filter(health=Device.Health.ONLINE).count(),
                    "by_health": dict(Device.objects.values_list("health").annotate(n=Count("id"))),
                },
                "users": get_user_model().objects.count(),
                "telemetry": {"points": backend.count(), "backend": backend.health()},
                "timestamp": timezone.now(),
            }
        )


def _device_cache_keys(device: Device) -> list[str]:
    return [cache_key(device.api_key_hash), f"seen:{device.pk}"]


class AdminDeviceCacheView(AdminMixin, APIView):
    """Cached per-device entries: the key lookup and the last-seen gate."""

    @extend_schema(responses=CACHE_STATS)
    def get(self, request: Request) -> Response:
        devices = list(Device.objects.only("id", "api_key_hash"))
        keys = [key for device in devices for key in _device_cache_keys(device)]
        cached = cache.get_many(keys) if keys else {}
        return Response(
            {
                "cache_backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
                "devices": len(devices),
                "cached_entries": len(cached),
                "cached_devices": sum(any(key in cached for key in _device_cache_keys(d)) for d in devices),
            }
        )

    @extend_schema(responses=CACHE_CLEARED)
    def delete(self, request: Request) -> Response:
        devices = list(Device.objects.only("id", "api_key_hash"))
        cache.delete_many([key for device in devices for key in _device_cache_keys(device)])
        forget_key_hashes(*(device.api_key_hash for device in devices))
        return Response({"message": "Device cache cleared", "devices": len(devices)})


class AdminOneDeviceCacheView(AdminMixin, APIView):
    @extend_schema(responses=CACHE_CLEARED)
    def delete(self, request: Request, pk: int) -> Response:
        device = get_object_or_404(Device, pk=pk)
        cache.delete_many(_device_cache_keys(device))
        forget_key_hashes(device.api_key_hash)
        return Response({"message": f"Cache cleared for device {device.pk}", "device_id": device.pk})
