"""Operators' console for devices: keys, status, groups, configuration and a glance at telemetry.

Every change goes through ``Device.save()`` (never ``QuerySet.update``), so the signals drop
cached key lookups and a rotated key or a new status takes effect on the device API at once.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from telemetry.backends import BackendUnavailable, get_backend
from telemetry.timeparse import to_iso

from .models import (
    Command,
    Device,
    DeviceConfiguration,
    DeviceGroup,
    FleetCommand,
    HealthEvent,
    Override,
    Schedule,
    ScheduleRun,
)
from .schedules import DAY_NAMES, upcoming

KEY_FIELDS = ["api_key_prefix", "api_key_hash", "key_rotated_at", "updated_at"]


def rotate_key(device: Device) -> str:
    """Give the device a new key, saved so cached lookups of the old one are dropped; returns it."""
    key = device.set_new_api_key()
    device.save(update_fields=KEY_FIELDS)
    return key


def keys_message(keys: list[tuple[Device, str]]) -> SafeString:
    rows = format_html_join("", "<br>{}: <code>{}</code>", keys)
    return format_html("New API key{} (copy now, not shown again):{}", "s" if len(keys) > 1 else "", rows)


class DeviceConfigurationInline(admin.TabularInline):
    model = DeviceConfiguration
    fields = ("key", "value", "updated_at")
    readonly_fields = ("updated_at",)
    extra = 0


class HealthEventInline(admin.TabularInline):
    model = HealthEvent
    fields = ("at", "previous", "state", "reason")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-at",)
    verbose_name_plural = "Health changes"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at")


class CommandInline(admin.TabularInline):
    model = Command
    fields = ("created_at", "action", "params", "source", "status", "attempts", "acknowledged_at", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Commands (audit log)"


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "id",
        "owner",
        "device_type",
        "status",
        "health",
        "health_since",
        "last_seen",
        "api_key_prefix",
    )
    list_filter = (
        "status",
        "health",
        "device_type",
        ("groups", admin.RelatedOnlyFieldListFilter),
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("name", "location", "owner__username")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    filter_horizontal = ("groups",)
    inlines = (DeviceConfigurationInline, HealthEventInline, CommandInline)
    actions = ("rotate_api_keys", "mark_active", "mark_inactive", "mark_maintenance")
    add_fieldsets = (
        (None, {"fields": ("name", "owner", "device_type", "status", "description", "location", "groups")}),
        ("Hardware", {"fields": ("firmware_version", "hardware_version", "expected_interval")}),
    )
    fieldsets = (
        *add_fieldsets,
        ("API key", {"fields": ("api_key_prefix", "key_rotated_at")}),
        (
            "Activity",
            {
                "fields": (
                    ("health", "health_since", "health_reason"),
                    "last_seen",
                    "last_metadata",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("State", {"fields": (("reported_state", "reported_state_at"), ("desired_state", "desired_state_at"))}),
        ("Telemetry", {"fields": ("stored_points", "latest_values")}),
    )
    readonly_fields = (
        "api_key_prefix",
        "key_rotated_at",
        "health",
        "health_since",
        "health_reason",
        "reported_state",
        "reported_state_at",
        "desired_state",
        "desired_state_at",
        "last_seen",
        "last_metadata",
        "created_at",
        "updated_at",
        "stored_points",
        "latest_values",
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_inlines(self, request, obj=None):
        return self.inlines if obj is not None else (DeviceConfigurationInline,)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = DeviceGroup.objects.select_related("owner")
            field = super().formfield_for_manytomany(db_field, request, **kwargs)
            # Group names repeat across owners; the owner tells them apart.
            field.label_from_instance = lambda group: f"{group.name} ({group.owner})"
            return field
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Stored points")
    def stored_points(self, device: Device) -> str:
        try:
            count = get_backend().count(device.pk)
        except BackendUnavailable:
            return "Telemetry storage is unavailable."
        url = reverse("admin:telemetry_telemetrypoint_changelist") + f"?device__id__exact={device.pk}"
        return format_html('<a href="{}">{} points</a>', url, f"{count:,}")

    @admin.display(description="Latest values")
    def latest_values(self, device: Device) -> str:
        try:
            latest = get_backend().latest(device.pk)
        except BackendUnavailable:
            return "Telemetry storage is unavailable."
        if not latest:
            return "No telemetry yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((name, point.value, to_iso(point.ts)) for name, point in sorted(latest.items())),
        )
        return format_html(
            '<table class="latest-values"><thead><tr><th>Measurement</th><th>Value</th><th>Time (UTC)</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Device, form, change: bool) -> None:
        key = None if change else obj.set_new_api_key()
        super().save_model(request, obj, form, change)
        if key:
            messages.warning(request, keys_message([(obj, key)]))

    @admin.action(description="Rotate API key", permissions=["change"])
    def rotate_api_keys(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        keys = []
        for device in queryset:
            keys.append((device, rotate_key(device)))
            self.log_change(request, device, "Rotated the API key.")
        messages.warning(request, keys_message(keys))

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Device], status: str) -> None:
        devices = list(queryset)
        for device in devices:
            device.status = status
            device.save(update_fields=["status", "updated_at"])
            self.log_change(request, device, f"Set status to {status}.")
        self.message_user(request, f"{len(devices)} device(s) marked {status}.", messages.SUCCESS)

    @admin.action(description="Mark active", permissions=["change"])
    def mark_active(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_status(request, queryset, Device.Status.ACTIVE)

    @admin.action(description="Mark inactive", permissions=["change"])
    def mark_inactive(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_status(request, queryset, Device.Status.INACTIVE)

    @admin.action(description="Mark maintenance", permissions=["change"])
    def mark_maintenance(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_status(request, queryset, Device.Status.MAINTENANCE)

    def get_urls(self):
        rotate = self.admin_site.admin_view(self.rotate_key_view)
        return [path("<path:object_id>/rotate-key/", rotate, name="devices_device_rotate_key"), *super().get_urls()]

    def rotate_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The device page's "Rotate API key" button: confirm, rotate, show the new key once."""
        device = self.get_object(request, unquote(object_id))
        if device is None:
            raise Http404("No such device.")
        if not self.has_change_permission(request, device):
            raise PermissionDenied
        if request.method == "POST":
            key = rotate_key(device)
            self.log_change(request, device, "Rotated the API key.")
            messages.warning(request, keys_message([(device, key)]))
            return redirect("admin:devices_device_change", device.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate the API key?",
            "opts": self.opts,
            "object": device,
        }
        return TemplateResponse(request, "admin/devices/device/rotate_key.html", context)


