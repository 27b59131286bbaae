"""Schemathesis against the OpenAPI schema: no input may make the API fail, and answers match the schema.

Every operation of ``/api/schema/`` is called in-process through the WSGI app with generated
requests, valid (positive) and invalid (negative), under each credential the operation accepts:
a device key, a personal token, the admin header. Path ids are drawn both from generated values
and from objects seeded for the caller, so detail views are reached and not only their 404s.
A stateful run then chains calls along the links schemathesis infers from the schema (list or
create, then read, update, act on, delete what was returned).

Two checks apply to every answer: no 5xx (``not_a_server_error``) and the body matching the
schema documented for its status (``response_schema_conformance``). Failures are collected, not
raised at the first one, so a run reports them all with a curl command each.

``make test`` runs a bounded, derandomized fuzz (``FUZZ_MAX_EXAMPLES``, default 4 per generation
mode and operation); ``make fuzz`` a longer one with fresh random input each run.
"""

import datetime
import os
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.models import ApiToken
from dashboards.models import Chart, Dashboard
from devices import commands
from devices.models import DeviceGroup, Schedule
from iotflow.wsgi import application
from notifications.models import Alert, AlertRule, Notification
from telemetry.backends import get_backend
from telemetry.points import Point
from tests.figures import record_figures

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "4"))
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_STATEFUL_SCENARIOS", "25"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "8"))
RANDOM = os.environ.get("FUZZ_RANDOM", "") == "1"
CHECKS = [not_a_server_error, response_schema_conformance]
# Preference when an operation takes several credentials: the stateful run uses the first that applies.
SCHEMES = ("tokenAuth", "adminTokenAuth", "deviceKeyAuth")
HYPOTHESIS = {
    "deadline": None,
    "database": None,
    "derandomize": not RANDOM,
    "suppress_health_check": list(HealthCheck),
    "print_blob": False,
}


