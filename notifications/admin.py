from django.contrib import admin

from . import alerts
from .models import Alert, AlertRule, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "level", "kind", "title", "device", "read_at")
    list_filter = ("level", "kind")
    search_fields = ("title", "message", "user__username")
    list_select_related = ("user", "device")
    show_full_result_count = False
    readonly_fields = ("user", "level", "kind", "title", "message", "device", "created_at")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "device", "group", "measurement", "operator", "threshold", "severity", "enabled")
    list_filter = ("severity", "enabled", "operator")
    search_fields = ("name", "measurement", "owner__username", "device__name", "group__name")
    list_select_related = ("owner", "device", "group")
    autocomplete_fields = ("owner",)
    raw_id_fields = ("device", "group")
    readonly_fields = ("created_at", "updated_at")
    actions = ["enable", "disable"]

    @admin.action(description="Enable the selected rules")
    def enable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected rules")
    def disable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        # One save per rule, so the signal that refreshes cached rules runs for each.
        for rule in queryset:
            rule.enabled = enabled
            rule.save(update_fields=["enabled", "updated_at"])
        self.message_user(request, f"{queryset.count()} rule(s) {'enabled' if enabled else 'disabled'}.")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "triggered_at",
        "name",
        "device",
        "measurement",
        "condition",
        "value",
        "severity",
        "status",
        "owner",
    )
    list_filter = ("status", "severity")
    search_fields = ("name", "measurement", "device__name", "owner__username")
    list_select_related = ("device", "owner")
    date_hierarchy = "triggered_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in Alert._meta.fields]
    actions = ["acknowledge", "resolve"]

    def has_add_permission(self, request) -> bool:
        return False  # alerts are raised by rules, not typed in

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset) -> None:
        self._move(request, queryset, alerts.acknowledge, "acknowledged")

    @admin.action(description="Resolve the selected alerts")
    def resolve(self, request, queryset) -> None:
        self._move(request, queryset, alerts.resolve, "resolved")

    def _move(self, request, queryset, transition, done: str) -> None:
        moved = skipped = 0
        for alert in queryset:
            try:
                transition(alert, request.user)
                moved += 1
            except alerts.AlertTransitionError:
                skipped += 1
        message = f"{moved} alert(s) {done}."
        if skipped:
            message += f" {skipped} resolved alert(s) left as they were."
        self.message_user(request, message)
