"""The one HTTP load generator of the benchmarks: wrk, scripted in Lua (bench/lua/), read back as JSON.

Every HTTP figure and its baseline go through ``run()`` with the same threads and connections,
so the load generator's own cost is the same on both sides of a ratio.
"""

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
MARKER = "WRK_JSON "


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    errors: int  # connect, read, write and timeout errors, and non-2xx/3xx answers
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return found


def run(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    env: dict[str, str] | None = None,
) -> Result:
    """Run wrk against ``url`` with bench/lua/``script`` (plus the device helpers and the JSON report)."""
    parts = [LUA / "devices.lua", LUA / script, LUA / "report.lua"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write("\n".join(part.read_text() for part in parts))
        lua.flush()
        command = [binary(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
                   "-s", lua.name, url]  # fmt: skip
        env = {"BENCH_THREADS": str(threads), "BENCH_DEVICES": "/dev/null", **(env or {})}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=True)
    line = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len(MARKER) :])
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return Result(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
    )