@dataclass
class Seeded:
    """Credentials and the ids of objects the fuzzing user owns, so requests can name real objects."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, list]


@dataclass
class Tally:
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def record(self, case, response, scheme: str | None, headers: dict[str, str], refused: bool) -> None:
        """Count the answer and run the checks, keeping failures instead of stopping at the first."""
        self.requests += 1
        if refused:
            self.refused.append(f"{case.operation.label} -> {response.status_code}\n{case.as_curl_command(headers)}")
        self.operations.add(case.operation.label)
        self.statuses[f"{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                report = (
                    f"{case.operation.label} as {scheme} -> {response.status_code}: {failure.title}\n"
                    f"{case.as_curl_command(headers)}\n{failure.message[:1500]}"
                )
                if response.status_code >= 500:
                    self.server_errors.append(f"{report}\n{response.text[:1500]}")
                else:
                    self.violations.append(report)

    def report(self, scenario: str) -> None:
        """Figures to the terminal summary (with or without -s, under xdist too); every failure in the assertion."""
        record_figures(
            scenario,
            {
                "operations": len(self.operations),
                "requests": self.requests,
                **{f"answers {kind}": count for kind, count in sorted(self.statuses.items())},
                "5xx": len(self.server_errors),
                "schema violations": len(self.violations),
                "values refused by the database": len(self.refused),
                "input": "random" if RANDOM else "derandomized",
                "examples per mode": MAX_EXAMPLES,
            },
        )
        for kind, found in (("5xx answers", self.server_errors), ("schema violations", self.violations)):
            shown = "\n\n".join(found[:20])
            assert not found, f"{len(found)} {kind} (at most 20 shown):\n\n{shown}"
        if self.refused:  # answered 400 by the API's handler: listed, to be caught by validation one day
            warnings.warn("values refused by the database:\n\n" + "\n\n".join(self.refused[:20]), stacklevel=1)


@pytest.fixture
def fuzz_app(settings) -> Iterator[None]:
    """The WSGI app called in-process inside the test's transaction, with rate limits off.

    Django's WSGI handler closes "old" connections when a request starts and ends; inside a test
    transaction that would drop it, so (as Django's own test client does) those hooks are off.
    """
    settings.RATE_LIMITS_ENABLED = False
    settings.MQTT_MANAGE_ACCOUNTS = False
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_schema(fuzz_app, db):
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def fuzz_seeded(make_user, make_device) -> Seeded:
    """A user with two devices, a group, telemetry, a command, a schedule, alerts, a dashboard."""
    user = make_user("fuzzer")
    staff = make_user("fuzz-operator", is_staff=True)
    own = [make_device(user, f"fuzz-{i}") for i in range(2)]
    other = make_device(make_user("bystander"), "other")
    group = DeviceGroup.objects.create(owner=user, name="fuzz-group")
    group.devices.add(own[0].device)
    now = timezone.now()
    now_ms = int(now.timestamp() * 1000)
    get_backend().write([Point(own[0].pk, name, now_ms - i * 60_000, i) for i in range(5) for name in ("t", "h")])
    command = commands.send(own[0].device, "set_fan_speed", {"fan_speed": 2})
    fleet = commands.send_to_group(group, "set_fan_speed", {"fan_speed": 1})
    schedule = Schedule.objects.create(
        name="night", device=own[0].device, days=[0, 1], start_time=datetime.time(22), end_time=datetime.time(6)
    )
    rule = AlertRule.objects.create(
        owner=user, name="hot", device=own[0].device, measurement="t", operator=">", threshold=30
    )
    alert = Alert.objects.create(
        owner=user, rule=rule, device=own[0].device, name="hot", measurement="t", condition="> 30",
        severity="high", value=31, triggered_at=now,
    )  # fmt: skip
    notification = Notification.objects.create(user=user, title="hello", device=own[0].device)
    dashboard = Dashboard.objects.create(owner=user, name="fuzz-board")
    chart = Chart.objects.create(dashboard=dashboard, title="t", measurements=["t"])
    chart.devices.add(own[0].device)
    return Seeded(
        headers={
            "deviceKeyAuth": {"X-API-Key": own[0].key},
            "tokenAuth": {"Authorization": f"Token {ApiToken.issue(user)[1]}"},
            "adminTokenAuth": {"Authorization": f"admin {ApiToken.issue(staff)[1]}"},
        },
        ids={
            "devices": [own[0].pk, own[1].pk, other.pk],
            "groups": [group.pk],
            "commands": [str(command.pk), str(uuid.uuid4())],
            "fleet": [fleet.pk],
            "schedules": [schedule.pk],
            "alert-rules": [rule.pk],
            "alerts": [alert.pk],
            "notifications": [notification.pk],
            "dashboards": [dashboard.pk],
            "charts": [chart.pk],
        },
    )


def seeded_path_parameters(path: str, ids: dict[str, list]) -> st.SearchStrategy[dict]:
    """Path parameters naming seeded objects: ``{id}`` after ``/groups/`` is a group, and so on."""
    parts = path.strip("/").split("/")
    named = {"device_id": "devices", "command_id": "commands", "fleet_id": "fleet"}
    choices = {}
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            choices[name] = st.sampled_from(ids.get(named.get(name, parts[i - 1]), [1]))
    return st.fixed_dictionaries(choices)


def schemes_of(operation) -> list[str | None]:
    """The credentials an operation documents, in SCHEMES order; None for an open operation."""
    security = operation.definition.raw.get("security", operation.schema.raw_schema.get("security", []))
    offered = {name for requirement in security for name in requirement}
    return [name for name in SCHEMES if name in offered] or [None]


def database_refused() -> bool:
    """Whether the last request left the test transaction aborted: the database refused one of its statements.

    In production each request has its own transaction and the API answers 400 for such a value,
    so this is no failure; the run lists them as input validation could catch earlier.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return True
    return False


def call_isolated(case, headers: dict[str, str], *, keep: bool):
    """Call in a savepoint; keep its changes (a stateful step) or undo them (a single fuzz request).

    Undone requests all start from the seeded objects; a refused statement is always rolled back,
    as it would be by the request's own transaction in production.
    """
    savepoint = transaction.savepoint()
    response = case.call(headers=headers)
    refused = database_refused()
    if keep and not refused:
        transaction.savepoint_commit(savepoint)
    else:
        transaction.savepoint_rollback(savepoint)
        cache.clear()  # cached API keys and latest values of rolled-back rows must not outlive them
    return response, refused


def fuzz_operation(operation, seeded: Seeded, tally: Tally) -> None:
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if "{" in operation.path:
            strategies.append(
                seeded_path_parameters(operation.path, seeded.ids).flatmap(
                    lambda params, mode=mode: operation.as_strategy(generation_mode=mode, path_parameters=params)
                )
            )

    @settings(max_examples=MAX_EXAMPLES * 2, **HYPOTHESIS)
    @given(case=st.one_of(strategies), scheme=st.sampled_from(schemes_of(operation)))
    def call(case, scheme: str | None) -> None:
        headers = dict(seeded.headers[scheme]) if scheme else {}
        response, refused = call_isolated(case, headers, keep=False)
        tally.record(case, response, scheme, headers, refused)

    call()


def test_every_operation_survives_generated_input(fuzz_schema, fuzz_seeded):
    tally = Tally()
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(operation, fuzz_seeded, tally)
    assert len(tally.operations) == len(operations) > 80, "every operation of the schema was called"
    tally.report("API fuzz, every operation")


def test_chained_calls_along_schema_links_survive(fuzz_schema, fuzz_seeded):
    tally = Tally()
    workflow = fuzz_schema.as_state_machine()

    class Workflow(workflow):
        """Each scenario starts from the seeded objects and calls with the first credential that applies."""

        def setup(self) -> None:
            self._savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self._savepoint)
            cache.clear()

        def call(self, case, **kwargs):
            response, self._refused = call_isolated(case, kwargs["headers"], keep=True)
            return response

        def get_call_kwargs(self, case) -> dict:
            scheme = schemes_of(case.operation)[0]
            return {"headers": dict(fuzz_seeded.headers[scheme]) if scheme else {}}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            tally.record(case, response, schemes_of(case.operation)[0], kwargs["headers"], self._refused)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            phases=[Phase.generate],
            **HYPOTHESIS,
        ),
    )
    assert tally.requests >= STATEFUL_SCENARIOS, "every scenario made calls"
    tally.report("API fuzz, chained along schema links")
