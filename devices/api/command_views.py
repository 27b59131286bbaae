"""Commands: users send them and follow their lifecycle; devices poll and acknowledge them."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from devices import commands
from devices.models import Command, Device, DeviceGroup, FleetCommand

from .command_serializers import (
    AckSerializer,
    CommandSerializer,
    FleetCommandDetailSerializer,
    FleetCommandSerializer,
    HealthEventSerializer,
    SendCommandSerializer,
)
from .permissions import device_for_request
from .views import DeviceAPIView


def _source(user) -> str:
    return Command.Source.ADMIN if user.is_staff else Command.Source.USER


def _command_body(request: Request) -> dict:
    body = SendCommandSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class DeviceCommandListView(generics.ListCreateAPIView):
    """``/devices/{id}/commands``: history (filter by status, action, source) and sending."""

    serializer_class = CommandSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status", "action", "source"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Command.objects.none()
        device = device_for_request(self.request, self.kwargs["pk"])
        return Command.objects.filter(device=device).select_related("created_by")

    @extend_schema(request=SendCommandSerializer, responses={201: CommandSerializer})
    def post(self, request: Request, pk: int) -> Response:
        device = device_for_request(request, pk)
        data = _command_body(request)
        command = commands.send(
            device,
            data["action"],
            data["params"],
            source=_source(request.user),
            user=request.user,
            expires_in=data.get("expires_in"),
        )
        return Response(CommandSerializer(command).data, status=201)


def _command(request: Request, pk: int, command_id) -> Command:
    device = device_for_request(request, pk)
    try:
        return Command.objects.select_related("created_by").get(pk=command_id, device=device)
    except (Command.DoesNotExist, DjangoValidationError):
        raise exceptions.NotFound("Command not found.") from None


class DeviceCommandDetailView(generics.GenericAPIView):
    serializer_class = CommandSerializer
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, pk: int, command_id: str) -> Response:
        return Response(CommandSerializer(_command(request, pk, command_id)).data)


class DeviceCommandCancelView(generics.GenericAPIView):
    serializer_class = CommandSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None)
    def post(self, request: Request, pk: int, command_id: str) -> Response:
        try:
            command = commands.cancel(_command(request, pk, command_id))
        except commands.CommandRejected as exc:
            raise exceptions.ValidationError({"status": [str(exc)]}) from None
        return Response(CommandSerializer(command).data)


def _group(request: Request, pk: int) -> DeviceGroup:
    groups = DeviceGroup.objects.all() if request.user.is_staff else DeviceGroup.objects.filter(owner=request.user)
    return get_object_or_404(groups, pk=pk)


class GroupCommandView(generics.GenericAPIView):
    """``/groups/{id}/commands``: one tracked command per device of the group, answered with a roll-up."""

    serializer_class = FleetCommandSerializer
    permission_classes = [IsAuthenticated]
    queryset = DeviceGroup.objects.none()  # documents the path parameter; objects come from _group()
    pagination_class = None  # the newest 100, as a plain list

    @extend_schema(operation_id="v1_groups_commands_list", responses=FleetCommandSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        fleets = FleetCommand.objects.filter(group=_group(request, pk))[:100]
        return Response(FleetCommandSerializer(fleets, many=True).data)

    @extend_schema(request=SendCommandSerializer, responses={201: FleetCommandSerializer})
    def post(self, request: Request, pk: int) -> Response:
        group = _group(request, pk)
        data = _command_body(request)
        if not group.devices.exists():
            raise exceptions.ValidationError({"group": ["The group has no devices."]})
        fleet = commands.send_to_group(
            group, data["action"], data["params"], user=request.user, expires_in=data.get("expires_in")
        )
        return Response(FleetCommandSerializer(fleet).data, status=201)


class GroupCommandDetailView(generics.GenericAPIView):
    serializer_class = FleetCommandSerializer
    permission_classes = [IsAuthenticated]
    queryset = DeviceGroup.objects.none()

    @extend_schema(responses=FleetCommandDetailSerializer)
    def get(self, request: Request, pk: int, fleet_id: int) -> Response:
        fleet = get_object_or_404(FleetCommand, pk=fleet_id, group=_group(request, pk))
        return Response(FleetCommandDetailSerializer(fleet).data)


class DeviceHealthView(generics.GenericAPIView):
    """``/devices/{id}/health``: the current state and its recorded changes."""

    serializer_class = HealthEventSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "DeviceHealth",
            {
                "device_id": serializers.IntegerField(),
                "state": serializers.ChoiceField(choices=Device.Health.choices),
                "since": serializers.DateTimeField(allow_null=True),
                "reason": serializers.CharField(),
                "last_seen": serializers.DateTimeField(allow_null=True),
                "expected_interval": serializers.IntegerField(allow_null=True),
                "events": HealthEventSerializer(many=True),
            },
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        device = device_for_request(request, pk)
        events = device.health_events.all()[:100]
        return Response(
            {
                "device_id": device.pk,
                "state": device.health,
                "since": device.health_since,
                "reason": device.health_reason,
                "last_seen": device.last_seen,
                "expected_interval": device.expected_interval,
                "events": HealthEventSerializer(events, many=True).data,
            }
        )


class PendingCommandsView(DeviceAPIView):
    """``/devices/commands/pending`` for devices that poll over HTTP instead of subscribing over MQTT."""

    @extend_schema(
        responses=inline_serializer(
            "PendingCommands",
            {
                "commands": inline_serializer(
                    "CommandMessage",
                    {
                        "id": serializers.UUIDField(),
                        "action": serializers.CharField(),
                        "params": serializers.DictField(),
                        "issued_at": serializers.DateTimeField(),
                    },
                    many=True,
                )
            },
        )
    )
    def get(self, request: Request) -> Response:
        pending = commands.pending_for(request.auth)
        return Response({"commands": [command.as_message() for command in pending]})


class AckCommandView(DeviceAPIView):
    @extend_schema(request=AckSerializer, responses={200: CommandSerializer})
    def post(self, request: Request, command_id: str) -> Response:
        body = AckSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            command = commands.acknowledge(
                request.auth, command_id, data["status"] == "ok", data.get("result"), data.get("error", "")
            )
        except (Command.DoesNotExist, DjangoValidationError):
            raise exceptions.NotFound("Command not found.") from None
        except commands.CommandRejected as exc:
            raise exceptions.ValidationError({"status": [str(exc)]}) from None
        return Response(CommandSerializer(command).data)
