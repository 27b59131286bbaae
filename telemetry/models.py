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


class RollupMarker(models.Model):
    """A minute of a measurement whose rollups are out of date.

    The SQL backend writes one with the points, in the same transaction, so the rollup pass
    (beat) finds every minute that changed, late-arriving points included, and a query knows
    which rollup buckets it cannot trust yet. The IoTDB backend writes one only for points
    that arrive after their minute was rolled up. No foreign key: it sits on the ingest path.
    """

    device_id = models.BigIntegerField()
    measurement = models.CharField(max_length=128)
    bucket = models.BigIntegerField(help_text="Start of the minute, epoch milliseconds.")

    class Meta:
        indexes = [models.Index(fields=["device_id", "measurement", "bucket"], name="rollup_marker_bucket")]

    def __str__(self) -> str:
        return f"{self.device_id}.{self.measurement}@{self.bucket}"


class Rollup(models.Model):
    """Count, minimum, maximum and sum of a measurement's numeric points in one bucket."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_index=False)
    measurement = models.CharField(max_length=128)
    bucket = models.BigIntegerField(help_text="Start of the bucket, epoch milliseconds.")
    count = models.BigIntegerField()
    minimum = models.FloatField()
    maximum = models.FloatField()
    total = models.FloatField()
    # Retention deleted what this bucket was computed from: late points are added to it, not recomputed.
    source_pruned = models.BooleanField(default=False)

    class Meta:
        abstract = True
        # Retention deletes a device's buckets by age, whatever the measurement.
        indexes = [models.Index(fields=["device", "bucket"], name="%(class)s_device_bucket")]

    def __str__(self) -> str:
        return f"{self.device_id}.{self.measurement}@{self.bucket}"


class RollupMinute(Rollup):
    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(fields=["device", "measurement", "bucket"], name="rollup_minute_identity")
        ]


class RollupHour(Rollup):
    class Meta(Rollup.Meta):
        constraints = [models.UniqueConstraint(fields=["device", "measurement", "bucket"], name="rollup_hour_identity")]


class RetentionPolicy(models.Model):
    """A device's own retention, where it differs from the settings; empty fields follow the settings."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True, related_name="retention")
    raw_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days raw points are kept; 0 for ever, empty for RETENTION_RAW_DAYS."
    )
    minute_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days 1-minute rollups are kept; 0 for ever, empty for RETENTION_1M_DAYS."
    )
    hour_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days 1-hour rollups are kept; 0 for ever, empty for RETENTION_1H_DAYS."
    )

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"retention of device {self.device_id}"


class RollupWatermark(models.Model):
    """IoTDB: the device's rollups are complete for every bucket before ``through``."""

    device_id = models.BigIntegerField(primary_key=True)
    through = models.BigIntegerField(help_text="Epoch milliseconds, on an hour boundary.")

    def __str__(self) -> str:
        return f"{self.device_id} through {self.through}"


class TelemetryCopy(models.Model):
    """Where ``manage.py migrate_telemetry`` stands, so an interrupted copy resumes."""

    source = models.CharField(max_length=16)
    target = models.CharField(max_length=16)
    stage = models.CharField(max_length=16, default="points", help_text="points, 1m, 1h, then done.")
    device_id = models.BigIntegerField(default=0, help_text="Devices with a smaller id are copied.")
    after = models.BigIntegerField(null=True, blank=True, help_text="Of this device, times up to this are copied.")
    copied = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="telemetry_copy_identity")]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}: {self.stage}, device {self.device_id}"
