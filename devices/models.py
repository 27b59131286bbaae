"""Devices, their groups, keys and configuration, commands, schedules and overrides."""

import base64
import hashlib
import hmac
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models import hash_secret


class DeviceGroup(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_group_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Health(models.TextChoices):
    NEVER_SEEN = "never_seen", "never seen"
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class Device(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        MAINTENANCE = "maintenance"

    Health = Health

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    device_type = models.CharField(max_length=50, default="sensor")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    location = models.CharField(max_length=200, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    hardware_version = models.CharField(max_length=50, blank=True)
    groups = models.ManyToManyField(DeviceGroup, blank=True, related_name="devices")
    api_key_prefix = models.CharField(
        "API key prefix", max_length=8, editable=False, help_text="First characters of the API key."
    )
    api_key_hash = models.CharField("API key hash", max_length=64, unique=True, editable=False)
    key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    health = models.CharField(max_length=12, choices=Health.choices, default=Health.NEVER_SEEN, db_index=True)
    health_since = models.DateTimeField(null=True, blank=True)
    health_reason = models.CharField(max_length=50, blank=True, help_text="The event that set the health state.")
    expected_interval = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds between reports; silence past it makes the device stale."
    )
    reported_state = models.JSONField(default=dict, blank=True, help_text="State the device last reported.")
    reported_state_at = models.DateTimeField(null=True, blank=True)
    desired_state = models.JSONField(default=dict, blank=True, help_text="State IoTFlow last asked for.")
    desired_state_at = models.DateTimeField(null=True, blank=True)
    last_metadata = models.JSONField(default=dict, blank=True, help_text="Metadata of the latest telemetry record.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_device_name_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    def set_new_api_key(self) -> str:
        """Give the device a fresh key and return it; only its hash is kept."""
        raw = secrets.token_urlsafe(24)
        self.api_key_prefix = raw[:8]
        self.api_key_hash = hash_secret(raw)
        if self.pk:
            self.key_rotated_at = timezone.now()
        return raw

    @property
    def is_online(self) -> bool:
        return self.health == Health.ONLINE

    @property
    def mqtt_username(self) -> str:
        return f"device-{self.pk}"

    @property
    def mqtt_topic_prefix(self) -> str:
        return f"{settings.MQTT_TOPIC_PREFIX}/{self.pk}/"


def mqtt_password_for(device: "Device") -> str:
    """The device's MQTT password: an HMAC of its key hash under a server secret.

    It is never stored, changes when the key is rotated, and the platform can
    recompute it at any time to (re)create the device's broker account.
    """
    secret = (settings.MQTT_DEVICE_PASSWORD_SECRET or settings.SECRET_KEY).encode()
    digest = hmac.new(secret, b"iotflow-mqtt:" + device.api_key_hash.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class DeviceConfiguration(models.Model):
    """One configuration entry (key → JSON value) a device reads and reports."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="configuration")
    key = models.CharField(max_length=100)
    value = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["device", "key"], name="unique_config_key_per_device")]

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"


class HealthEvent(models.Model):
    """Every change of a device's health state, with what caused it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="health_events")
    state = models.CharField(max_length=12, choices=Health.choices)
    previous = models.CharField(max_length=12, choices=Health.choices)
    reason = models.CharField(max_length=50)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.previous} → {self.state} ({self.reason})"


class FleetCommand(models.Model):
    """One command sent to every device of a group; each device gets its own tracked Command."""

    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="fleet_commands")
    action = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} → group {self.group_id}"


class Command(models.Model):
    """A command to one device and its whole delivery history: the audit log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        ACKNOWLEDGED = "acknowledged"
        FAILED = "failed"
        TIMEOUT = "timeout"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        USER = "user"
        ADMIN = "admin"
        FLEET = "fleet"
        SCHEDULE = "schedule"
        OVERRIDE = "override"
        SYSTEM = "system"

    OPEN = (Status.PENDING, Status.SENT)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="commands")
    action = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.USER)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    fleet_command = models.ForeignKey(
        FleetCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Time of the latest delivery attempt.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["device", "-created_at"], name="command_device_recent"),
            models.Index(fields=["status", "sent_at"], name="command_open"),
        ]

    def __str__(self) -> str:
        return f"{self.action} → {self.device_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def as_message(self) -> dict:
        """What the device receives."""
        return {
            "id": str(self.id),
            "action": self.action,
            "params": self.params,
            "issued_at": self.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }


def validate_time_zone(name: str) -> None:
    """A schedule's zone must be one the IANA database knows, or its local times mean nothing."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin.") from None


class Schedule(models.Model):
    """A weekly plan for a device or a group: a state applied at the start time, ended at the end time.

    Times are wall-clock times in ``time_zone``; an end earlier than the start ends the next day
    (an overnight span). ``days`` are the days a span starts on, 0 = Monday … 6 = Sunday.
    """

    class EndAction(models.TextChoices):
        TURN_OFF = "turn_off", "turn off"
        RESTORE = "restore", "restore the state before the start"

    name = models.CharField(max_length=100)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules")
    group = models.ForeignKey(DeviceGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules")
    days = models.JSONField(default=list, help_text="Days the span starts on: 0 = Monday … 6 = Sunday.")
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="Earlier than the start time: the span ends the next day.")
    start_action = models.CharField(max_length=100, default="set_state")
    start_params = models.JSONField(default=dict, blank=True, help_text='Applied at the start, e.g. {"power": "on"}.')
    end_action = models.CharField(max_length=10, choices=EndAction.choices, default=EndAction.TURN_OFF)
    time_zone = models.CharField(
        max_length=64, blank=True, validators=[validate_time_zone], help_text="Empty: the owner's time zone."
    )
    enabled = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device__isnull=False, group__isnull=True)
                | models.Q(device__isnull=True, group__isnull=False),
                name="schedule_device_xor_group",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.time_zone and self.owner is not None:
            self.time_zone = self.owner.time_zone
        super().save(*args, **kwargs)

    @property
    def owner(self):
        target = self.device or self.group
        return target.owner if target else None

    @property
    def overnight(self) -> bool:
        return self.end_time < self.start_time

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone or getattr(self.owner, "time_zone", "") or "UTC")

    def targets(self) -> models.QuerySet:
        """The devices this schedule drives."""
        if self.device_id:
            return Device.objects.filter(pk=self.device_id)
        return Device.objects.filter(groups=self.group_id)

    def clean(self) -> None:
        from .schedules import validation_errors

        errors = validation_errors(self)
        if errors:
            raise ValidationError(errors)


