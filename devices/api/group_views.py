"""The user's device groups: create, rename, delete, and add or remove devices.

A group holds devices of its owner only: a group's fleet commands and alert rules reach every
member, so another user's device in it would receive them. Owners see their own groups,
staff all; anyone else's read as 404.
"""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from devices.models import Device, DeviceGroup

from .permissions import devices_visible_to
from .serializers import DeviceSerializer


class VisibleDevicesField(serializers.PrimaryKeyRelatedField):
    """A device id the requesting user may see; any other id reads as "does not exist"."""

    queryset = Device.objects.all()  # the schema's type; requests use get_queryset()

    def get_queryset(self):
        return devices_visible_to(self.context["request"].user)


class GroupSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    devices = VisibleDevicesField(many=True, required=False, help_text="Ids of the group's devices.")
    device_count = serializers.SerializerMethodField()

    class Meta:
        model = DeviceGroup
        fields = ["id", "name", "description", "owner", "devices", "device_count", "created_at"]
        read_only_fields = ["created_at"]

    def get_device_count(self, group: DeviceGroup) -> int:
        return len(group.devices.all())

    def owner_id(self) -> int:
        return self.instance.owner_id if self.instance else self.context["request"].user.pk

    def validate_name(self, name: str) -> str:
        clash = DeviceGroup.objects.filter(owner_id=self.owner_id(), name=name)
        if self.instance:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(f"You already have a group named {name!r}.")
        return name

    def validate_devices(self, devices: list[Device]) -> list[Device]:
        return check_same_owner(devices, self.owner_id())


def check_same_owner(devices: list[Device], owner_id: int) -> list[Device]:
    strangers = [device.pk for device in devices if device.owner_id != owner_id]
    if strangers:
        raise serializers.ValidationError(f"Devices {strangers} belong to another user than the group.")
    return devices


class DeviceIdsSerializer(serializers.Serializer):
    """Devices to add to the group given as ``group`` in the context."""

    devices = VisibleDevicesField(many=True, allow_empty=False, help_text="Ids of devices to add.")

    def validate_devices(self, devices: list[Device]) -> list[Device]:
        return check_same_owner(devices, self.context["group"].owner_id)


def groups_for(user):
    groups = DeviceGroup.objects.select_related("owner").prefetch_related("devices")
    return groups if user.is_staff else groups.filter(owner=user)


class GroupListView(generics.ListCreateAPIView):
    """``/groups``: the caller's groups (staff: all); a new group belongs to the caller."""

    serializer_class = GroupSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["name"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DeviceGroup.objects.none()
        return groups_for(self.request.user)

    def perform_create(self, serializer) -> None:
        serializer.save(owner=self.request.user)


class GroupDetailView(generics.RetrieveUpdateDestroyAPIView):
    """``/groups/{id}``: read, rename, set its devices, delete (the devices stay)."""

    serializer_class = GroupSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DeviceGroup.objects.none()
        return groups_for(self.request.user)


class GroupDevicesView(GroupDetailView):
    """``/groups/{id}/devices``: list the group's devices, or add some."""

    http_method_names = ["get", "post", "options"]

    @extend_schema(responses=DeviceSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        devices = self.get_object().devices.select_related("owner").prefetch_related("groups").order_by("id")
        page = self.paginate_queryset(devices)
        if page is None:
            return Response(DeviceSerializer(devices, many=True).data)
        return self.get_paginated_response(DeviceSerializer(page, many=True).data)

    @extend_schema(request=DeviceIdsSerializer, responses={200: GroupSerializer})
    def post(self, request: Request, pk: int) -> Response:
        group = self.get_object()
        body = DeviceIdsSerializer(data=request.data, context={**self.get_serializer_context(), "group": group})
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            group.devices.add(*body.validated_data["devices"])
        return Response(GroupSerializer(self.get_object(), context=self.get_serializer_context()).data)


class GroupDeviceView(GroupDetailView):
    """``/groups/{id}/devices/{device_id}``: take one device out of the group."""

    http_method_names = ["delete", "options"]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, device_id: int) -> Response:
        group = self.get_object()
        device = get_object_or_404(group.devices.all(), pk=device_id)
        group.devices.remove(device)
        return Response(status=204)
