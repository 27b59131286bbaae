"""Filters for alert rules, alerts and notifications, shared by the API and the pages."""

import django_filters

from .models import Alert, AlertRule, Notification, Severity


class AlertRuleFilterSet(django_filters.FilterSet):
    class Meta:
        model = AlertRule
        fields = ["device", "group", "measurement", "severity", "enabled"]


class AlertFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Alert.Status.choices, help_text="Repeat for several.")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, help_text="Repeat for several.")
    triggered_after = django_filters.IsoDateTimeFilter(field_name="triggered_at", lookup_expr="gte")
    triggered_before = django_filters.IsoDateTimeFilter(field_name="triggered_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["status", "severity", "device", "rule", "measurement"]


class NotificationFilterSet(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", help_text="true: unread only.")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Notification
        fields = ["unread", "level", "kind", "device"]
