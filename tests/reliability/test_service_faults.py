"""Service faults through real processes: Redis and the database go away and return, devices are offline,
a Celery worker is killed mid-task. Each test reports what it measured (see docs/reliability.md)."""

import collections
import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion

from accounts.models import ApiToken
from devices import commands
from devices.models import Command, Device, Schedule, ScheduleRun, mqtt_password_for
from iotflow.celery import app as celery_app
from notifications.live import device_group, user_group
from notifications.models import Notification
from telemetry.models import TelemetryPoint
from tests.conftest import session_client
from tests.integration.processes import database_url, start_beat, start_worker, stop_process, wait_for
from tests.reliability.conftest import record_figures

from ._fleet import FleetDevice
from ._services import (
    LiveListener,
    RedisServer,
    TcpProxy,
    child_pids,
    start_prefork_worker,
    start_web,
    with_port,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DB_OUTAGE_SECONDS = 30.0


@dataclass
class Reply:
    status: int
    seconds: float
    body: dict
    headers: dict


def call(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (the test's own server)
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the test's own server)
            status, raw, reply_headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, reply_headers = error.code, error.read(), dict(error.headers)
    seconds = time.perf_counter() - started
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return Reply(status, seconds, parsed, reply_headers)


@dataclass
class Clock:
    """Unique millisecond timestamps, so every record of a test is one point with its own identity."""

    next_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 600_000)

    def take(self, count: int) -> list[int]:
        stamps = list(range(self.next_ms, self.next_ms + count))
        self.next_ms += count
        return stamps


def records(stamps: list[int], measurement: str) -> list[dict]:
    return [{"timestamp": ts, "data": {measurement: float(i)}} for i, ts in enumerate(stamps)]


def stored(device_id: int, measurement: str, stamps: list[int]) -> int:
    return TelemetryPoint.objects.filter(device_id=device_id, measurement=measurement, ts__in=stamps).count()


def device_mqtt_client(broker, device) -> mqtt.Client:
    """The device's own MQTT 3.1.1 connection, as firmware would open it."""
    with broker.accounts() as accounts:
        accounts.ensure_device(device.pk, mqtt_password_for(device))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device.mqtt_username, protocol=mqtt.MQTTv311)
    client.username_pw_set(device.mqtt_username, mqtt_password_for(device))
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    return client


def warm_up_consumer(publisher: mqtt.Client, device_id: int, stamps: list[int], log) -> None:
    """Publish until the worker's consumer stores the message (it subscribes a moment after the worker starts)."""
    payload = json.dumps(records(stamps, "mqtt_t"))

    def stored_now() -> bool:
        publisher.publish(f"iotflow/devices/{device_id}/telemetry", payload, qos=1)
        return stored(device_id, "mqtt_t", stamps) == len(stamps)

    wait_for(stored_now, 60, "the consumer to store a message", log, interval=1)


def test_database_outage_answers_503_fast_and_mqtt_catches_up(private_broker, device, alice, tmp_path):
    """The database goes away for a while (a proxy in front of PostgreSQL is cut), then returns."""
    if connection.vendor != "postgresql":
        pytest.skip("the outage is staged with a proxy in front of PostgreSQL")
    db = connection.settings_dict
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    proxy.start()
    through_proxy = with_port(database_url(), proxy.port)
    log = tmp_path / "processes.log"
    web, base = start_web(private_broker, log, DATABASE_URL=through_proxy)
    worker = start_worker(private_broker, "dbfault", log, DATABASE_URL=through_proxy)
    publisher = device_mqtt_client(private_broker, device.device)
    key = {"X-API-Key": device.key}
    token = {"Authorization": f"Token {ApiToken.issue(alice)[1]}"}
    session = {"Cookie": f"sessionid={session_client(alice).cookies['sessionid'].value}"}
    clock = Clock()
    device_id = device.pk
    try:
        warm_up_consumer(publisher, device_id, clock.take(1), log)
        for _ in range(4):  # both gunicorn workers connect to the database and cache the key
            assert call("POST", f"{base}/api/v1/telemetry", records(clock.take(1), "http_t"), key).status == 201

        http_batches: list[tuple[list[int], Reply]] = []
        mqtt_batches: list[list[int]] = []
        others: list[tuple[str, Reply]] = []
        proxy.cut()
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < DB_OUTAGE_SECONDS:
            stamps = clock.take(3)
            http_batches.append((stamps, call("POST", f"{base}/api/v1/telemetry", records(stamps, "http_t"), key)))
            if len(http_batches) % 10 == 0:
                others.append(("api", call("GET", f"{base}/api/v1/devices", headers=token)))
                others.append(("page", call("GET", f"{base}/devices/", headers=session)))
            if len(http_batches) % 5 == 0:
                stamps = clock.take(5)
                info = publisher.publish(
                    f"iotflow/devices/{device_id}/telemetry", json.dumps(records(stamps, "mqtt_t")), qos=1
                )
                info.wait_for_publish(5)
                mqtt_batches.append(stamps)
            time.sleep(0.02)
        proxy.restore()
        restored_at = time.monotonic()
        first_201 = wait_for(
            lambda: (
                call("POST", f"{base}/api/v1/telemetry", records(clock.take(1), "http_t"), key).status == 201
                and time.monotonic()
            ),
            30,
            "ingest to answer 201 again",
        )
        every_mqtt_stamp = [ts for batch in mqtt_batches for ts in batch]
        wait_for(
            lambda: stored(device_id, "mqtt_t", every_mqtt_stamp) == len(every_mqtt_stamp),
            60,
            "the MQTT messages of the outage to be stored",
            log,
        )
        drained_at = time.monotonic()
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        stop_process(worker)
        stop_process(web)
        proxy.cut()

    replies = [reply for _, reply in http_batches]
    statuses = [reply.status for reply in replies]
    assert statuses and set(statuses) == {503}, statuses
    for reply in replies:
        assert reply.body.get("detail", "").lower().endswith("retry later."), reply.body
        assert "Traceback" not in json.dumps(reply.body)
        assert int(reply.headers.get("Retry-After", 0)) > 0, reply.headers
    assert others
    for kind, reply in others:
        assert reply.status == 503, (kind, reply)
        assert int(reply.headers.get("Retry-After", 0)) > 0, (kind, reply.headers)
        if kind == "api":
            assert reply.body == {"detail": "The database is unavailable; retry later."}
        else:
            assert "cannot reach its database" in reply.body["raw"]
    partial = [s for s, _ in http_batches if stored(device_id, "http_t", s) not in (0, len(s))]
    partial += [s for s in mqtt_batches if stored(device_id, "mqtt_t", s) not in (0, len(s))]
    assert partial == []
    times = sorted(reply.seconds for reply in replies)
    record_figures(
        "database outage",
        {
            "outage_s": DB_OUTAGE_SECONDS,
            "http_requests": len(replies),
            "http_503": statuses.count(503),
            "http_5xx_other": sum(1 for s in statuses if s >= 500 and s != 503),
            "http_max_response_s": max(times[-1], *(reply.seconds for _, reply in others)),
            "http_median_response_s": times[len(times) // 2],
            "http_batches_stored_anyway": sum(1 for s, _ in http_batches if stored(device_id, "http_t", s)),
            "mqtt_published": len(mqtt_batches),
            "mqtt_stored_after": sum(1 for s in mqtt_batches if stored(device_id, "mqtt_t", s) == len(s)),
            "first_201_after_s": first_201 - restored_at,
            "mqtt_drained_after_s": drained_at - restored_at,
            "partial_batches": len(partial),
        },
    )


REDIS_OUTAGE_SECONDS = 30.0
FAST_COMMANDS = {"COMMAND_SWEEP_SECONDS": "0.5", "COMMAND_ACK_TIMEOUT_SECONDS": "2", "SCHEDULE_TICK_SECONDS": "1"}


def test_redis_outage_keeps_ingest_up_and_everything_catches_up(private_broker, device, alice, tmp_path):
    """Redis (cache, channel layer and Celery broker) stops for a while and starts again on the same port."""
    redis = RedisServer(tmp_path)
    redis.start()
    log = tmp_path / "processes.log"
    env = {"REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url, **FAST_COMMANDS}
    web, base = start_web(private_broker, log, **env)
    worker = start_worker(private_broker, "redisfault", log, **env)
    beat = start_beat(private_broker, log, tmp_path / "beat-schedule", **env)
    with private_broker.accounts() as accounts:
        accounts.ensure_device(device.pk, mqtt_password_for(device.device))
    purifier = FleetDevice(device.device, private_broker.host, private_broker.port)
    purifier.connect()
    listener = LiveListener(redis.url, [user_group(alice.pk), device_group(device.pk)])
    key = {"X-API-Key": device.key}
    token = {"Authorization": f"Token {ApiToken.issue(alice)[1]}"}
    clock = Clock()
    try:
        started = time.monotonic()
        wait_for(
            lambda: (
                call("POST", f"{base}/api/v1/telemetry", records(clock.take(1), "t"), key).status == 201
                and listener.since(started, "telemetry")
            ),
            30,
            "a live telemetry message before the outage",
            log,
        )
        before = send_over_api(base, device.pk, token, fan_speed=1)
        wait_for(lambda: acknowledged(before), 60, "a command before the outage", log)

        schedule = schedule_starting_in(device.device, seconds=3)
        redis.stop()
        stopped_at = time.monotonic()
        replies: list[tuple[list[int], Reply]] = []
        during: Reply | None = None
        while time.monotonic() - stopped_at < REDIS_OUTAGE_SECONDS:
            stamps = clock.take(1)
            replies.append((stamps, call("POST", f"{base}/api/v1/telemetry", records(stamps, "t"), key)))
            if during is None and time.monotonic() - stopped_at > 1:
                during = call("POST", f"{base}/api/v1/devices/{device.pk}/commands", SET_FAN_3, token)
            time.sleep(0.05)
        redis.start()
        back_at = time.monotonic()

        def live_again():
            call("POST", f"{base}/api/v1/telemetry", records(clock.take(1), "t"), key)
            return listener.since(back_at, "telemetry")

        live_at = wait_for(live_again, 60, "live telemetry after Redis returned", log, interval=0.3)[0][0]
        assert during is not None and during.status == 201, during
        command_id = during.body["id"]
        acked_at = wait_for(lambda: acknowledged(command_id) and time.monotonic(), 90, "the outage's command", log)
        run = wait_for(lambda: fired_and_acknowledged(schedule), 90, "the schedule edge of the outage", log)
        fired_at = time.monotonic()
        told = Notification.objects.filter(user=alice, kind="schedule_executed", device=device.device)
        assert told.exists(), "the edge's notification is stored for the notification center"
        # Live, it went out once, possibly before this listener had joined its groups again (pub/sub keeps
        # nothing for a subscriber that is away): the next edge is published when the listener is surely back.
        schedule_starting_in(device.device, seconds=2, name="Second")
        wait_for(lambda: listener.since(back_at, "notification"), 30, "a notification after Redis returned", log)
    finally:
        listener.stop()
        purifier.disconnect()
        for process in (beat, worker, web):
            stop_process(process)
        redis.stop()

    statuses = [reply.status for _, reply in replies]
    outage_stamps = [ts for stamps, _ in replies for ts in stamps]
    assert statuses and set(statuses) == {201}, sorted(set(statuses))
    assert stored(device.pk, "t", outage_stamps) == len(outage_stamps)
    assert purifier.executed.count(command_id) == 1
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    assert purifier.executed.count(str(run.command_id)) == 1
    record_figures(
        "redis outage",
        {
            "outage_s": REDIS_OUTAGE_SECONDS,
            "http_ingest_requests": len(replies),
            "http_201": statuses.count(201),
            "http_5xx": sum(1 for s in statuses if s >= 500),
            "rows_stored_during_outage": stored(device.pk, "t", outage_stamps),
            "http_max_response_s": max(reply.seconds for _, reply in replies),
            "command_post_during_outage_s": during.seconds,
            "live_resumed_after_s": live_at - back_at,
            "outage_command_acked_after_s": acked_at - back_at,
            "schedule_edge_acked_after_s": fired_at - back_at,
            "live_receive_errors": listener.errors,
        },
    )


SET_FAN_3 = {"action": "set_fan_speed", "params": {"fan_speed": 3}}


def send_over_api(base: str, device_id: int, token: dict, fan_speed: int) -> str:
    body = {"action": "set_fan_speed", "params": {"fan_speed": fan_speed}}
    reply = call("POST", f"{base}/api/v1/devices/{device_id}/commands", body, token)
    assert reply.status == 201, reply
    return reply.body["id"]


def acknowledged(command_id: str) -> bool:
    return Command.objects.filter(pk=command_id, status=Command.Status.ACKNOWLEDGED).exists()


def schedule_starting_in(device, seconds: int, name: str = "First") -> Schedule:
    start = (timezone.now() + timedelta(seconds=seconds)).replace(microsecond=0)
    return Schedule.objects.create(
        device=device,
        name=name,
        days=[start.weekday()],
        start_time=start.time(),
        end_time=(start + timedelta(hours=1)).time(),
        start_params={"power": "on", "fan_speed": 4},
        time_zone="UTC",
    )


def fired_and_acknowledged(schedule: Schedule) -> ScheduleRun | None:
    run = ScheduleRun.objects.filter(schedule=schedule).select_related("command").first()
    return run if run and run.command and run.command.status == Command.Status.ACKNOWLEDGED else None


FLEET_SIZE = 10
FLEET_OFFLINE = 3  # 30 %: two never connect, one keeps a persistent session and returns after the commands closed
# The short-lived command expires before an offline device's retries run out (3 attempts, 2 s apart, then 2 s).
FLEET_COMMANDS = {"COMMAND_SWEEP_SECONDS": "0.5", "COMMAND_ACK_TIMEOUT_SECONDS": "2", "COMMAND_MAX_ATTEMPTS": "3"}
LONG_LIVED = {"action": "set_fan_speed", "params": {"fan_speed": 3}, "expires_in": 120}
SHORT_LIVED = {"action": "ping", "params": {}, "expires_in": 5}
REFUSED = {"action": "set_fan_speed", "params": {"fan_speed": 9}}


def test_commands_to_a_fleet_with_devices_offline(private_broker, private_redis, make_device, alice, tmp_path):
    """Commands to ten purifiers, three of them offline; one online purifier loses its first acknowledgements."""
    log = tmp_path / "processes.log"
    env = {"CELERY_BROKER_URL": private_redis.url, **FLEET_COMMANDS}
    web, base = start_web(private_broker, log, **env)
    worker = start_worker(private_broker, "fleet", log, **env)
    beat = start_beat(private_broker, log, tmp_path / "beat-schedule", **env)
    fleet = [make_device(alice, f"purifier-{i}").device for i in range(FLEET_SIZE)]
    with private_broker.accounts() as accounts:
        for target in fleet:
            accounts.ensure_device(target.pk, mqtt_password_for(target))
    online_count = FLEET_SIZE - FLEET_OFFLINE
    devices = [
        FleetDevice(target, private_broker.host, private_broker.port, lose_first_ack=i == online_count - 1,
                    persistent=i == FLEET_SIZE - 1)
        for i, target in enumerate(fleet)
    ]  # fmt: skip
    online, offline, returning = devices[:online_count], devices[online_count:], devices[-1]
    returning.connect()  # its session (and subscription) stays with the broker while it is away
    returning.disconnect()
    for purifier in online:
        purifier.connect()
    wait_for(lambda: "fleet@localhost ready." in log.read_text(), 60, "the worker", log)
    token = {"Authorization": f"Token {ApiToken.issue(alice)[1]}"}
    try:
        sent_at = time.monotonic()
        for i, purifier in enumerate(devices):
            for body in (LONG_LIVED, SHORT_LIVED, *([REFUSED] if i < 2 else [])):
                reply = call("POST", f"{base}/api/v1/devices/{purifier.device.pk}/commands", body, token)
                assert reply.status == 201, reply
        open_commands = Command.objects.filter(device__in=fleet, status__in=Command.OPEN)
        wait_for(lambda: not open_commands.exists(), 60, "every command to reach a final state", log)
        settled_s = time.monotonic() - sent_at
        final = {c.pk: c for c in Command.objects.filter(device__in=fleet)}
        time.sleep(2)  # the returning device comes back a little after the platform gave up
        returning.connect()
        time.sleep(3)  # whatever the broker queued for it arrives now
    finally:
        for purifier in devices:
            purifier.disconnect()
        for process in (beat, worker, web):
            stop_process(process)

    by_state = collections.Counter(command.status for command in final.values())
    for purifier in online:
        mine = {
            c.action + str(c.params.get("fan_speed", "")): c
            for c in final.values()
            if c.device_id == purifier.device.pk
        }
        assert mine["set_fan_speed3"].status == Command.Status.ACKNOWLEDGED
        assert mine["ping"].status == Command.Status.ACKNOWLEDGED, (purifier.received, mine["ping"].__dict__)
        assert len(purifier.executed) == len(set(purifier.executed)), purifier.executed
    for purifier in offline:
        mine = {c.action: c for c in final.values() if c.device_id == purifier.device.pk}
        assert (mine["set_fan_speed"].status, mine["set_fan_speed"].attempts) == (Command.Status.TIMEOUT, 3)
        assert mine["ping"].status == Command.Status.EXPIRED
    assert by_state[Command.Status.FAILED] == 2
    lossy = online[-1]
    assert all(len(lossy.receipts(command_id)) >= 2 for command_id in lossy.executed)
    late = [
        (str(command_id), at - final[uuid.UUID(command_id)].expires_at.timestamp())
        for purifier in devices
        for command_id, at in purifier.received
        if at > final[uuid.UUID(command_id)].expires_at.timestamp()
    ]
    after_close = [
        command_id
        for command_id, at in returning.received
        if final[uuid.UUID(command_id)].completed_at.timestamp() < at
    ]
    assert late == []
    assert after_close == []
    record_figures(
        "commands with 30% of devices offline",
        {
            "devices": FLEET_SIZE,
            "offline": FLEET_OFFLINE,
            "commands": len(final),
            **{state: by_state[state] for state in ("acknowledged", "failed", "timeout", "expired")},
            "settled_s": settled_s,
            "deliveries": sum(len(p.received) for p in devices),
            "resends_deduplicated": sum(len(p.received) for p in online)
            - sum(len(p.executed) for p in online)
            - by_state["failed"],
            "executed_twice": sum(len(p.executed) - len(set(p.executed)) for p in devices),
            "delivered_after_expiry": len(late),
            "delivered_after_timeout_to_returning_device": len(after_close),
        },
    )


VISIBILITY_TIMEOUT = 4


@contextlib.contextmanager
def row_locks(*rows: tuple[str, object]) -> Iterator[None]:
    """Hold ``SELECT ... FOR UPDATE`` on rows from another connection, so tasks that need them stop there."""
    with psycopg.connect(database_url()) as holder, holder.cursor() as cursor:
        for table, pk in rows:
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])  # noqa: S608 (model tables)
        yield
        holder.rollback()


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def queue_tasks(broker_url: str, *tasks: tuple[str, tuple]) -> None:
    with celery_app.connection_for_write(broker_url) as broker:
        for name, args in tasks:
            celery_app.send_task(name, args, connection=broker)


def kill_mid_task(scheduled, command: Command, broker_url: str, victims) -> float:
    """Queue a schedule tick and a delivery, let both stop on held row locks, then SIGKILL ``victims()``."""
    with row_locks((Device._meta.db_table, scheduled.pk), (Command._meta.db_table, command.pk)):
        queue_tasks(
            broker_url, ("devices.tasks.fire_schedules", ()), ("devices.tasks.deliver_command", (str(command.pk),))
        )
        wait_for(lambda: waiting_on_locks() >= 2, 30, "both tasks to stop on the locks")
        for pid in victims():
            os.kill(pid, signal.SIGKILL)
        return time.monotonic()


def test_killed_worker_reruns_its_tasks_once(private_broker, private_redis, make_device, alice, tmp_path):
    """SIGKILL while a schedule tick (idempotent) and a command delivery (not idempotent) are mid-run."""
    if connection.vendor != "postgresql":
        pytest.skip("tasks are held mid-run with PostgreSQL row locks")
    log = tmp_path / "processes.log"
    env = {"CELERY_BROKER_URL": private_redis.url, "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    scheduled, commanded = (make_device(alice, name).device for name in ("scheduled", "commanded"))
    with private_broker.accounts() as accounts:
        for target in (scheduled, commanded):
            accounts.ensure_device(target.pk, mqtt_password_for(target))
    purifiers = [FleetDevice(target, private_broker.host, private_broker.port) for target in (scheduled, commanded)]
    for purifier in purifiers:
        purifier.connect()
    worker = start_prefork_worker(private_broker, "doomed", log, **env)
    replacement = None
    try:
        # 1. Pool processes killed: the worker rejects their tasks back to the queue at once.
        first_schedule = schedule_starting_in(scheduled, seconds=-1)
        first = commands.send(commanded, "set_fan_speed", {"fan_speed": 2})
        killed_at = kill_mid_task(scheduled, first, private_redis.url, lambda: child_pids(worker.pid))
        wait_for(lambda: fired_and_acknowledged(first_schedule) and acknowledged(first.pk), 120, "the re-runs", log)
        pool_rerun_s = time.monotonic() - killed_at

        # 2. The whole worker killed: its tasks stay unacknowledged in Redis until the visibility timeout.
        second_schedule = schedule_starting_in(scheduled, seconds=-1, name="Second")
        second = commands.send(commanded, "set_fan_speed", {"fan_speed": 4})
        killed_at = kill_mid_task(scheduled, second, private_redis.url, lambda: [worker.pid, *child_pids(worker.pid)])
        worker.wait(5)
        # Redis hands the tasks out again once they are older than the visibility timeout; a starting worker
        # looks for such tasks at once (and then only about every 100 s), so it must start after that.
        time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
        # Restarted under the same node name, it resumes the old MQTT session and its shared-subscription share.
        replacement = start_prefork_worker(private_broker, "doomed", log, **env)
        try:
            wait_for(lambda: fired_and_acknowledged(second_schedule) and acknowledged(second.pk), 120, "re-runs", log)
        except AssertionError as exc:
            states = list(Command.objects.filter(device__in=(scheduled, commanded)).values_list("status", "attempts"))
            raise AssertionError(f"{exc}\ncommands: {states}\nreceipts: {[p.received for p in purifiers]}") from None
        worker_rerun_s = time.monotonic() - killed_at
    finally:
        for purifier in purifiers:
            purifier.disconnect()
        for process in (worker, replacement):
            if process is not None:
                stop_process(process)

    for schedule in (first_schedule, second_schedule):
        assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    assert Command.objects.filter(device=scheduled, source=Command.Source.SCHEDULE).count() == 2
    for command in (first, second):
        command.refresh_from_db()
        assert command.attempts == 1
    for purifier in purifiers:
        assert all(len(purifier.receipts(command_id)) == 1 for command_id, _ in purifier.received), purifier.received
        assert len(purifier.executed) == len(set(purifier.executed)) == 2
    record_figures(
        "worker killed during tasks",
        {
            "tasks_killed": 4,
            "rerun_after_pool_kill_s": pool_rerun_s,
            "rerun_after_worker_kill_s": worker_rerun_s,
            "visibility_timeout_s": VISIBILITY_TIMEOUT,
            "schedule_runs_per_edge": max(
                ScheduleRun.objects.filter(schedule=s).count() for s in (first_schedule, second_schedule)
            ),
            "deliveries_per_command": max(len(p.receipts(c)) for p in purifiers for c, _ in p.received),
        },
    )
