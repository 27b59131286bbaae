from rest_framework import serializers

from devices.models import Command, FleetCommand, HealthEvent


class CommandSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Command
        fields = [
            "id",
            "device",
            "action",
            "params",
            "source",
            "status",
            "attempts",
            "fleet_command",
            "created_by",
            "created_at",
            "expires_at",
            "sent_at",
            "acknowledged_at",
            "completed_at",
            "response",
            "error",
        ]
        read_only_fields = fields


class SendCommandSerializer(serializers.Serializer):
    action = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$", help_text="Command name, e.g. turn_on, set_fan_speed, reboot."
    )
    params = serializers.DictField(required=False, default=dict)
    expires_in = serializers.IntegerField(
        required=False, min_value=1, max_value=30 * 86400, help_text="Seconds; never delivered after that."
    )


class AckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"], default="ok")
    result = serializers.JSONField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class FleetCommandSerializer(serializers.ModelSerializer):
    rollup = serializers.SerializerMethodField()
    devices = serializers.SerializerMethodField()

    class Meta:
        model = FleetCommand
        fields = ["id", "group", "action", "params", "created_at", "devices", "rollup"]

    def get_rollup(self, fleet: FleetCommand) -> dict[str, int]:
        from devices.commands import rollup

        return rollup(fleet)

    def get_devices(self, fleet: FleetCommand) -> int:
        return fleet.commands.count()


class FleetCommandDetailSerializer(FleetCommandSerializer):
    """A fleet command with the command of each device of the group."""

    commands = CommandSerializer(many=True, read_only=True)

    class Meta(FleetCommandSerializer.Meta):
        fields = [*FleetCommandSerializer.Meta.fields, "commands"]


class HealthEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthEvent
        fields = ["state", "previous", "reason", "at"]
