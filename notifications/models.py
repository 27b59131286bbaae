"""What IoTFlow tells a person: notifications, and the alert rules and alerts that raise some of them."""

import operator
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class NotificationKind(models.TextChoices):
    """The kinds of notification a user can mute; ``Notification.kind`` holds one of them."""

    DEVICE_REGISTERED = "device_registered", "Device registered"
    DEVICE_ONLINE = "device_online", "Device online"
    DEVICE_STALE = "device_stale", "Device stale"
    DEVICE_OFFLINE = "device_offline", "Device offline"
    ALERT = "alert", "Alert fired"
    COMMAND_FAILED = "command_failed", "Command failed"
    COMMAND_TIMEOUT = "command_timeout", "Command timed out"
    SCHEDULE_EXECUTED = "schedule_executed", "Schedule executed"
    OVERRIDE_STARTED = "override_started", "Override started"
    OVERRIDE_ENDED = "override_ended", "Override ended"


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info"
        SUCCESS = "success"
        WARNING = "warning"
        ERROR = "error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    kind = models.CharField(max_length=50, blank=True, db_index=True, help_text="Event kind, e.g. device_offline.")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    device = models.ForeignKey("devices.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.title} → {self.user}"

    def as_message(self) -> dict:
        """The WebSocket message shape: {"type": "notification", "data": {...}}."""
        return {
            "type": "notification",
            "data": {
                "id": self.pk,
                "type": self.level,
                "kind": self.kind,
                "title": self.title,
                "message": self.message,
                "device": self.device_id,
                "timestamp": self.created_at.isoformat(),
            },
        }


class Severity(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertRule(models.Model):
    """A condition on one measurement of a device, or of every device in a group, that raises alerts."""

    class Operator(models.TextChoices):
        GT = ">", "greater than"
        GE = ">=", "greater than or equal to"
        LT = "<", "less than"
        LE = "<=", "less than or equal to"
        EQ = "==", "equal to"
        NE = "!=", "not equal to"

    COMPARE = {
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
        "==": operator.eq,
        "!=": operator.ne,
    }

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    group = models.ForeignKey(
        "devices.DeviceGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    measurement = models.CharField(max_length=128)
    operator = models.CharField(max_length=2, choices=Operator.choices)
    threshold = models.FloatField()
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    cooldown = models.PositiveIntegerField(default=300, help_text="Seconds after an alert before the rule fires again.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device__isnull=False, group__isnull=True)
                | models.Q(device__isnull=True, group__isnull=False),
                name="alert_rule_device_xor_group",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.measurement} {self.operator} {self.threshold:g}"

    def clean(self) -> None:
        if (self.device_id is None) == (self.group_id is None):
            raise ValidationError("A rule watches either one device or one group.")

    def breached_by(self, value) -> bool:
        """Whether a telemetry value meets the condition; text values never do."""
        if isinstance(value, str):
            return False
        return self.COMPARE[self.operator](float(value), self.threshold)

    @property
    def cooldown_delta(self) -> timedelta:
        return timedelta(seconds=self.cooldown)


class AlertCooldown(models.Model):
    """When a rule may next fire for a device: the row a concurrent writer must win to raise an alert."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "device"], name="one_cooldown_per_rule_and_device")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} on device {self.device_id} until {self.until:%Y-%m-%d %H:%M:%S}"


class Alert(models.Model):
    """One firing of a rule for a device, followed through acknowledge and resolve."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="alerts")
    # Copied from the rule at firing time, so the record stays true when the rule is edited or deleted.
    name = models.CharField(max_length=100)
    measurement = models.CharField(max_length=128)
    condition = models.CharField(max_length=64, help_text="The rule's condition when it fired, e.g. '> 30'.")
    severity = models.CharField(max_length=10, choices=Severity.choices, db_index=True)
    value = models.FloatField()
    triggered_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        indexes = [models.Index(fields=["owner", "status", "-triggered_at"], name="alert_owner_status")]

    def __str__(self) -> str:
        return f"{self.name} on {self.device_id}: {self.measurement} {self.condition} ({self.status})"
