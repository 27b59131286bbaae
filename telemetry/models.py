"""Telemetry stored by the SQL backend: raw points and each measurement's latest value.

Timestamps are integer epoch milliseconds, as in IoTDB: bucketing by time window is
plain integer arithmetic on every database, and the keys stay small.
"""

from django.db import models

from devices.models import Device


class ValueType(models.IntegerChoices):
    FLOAT = 0
    INT = 1
    BOOL = 2
    TEXT = 3


class TelemetryPoint(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_index=False)
    measurement = models.CharField(max_length=128)
    ts = models.BigIntegerField(help_text="Epoch milliseconds (UTC).")
    value_type = models.SmallIntegerField(choices=ValueType.choices, default=ValueType.FLOAT)
    value_float = models.FloatField(null=True, blank=True)
    value_text = models.TextField(null=True, blank=True)

    class Meta:
        constraints = [
            # The point's identity: writing the same point twice stores it once.
            models.UniqueConstraint(fields=["device", "measurement", "ts"], name="telemetry_point_identity"),
        ]
        indexes = [models.Index(fields=["device", "ts"], name="telemetry_device_ts")]

    def __str__(self) -> str:
        return f"{self.device_id}.{self.measurement}@{self.ts}"


class LatestValue(models.Model):
    """The newest point of each measurement of a device, so `latest` never scans history."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="latest_values", db_index=False)
    measurement = models.CharField(max_length=128)
    ts = models.BigIntegerField()
    value_type = models.SmallIntegerField(choices=ValueType.choices, default=ValueType.FLOAT)
    value_float = models.FloatField(null=True, blank=True)
    value_text = models.TextField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "measurement"], name="latest_value_identity")]

    def __str__(self) -> str:
        return f"{self.device_id}.{self.measurement}"
