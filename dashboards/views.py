"""Overview, dashboards, the chart builder, and the JSON chart data they draw from."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from devices.api.permissions import devices_visible_to
from notifications.models import Alert, Notification
from telemetry.timeparse import parse_duration

from . import overview as figures
from .access import chart_for, dashboard_for, move
from .forms import ChartForm, DashboardForm, SeriesQueryForm, measurement_choices
from .models import Chart, Dashboard
from .series import chart_body, chart_payload

SPARKLINE_DEVICES = 12
MAX_SERIES_PER_QUERY = 20


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    devices = devices_visible_to(request.user)
    alerts = Alert.objects.filter(status=Alert.Status.OPEN).select_related("device")
    if not request.user.is_staff:
        alerts = alerts.filter(owner=request.user)
    recent = list(devices.order_by("-last_seen", "name")[:SPARKLINE_DEVICES])
    context = {
        "counts": figures.device_counts(devices),
        "messages_today": figures.messages_today(request.user, list(devices.values_list("pk", flat=True))),
        "open_alerts": alerts.count(),
        "latest_alerts": alerts[:5],
        "notifications": Notification.objects.filter(user=request.user).select_related("device")[:8],
        "device_cards": [(device, figures.sparkline(device.pk)) for device in recent],
        "live_devices": [device.pk for device in recent],
    }
    return render(request, "dashboards/overview.html", context)


@login_required
def dashboard_list(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        dashboard = form.save(commit=False)
        dashboard.owner = request.user
        dashboard.position = (Dashboard.objects.filter(owner=request.user).aggregate(m=Max("position"))["m"] or 0) + 1
        dashboard.save()
        messages.success(request, f"Dashboard “{dashboard.name}” created. Add a chart to it.")
        return redirect("dashboards:detail", pk=dashboard.pk)
    dashboards = Dashboard.objects.filter(owner=request.user).prefetch_related("charts")
    return render(request, "dashboards/dashboard_list.html", {"dashboards": dashboards, "form": form})


@login_required
def dashboard_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dashboard = dashboard_for(request.user, pk)
    charts = list(dashboard.charts.prefetch_related("devices"))
    device_ids = sorted({device.pk for chart in charts for device in chart.devices.all()})
    others = Dashboard.objects.filter(owner=dashboard.owner)
    context = {"dashboard": dashboard, "charts": charts, "live_devices": device_ids, "dashboards": others}
    return render(request, "dashboards/dashboard_detail.html", context)


@login_required
def dashboard_edit(request: HttpRequest, pk: int) -> HttpResponse:
    dashboard = dashboard_for(request.user, pk)
    form = DashboardForm(request.POST or None, instance=dashboard, owner=dashboard.owner)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Dashboard renamed.")
        return redirect("dashboards:detail", pk=dashboard.pk)
    return render(request, "dashboards/dashboard_edit.html", {"dashboard": dashboard, "form": form})


@login_required
@require_POST
def dashboard_move(request: HttpRequest, pk: int) -> HttpResponse:
    dashboard = dashboard_for(request.user, pk)
    offset = -1 if request.POST.get("direction") == "up" else 1
    move(Dashboard.objects.filter(owner=dashboard.owner), dashboard, offset)
    return redirect("dashboards:list")


@login_required
def dashboard_delete(request: HttpRequest, pk: int) -> HttpResponse:
    dashboard = dashboard_for(request.user, pk)
    if request.method == "POST":
        dashboard.delete()
        messages.success(request, f"Dashboard “{dashboard.name}” deleted.")
        return redirect("dashboards:list")
    return render(
        request,
        "dashboards/confirm_delete.html",
        {"object": dashboard, "kind": "dashboard", "cancel_url": reverse("dashboards:detail", args=[dashboard.pk])},
    )


def _builder(request: HttpRequest, dashboard: Dashboard, chart: Chart | None) -> HttpResponse:
    form = ChartForm(request.POST or None, instance=chart, user=request.user)
    if request.method == "POST" and form.is_valid():
        new = form.save(commit=False)
        new.dashboard = dashboard
        if chart is None and not form.cleaned_data.get("position"):
            new.position = (dashboard.charts.aggregate(m=Max("position"))["m"] or 0) + 1
        new.save()
        form.save_m2m()
        messages.success(request, f"Chart “{new.title}” saved.")
        return redirect("dashboards:detail", pk=dashboard.pk)
    context = {"dashboard": dashboard, "chart": chart, "form": form, "max_points": settings.CHART_MAX_POINTS}
    return render(request, "dashboards/chart_builder.html", context)


@login_required
def chart_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _builder(request, dashboard_for(request.user, pk), None)


@login_required
def chart_edit(request: HttpRequest, pk: int) -> HttpResponse:
    chart = chart_for(request.user, pk)
    return _builder(request, chart.dashboard, chart)


@login_required
@require_POST
def chart_move(request: HttpRequest, pk: int) -> HttpResponse:
    chart = chart_for(request.user, pk)
    offset = -1 if request.POST.get("direction") == "up" else 1
    move(chart.dashboard.charts.all(), chart, offset)
    return redirect("dashboards:detail", pk=chart.dashboard_id)


@login_required
def chart_delete(request: HttpRequest, pk: int) -> HttpResponse:
    chart = chart_for(request.user, pk)
    if request.method == "POST":
        chart.delete()
        messages.success(request, f"Chart “{chart.title}” deleted.")
        return redirect("dashboards:detail", pk=chart.dashboard_id)
    return render(
        request,
        "dashboards/confirm_delete.html",
        {"object": chart, "kind": "chart", "cancel_url": reverse("dashboards:detail", args=[chart.dashboard_id])},
    )


@login_required
@require_GET
def chart_data(request: HttpRequest, pk: int) -> JsonResponse:
    """A saved chart's series, downsampled to at most CHART_MAX_POINTS buckets each."""
    return JsonResponse(chart_body(chart_for(request.user, pk)))


