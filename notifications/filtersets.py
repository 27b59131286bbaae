"""Filters for alert rules, alerts and notifications, shared by the API and the pages."""

import datetime

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from .models import Alert, AlertRule, Notification, Severity


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, taken as its instant in UTC.

    ISO 8601 allows UTC offsets up to ±23:59, PostgreSQL only up to ±15:59: handed over with its own
    offset, ``2024-06-16T19:55:37-20:45`` was refused by the database. In UTC it is just an instant;
    one that falls outside the years 1–9999 in UTC is an invalid date-time, like any other.
    """

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class AlertRuleFilterSet(django_filters.FilterSet):
    class Meta:
        model = AlertRule
        fields = ["device", "group", "measurement", "severity", "enabled"]


class AlertFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Alert.Status.choices, help_text="Repeat for several.")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, help_text="Repeat for several.")
    triggered_after = IsoDateTimeFilter(field_name="triggered_at", lookup_expr="gte")
    triggered_before = IsoDateTimeFilter(field_name="triggered_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["status", "severity", "device", "rule", "measurement"]


class NotificationFilterSet(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", help_text="true: unread only.")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Notification
        fields = ["unread", "level", "kind", "device"]
