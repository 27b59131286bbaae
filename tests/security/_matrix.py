"""Support of the isolation matrix: every URL with an object id, another user's objects, and the figures.

The URL list comes from Django's resolver, so a new endpoint is attacked without anyone listing it;
a new kind of id in a URL fails `object_kind` until the matrix knows whose object to put there.
Figures (``denied/attempts``) go to the run's summary of measured figures (tests/figures.py).
"""

import re
from dataclasses import dataclass, field
from datetime import time, timedelta

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import ApiToken, User
from dashboards.models import Chart, Dashboard
from devices.models import Command, Device, DeviceConfiguration, DeviceGroup, FleetCommand, Override, Schedule
from notifications.models import Alert, AlertRule, Notification
from telemetry import ingest
from tests.figures import record_figures

PROJECT_APPS = ("accounts", "devices", "telemetry", "dashboards", "notifications")
PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
# The path segment in front of a `<pk>` names the kind of object it is.
SEGMENT_KINDS = {
    "devices": "device",
    "groups": "group",
    "dashboards": "dashboard",
    "charts": "chart",
    "alert-rules": "rule",
    "rules": "rule",
    "alerts": "alert",
    "notifications": "notification",
    "schedules": "schedule",
    "tokens": "token",
}
NAMED_KINDS = {"device_id": "device", "command_id": "command", "fleet_id": "fleet"}
# Fields that legitimately move while an attacker is refused: their own token's and login's bookkeeping.
VOLATILE_FIELDS = {"last_used_at", "last_login"}
DENIED = {401, 403, 404}
MODIFYING = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    """One URL pattern of the site, written in `path()` syntax."""

    route: str
    name: str

    @property
    def params(self) -> list[str]:
        return [m["name"] for m in PARAM.finditer(self.route)]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/v1/")

    def fill(self, values: dict[str, object]) -> str:
        return "/" + PARAM.sub(lambda m: str(values[m["name"]]), self.route)


def routes(exclude_prefixes: tuple[str, ...] = ("admin/",)) -> list[Route]:
    """Every `path()` pattern of ROOT_URLCONF, flattened; regex patterns (the Django admin's) are left out."""
    found: list[Route] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            text = str(entry.pattern)
            if text.startswith("^"):
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + text)
            elif isinstance(entry, URLPattern):
                found.append(Route(prefix + text, entry.name or ""))

    walk(get_resolver().url_patterns, "")
    unique = {r.route: r for r in found if not r.route.startswith(exclude_prefixes)}
    return sorted(unique.values(), key=lambda r: r.route)


def object_kind(route: Route, param: str) -> str:
    """Which object a URL parameter names; unknown ones fail loudly so a new endpoint gets classified."""
    if param in NAMED_KINDS:
        return NAMED_KINDS[param]
    segments = route.route.split("/")
    for index, segment in enumerate(segments):
        if PARAM.fullmatch(segment) and PARAM.fullmatch(segment)["name"] == param and index > 0:
            kind = SEGMENT_KINDS.get(segments[index - 1])
            if kind:
                return kind
    raise AssertionError(f"the isolation matrix does not know what <{param}> is in {route.route!r}; classify it")


@dataclass
class Estate:
    """Everything one user owns, one object of each kind, so any URL can be filled with it."""

    user: User
    device: Device
    key: str
    token: str
    ids: dict[str, object] = field(default_factory=dict)

    def values_for(self, route: Route, foreign: "Estate | None" = None) -> dict[str, object]:
        """The URL's parameters filled with this estate's objects; the last one from ``foreign`` if given."""
        params = route.params
        values = {p: self.ids[object_kind(route, p)] for p in params}
        if foreign is not None and params:
            values[params[-1]] = foreign.ids[object_kind(route, params[-1])]
        return values


