"""Device pages: the list, adding a device, groups, and the device page with its tabs.

The device API lives in ``devices/api/``; these views render HTML for people and change
devices only through the same models and service functions (``devices.commands.send``).
"""

import json
import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboards.forms import RangeForm
from dashboards.series import measurements_of
from telemetry.backends import get_backend
from telemetry.timeparse import to_iso

from . import commands
from .api.permissions import devices_visible_to
from .api.serializers import mqtt_endpoint
from .broker import device_client_id
from .export import csv_rows
from .forms import (
    CommandForm,
    ConfigurationEntryForm,
    DeviceEditForm,
    DeviceFilterForm,
    DeviceForm,
    GroupForm,
)
from .models import Command, Device, DeviceConfiguration, DeviceGroup, mqtt_password_for

PAGE_SIZE = 25
COMMAND_HISTORY = 50


def device_for(user, pk: int) -> Device:
    """The user's device (staff: any); anyone else's reads as 404."""
    return get_object_or_404(devices_visible_to(user), pk=pk)


def groups_of(user):
    return DeviceGroup.objects.filter(owner=user)


def mqtt_credentials(device: Device) -> dict:
    host, port = mqtt_endpoint()
    prefix = device.mqtt_topic_prefix
    return {
        "host": host,
        "port": port,
        "username": device.mqtt_username,
        "password": mqtt_password_for(device),
        "client_id": device_client_id(device.pk),
        "telemetry_topic": f"{prefix}telemetry",
        "commands_topic": f"{prefix}commands",
        "ack_topic": f"{prefix}commands/ack",
        "status_topic": f"{prefix}status/online",
    }


