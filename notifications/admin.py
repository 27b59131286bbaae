from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "level", "kind", "title", "device", "read_at")
    list_filter = ("level", "kind")
    search_fields = ("title", "message", "user__username")
    list_select_related = ("user", "device")
    show_full_result_count = False
    readonly_fields = ("user", "level", "kind", "title", "message", "device", "created_at")