@admin.register(DeviceGroup)
class DeviceGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "device_count", "created_at")
    list_filter = (("owner", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(device_count=Count("devices"))

    @admin.display(description="devices", ordering="device_count")
    def device_count(self, group: DeviceGroup) -> int:
        return group.device_count


@admin.register(DeviceConfiguration)
class DeviceConfigurationAdmin(admin.ModelAdmin):
    list_display = ("device", "key", "value", "updated_at")
    search_fields = ("key", "device__name")
    list_select_related = ("device",)
    autocomplete_fields = ("device",)
    readonly_fields = ("updated_at",)


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    """The command audit log: every command, whatever its source, with its delivery history."""

    list_display = ("created_at", "device", "action", "source", "status", "attempts", "acknowledged_at")
    list_filter = ("status", "source", "action")
    search_fields = ("id", "device__name", "action")
    list_select_related = ("device",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in Command._meta.fields]
    actions = ("cancel_commands",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Cancel selected open commands", permissions=["view"])
    def cancel_commands(self, request: HttpRequest, queryset: QuerySet[Command]) -> None:
        from .commands import CommandRejected, cancel

        cancelled = 0
        for command in queryset:
            try:
                cancel(command)
                cancelled += 1
            except CommandRejected:
                pass
        self.message_user(request, f"{cancelled} command(s) cancelled.", messages.SUCCESS)


@admin.register(FleetCommand)
class FleetCommandAdmin(admin.ModelAdmin):
    list_display = ("created_at", "group", "action", "created_by", "rollup")
    list_select_related = ("group", "created_by")
    readonly_fields = ("group", "action", "params", "created_by", "created_at", "rollup")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Commands by status")
    def rollup(self, fleet: FleetCommand) -> str:
        from .commands import rollup

        return ", ".join(f"{status}: {n}" for status, n in rollup(fleet).items() if n)


@admin.register(HealthEvent)
class HealthEventAdmin(admin.ModelAdmin):
    list_display = ("at", "device", "previous", "state", "reason")
    list_filter = ("state", "reason")
    search_fields = ("device__name",)
    list_select_related = ("device",)
    show_full_result_count = False
    readonly_fields = ("device", "state", "previous", "reason", "at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Weekly schedules; saving checks the same rules as the API (days, times, overlaps)."""

    list_display = ("name", "device", "group", "day_names", "start_time", "end_time", "time_zone", "enabled")
    list_filter = ("enabled", "end_action")
    search_fields = ("name", "device__name", "group__name")
    list_select_related = ("device", "group")
    autocomplete_fields = ("device",)
    readonly_fields = ("created_at", "updated_at", "next_edges", "history")
    fields = (
        "name",
        ("device", "group"),
        "days",
        ("start_time", "end_time"),
        ("start_action", "start_params"),
        "end_action",
        "time_zone",
        "enabled",
        "next_edges",
        "history",
        ("created_at", "updated_at"),
    )

    @admin.display(description="days")
    def day_names(self, schedule: Schedule) -> str:
        return ", ".join(DAY_NAMES[day][:3] for day in schedule.days if isinstance(day, int) and 0 <= day <= 6)

    @admin.display(description="next start / end (UTC)")
    def next_edges(self, schedule: Schedule) -> str:
        if not schedule.pk or not schedule.enabled:
            return "—"
        edges = upcoming(schedule)
        return " / ".join(f"{moment:%Y-%m-%d %H:%M}" if moment else "—" for moment in edges.values())

    @admin.display(description="history")
    def history(self, schedule: Schedule) -> str:
        if not schedule.pk:
            return "—"
        url = reverse("admin:devices_schedulerun_changelist") + f"?schedule__id__exact={schedule.pk}"
        return format_html('<a href="{}">{} firing(s)</a>', url, schedule.runs.count())


@admin.register(ScheduleRun)
class ScheduleRunAdmin(admin.ModelAdmin):
    """Every firing of every schedule, written once per slot: read-only."""

    list_display = ("due_at", "schedule", "edge", "device", "fired_at", "result", "command")
    list_filter = ("edge", "result")
    search_fields = ("schedule__name", "device__name")
    list_select_related = ("schedule", "device", "command")
    date_hierarchy = "due_at"
    readonly_fields = [field.name for field in ScheduleRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    """Overrides (pre-clean); operators may end active ones early, which restores the saved state."""

    list_display = ("device", "status", "params", "started_at", "ends_at", "ended_at", "created_by")
    list_filter = ("status",)
    search_fields = ("device__name",)
    list_select_related = ("device", "created_by")
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in Override._meta.fields]
    actions = ("cancel_overrides",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Cancel selected active overrides (restore now)", permissions=["view"])
    def cancel_overrides(self, request: HttpRequest, queryset: QuerySet[Override]) -> None:
        from .overrides import finish

        ended = sum(1 for override in queryset if finish(override.pk, cancelled=True, user=request.user))
        self.message_user(request, f"{ended} override(s) cancelled and restored.", messages.SUCCESS)
