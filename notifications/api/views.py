"""The user's alert rules, alerts and notifications.

Rules and alerts: owners see and change their own, staff all; anyone else's read as 404.
Notifications are personal for everyone, staff included: they are messages to one person.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from .. import alerts
from ..filtersets import AlertFilterSet, AlertRuleFilterSet, NotificationFilterSet
from ..models import Alert, AlertRule, Notification
from .serializers import (
    AlertRuleSerializer,
    AlertSerializer,
    MarkedSerializer,
    NotificationSerializer,
    PreferencesSerializer,
    UnreadCountSerializer,
)


def owned(queryset, user):
    return queryset if user.is_staff else queryset.filter(owner=user)


class AlertRuleListView(generics.ListCreateAPIView):
    """``/alert-rules``: the caller's rules (staff: all); a new rule belongs to the caller."""

    serializer_class = AlertRuleSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = AlertRuleFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return owned(AlertRule.objects.select_related("owner"), self.request.user)

    def perform_create(self, serializer) -> None:
        serializer.save(owner=self.request.user)


class AlertRuleDetailView(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = AlertRuleSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return owned(AlertRule.objects.select_related("owner"), self.request.user)


def alerts_for(user):
    return owned(Alert.objects.select_related("device", "acknowledged_by", "resolved_by"), user)


class AlertListView(generics.ListAPIView):
    """``/alerts``: newest first; filter by status, severity, device, rule, time."""

    serializer_class = AlertSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = AlertFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return alerts_for(self.request.user)


class AlertDetailView(generics.RetrieveAPIView):
    serializer_class = AlertSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return alerts_for(self.request.user)


class AlertTransitionView(AlertDetailView):
    """Base of acknowledge and resolve: repeating one changes nothing, a resolved alert stays resolved."""

    http_method_names = ["post", "options"]
    transition = None  # set by each subclass

    @extend_schema(request=None, responses={200: AlertSerializer})
    def post(self, request: Request, pk: int) -> Response:
        try:
            alert = self.transition(self.get_object(), request.user)
        except alerts.AlertTransitionError as exc:
            raise exceptions.ValidationError({"status": [str(exc)]}) from None
        return Response(AlertSerializer(alerts_for(request.user).get(pk=alert.pk)).data)


class AlertAcknowledgeView(AlertTransitionView):
    """``/alerts/{id}/acknowledge``: open → acknowledged."""

    transition = staticmethod(alerts.acknowledge)


class AlertResolveView(AlertTransitionView):
    """``/alerts/{id}/resolve``: open or acknowledged → resolved."""

    transition = staticmethod(alerts.resolve)


def notifications_for(user):
    return Notification.objects.filter(user=user)


class NotificationListView(generics.ListAPIView):
    """``/notifications``: the caller's own, newest first; ``?unread=true`` for the unread ones."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = NotificationFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return notifications_for(self.request.user)


class NotificationDetailView(generics.RetrieveDestroyAPIView):
    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return notifications_for(self.request.user)


class NotificationReadView(NotificationDetailView):
    """``/notifications/{id}/read``: mark one read (reading it again keeps the first time)."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: NotificationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        notification = self.get_object()
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
        return Response(NotificationSerializer(notification).data)


class NotificationReadAllView(generics.GenericAPIView):
    """``/notifications/read-all``: mark every unread notification of the caller read."""

    serializer_class = MarkedSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: MarkedSerializer})
    def post(self, request: Request) -> Response:
        marked = notifications_for(request.user).filter(read_at__isnull=True).update(read_at=timezone.now())
        return Response({"marked": marked})


class UnreadCountView(generics.GenericAPIView):
    """``/notifications/unread-count``: what the header badge shows."""

    serializer_class = UnreadCountSerializer
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"unread": notifications_for(request.user).filter(read_at__isnull=True).count()})


class PreferencesView(generics.GenericAPIView):
    """``/notifications/preferences``: the kinds of notification the caller muted."""

    serializer_class = PreferencesSerializer
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(PreferencesSerializer(request.user).data)

    def put(self, request: Request) -> Response:
        body = PreferencesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user
        user.muted_notification_kinds = sorted(set(body.validated_data["muted_kinds"]))
        user.save(update_fields=["muted_notification_kinds"])
        return Response(PreferencesSerializer(user).data)
