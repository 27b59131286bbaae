"""Private services for benchmarks: a Mosquitto with IoTFlow's config on a free port, a fresh database."""

import contextlib
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(stat: str | Path) -> float:
    """User + system CPU seconds of the process or thread whose /proc ``stat`` file this is (OSError once it ended)."""
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def timed(call, runs: int, warmup: int = 0) -> list[float]:
    """Milliseconds of each of ``runs`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p95(samples: list[float], method: str = "exclusive") -> float:
    """The 95th percentile (``statistics.quantiles``' ``method``: each figure keeps the one it was reported with)."""
    return statistics.quantiles(samples, n=20, method=method)[-1]


def setup_django(env: dict[str, str]) -> None:
    """Set up Django in this process against the run's services (``env`` as the servers get it)."""
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "iotflow.settings"})
    import django

    django.setup()


def make_devices(owner_name: str, count: int, *, online: bool = True) -> list[tuple[int, str]]:
    """``count`` devices of one new owner, online as in a running fleet; returns (id, clear-text key) pairs.

    Devices that had never been seen would go online with their first messages, each a health
    event and a notification written by the web process's last-seen thread, a second or more
    after the request: work of a fleet's first minute that would spill into the measured runs.
    ``online=False`` gives never-seen devices, for measuring that work itself.
    """
    from django.utils import timezone

    from accounts.models import User
    from devices.models import Device, Health

    owner = User.objects.create_user(owner_name)
    now = timezone.now()
    state = {"health": Health.ONLINE, "health_since": now, "health_reason": "bench", "last_seen": now} if online else {}
    devices, keys = [], []
    for index in range(count):
        device = Device(owner=owner, name=f"bench-{index}", **state)
        keys.append(device.set_new_api_key())
        devices.append(device)
    Device.objects.bulk_create(devices)
    return [(device.pk, key) for device, key in zip(devices, keys, strict=True)]


def postgres_available() -> bool:
    try:
        import psycopg

        psycopg.connect(f"{ADMIN_DSN} connect_timeout=2").close()
        return True
    except Exception:
        return False


ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
# Runs sharing one PostgreSQL keep apart by giving each its own prefix for the databases it creates.
DATABASE_PREFIX = os.environ.get("BENCH_DATABASE_PREFIX", "iotflow_bench")


def database_name(name: str) -> str:
    """``name`` under BENCH_DATABASE_PREFIX when it is one of the scripts' own ``iotflow_bench_…`` names."""
    if name.startswith("iotflow_bench_"):
        return DATABASE_PREFIX + name.removeprefix("iotflow_bench")
    return name


def settle(db_url: str) -> None:
    """Leave no work of what ran before to PostgreSQL's background: tables vacuumed and analysed, pages written.

    Between two benchmarks on one database (millions of rows stored by one, reads timed by the next),
    autovacuum and the checkpointer would otherwise do the first's upkeep during the second.
    """
    if not db_url.startswith("postgres"):
        return
    import psycopg

    with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def fresh_database(name: str) -> str:
    """An empty, migrated database for the run: PostgreSQL when one answers, else SQLite.

    On PostgreSQL it is a copy of a migrated template (``CREATE DATABASE … TEMPLATE``, a second
    instead of a ``migrate`` of ten); the template is made once for each state of the migrations.
    A checkpoint follows, so the pages a previous benchmark dirtied are not written during this one.
    """
    name = database_name(name)
    if postgres_available():
        import psycopg

        template = migrated_template()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            conn.execute("CHECKPOINT")
        return f"postgres://postgres@127.0.0.1:5432/{name}"
    path = ROOT / "var" / f"{name}.sqlite3"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    migrate(url)
    return url


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(name)}" WITH (FORCE)')


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
        check=True,
    )  # fmt: skip


def migrated_template() -> str:
    """The name of a PostgreSQL database migrated to the migrations in the tree, made when missing.

    Named after a digest of the migration files, so a changed migration makes a new one (and older
    ones are dropped). Nothing connects to it once made, so it can be copied at any time.
    """
    import psycopg

    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    template = f"{DATABASE_PREFIX}_template_{digest.hexdigest()[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        names = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [template[:-12]])
        found = [name for (name,) in names if len(name) == len(template)]  # not those still being built
        if template in found:
            return template
        building = f"{template}_{os.getpid()}"
        conn.execute(f'CREATE DATABASE "{building}"')
        try:
            migrate(f"postgres://postgres@127.0.0.1:5432/{building}")
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
        except psycopg.errors.DuplicateDatabase:  # another run made it meanwhile
            pass
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
        for stale in found:
            with contextlib.suppress(psycopg.Error):  # a run of other migrations may still be copying it
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}"')
    return template


@contextmanager
def private_broker(admin_password: str, platform_password: str, port: int):
    """IoTFlow's broker configuration on ``port`` (Django must be set up); yields the port."""
    from devices.broker import DYNSEC_FILE_NAME, initial_dynsec_config, render_config, write_dynsec_config

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        user = "root" if os.geteuid() == 0 else ""
        (data / "mosquitto.conf").write_text(render_config(port, data, bind_address="127.0.0.1", user=user))
        write_dynsec_config(
            data / DYNSEC_FILE_NAME,
            initial_dynsec_config("iotflow-admin", admin_password, "iotflow-platform", platform_password),
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        process = subprocess.Popen([binary, "-c", str(data / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_listening(port)
            yield port
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def private_redis():
    """A redis-server of the run's own on a free port (nothing saved); yields its URL."""
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory() as tmp:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)
