"""Alert rules, evaluated on every stored telemetry batch (step 5 of the ingest path).

Each batch is checked once per device, on the newest value of each measurement, against the
device's enabled rules and its groups' rules. Rules come from a per-process cache, so a device
without rules costs a dictionary lookup; a change to a rule or to a group's members bumps a
version in the shared cache, which every process checks at most once a second.

A breached rule raises one Alert and one notification per cooldown and device: the firing
process must win the rule's ``AlertCooldown`` row in the database, so concurrent workers
and requests never raise the same alert twice.
"""

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter

from devices.models import Device

from .delivery import notify
from .live import publish, user_group
from .models import Alert, AlertCooldown, AlertRule, NotificationKind, Severity

log = logging.getLogger(__name__)

ALERTS_RAISED = Counter("iotflow_alerts_total", "Alerts raised by alert rules.", ["severity"])

VERSION_KEY = "alert-rules-version"
VERSION_CHECK_SECONDS = 1.0  # how stale another process's rule change may be here
RULES_CACHE_SECONDS = 30.0  # bound on staleness should a version bump be lost with the shared cache

LEVELS = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "info"}


class RuleCache:
    """Every enabled rule, by the devices it applies to, kept per process.

    Loaded whole (three queries) at most once per RULES_CACHE_SECONDS, or when the shared
    version says a rule or a group's members changed: a device without rules then costs one
    dictionary lookup, however large the fleet, instead of its own queries every time its
    entry expired.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: dict[int, list[AlertRule]] | None = None
        self.expires = 0.0
        self.version: str | None = None
        self.checked_at = 0.0

    def clear(self) -> None:
        with self.lock:
            self.rules = None

    def for_devices(self, device_ids: Iterable[int]) -> dict[int, list[AlertRule]]:
        self._follow_shared_version()
        with self.lock:
            rules = self.rules if time.monotonic() < self.expires else None
            if rules is None:
                rules = self.rules = load_rules()
                self.expires = time.monotonic() + RULES_CACHE_SECONDS
        return {device_id: rules.get(device_id, []) for device_id in device_ids}

    def _follow_shared_version(self) -> None:
        now = time.monotonic()
        if now - self.checked_at < VERSION_CHECK_SECONDS:
            return
        self.checked_at = now
        try:
            version = cache.get(VERSION_KEY)
            if version is None:
                cache.add(VERSION_KEY, secrets.token_hex(8), None)
                version = cache.get(VERSION_KEY)
        except Exception:  # the cache is down: the rules are still reloaded every RULES_CACHE_SECONDS
            log.warning("Cannot read the alert rules version", exc_info=True)
            return
        if version != self.version:
            self.clear()
            self.version = version


rule_cache = RuleCache()


def load_rules() -> dict[int, list[AlertRule]]:
    """Enabled rules per device that has any: its own and those of its groups, in three queries."""
    rules: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in AlertRule.objects.filter(enabled=True, device_id__isnull=False):
        rules[rule.device_id].append(rule)
    by_group: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in AlertRule.objects.filter(enabled=True, group_id__isnull=False):
        by_group[rule.group_id].append(rule)
    if by_group:
        members = Device.groups.through.objects.filter(devicegroup_id__in=list(by_group))
        for device_id, group_id in members.values_list("device_id", "devicegroup_id"):
            rules[device_id].extend(by_group[group_id])
    return dict(rules)


def rules_changed() -> None:
    """Forget cached rules here now, and in every process once the change is committed."""
    rule_cache.clear()

    def bump() -> None:
        rule_cache.clear()
        try:
            cache.set(VERSION_KEY, secrets.token_hex(8), None)
        except Exception:
            log.warning("Cannot publish an alert rules change; other processes see it within %ss", RULES_CACHE_SECONDS)

    transaction.on_commit(bump, robust=True)


def evaluate(newest: Mapping[int, Mapping[str, object]]) -> list[Alert]:
    """Check a stored batch (newest point per device and measurement) against the rules; never raises."""
    if not newest:
        return []
    try:
        rules = rule_cache.for_devices(newest.keys())
    except Exception:
        log.exception("Alert rules could not be loaded; this batch is not checked")
        return []
    raised = []
    for device_id, device_rules in rules.items():
        points = newest[device_id]
        for rule in device_rules:
            point = points.get(rule.measurement)
            if point is None or not rule.breached_by(point.value):
                continue
            try:
                alert = fire(rule, device_id, point.value)
            except Exception:
                log.exception("Alert rule %s could not fire for device %s", rule.pk, device_id)
                continue
            if alert is not None:
                raised.append(alert)
    return raised


def fire(rule: AlertRule, device_id: int, value) -> Alert | None:
    """Raise the alert and its notification, unless the rule is cooling down for this device."""
    now = timezone.now()
    with transaction.atomic():
        if not claim_cooldown(rule, device_id, now):
            return None
        device = Device.objects.only("id", "name").get(pk=device_id)
        owner = get_user_model().objects.get(pk=rule.owner_id)
        alert = Alert.objects.create(
            owner=owner,
            rule=rule,
            device=device,
            name=rule.name,
            measurement=rule.measurement,
            condition=f"{rule.operator} {rule.threshold:g}",
            severity=rule.severity,
            value=float(value),
            triggered_at=now,
        )
        notify(
            owner,
            LEVELS[rule.severity],
            f"{rule.name} on {device.name}",
            f"{rule.measurement} is {float(value):g} ({rule.get_operator_display()} {rule.threshold:g}); "
            f"severity {rule.severity}.",
            device=device,
            kind=NotificationKind.ALERT,
        )
        publish_alert(alert)
    ALERTS_RAISED.labels(rule.severity).inc()
    return alert


def claim_cooldown(rule: AlertRule, device_id: int, now) -> bool:
    """Win the right to fire: exactly one caller per cooldown gets True, whatever the concurrency."""
    if not AlertRule.objects.filter(pk=rule.pk, enabled=True).exists():
        return False  # disabled or deleted since the rules were cached
    until = now + rule.cooldown_delta
    # A plain conditional UPDATE: a concurrent one waits for the row and re-checks ``until`` after it.
    if AlertCooldown.objects.filter(rule_id=rule.pk, device_id=device_id, until__lte=now).update(until=until):
        return True
    if AlertCooldown.objects.filter(rule_id=rule.pk, device_id=device_id).exists():
        return False
    try:
        with transaction.atomic():
            AlertCooldown.objects.create(rule_id=rule.pk, device_id=device_id, until=until)
    except IntegrityError:  # another process fired first
        return False
    return True


def alert_data(alert: Alert) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": alert.pk,
        "rule": alert.rule_id,
        "device": alert.device_id,
        "name": alert.name,
        "measurement": alert.measurement,
        "condition": alert.condition,
        "severity": alert.severity,
        "value": alert.value,
        "status": alert.status,
        "triggered_at": iso(alert.triggered_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_at": iso(alert.resolved_at),
    }


def publish_alert(alert: Alert) -> None:
    """``{"type": "alert", "data": {...}}`` to the owner's pages when an alert is raised or changes status."""
    publish(user_group(alert.owner_id), {"type": "alert", "data": alert_data(alert)})


class AlertTransitionError(Exception):
    """The alert cannot move to the asked status (e.g. acknowledging a resolved alert)."""


def acknowledge(alert: Alert, user) -> Alert:
    """open → acknowledged; acknowledging again changes nothing."""
    return _move(alert, user, Alert.Status.ACKNOWLEDGED)


def resolve(alert: Alert, user) -> Alert:
    """open or acknowledged → resolved; resolving again changes nothing."""
    return _move(alert, user, Alert.Status.RESOLVED)


def _move(alert: Alert, user, status: str) -> Alert:
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == status:
            return alert
        if alert.status == Alert.Status.RESOLVED:
            raise AlertTransitionError(f"A resolved alert cannot be {status}.")
        alert.status = status
        if status == Alert.Status.ACKNOWLEDGED:
            alert.acknowledged_by, alert.acknowledged_at = user, now
        else:
            alert.resolved_by, alert.resolved_at = user, now
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at"])
        publish_alert(alert)
    return alert
