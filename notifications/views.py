"""Pages: the notification center, alerts (acknowledge, resolve) and alert rules.

Notifications are personal (staff included); rules and alerts are the owner's, staff see all.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import alerts
from .forms import AlertRuleForm
from .models import Alert, AlertRule, Notification, Severity

PAGE_SIZE = 25


def owned(queryset, user):
    return queryset if user.is_staff else queryset.filter(owner=user)


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.filter(user=request.user).select_related("device")
    unread_only = request.GET.get("unread") == "1"
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/notification_list.html", {"page": page, "unread_only": unread_only})


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return _back(request, "notifications:list")


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    marked = Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked read.")
    return _back(request, "notifications:list")


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    found = owned(Alert.objects.select_related("device", "acknowledged_by", "resolved_by"), request.user)
    status = request.GET.get("status", "active")
    if status == "active":
        found = found.exclude(status=Alert.Status.RESOLVED)
    elif status in Alert.Status.values:
        found = found.filter(status=status)
    severity = request.GET.get("severity", "")
    if severity in Severity.values:
        found = found.filter(severity=severity)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "severity": severity,
        "statuses": [("active", "Open and acknowledged"), *Alert.Status.choices, ("all", "All")],
        "severities": Severity.choices,
    }
    return render(request, "notifications/alert_list.html", context)


@login_required
@require_POST
def alert_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    alert = get_object_or_404(owned(Alert.objects.all(), request.user), pk=pk)
    move = alerts.acknowledge if action == "acknowledge" else alerts.resolve
    try:
        move(alert, request.user)
    except alerts.AlertTransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert “{alert.name}” {'acknowledged' if action == 'acknowledge' else 'resolved'}.")
    return _back(request, "notifications:alerts")


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = owned(AlertRule.objects.select_related("device", "group", "owner"), request.user)
    return render(request, "notifications/rule_list.html", {"rules": rules})


def _rule_form(request: HttpRequest, rule: AlertRule | None) -> HttpResponse:
    form = AlertRuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if rule is None:
            saved.owner = request.user
        saved.save()
        messages.success(request, f"Alert rule “{saved.name}” saved.")
        return redirect("notifications:rules")
    return render(request, "notifications/rule_form.html", {"form": form, "rule": rule})


@login_required
def rule_create(request: HttpRequest) -> HttpResponse:
    return _rule_form(request, None)


@login_required
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _rule_form(request, get_object_or_404(owned(AlertRule.objects.all(), request.user), pk=pk))


@login_required
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(owned(AlertRule.objects.all(), request.user), pk=pk)
    if request.method == "POST":
        rule.delete()
        messages.success(request, f"Alert rule “{rule.name}” deleted; its alerts remain.")
        return redirect("notifications:rules")
    return render(
        request,
        "dashboards/confirm_delete.html",
        {"object": rule, "kind": "alert rule", "cancel_url": reverse("notifications:rule-edit", args=[rule.pk])},
    )