class ScheduleRun(models.Model):
    """One firing of one edge of a schedule on one device.

    The row is written before the command is sent, and the unique slot (schedule, device, local
    date, edge) lets only one writer win: two beats or workers, or a restart, never fire it twice.
    """

    class Edge(models.TextChoices):
        START = "start"
        END = "end"

    class Result(models.TextChoices):
        SENT = "sent", "command sent"
        HELD = "held", "held by an active override"
        SKIPPED = "skipped", "nothing to send"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="schedule_runs")
    slot_date = models.DateField(help_text="The local date the span starts on.")
    edge = models.CharField(max_length=5, choices=Edge.choices)
    due_at = models.DateTimeField(help_text="When the edge fell due.")
    fired_at = models.DateTimeField()
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result = models.CharField(max_length=7, choices=Result.choices)
    detail = models.CharField(max_length=200, blank=True)
    saved_state = models.JSONField(
        default=dict, blank=True, help_text="At a start: the state before it, which a restoring end brings back."
    )

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "device", "slot_date", "edge"], name="one_run_per_schedule_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.edge} {self.slot_date} on {self.device_id}: {self.result}"


class Override(models.Model):
    """Parameters applied to a device for a while (the pre-clean), then the saved state restored.

    Kept in the database, so whichever process is alive at ``ends_at`` restores it; at most one
    override per device is active.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        RESTORED = "restored"
        CANCELLED = "cancelled"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="overrides")
    params = models.JSONField(default=dict)
    duration = models.DurationField()
    saved_state = models.JSONField(default=dict, blank=True, help_text="Restored at the end.")
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    apply_command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    restore_command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=models.Q(status="active"), name="one_active_override_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"override of {self.device_id} until {self.ends_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def seconds_left(self, now=None) -> int:
        if not self.is_active:
            return 0
        return max(0, int((self.ends_at - (now or timezone.now())).total_seconds()))