@login_required
def device_list(request: HttpRequest) -> HttpResponse:
    devices = devices_visible_to(request.user).prefetch_related("groups")
    filters = DeviceFilterForm(request.GET or None, devices=devices, groups=groups_of(request.user))
    page = Paginator(filters.filter(devices).order_by("name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "live_devices": [device.pk for device in page],
    }
    template = (
        "devices/_device_rows.html"
        if request.htmx and request.htmx.target == "device-results"
        else "devices/device_list.html"
    )
    return render(request, template, context)


@login_required
def device_add(request: HttpRequest) -> HttpResponse:
    """Register a device; the answer shows its API key and MQTT password once, and is never cached."""
    form = DeviceForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        device = form.save(commit=False)
        device.owner = request.user
        api_key = device.set_new_api_key()
        try:
            with transaction.atomic():
                device.save()
                form.save_m2m()
        except IntegrityError:
            form.add_error("name", "You already have a device with this name.")
        else:
            context = {"device": device, "api_key": api_key, "mqtt": mqtt_credentials(device), "created": True}
            return _no_store(render(request, "devices/device_secrets.html", context))
    return render(request, "devices/device_add.html", {"form": form})


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _tab(request: HttpRequest, device: Device, tab: str, template: str, **context) -> HttpResponse:
    context.update({"device": device, "tab": tab, "live_devices": [device.pk]})
    return render(request, template, context)


@login_required
def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Details tab: metadata (editable), reported and desired state, configuration."""
    device = device_for(request.user, pk)
    form = DeviceEditForm(request.POST or None, instance=device, owner=device.owner)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Device saved.")
        return redirect("devices:detail", pk=device.pk)
    configuration = [(entry, json.dumps(entry.value)) for entry in DeviceConfiguration.objects.filter(device=device)]
    return _tab(
        request,
        device,
        "details",
        "devices/device_detail.html",
        form=form,
        configuration=configuration,
        config_form=ConfigurationEntryForm(),
        reported_state=json.dumps(device.reported_state, indent=2, sort_keys=True),
        desired_state=json.dumps(device.desired_state, indent=2, sort_keys=True),
    )


@login_required
@require_POST
def device_config(request: HttpRequest, pk: int) -> HttpResponse:
    """Set one configuration key (an empty value removes it)."""
    device = device_for(request.user, pk)
    form = ConfigurationEntryForm(request.POST)
    if form.is_valid():
        key, value = form.cleaned_data["key"].strip(), form.cleaned_data["value"]
        if value is None:
            DeviceConfiguration.objects.filter(device=device, key=key).delete()
            messages.success(request, f"Configuration key “{key}” removed.")
        else:
            DeviceConfiguration.objects.update_or_create(device=device, key=key, defaults={"value": value})
            messages.success(request, f"Configuration key “{key}” saved.")
    else:
        messages.error(
            request, "Configuration not saved: " + "; ".join(e for errs in form.errors.values() for e in errs)
        )
    return redirect(f"{device_url(device)}#configuration")


def device_url(device: Device) -> str:
    from django.urls import reverse

    return reverse("devices:detail", args=[device.pk])


def shown_value(value) -> str:
    """A reading as the live values tile writes it when it arrives (static/js/device.js, ``showValue``):
    JSON's true and false, whole numbers without ".0", other numbers to three decimals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        scaled = value * 1000
        whole = math.floor(scaled)
        rounded = (whole + 1 if scaled - whole >= 0.5 else whole) / 1000  # JavaScript's Math.round: halves go up
        return str(int(rounded)) if rounded.is_integer() and abs(rounded) < 1e21 else repr(rounded)
    return str(value)


@login_required
def device_live(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    latest = sorted(get_backend().latest(device.pk).values(), key=lambda p: p.measurement)
    rows = [{"measurement": p.measurement, "value": shown_value(p.value), "iso": to_iso(p.ts)} for p in latest]
    return _tab(request, device, "live", "devices/device_live.html", latest=rows)


@login_required
def device_history(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    form = RangeForm(request.GET or None)
    span = form.time_range()
    return _tab(
        request,
        device,
        "history",
        "devices/device_history.html",
        form=form,
        measurements=measurements_of(device.pk),
        span=span,
        query=request.GET.urlencode(),
        max_points=settings.CHART_MAX_POINTS,
    )


@login_required
@require_GET
def device_history_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The raw points of the history tab's range, streamed: a 30-day export never sits in memory."""
    device = device_for(request.user, pk)
    span = RangeForm(request.GET or None).time_range()
    response = StreamingHttpResponse(csv_rows(device.pk, span.start, span.end), content_type="text/csv")
    name = f"device-{device.pk}-{to_iso(span.start)[:19]}-{to_iso(span.end)[:19]}.csv".replace(":", "")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def device_commands(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    form = CommandForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        source = (
            Command.Source.ADMIN
            if request.user.is_staff and device.owner_id != request.user.pk
            else Command.Source.USER
        )
        command = commands.send(
            device, form.cleaned_data["action"], form.cleaned_data["params"], source=source, user=request.user
        )
        messages.success(request, f"Command {command.action} sent.")
        return redirect("devices:commands", pk=device.pk)
    history = Command.objects.filter(device=device).select_related("created_by")[:COMMAND_HISTORY]
    return _tab(request, device, "commands", "devices/device_commands.html", form=form, history=history)


@login_required
def device_keys(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    return _tab(request, device, "keys", "devices/device_keys.html")


@login_required
@require_POST
def device_rotate_key(request: HttpRequest, pk: int) -> HttpResponse:
    """A new API key (and so a new MQTT password), shown in this answer only; the old key stops working."""
    device = device_for(request.user, pk)
    api_key = device.set_new_api_key()
    device.save()
    context = {"device": device, "api_key": api_key, "mqtt": mqtt_credentials(device), "created": False}
    return _no_store(render(request, "devices/device_secrets.html", context))


@login_required
def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_for(request.user, pk)
    if request.method == "POST":
        device.delete()
        messages.success(request, f"Device “{device.name}” deleted with its telemetry.")
        return redirect("devices:list")
    return render(request, "devices/device_confirm_delete.html", {"device": device})


@login_required
def group_list(request: HttpRequest) -> HttpResponse:
    form = GroupForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        group = form.save()
        messages.success(request, f"Group “{group.name}” created.")
        return redirect("devices:group-list")
    groups = groups_of(request.user).prefetch_related("devices")
    return render(request, "devices/group_list.html", {"groups": groups, "form": form})


@login_required
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(groups_of(request.user), pk=pk)
    form = GroupForm(request.POST or None, instance=group, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Group “{group.name}” saved.")
        return redirect("devices:group-list")
    return render(request, "devices/group_edit.html", {"group": group, "form": form})


@login_required
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(groups_of(request.user), pk=pk)
    if request.method == "POST":
        group.delete()
        messages.success(request, f"Group “{group.name}” deleted; its devices remain.")
        return redirect("devices:group-list")
    return render(
        request,
        "dashboards/confirm_delete.html",
        {"object": group, "kind": "group", "cancel_url": reverse("devices:group-edit", args=[group.pk])},
    )
