"""Retention on the SQL backend deletes exactly what is due in each tier, per device, and old command logs."""

import datetime

import pytest
from django.utils import timezone

from devices.models import Command
from telemetry import retention
from telemetry.backends import get_backend
from telemetry.backends.sql_retention import apply
from telemetry.models import LatestValue, RetentionPolicy, RollupHour, RollupMarker, RollupMinute, TelemetryPoint
from telemetry.points import Point
from telemetry.rollups import HOUR_MS, MINUTE_MS

DAY = retention.DAY_MS
NOW = 1_780_000_000_000 + 25 * MINUTE_MS  # a quarter past an hour
RAW_CUTOFF = (NOW - 90 * DAY) // HOUR_MS * HOUR_MS


@pytest.fixture(autouse=True)
def defaults(settings):
    settings.RETENTION_RAW_DAYS, settings.RETENTION_1M_DAYS, settings.RETENTION_1H_DAYS = 90, 365, 0
    retention.overrides.clear()
    yield
    retention.overrides.clear()


def write(device, *stamps, measurement="t"):
    get_backend().write([Point(device.pk, measurement, ts, float(i)) for i, ts in enumerate(stamps)])


def stored(device) -> list[int]:
    return sorted(TelemetryPoint.objects.filter(device_id=device.pk).values_list("ts", flat=True))


class TestPolicy:
    def test_defaults(self):
        assert retention.default_policy() == retention.Policy(90, 365, None)

    def test_zero_means_for_ever_and_coarser_tiers_outlive_finer_ones(self):
        assert retention.Policy.of(0, 30, 10) == retention.Policy(None, None, None)
        assert retention.Policy.of(90, 30, 10) == retention.Policy(90, 90, 90)
        assert retention.Policy.of(7, 0, 3) == retention.Policy(7, None, None)

    def test_cutoffs_fall_on_hours(self):
        policy = retention.Policy.of(90, 365, 0)

        assert policy.cutoff("raw", NOW) == RAW_CUTOFF
        assert RAW_CUTOFF % HOUR_MS == 0 and NOW - 90 * DAY - HOUR_MS < RAW_CUTOFF <= NOW - 90 * DAY
        assert policy.cutoff("1h", NOW) is None

    def test_a_device_policy_overrides_only_what_it_sets(self, device):
        RetentionPolicy.objects.create(device=device.device, raw_days=7)

        assert retention.policy_for(device.pk) == retention.Policy(7, 365, None)


class TestRawPoints:
    def test_deletes_exactly_the_points_before_the_cutoff(self, device):
        write(device, RAW_CUTOFF - 1, RAW_CUTOFF, RAW_CUTOFF + 1, NOW - DAY)
        get_backend().refresh_rollups()

        deleted = apply(now=NOW)

        assert deleted["raw"] == 1
        assert stored(device) == [RAW_CUTOFF, RAW_CUTOFF + 1, NOW - DAY]

    def test_rollups_keep_what_the_deleted_points_said(self, device):
        write(device, *[RAW_CUTOFF - HOUR_MS + i * MINUTE_MS for i in range(60)])
        get_backend().refresh_rollups()

        apply(now=NOW)

        assert stored(device) == []
        minutes = RollupMinute.objects.filter(device=device.device)
        assert minutes.count() == 60 and all(minutes.values_list("source_pruned", flat=True))
        hour = RollupHour.objects.get(device=device.device, bucket=RAW_CUTOFF - HOUR_MS)
        assert (hour.count, hour.total) == (60, float(sum(range(60))))
        answer = get_backend().aggregate(
            device.pk, ["t"], start=RAW_CUTOFF - HOUR_MS, end=RAW_CUTOFF, window_ms=HOUR_MS, function="count"
        )
        assert answer["t"][0].count == 60

    def test_points_waiting_for_their_rollup_are_kept_until_it_is_done(self, device):
        write(device, RAW_CUTOFF - HOUR_MS)

        apply(now=NOW)
        assert stored(device) == [RAW_CUTOFF - HOUR_MS]

        get_backend().refresh_rollups()
        apply(now=NOW)
        assert stored(device) == []
        assert RollupMinute.objects.get(device=device.device).count == 1

    def test_latest_values_past_retention_go_too(self, device, other_device):
        write(device, RAW_CUTOFF - HOUR_MS)
        write(other_device, NOW - DAY)
        get_backend().refresh_rollups()

        apply(now=NOW)

        assert not LatestValue.objects.filter(device_id=device.pk).exists()
        assert LatestValue.objects.filter(device_id=other_device.pk).exists()

    def test_text_points_go_without_a_rollup(self, device):
        get_backend().write([Point(device.pk, "mode", RAW_CUTOFF - DAY, "eco")])

        apply(now=NOW)

        assert stored(device) == []

    def test_per_device_retention(self, device, other_device):
        RetentionPolicy.objects.create(device=device.device, raw_days=1)
        RetentionPolicy.objects.create(device=other_device.device, raw_days=0)
        retention.overrides.clear()
        for keyed in (device, other_device):
            write(keyed, NOW - 2 * DAY, NOW - HOUR_MS, NOW - 400 * DAY)
        get_backend().refresh_rollups()

        apply(now=NOW)

        assert stored(device) == [NOW - HOUR_MS]
        assert stored(other_device) == sorted([NOW - 400 * DAY, NOW - 2 * DAY, NOW - HOUR_MS])


