"""A user's dashboards and the charts they build on them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from telemetry.points import AGGREGATIONS
from telemetry.timeparse import DURATION, parse_duration

RELATIVE_RANGES = [
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
]


def validate_duration(value: str) -> None:
    if value and not DURATION.match(value):
        raise ValidationError("Use a duration such as 30s, 5m, 1h or 1d.")
    if value:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ValidationError(f"The window {exc}.") from None


class Dashboard(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboards")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0, help_text="Order among the owner's dashboards.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_dashboard_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Chart(models.Model):
    """One chart: which series (devices × measurements), over which time range, drawn how."""

    class Type(models.TextChoices):
        LINE = "line"
        AREA = "area"
        BAR = "bar"
        GAUGE = "gauge"
        STAT = "stat", "stat (number)"

    class Height(models.TextChoices):
        SMALL = "small"
        MEDIUM = "medium"
        LARGE = "large"

    Aggregation = models.TextChoices("Aggregation", [(a, a) for a in AGGREGATIONS])

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="charts")
    title = models.CharField(max_length=100)
    chart_type = models.CharField(max_length=10, choices=Type.choices, default=Type.LINE)
    devices = models.ManyToManyField("devices.Device", related_name="+")
    measurements = models.JSONField(default=list, help_text="Measurement names; each is drawn for every device.")
    time_range = models.CharField(
        max_length=8, blank=True, default="24h", choices=RELATIVE_RANGES, help_text="Relative range; blank: absolute."
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text="Absolute range start.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="Absolute range end.")
    aggregation = models.CharField(max_length=5, choices=Aggregation.choices, default="mean")
    window = models.CharField(
        max_length=10, blank=True, validators=[validate_duration], help_text="Aggregation window; blank: automatic."
    )
    width = models.PositiveSmallIntegerField(default=2, help_text="Columns of the dashboard's 4-column grid.")
    height = models.CharField(max_length=6, choices=Height.choices, default=Height.MEDIUM)
    position = models.PositiveIntegerField(default=0, help_text="Order on the dashboard.")
    min_value = models.FloatField(null=True, blank=True, help_text="Scale minimum (gauges; axis of other charts).")
    max_value = models.FloatField(null=True, blank=True, help_text="Scale maximum.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(width__gte=1, width__lte=4), name="chart_width_1_to_4"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_relative(self) -> bool:
        return bool(self.time_range)

    def clean(self) -> None:
        if not self.time_range and not (self.start_at and self.end_at):
            raise ValidationError("Choose a relative range, or give both start and end.")
        if not self.time_range and self.start_at >= self.end_at:
            raise ValidationError({"end_at": "The end must be after the start."})
