from django.urls import path

from . import schedule_views, views

app_name = "devices"

urlpatterns = [
    path("", views.device_list, name="list"),
    path("add", views.device_add, name="add"),
    path("groups/", views.group_list, name="group-list"),
    path("groups/<int:pk>/", views.group_edit, name="group-edit"),
    path("groups/<int:pk>/delete", views.group_delete, name="group-delete"),
    path("<int:pk>/", views.device_detail, name="detail"),
    path("<int:pk>/configuration", views.device_config, name="config-entry"),
    path("<int:pk>/live", views.device_live, name="live"),
    path("<int:pk>/history", views.device_history, name="history"),
    path("<int:pk>/history.csv", views.device_history_csv, name="history-csv"),
    path("<int:pk>/commands", views.device_commands, name="commands"),
    path("<int:pk>/schedules/", schedule_views.schedules_tab, name="schedules"),
    path("<int:pk>/schedules/<int:schedule_pk>/edit", schedule_views.schedule_edit, name="schedule-edit"),
    path("<int:pk>/schedules/<int:schedule_pk>/delete", schedule_views.schedule_delete, name="schedule-delete"),
    path("<int:pk>/schedules/<int:schedule_pk>/enabled", schedule_views.schedule_enabled, name="schedule-enabled"),
    path("<int:pk>/override", schedule_views.override, name="override"),
    path("<int:pk>/override/cancel", schedule_views.override_cancel, name="override-cancel"),
    path("<int:pk>/keys", views.device_keys, name="keys"),
    path("<int:pk>/keys/rotate", views.device_rotate_key, name="rotate-key"),
    path("<int:pk>/delete", views.device_delete, name="delete"),
]