@login_required
@require_GET
def series(request: HttpRequest) -> JsonResponse:
    """Any of the caller's devices and measurements: ``?device=1&device=2&measurement=t&range=7d``.

    Used by the chart builder's preview and the device history tab. Unknown or foreign
    devices answer 404, like every other page.
    """
    form = SeriesQueryForm(request.GET)
    ids = [value for value in request.GET.getlist("device") if value.isdigit()]
    measurements = [m for m in request.GET.getlist("measurement") if m and len(m) <= 128]
    if not form.is_valid() or not ids or not measurements:
        errors = dict(form.errors) if form.errors else {"device": ["Give at least one device and measurement."]}
        return JsonResponse({"detail": "Invalid query.", "errors": errors}, status=400)
    devices = list(devices_visible_to(request.user).filter(pk__in=ids).order_by("name"))
    if len(devices) != len(set(ids)):
        return JsonResponse({"detail": "Device not found."}, status=404)
    if len(devices) * len(measurements) > MAX_SERIES_PER_QUERY:
        return JsonResponse({"detail": f"At most {MAX_SERIES_PER_QUERY} series per query."}, status=400)
    data = form.cleaned_data
    span = data["time_range"]
    window = parse_duration(data["window"]) if data.get("window") else 0
    body = chart_payload(
        devices, measurements, start=span.start, end=span.end, aggregation=data["aggregation"], window_ms=window
    )
    body["relative"] = span.relative
    return JsonResponse(body)


@login_required
@require_GET
def measurement_options(request: HttpRequest) -> HttpResponse:
    """The builder's measurement checkboxes for the devices ticked so far (an htmx partial)."""
    ids = [value for value in request.GET.getlist("devices") if value.isdigit()]
    visible = devices_visible_to(request.user)
    chosen = list(visible.filter(pk__in=ids)) if ids else list(visible.order_by("name"))
    selected = set(request.GET.getlist("measurements"))
    context = {"choices": measurement_choices(chosen), "selected": selected}
    return render(request, "dashboards/_measurement_options.html", context)
