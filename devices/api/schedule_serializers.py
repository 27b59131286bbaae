"""Schedules, their run history and overrides, with every field error reported at once."""

import copy
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from devices import schedules
from devices.models import Command, Device, DeviceGroup, Override, Schedule, ScheduleRun

from .permissions import devices_visible_to

DAY_ALIASES = {name[:3]: day for day, name in enumerate(schedules.DAY_NAMES)} | {
    name: day for day, name in enumerate(schedules.DAY_NAMES)
}


@extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=schedules.DAY_NAMES)))
class WeekdaysField(serializers.Field):
    """Days as names ("monday" or "mon") or numbers (0 = Monday … 6 = Sunday); answered as names."""

    default_error_messages = {
        "not_a_list": 'Give a list of days, e.g. ["monday", "friday"].',
        "empty": "Give one or more days of the week.",
        "unknown": "{value!r} is not a day of the week (monday … sunday, or 0 = Monday … 6 = Sunday).",
    }

    def to_internal_value(self, data) -> list[int]:
        if not isinstance(data, list):
            self.fail("not_a_list")
        if not data:
            self.fail("empty")
        return sorted({self._day(value) for value in data})

    def _day(self, value) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
            return value
        if isinstance(value, str) and value.strip().lower() in DAY_ALIASES:
            return DAY_ALIASES[value.strip().lower()]
        self.fail("unknown", value=value)

    def to_representation(self, value: list[int]) -> list[str]:
        return [schedules.DAY_NAMES[day] for day in value]


class ScheduleSerializer(serializers.ModelSerializer):
    device = serializers.PrimaryKeyRelatedField(queryset=Device.objects.all(), required=False, allow_null=True)
    group = serializers.PrimaryKeyRelatedField(queryset=DeviceGroup.objects.all(), required=False, allow_null=True)
    days = WeekdaysField()
    start_action = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$", default="set_state", help_text="The command sent at the start."
    )
    start_params = serializers.DictField(default=dict, help_text='e.g. {"power": "on", "fan_speed": 3}')
    time_zone = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="IANA name; the owner's time zone when left out."
    )
    overnight = serializers.BooleanField(read_only=True, help_text="The end is earlier than the start: next day.")
    next_start = serializers.SerializerMethodField()
    next_end = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "device",
            "group",
            "days",
            "start_time",
            "end_time",
            "overnight",
            "start_action",
            "start_params",
            "end_action",
            "time_zone",
            "enabled",
            "next_start",
            "next_end",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        user = getattr(self.context.get("request"), "user", None)
        if user is not None and not user.is_staff:
            mine = user.is_authenticated
            self.fields["device"].queryset = devices_visible_to(user) if mine else Device.objects.none()
            self.fields["group"].queryset = (
                DeviceGroup.objects.filter(owner=user) if mine else DeviceGroup.objects.none()
            )

    def validate_time_zone(self, value: str) -> str:
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise serializers.ValidationError(
                    f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin."
                )
        return value

    def validate(self, attrs: dict) -> dict:
        candidate = copy.copy(self.instance) if self.instance else Schedule()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        if not candidate.time_zone and candidate.owner is not None:
            attrs["time_zone"] = candidate.time_zone = candidate.owner.time_zone
        errors = schedules.validation_errors(candidate)
        if errors:
            key = api_settings.NON_FIELD_ERRORS_KEY
            raise serializers.ValidationError(
                {key if name == NON_FIELD_ERRORS else name: e for name, e in errors.items()}
            )
        return attrs

    def get_next_start(self, schedule: Schedule) -> str | None:
        return _iso(schedules.upcoming(schedule)[schedules.START]) if schedule.enabled else None

    def get_next_end(self, schedule: Schedule) -> str | None:
        return _iso(schedules.upcoming(schedule)[schedules.END]) if schedule.enabled else None


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class RunCommandSerializer(serializers.ModelSerializer):
    class Meta:
        model = Command
        fields = ["id", "action", "params", "status", "acknowledged_at", "error"]
        read_only_fields = fields


class ScheduleRunSerializer(serializers.ModelSerializer):
    command = RunCommandSerializer(read_only=True)

    class Meta:
        model = ScheduleRun
        fields = [
            "id",
            "device",
            "slot_date",
            "edge",
            "due_at",
            "fired_at",
            "result",
            "detail",
            "saved_state",
            "command",
        ]
        read_only_fields = fields


class OverrideStartSerializer(serializers.Serializer):
    """``{"params": {...}, "duration_minutes": N}``, or the pre-clean shape ``{"fanMode": 1-5, "duration": N}``."""

    params = serializers.DictField(required=False, help_text='Applied now, e.g. {"fan_speed": 5}.')
    duration_minutes = serializers.IntegerField(required=False, min_value=1)
    fanMode = serializers.IntegerField(required=False, min_value=1, max_value=5, help_text="Pre-clean fan speed.")
    duration = serializers.IntegerField(required=False, min_value=1, help_text="Pre-clean minutes.")

    def validate(self, attrs: dict) -> dict:
        preclean = "fanMode" in attrs or "duration" in attrs
        if preclean and ("params" in attrs or "duration_minutes" in attrs):
            raise serializers.ValidationError("Give either params and duration_minutes, or fanMode and duration.")
        params_field, minutes_field = ("fanMode", "duration") if preclean else ("params", "duration_minutes")
        errors = {name: ["This field is required."] for name in (params_field, minutes_field) if name not in attrs}
        if not errors and not preclean and not attrs["params"]:
            errors["params"] = ['Give the parameters to apply, e.g. {"fan_speed": 5}.']
        limit = settings.OVERRIDE_MAX_MINUTES
        if attrs.get(minutes_field, 0) > limit:
            errors[minutes_field] = [f"At most {limit} minutes."]
        if errors:
            raise serializers.ValidationError(errors)
        params = {"power": "on", "fan_speed": attrs["fanMode"]} if preclean else attrs["params"]
        return {"params": params, "duration": timedelta(minutes=attrs[minutes_field])}


class OverrideSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)
    duration_minutes = serializers.SerializerMethodField()
    time_left_seconds = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Override
        fields = [
            "id",
            "device",
            "status",
            "active",
            "params",
            "saved_state",
            "duration_minutes",
            "started_at",
            "ends_at",
            "ended_at",
            "time_left_seconds",
            "apply_command",
            "restore_command",
            "created_by",
        ]
        read_only_fields = fields

    def get_duration_minutes(self, override: Override) -> int:
        return int(override.duration.total_seconds() // 60)

    def get_time_left_seconds(self, override: Override) -> int:
        return override.seconds_left()


class OverrideStatusSerializer(serializers.Serializer):
    """``GET .../override``: whether one is active, the time left, and the active (or latest) override."""

    active = serializers.BooleanField()
    time_left_seconds = serializers.IntegerField()
    override = OverrideSerializer(allow_null=True)
