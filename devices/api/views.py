"""Device-facing endpoints of the IoTFlow v1 contract and the owner's device list."""

from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import TokenAuthentication
from devices import health
from devices.authentication import DeviceKeyAuthentication
from devices.broker import device_client_id
from devices.models import Device, DeviceConfiguration, mqtt_password_for
from iotflow.api import Conflict
from iotflow.throttling import HeartbeatThrottle, RegistrationThrottle

from .permissions import IsDevice, devices_visible_to
from .serializers import (
    ConfigurationSerializer,
    DeviceSerializer,
    MqttCredentialsSerializer,
    RegisteredDeviceSerializer,
    RegisterSerializer,
    mqtt_endpoint,
)


class DeviceAPIView(APIView):
    """Base for endpoints a device calls with its own key."""

    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]


class RegisterView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [RegistrationThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "Registration",
                {"message": serializers.CharField(), "device": RegisteredDeviceSerializer()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        username, password = data.pop("username", None), data.pop("password", None)
        owner = self._owner(request, username, password)
        device = Device(owner=owner, **data)
        api_key = device.set_new_api_key()
        try:
            with transaction.atomic():
                device.save()
        except IntegrityError:
            raise Conflict(f"You already have a device named {device.name!r}.") from None
        body = RegisteredDeviceSerializer(device, context={"api_key": api_key}).data
        return Response({"message": "Device registered successfully", "device": body}, status=201)

    @staticmethod
    def _owner(request: Request, username: str | None, password: str | None):
        if request.user.is_authenticated:
            return request.user
        if not username or password is None:
            raise exceptions.NotAuthenticated(
                "Owner credentials required: 'username' and 'password' fields, or 'Authorization: Token <token>'."
            )
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return user


STATUS_FIELDS = (
    "id", "name", "device_type", "status", "is_online", "health", "health_since", "health_reason",
    "last_seen", "location", "firmware_version", "hardware_version", "created_at",
)  # fmt: skip


def device_status_body(device: Device) -> dict:
    return {
        "id": device.pk,
        "name": device.name,
        "device_type": device.device_type,
        "status": device.status,
        "is_online": device.is_online,
        "health": device.health,
        "health_since": device.health_since,
        "health_reason": device.health_reason,
        "last_seen": device.last_seen,
        "location": device.location,
        "firmware_version": device.firmware_version,
        "hardware_version": device.hardware_version,
        "created_at": device.created_at,
    }


DEVICE_STATUS = inline_serializer(
    "DeviceStatus",
    {name: field for name, field in DeviceSerializer().get_fields().items() if name in STATUS_FIELDS},
)


class StatusView(DeviceAPIView):
    @extend_schema(responses={200: DEVICE_STATUS})
    def get(self, request: Request) -> Response:
        device = Device.objects.get(pk=request.auth.pk)
        return Response(device_status_body(device))


class HeartbeatView(DeviceAPIView):
    throttle_classes = [HeartbeatThrottle]

    @extend_schema(
        request=None,
        responses={200: inline_serializer("Heartbeat", {"message": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        health.mark_seen(request.auth, force=True, reason="heartbeat")
        return Response(
            {
                "message": "Heartbeat received",
                "device_id": request.auth.pk,
                "timestamp": timezone.now(),
                "status": "online",
            }
        )


def configuration_body(device: Device) -> dict:
    entries = list(DeviceConfiguration.objects.filter(device=device))
    return {
        "device_id": device.pk,
        "configuration": {entry.key: entry.value for entry in entries},
        "updated_at": max((entry.updated_at for entry in entries), default=None),
    }


class ConfigView(DeviceAPIView):
    @extend_schema(responses={200: ConfigurationSerializer})
    def get(self, request: Request) -> Response:
        return Response(configuration_body(request.auth))

    @extend_schema(request=ConfigurationSerializer, responses={200: ConfigurationSerializer})
    def put(self, request: Request) -> Response:
        body = request.data
        if isinstance(body, dict) and "configuration" not in body:
            body = {"configuration": body}
        serializer = ConfigurationSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        device = request.auth
        with transaction.atomic():
            for key, value in serializer.validated_data["configuration"].items():
                if value is None:
                    DeviceConfiguration.objects.filter(device=device, key=key).delete()
                else:
                    DeviceConfiguration.objects.update_or_create(device=device, key=key, defaults={"value": value})
        return Response(configuration_body(device))


class MqttCredentialsView(DeviceAPIView):
    @extend_schema(responses={200: MqttCredentialsSerializer})
    def get(self, request: Request) -> Response:
        device = request.auth
        host, port = mqtt_endpoint()
        prefix = device.mqtt_topic_prefix
        return Response(
            {
                "host": host,
                "port": port,
                "username": device.mqtt_username,
                "password": mqtt_password_for(device),
                "client_id": device_client_id(device.pk),
                "topic_prefix": prefix,
                "topics": {
                    "telemetry": f"{prefix}telemetry",
                    "status": f"{prefix}status/{{online|offline}}",
                    "commands": f"{prefix}commands",
                    "command_ack": f"{prefix}commands/ack",
                },
            }
        )


class DeviceListView(generics.ListAPIView):
    """The caller's devices (staff: every device)."""

    serializer_class = DeviceSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "device_type"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Device.objects.none()
        return devices_visible_to(self.request.user).prefetch_related("groups")


class DeviceDetailView(generics.RetrieveAPIView):
    serializer_class = DeviceSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Device.objects.none()
        return devices_visible_to(self.request.user).prefetch_related("groups")
