from django.urls import path

from . import admin_views, command_views, group_views, schedule_views, views

urlpatterns = [
    path("devices", views.DeviceListView.as_view(), name="device-list"),
    path("devices/<int:pk>", views.DeviceDetailView.as_view(), name="device-detail"),
    path("devices/register", views.RegisterView.as_view(), name="device-register"),
    path("devices/status", views.StatusView.as_view(), name="device-status"),
    path("devices/heartbeat", views.HeartbeatView.as_view(), name="device-heartbeat"),
    path("devices/config", views.ConfigView.as_view(), name="device-config"),
    path("devices/mqtt-credentials", views.MqttCredentialsView.as_view(), name="device-mqtt-credentials"),
    path("devices/<int:pk>/health", command_views.DeviceHealthView.as_view(), name="device-health"),
    path("devices/<int:pk>/commands", command_views.DeviceCommandListView.as_view(), name="device-commands"),
    path(
        "devices/<int:pk>/commands/<uuid:command_id>",
        command_views.DeviceCommandDetailView.as_view(),
        name="device-command-detail",
    ),
    path(
        "devices/<int:pk>/commands/<uuid:command_id>/cancel",
        command_views.DeviceCommandCancelView.as_view(),
        name="device-command-cancel",
    ),
    path("devices/<int:pk>/override", schedule_views.DeviceOverrideView.as_view(), name="device-override"),
    path(
        "devices/<int:pk>/override/cancel",
        schedule_views.DeviceOverrideCancelView.as_view(),
        name="device-override-cancel",
    ),
    path("devices/<int:pk>/preclean", schedule_views.DeviceOverrideView.as_view(), name="device-preclean"),
    path(
        "devices/<int:pk>/preclean/cancel",
        schedule_views.DeviceOverrideCancelView.as_view(),
        name="device-preclean-cancel",
    ),
    path("devices/commands/pending", command_views.PendingCommandsView.as_view(), name="device-commands-pending"),
    path("devices/commands/<uuid:command_id>/ack", command_views.AckCommandView.as_view(), name="device-command-ack"),
    path("groups", group_views.GroupListView.as_view(), name="group-list"),
    path("groups/<int:pk>", group_views.GroupDetailView.as_view(), name="group-detail"),
    path("groups/<int:pk>/devices", group_views.GroupDevicesView.as_view(), name="group-devices"),
    path("groups/<int:pk>/devices/<int:device_id>", group_views.GroupDeviceView.as_view(), name="group-device-detail"),
    path("groups/<int:pk>/commands", command_views.GroupCommandView.as_view(), name="group-commands"),
    path(
        "groups/<int:pk>/commands/<int:fleet_id>",
        command_views.GroupCommandDetailView.as_view(),
        name="group-command-detail",
    ),
    path("schedules", schedule_views.ScheduleListView.as_view(), name="schedule-list"),
    path("schedules/<int:pk>", schedule_views.ScheduleDetailView.as_view(), name="schedule-detail"),
    path("schedules/<int:pk>/history", schedule_views.ScheduleHistoryView.as_view(), name="schedule-history"),
    path("admin/devices", admin_views.AdminDeviceListView.as_view(), name="admin-device-list"),
    path("admin/devices/<int:pk>", admin_views.AdminDeviceDetailView.as_view(), name="admin-device-detail"),
    path("admin/devices/<int:pk>/status", admin_views.AdminDeviceStatusView.as_view(), name="admin-device-status"),
    path("admin/stats", admin_views.AdminStatsView.as_view(), name="admin-stats"),
    path("admin/cache/device-status", admin_views.AdminDeviceCacheView.as_view(), name="admin-cache"),
    path("admin/cache/devices/<int:pk>", admin_views.AdminOneDeviceCacheView.as_view(), name="admin-cache-device"),
]
