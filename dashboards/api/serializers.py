from rest_framework import serializers

from devices.api.permissions import devices_visible_to
from devices.models import Device

from ..models import Chart, Dashboard


class VisibleDevicesField(serializers.PrimaryKeyRelatedField):
    """Device ids the requesting user may see; any other id reads as "does not exist"."""

    queryset = Device.objects.all()  # the schema's type; requests use get_queryset()

    def get_queryset(self):
        return devices_visible_to(self.context["request"].user)


class DashboardSerializer(serializers.ModelSerializer):
    charts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Dashboard
        fields = ["id", "name", "position", "charts", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_name(self, value: str) -> str:
        owner = self.instance.owner if self.instance else self.context["request"].user
        taken = Dashboard.objects.filter(owner=owner, name=value.strip())
        if self.instance:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("You already have a dashboard with this name.")
        return value.strip()


class ChartSerializer(serializers.ModelSerializer):
    devices = VisibleDevicesField(many=True)
    measurements = serializers.ListField(child=serializers.CharField(max_length=128), allow_empty=False)
    width = serializers.IntegerField(min_value=1, max_value=4, default=2)

    class Meta:
        model = Chart
        fields = [
            "id",
            "dashboard",
            "title",
            "chart_type",
            "devices",
            "measurements",
            "time_range",
            "start_at",
            "end_at",
            "aggregation",
            "window",
            "width",
            "height",
            "position",
            "min_value",
            "max_value",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_staff:
            fields["dashboard"].queryset = Dashboard.objects.filter(owner=user)
        return fields

    def validate(self, attrs: dict) -> dict:
        def current(name):
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        if not current("time_range"):
            start, end = current("start_at"), current("end_at")
            if not (start and end):
                raise serializers.ValidationError({"start_at": ["Give a relative time_range, or start_at and end_at."]})
            if start >= end:
                raise serializers.ValidationError({"end_at": ["Must be after start_at."]})
        return attrs
