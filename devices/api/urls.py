from django.urls import path

from . import admin_views, views

urlpatterns = [
    path("devices", views.DeviceListView.as_view(), name="device-list"),
    path("devices/<int:pk>", views.DeviceDetailView.as_view(), name="device-detail"),
    path("devices/register", views.RegisterView.as_view(), name="device-register"),
    path("devices/status", views.StatusView.as_view(), name="device-status"),
    path("devices/heartbeat", views.HeartbeatView.as_view(), name="device-heartbeat"),
    path("devices/config", views.ConfigView.as_view(), name="device-config"),
    path("devices/mqtt-credentials", views.MqttCredentialsView.as_view(), name="device-mqtt-credentials"),
    path("admin/devices", admin_views.AdminDeviceListView.as_view(), name="admin-device-list"),
    path("admin/devices/<int:pk>", admin_views.AdminDeviceDetailView.as_view(), name="admin-device-detail"),
    path("admin/devices/<int:pk>/status", admin_views.AdminDeviceStatusView.as_view(), name="admin-device-status"),
    path("admin/stats", admin_views.AdminStatsView.as_view(), name="admin-stats"),
    path("admin/cache/device-status", admin_views.AdminDeviceCacheView.as_view(), name="admin-cache"),
    path("admin/cache/devices/<int:pk>", admin_views.AdminOneDeviceCacheView.as_view(), name="admin-cache-device"),
]
