"""``manage.py migrate_telemetry --from sql --to iotdb``: copy stored telemetry between backends.

Copies every device's raw points, then its 1-minute and 1-hour rollups (the only record of
what is past raw retention), in batches, device by device in id order. After each batch the
position is saved (``TelemetryCopy``), so an interrupted copy resumes where it stopped: run
the same command again. Writes are idempotent, so a batch copied twice is stored once.

Switch ``TELEMETRY_BACKEND`` to the target first and restart the processes, then copy: new
points go to the target from then on, and the copy brings the history in behind them.
"""

from collections.abc import Callable, Sequence

from django.core.management.base import BaseCommand, CommandError

from devices.models import Device
from telemetry.backends import BACKENDS, BackendUnavailable, backend_named
from telemetry.models import TelemetryCopy
from telemetry.timeparse import EARLIEST_MS, LATEST_MS

STAGES = ("points", "1m", "1h", "done")


def complete(items: Sequence, limit: int, ts_of: Callable) -> tuple[list, int | None]:
    """A batch cut after its last whole timestamp, and that timestamp (None: one timestamp fills it).

    A full batch may end in the middle of a timestamp's points; those are left to the next batch,
    which starts after the last whole timestamp.
    """
    if len(items) < limit:
        return list(items), ts_of(items[-1]) if items else None
    last = ts_of(items[-1])
    whole = [item for item in items if ts_of(item) < last]
    if not whole:
        return [], None
    return whole, ts_of(whole[-1])


class Command(BaseCommand):
    help = "Copy telemetry (raw points and rollups) from one backend to another, resumably."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="source", choices=BACKENDS, required=True)
        parser.add_argument("--to", dest="target", choices=BACKENDS, required=True)
        parser.add_argument("--batch", type=int, default=5000, help="Points per batch (default 5000).")
        parser.add_argument("--restart", action="store_true", help="Forget a previous copy's position.")

    def handle(self, *args, source: str, target: str, batch: int, restart: bool, **options) -> None:
        if source == target:
            raise CommandError("--from and --to must name different backends.")
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        state, created = TelemetryCopy.objects.get_or_create(source=source, target=target)
        if state.stage == "done" and not restart:
            self.stdout.write(f"Already copied ({state.copied:,}); --restart copies everything again.")
            return
        if restart:
            state.stage, state.device_id, state.after, state.copied = "points", 0, None, 0
            state.save()
        elif not created:
            self.stdout.write(f"Resuming: {state.stage}, device {state.device_id}, {state.copied:,} copied so far.")
        self.source, self.target, self.batch, self.state = backend_named(source), backend_named(target), batch, state
        try:
            while state.stage != "done":
                self.copy_stage(state.stage)
                state.stage, state.device_id, state.after = STAGES[STAGES.index(state.stage) + 1], 0, None
                state.save()
        except BackendUnavailable as exc:
            raise CommandError(f"{exc} Run the command again to resume.") from exc
        self.stdout.write(self.style.SUCCESS(f"Copied {state.copied:,} points and rollups from {source} to {target}."))

    def copy_stage(self, stage: str) -> None:
        devices = Device.objects.filter(pk__gte=self.state.device_id).order_by("pk").values_list("pk", flat=True)
        for device_id in devices:
            if device_id != self.state.device_id:
                self.state.device_id, self.state.after = device_id, None
                self.state.save(update_fields=["device_id", "after", "updated_at"])
            self.copy_device(stage, device_id)

    def copy_device(self, stage: str, device_id: int) -> int:
        copied = 0
        while True:
            items, ts_of = self.fetch(stage, device_id, self.state.after, self.batch)
            whole, last = complete(items, self.batch, ts_of)
            if items and last is None:  # one timestamp holds more than a batch: take all of it
                last = ts_of(items[0])
                whole = [
                    item for item in self.fetch(stage, device_id, last - 1, self.batch * 100)[0] if ts_of(item) == last
                ]
            if not whole:
                return copied
            self.store(stage, device_id, whole)
            copied += len(whole)
            self.state.after, self.state.copied = last, self.state.copied + len(whole)
            self.state.save(update_fields=["device_id", "after", "copied", "updated_at"])
            self.stdout.write(f"{stage}: device {device_id}, {copied:,} of its own, {self.state.copied:,} in all")

    def fetch(self, stage: str, device_id: int, after: int | None, limit: int) -> tuple[list, Callable]:
        if stage == "points":
            start = EARLIEST_MS if after is None else after + 1
            points = self.source.history(device_id, start=start, end=LATEST_MS + 1, limit=limit, descending=False)
            return points, lambda point: point.ts
        return self.source.export_rollups(device_id, stage, after, limit), lambda part: part[1]

    def store(self, stage: str, device_id: int, items: list) -> None:
        if stage == "points":
            self.target.write(items)
        else:
            self.target.import_rollups(device_id, stage, items)
