import math

from rest_framework import serializers

from devices.api.permissions import devices_visible_to
from devices.models import Device, DeviceGroup

from ..models import Alert, AlertRule, Notification, NotificationKind

MAX_COOLDOWN_SECONDS = 30 * 86_400


class VisibleDeviceField(serializers.PrimaryKeyRelatedField):
    """A device id the requesting user may see; any other id reads as "does not exist"."""

    queryset = Device.objects.all()  # the schema's type; requests use get_queryset()

    def get_queryset(self):
        return devices_visible_to(self.context["request"].user)


class VisibleGroupField(serializers.PrimaryKeyRelatedField):
    queryset = DeviceGroup.objects.all()

    def get_queryset(self):
        user = self.context["request"].user
        return DeviceGroup.objects.all() if user.is_staff else DeviceGroup.objects.filter(owner=user)


class AlertRuleSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    device = VisibleDeviceField(required=False, allow_null=True, help_text="The device watched; or give `group`.")
    group = VisibleGroupField(required=False, allow_null=True, help_text="Every device of this group is watched.")
    cooldown = serializers.IntegerField(
        min_value=0, max_value=MAX_COOLDOWN_SECONDS, default=300, help_text="Seconds before the rule fires again."
    )

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "owner",
            "device",
            "group",
            "measurement",
            "operator",
            "threshold",
            "severity",
            "cooldown",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_threshold(self, value: float) -> float:
        if not math.isfinite(value):
            raise serializers.ValidationError("The threshold must be a finite number.")
        return value

    def validate(self, attrs: dict) -> dict:
        device = attrs["device"] if "device" in attrs else getattr(self.instance, "device", None)
        group = attrs["group"] if "group" in attrs else getattr(self.instance, "group", None)
        if (device is None) == (group is None):
            raise serializers.ValidationError({"device": ["Give either a device or a group, not both."]})
        return attrs


class AlertSerializer(serializers.ModelSerializer):
    device_name = serializers.CharField(source="device.name", read_only=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", read_only=True, default=None, allow_null=True
    )
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "device",
            "device_name",
            "name",
            "measurement",
            "condition",
            "severity",
            "value",
            "status",
            "triggered_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
        ]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "level", "kind", "title", "message", "device", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_is_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


class KindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()


class PreferencesSerializer(serializers.Serializer):
    muted_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=NotificationKind.choices),
        allow_empty=True,
        help_text="Kinds of notification that are neither saved nor pushed.",
    )
    kinds = KindSerializer(many=True, read_only=True, help_text="Every kind that can be muted.")

    def to_representation(self, user) -> dict:
        return {
            "muted_kinds": list(user.muted_notification_kinds or []),
            "kinds": [{"kind": value, "label": label} for value, label in NotificationKind.choices],
        }
