from django.urls import path

from . import views

urlpatterns = [
    path("alert-rules", views.AlertRuleListView.as_view(), name="alert-rule-list"),
    path("alert-rules/<int:pk>", views.AlertRuleDetailView.as_view(), name="alert-rule-detail"),
    path("alerts", views.AlertListView.as_view(), name="alert-list"),
    path("alerts/<int:pk>", views.AlertDetailView.as_view(), name="alert-detail"),
    path("alerts/<int:pk>/acknowledge", views.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve", views.AlertResolveView.as_view(), name="alert-resolve"),
    path("notifications", views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/unread-count", views.UnreadCountView.as_view(), name="notification-unread-count"),
    path("notifications/read-all", views.NotificationReadAllView.as_view(), name="notification-read-all"),
    path("notifications/preferences", views.PreferencesView.as_view(), name="notification-preferences"),
    path("notifications/<int:pk>", views.NotificationDetailView.as_view(), name="notification-detail"),
    path("notifications/<int:pk>/read", views.NotificationReadView.as_view(), name="notification-read"),
]