def build_estate(user: User, prefix: str) -> Estate:
    """Give ``user`` a device (with telemetry, configuration, commands) and one of every owned object."""
    device = Device(owner=user, name=f"{prefix}-device")
    key = device.set_new_api_key()
    device.save()
    _, token = ApiToken.issue(user, f"{prefix}-token")
    token_row = ApiToken.objects.get(user=user, name=f"{prefix}-token")
    ingest.ingest(device, {"data": {"temperature": 21.5, "power": "on"}}, "http")
    DeviceConfiguration.objects.create(device=device, key="interval", value=30)
    group = DeviceGroup.objects.create(owner=user, name=f"{prefix}-group")
    group.devices.add(device)
    dashboard = Dashboard.objects.create(owner=user, name=f"{prefix}-dashboard")
    chart = Chart.objects.create(dashboard=dashboard, title=f"{prefix}-chart", measurements=["temperature"])
    chart.devices.add(device)
    rule = AlertRule.objects.create(
        owner=user, name=f"{prefix}-rule", device=device, measurement="temperature", operator=">", threshold=90
    )
    alert = Alert.objects.create(
        owner=user, rule=rule, device=device, name=rule.name, measurement="temperature", condition="> 90",
        severity="medium", value=95, triggered_at=timezone.now(),
    )  # fmt: skip
    notification = Notification.objects.create(user=user, title=f"{prefix}-note", device=device)
    schedule = Schedule.objects.create(
        name=f"{prefix}-schedule", device=device, days=[0, 1], start_time=time(8), end_time=time(9),
        start_params={"power": "on"},
    )  # fmt: skip
    now = timezone.now()
    Override.objects.create(
        device=device, params={"fan_speed": 3}, duration=timedelta(minutes=30), started_at=now,
        ends_at=now + timedelta(minutes=30),
    )  # fmt: skip
    fleet = FleetCommand.objects.create(group=group, action="reboot", created_by=user)
    command = Command.objects.create(device=device, action="set_state", params={"power": "off"}, created_by=user)
    ids = {
        "device": device.pk,
        "group": group.pk,
        "dashboard": dashboard.pk,
        "chart": chart.pk,
        "rule": rule.pk,
        "alert": alert.pk,
        "notification": notification.pk,
        "schedule": schedule.pk,
        "token": token_row.pk,
        "fleet": fleet.pk,
        "command": command.pk,
    }
    return Estate(user=user, device=device, key=key, token=token, ids=ids)


def snapshot() -> dict[str, set[tuple]]:
    """Every row of the product's tables (m2m tables too), minus bookkeeping fields an attacker moves."""
    state: dict[str, set[tuple]] = {}
    for app in PROJECT_APPS:
        for model in apps.get_app_config(app).get_models(include_auto_created=True):
            names = [f.attname for f in model._meta.concrete_fields if f.attname not in VOLATILE_FIELDS]
            rows = model._default_manager.values_list(*names)
            state[model._meta.label] = {tuple(str(v) for v in row) for row in rows}
    return state


def changes(before: dict[str, set[tuple]], after: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    """Rows added, removed or altered between two snapshots, by table."""
    return {label: before[label] ^ after.get(label, set()) for label in before if before[label] ^ after[label]}


@dataclass
class Tally:
    """Attempts and denials of one matrix, with what went wrong where."""

    attempts: int = 0
    denied: int = 0
    not_applicable: int = 0
    holes: list[str] = field(default_factory=list)

    def record(self, label: str, status: int, changed: bool = False, denied_codes: set[int] = DENIED) -> None:
        """Count one attempt; a 405 means the URL has no such method and is no attempt at all."""
        if status == 405 and not changed:
            self.not_applicable += 1
            return
        self.attempts += 1
        if status in denied_codes and not changed:
            self.denied += 1
        else:
            self.holes.append(f"{label} -> {status}{' and changed data' if changed else ''}")

    @property
    def figure(self) -> str:
        return f"{self.denied}/{self.attempts}"


def record_figure(request, scenario: str, figure: str, note: str = "", name: str = "denied/attempts") -> None:
    """Report a matrix figure (``denied/attempts`` unless named otherwise) in the run's summary."""
    record_figures(scenario, {name: figure, **({"note": note} if note else {})})
