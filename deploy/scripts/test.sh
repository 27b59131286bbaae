#!/usr/bin/env bash
# Run the whole suite: on PostgreSQL when one answers on 127.0.0.1:5432, else on SQLite.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/scripts/services.sh
# Services the suite talks to for real: the tests start private instances of them on free ports.
ensure_package mosquitto mosquitto
ensure_package redis-server redis-server
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
[ -x /usr/bin/chromium ] || apt_install chromium
if [ -z "${DATABASE_URL:-}" ]; then
    if .venv/bin/python - <<'PY' 2>/dev/null
import psycopg
psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2").close()
PY
    then
        export DATABASE_URL="postgres://postgres@127.0.0.1:5432/iotflow"
    else
        export DATABASE_URL="sqlite:///$PWD/var/test.sqlite3"
    fi
fi
case "$DATABASE_URL" in
    postgres*) echo "Tests run on PostgreSQL ($DATABASE_URL; pytest-django creates test databases beside it)." ;;
    *) echo "Tests run on SQLite (no PostgreSQL answered on 127.0.0.1:5432)." ;;
esac
# Unit tests queue Celery tasks in memory; integration tests start their own Redis and workers.
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-memory://}"
mkdir -p var
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
