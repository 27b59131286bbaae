"""Schedules and overrides: the two ways a device's state changes over time without anyone pressing a button.

``/schedules`` (list, create), ``/schedules/{id}`` (detail, update, delete), ``/schedules/{id}/history``;
``/devices/{id}/override`` (status, start) and ``/devices/{id}/override/cancel``, also under the
pre-clean name ``/devices/{id}/preclean``. Owners see their own; staff see all.
"""

import django_filters
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from devices import overrides
from devices.models import Override, Schedule, ScheduleRun
from iotflow.api import Conflict

from .permissions import device_for_request
from .schedule_serializers import (
    OverrideSerializer,
    OverrideStartSerializer,
    OverrideStatusSerializer,
    ScheduleRunSerializer,
    ScheduleSerializer,
)


def schedules_visible_to(user) -> QuerySet[Schedule]:
    schedules = Schedule.objects.select_related("device__owner", "group__owner")
    return schedules if user.is_staff else schedules.filter(Q(device__owner=user) | Q(group__owner=user))


class ScheduleFilter(django_filters.FilterSet):
    device = django_filters.NumberFilter(
        method="for_device", label="Schedules that drive this device, directly or through one of its groups."
    )

    class Meta:
        model = Schedule
        fields = ["device", "group", "enabled"]

    def for_device(self, queryset: QuerySet[Schedule], name: str, value: int) -> QuerySet[Schedule]:
        return queryset.filter(Q(device=value) | Q(group__devices=value)).distinct()


class ScheduleListView(generics.ListCreateAPIView):
    """``/schedules``: the caller's schedules (``?device=ID`` for one device's) and creating one."""

    serializer_class = ScheduleSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = ScheduleFilter

    def get_queryset(self) -> QuerySet[Schedule]:
        if getattr(self, "swagger_fake_view", False):
            return Schedule.objects.none()
        return schedules_visible_to(self.request.user)


class ScheduleDetailView(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = ScheduleSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[Schedule]:
        if getattr(self, "swagger_fake_view", False):
            return Schedule.objects.none()
        return schedules_visible_to(self.request.user)


class ScheduleHistoryView(generics.ListAPIView):
    """``/schedules/{id}/history``: every firing, newest first, with the command it sent and its status."""

    serializer_class = ScheduleRunSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["edge", "result", "device"]

    def get_queryset(self) -> QuerySet[ScheduleRun]:
        if getattr(self, "swagger_fake_view", False):
            return ScheduleRun.objects.none()
        schedule = get_object_or_404(schedules_visible_to(self.request.user), pk=self.kwargs["pk"])
        return schedule.runs.select_related("command")


class DeviceOverrideView(generics.GenericAPIView):
    """``/devices/{id}/override`` (also ``/preclean``): the override's status, and starting one."""

    serializer_class = OverrideSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OverrideStatusSerializer)
    def get(self, request: Request, pk: int) -> Response:
        device = device_for_request(request, pk)
        override = Override.objects.filter(device=device).order_by("-started_at", "-id").first()
        active = override is not None and override.is_active
        body = {
            "active": active,
            "time_left_seconds": override.seconds_left() if active else 0,
            "override": OverrideSerializer(override).data if override else None,
        }
        return Response(body)

    @extend_schema(request=OverrideStartSerializer, responses={201: OverrideSerializer})
    def post(self, request: Request, pk: int) -> Response:
        device = device_for_request(request, pk)
        body = OverrideStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            override = overrides.start(
                device, body.validated_data["params"], body.validated_data["duration"], user=request.user
            )
        except overrides.OverrideConflict as exc:
            raise Conflict(str(exc)) from None
        return Response(OverrideSerializer(override).data, status=201)


class DeviceOverrideCancelView(generics.GenericAPIView):
    """``/devices/{id}/override/cancel``: end the active override now and restore the saved state."""

    serializer_class = OverrideSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=OverrideSerializer)
    def post(self, request: Request, pk: int) -> Response:
        device = device_for_request(request, pk)
        try:
            override = overrides.cancel(device, user=request.user)
        except overrides.OverrideConflict as exc:
            raise Conflict(str(exc)) from None
        return Response(OverrideSerializer(override).data)
