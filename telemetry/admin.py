"""Read-only views of the SQL backend's telemetry tables, sized for millions of rows.

Points are written and deleted only through the telemetry backend (ingest, retention), which
also keeps latest values in step; here operators look, by device and measurement.
"""

from django.contrib import admin
from django.utils.text import Truncator

from telemetry.backends.sql import decode
from telemetry.timeparse import to_iso

from .models import LatestValue, RetentionPolicy, TelemetryPoint


class ReadOnlyAdmin(admin.ModelAdmin):
    list_display = ("device", "measurement", "time", "short_value")
    fields = ("device", "measurement", "time", "value_type", "value")
    readonly_fields = fields
    list_select_related = ("device",)
    search_fields = ("^measurement",)
    search_help_text = "Measurement name, or its beginning. Filter by device with ?device__id__exact=<id>."

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="time (UTC)", ordering="ts")
    def time(self, row: TelemetryPoint | LatestValue) -> str:
        return to_iso(row.ts)

    @admin.display(description="value")
    def value(self, row: TelemetryPoint | LatestValue) -> str:
        return str(decode(row.value_type, row.value_float, row.value_text))

    @admin.display(description="value")
    def short_value(self, row: TelemetryPoint | LatestValue) -> str:
        return Truncator(self.value(row)).chars(80)


@admin.register(TelemetryPoint)
class TelemetryPointAdmin(ReadOnlyAdmin):
    # No list_filter and no full count: either would scan every point on each page view.
    show_full_result_count = False
    ordering = ("-ts",)


@admin.register(LatestValue)
class LatestValueAdmin(ReadOnlyAdmin):
    search_fields = ("^measurement", "device__name")
    search_help_text = "Measurement name or its beginning, or device name."
    ordering = ("device", "measurement")


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """A device's own retention; applied by the nightly retention task on either backend."""

    list_display = ("device", "raw_days", "minute_days", "hour_days")
    list_select_related = ("device",)
    search_fields = ("device__name",)
    autocomplete_fields = ("device",)
