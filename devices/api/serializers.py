from urllib.parse import urlparse

from django.conf import settings
from rest_framework import serializers

from devices.models import Device, DeviceGroup


class DeviceSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    is_online = serializers.BooleanField(read_only=True)
    groups = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Device
        fields = [
            "id",
            "name",
            "description",
            "device_type",
            "status",
            "location",
            "firmware_version",
            "hardware_version",
            "owner",
            "groups",
            "is_online",
            "health",
            "health_since",
            "health_reason",
            "expected_interval",
            "last_seen",
            "reported_state",
            "reported_state_at",
            "desired_state",
            "desired_state_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "status",
            "health",
            "health_since",
            "health_reason",
            "last_seen",
            "reported_state",
            "reported_state_at",
            "desired_state",
            "desired_state_at",
            "created_at",
            "updated_at",
        ]


class RegisterSerializer(serializers.ModelSerializer):
    """The v1 registration body; ``username``/``password`` name the owner when no token is sent."""

    username = serializers.CharField(required=False, write_only=True)
    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False)

    class Meta:
        model = Device
        fields = [
            "name",
            "description",
            "device_type",
            "location",
            "firmware_version",
            "hardware_version",
            "username",
            "password",
        ]
        extra_kwargs = {"device_type": {"required": False}}


class RegisteredDeviceSerializer(DeviceSerializer):
    api_key = serializers.SerializerMethodField()

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "api_key"]

    def get_api_key(self, device: Device) -> str:
        return self.context["api_key"]


class AdminDeviceSerializer(DeviceSerializer):
    owner_id = serializers.PrimaryKeyRelatedField(
        source="owner", queryset=Device._meta.get_field("owner").related_model.objects.all(), required=False
    )
    api_key_prefix = serializers.CharField(read_only=True)

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "owner_id", "api_key_prefix", "key_rotated_at", "last_metadata"]
        read_only_fields = [
            *(f for f in DeviceSerializer.Meta.read_only_fields if f != "status"),
            "key_rotated_at",
            "last_metadata",
        ]


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Device.Status.choices)


class ConfigurationSerializer(serializers.Serializer):
    configuration = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        allow_empty=False,
        help_text="Keys to set; a null value removes the key.",
    )

    def validate_configuration(self, value: dict) -> dict:
        too_long = [key for key in value if not key or len(key) > 100]
        if too_long:
            raise serializers.ValidationError("Configuration keys must be 1 to 100 characters long.")
        return value


class MqttCredentialsSerializer(serializers.Serializer):
    host = serializers.CharField()
    port = serializers.IntegerField()
    username = serializers.CharField()
    password = serializers.CharField()
    client_id = serializers.CharField(
        help_text="The MQTT client id the device must connect with; the broker refuses this account under any other."
    )
    topic_prefix = serializers.CharField()
    topics = serializers.DictField(child=serializers.CharField())


class DeviceGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceGroup
        fields = ["id", "name", "description", "created_at"]


def mqtt_endpoint() -> tuple[str, int]:
    url = urlparse(settings.MQTT_URL)
    return settings.MQTT_PUBLIC_HOST or url.hostname or "127.0.0.1", url.port or 1883
