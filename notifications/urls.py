from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/<int:pk>/read", views.notification_read, name="read"),
    path("notifications/read-all", views.notification_read_all, name="read-all"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge", views.alert_transition, {"action": "acknowledge"}, name="acknowledge"),
    path("alerts/<int:pk>/resolve", views.alert_transition, {"action": "resolve"}, name="resolve"),
    path("alerts/rules/", views.rule_list, name="rules"),
    path("alerts/rules/new", views.rule_create, name="rule-create"),
    path("alerts/rules/<int:pk>/edit", views.rule_edit, name="rule-edit"),
    path("alerts/rules/<int:pk>/delete", views.rule_delete, name="rule-delete"),
]
