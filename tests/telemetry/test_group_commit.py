"""Concurrent writes of one process share a statement and a commit, and keep their own outcomes.

Real threads against the real database: a transaction holding a device's latest-value row keeps
the first writer's statement waiting inside PostgreSQL, so the writers behind it queue and go
to the database together once it is let go.
"""

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from prometheus_client import REGISTRY

from telemetry.backends import get_backend
from telemetry.models import LatestValue
from telemetry.points import Point
from tests.integration.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
TS = 1_751_466_600_000


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("group commit applies to PostgreSQL writes outside a transaction; this run uses SQLite")


def groups_of(size: int) -> float:
    """Writes so far that carried at most ``size`` callers' points (the histogram's cumulative bucket)."""
    value = REGISTRY.get_sample_value("iotflow_telemetry_write_group_callers_bucket", {"le": f"{float(size)}"})
    return value or 0.0


def lock_waits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


class Writer(threading.Thread):
    """Writes points through the backend on a thread (and connection) of its own, keeping what happened."""

    def __init__(self, points: list[Point]):
        super().__init__(daemon=True)
        self.points = points
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            get_backend().write(self.points)
        except Exception as exc:
            self.error = exc
        finally:
            connection.close()


class RowHolder(threading.Thread):
    """Holds the latest-value rows of a device locked until ``release`` is set."""

    def __init__(self, device_id: int):
        super().__init__(daemon=True)
        self.device_id = device_id
        self.locked = threading.Event()
        self.release = threading.Event()

    def run(self) -> None:
        try:
            with transaction.atomic():
                list(LatestValue.objects.select_for_update().filter(device_id=self.device_id))
                self.locked.set()
                self.release.wait(30)
        finally:
            connection.close()


def held_then_grouped(first: Point, queued: list[list[Point]]) -> list[Writer]:
    """``first`` written while its row is locked; ``queued`` written meanwhile; then the lock let go."""
    holder = RowHolder(first.device_id)
    holder.start()
    assert holder.locked.wait(10)
    writers = [Writer([first])]
    writers[0].start()
    queue = get_backend()._group._queue
    wait_for(lambda: len(queue) == 1, 10, "the first writer to lead")
    wait_for(lambda: lock_waits() > 0, 10, "the first writer to wait for the locked row")
    for points in queued:
        writers.append(Writer(points))
        writers[-1].start()
    wait_for(lambda: len(queue) == 1 + len(queued), 10, "every writer to queue behind the first")
    holder.release.set()
    for writer in [*writers, holder]:
        writer.join(30)
        assert not writer.is_alive()
    return writers


def test_writers_queued_behind_one_in_flight_go_in_one_statement(make_device, alice):
    devices = [make_device(alice, f"sensor-{i}") for i in range(4)]
    backend = get_backend()
    backend.write([Point(devices[0].pk, "temperature", TS, 20.0)])  # the row the holder locks
    before = [groups_of(size) for size in (1, 2, 3, 32)]

    writers = held_then_grouped(
        Point(devices[0].pk, "temperature", TS + 1, 21.0),
        [
            [Point(d.pk, "temperature", TS + 1, 22.0 + i), Point(d.pk, "humidity", TS + 1, 40)]
            for i, d in enumerate(devices[1:])
        ],
    )

    assert [w.error for w in writers] == [None] * 4
    # One write of the first caller alone, then one of the three that queued behind it: two in all.
    alone, two, three, writes = (groups_of(size) - was for size, was in zip((1, 2, 3, 32), before, strict=True))
    assert (alone, two - alone, three - two, writes) == (1, 0, 1, 2)
    for i, device in enumerate(devices[1:]):
        latest = backend.latest(device.pk)
        assert (latest["temperature"].value, latest["humidity"].value) == (22.0 + i, 40)
    assert backend.latest(devices[0].pk)["temperature"].value == 21.0


def test_a_failing_caller_fails_alone(make_device, alice):
    devices = [make_device(alice, f"sensor-{i}") for i in range(3)]
    backend = get_backend()
    backend.write([Point(devices[0].pk, "temperature", TS, 20.0)])
    missing = devices[2].pk + 1000  # no such device: the points table's foreign key refuses it

    writers = held_then_grouped(
        Point(devices[0].pk, "temperature", TS + 1, 21.0),
        [
            [Point(devices[1].pk, "temperature", TS + 1, 23.0)],
            [Point(missing, "temperature", TS + 1, 24.0)],
            [Point(devices[2].pk, "temperature", TS + 1, 25.0)],
        ],
    )

    assert [type(w.error) for w in writers] == [type(None), type(None), IntegrityError, type(None)]
    assert backend.latest(devices[1].pk)["temperature"].value == 23.0
    assert backend.latest(devices[2].pk)["temperature"].value == 25.0
    assert backend.latest(missing) == {}
    assert backend.count(devices[1].pk) == backend.count(devices[2].pk) == 1


def test_one_writer_at_a_time_writes_at_once_and_its_error_is_its_own(make_device, alice):
    device = make_device(alice)
    backend = get_backend()
    backend.write([Point(device.pk, "temperature", TS, 20.0)])
    with pytest.raises(IntegrityError):
        backend.write([Point(device.pk + 1000, "temperature", TS, 20.0)])
    backend.write([Point(device.pk, "temperature", TS + 1, 21.0)])  # the queue is empty again
    assert backend.count(device.pk) == 2
    assert len(backend._group._queue) == 0


def test_a_batch_does_not_wait_for_a_write_in_flight(make_device, alice):
    held, other = make_device(alice, "held"), make_device(alice, "batch")
    backend = get_backend()
    backend.write([Point(held.pk, "temperature", TS, 20.0)])
    holder = RowHolder(held.pk)
    holder.start()
    assert holder.locked.wait(10)
    first = Writer([Point(held.pk, "temperature", TS + 1, 21.0)])
    first.start()
    wait_for(lambda: lock_waits() > 0, 10, "the first writer to wait for the locked row")
    size = backend._group.small_points + 1
    batch = Writer([Point(other.pk, "temperature", TS + i, float(i)) for i in range(size)])
    batch.start()

    batch.join(10)  # written beside the held write, not queued behind it
    assert not batch.is_alive() and batch.error is None
    assert backend.count(other.pk) == size
    assert first.is_alive()
    holder.release.set()
    for thread in (first, holder):
        thread.join(30)
    assert first.error is None and backend.latest(held.pk)["temperature"].value == 21.0