class TestRollups:
    def test_minutes_and_hours_go_when_due(self, device, settings):
        settings.RETENTION_1H_DAYS = 730
        old, older, ancient = NOW - 100 * DAY, NOW - 400 * DAY, NOW - 800 * DAY
        write(device, old, older, ancient)
        get_backend().refresh_rollups()

        deleted = apply(now=NOW)

        assert deleted == {"raw": 3, "1m": 2, "1h": 1}
        assert list(RollupMinute.objects.filter(device=device.device).values_list("bucket", flat=True)) == [
            old // MINUTE_MS * MINUTE_MS
        ]
        hours = RollupHour.objects.filter(device=device.device).order_by("bucket")
        assert list(hours.values_list("bucket", "source_pruned")) == [
            (older // HOUR_MS * HOUR_MS, True),
            (old // HOUR_MS * HOUR_MS, False),
        ]

    def test_hours_are_kept_for_ever_by_default(self, device):
        write(device, NOW - 3000 * DAY)
        get_backend().refresh_rollups()

        apply(now=NOW)

        assert RollupHour.objects.filter(device=device.device).count() == 1
        assert not RollupMinute.objects.filter(device=device.device).exists()

    def test_a_year_aggregates_from_the_hours(self, device):
        """After retention only the hourly rollups of last year remain, and they answer in full."""
        start = (NOW - 400 * DAY) // HOUR_MS * HOUR_MS
        write(device, *[start + i * HOUR_MS + 5 * MINUTE_MS for i in range(0, 24 * 365, 7)])
        get_backend().refresh_rollups()
        apply(now=NOW)
        assert not TelemetryPoint.objects.filter(device_id=device.pk, ts__lt=RAW_CUTOFF).exists()

        answer = get_backend().aggregate(
            device.pk, ["t"], start=start, end=start + 365 * DAY, window_ms=DAY, function="count"
        )

        assert sum(b.count for b in answer["t"]) == len(range(0, 24 * 365, 7))


class TestDeviceDeletion:
    def test_deleting_a_device_deletes_its_telemetry_in_every_tier(
        self, device, other_device, django_capture_on_commit_callbacks
    ):
        write(device, NOW - DAY, NOW - HOUR_MS)
        write(other_device, NOW - DAY)
        get_backend().refresh_rollups()
        write(device, NOW - 2 * HOUR_MS)  # a marker still pending
        device_id = device.pk

        with django_capture_on_commit_callbacks(execute=True):
            device.device.delete()

        for model in (TelemetryPoint, LatestValue, RollupMinute, RollupHour, RollupMarker):
            assert not model.objects.filter(device_id=device_id).exists(), model
            assert model is RollupMarker or model.objects.filter(device_id=other_device.pk).exists(), model


class TestCommandLog:
    def make(self, device, status, age_days, completed=True):
        created = timezone.now() - datetime.timedelta(days=age_days)
        return Command.objects.create(
            device=device.device,
            action="reboot",
            status=status,
            created_at=created,
            completed_at=created if completed else None,
        )

    def test_finished_commands_older_than_the_setting_are_deleted(self, device):
        old_done = self.make(device, Command.Status.ACKNOWLEDGED, 31)
        old_failed = self.make(device, Command.Status.TIMEOUT, 45)
        recent = self.make(device, Command.Status.ACKNOWLEDGED, 29)
        still_open = self.make(device, Command.Status.PENDING, 90, completed=False)

        assert retention.purge_commands() == 2

        remaining = set(Command.objects.values_list("pk", flat=True))
        assert remaining == {recent.pk, still_open.pk}
        assert old_done.pk not in remaining and old_failed.pk not in remaining

    def test_the_period_is_a_setting_and_zero_keeps_everything(self, device, settings):
        self.make(device, Command.Status.ACKNOWLEDGED, 10)
        settings.COMMAND_RETENTION_DAYS = 0
        assert retention.purge_commands() == 0

        settings.COMMAND_RETENTION_DAYS = 7
        assert retention.purge_commands() == 1

    def test_the_beat_task_applies_retention_and_purges_commands(self, device):
        from telemetry.tasks import apply_retention

        self.make(device, Command.Status.FAILED, 60)
        write(device, retention.DAY_MS)  # 1970: past any retention
        get_backend().refresh_rollups()

        result = apply_retention()

        assert result["commands"] == 1 and result["raw"] == 1
        assert stored(device) == []
