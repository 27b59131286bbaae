#!/usr/bin/env bash
# Start the whole platform in the foreground; Ctrl-C stops every process.
#
# Processes (deploy/Procfile.template, run by honcho): web (gunicorn), worker
# (Celery + MQTT consumer), beat, IoTFlow's own Mosquitto, Redis unless one
# already answers, and a few simulated devices for the demo user.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/scripts/services.sh

export IOTFLOW_PORT="${IOTFLOW_PORT:-8000}"
mkdir -p var
rm -rf var/prometheus && mkdir -p var/prometheus
export PROMETHEUS_MULTIPROC_DIR="$PWD/var/prometheus"

ensure_package redis-server redis-server
ensure_package mosquitto mosquitto

# Redis: reuse one that already answers on the standard port, else run our own.
REDIS_PORT="${IOTFLOW_REDIS_PORT:-6379}"
if redis_answers "$REDIS_PORT"; then
    echo "Using the Redis already running on 127.0.0.1:$REDIS_PORT."
    redis_line=""
else
    REDIS_PORT=$(first_free_port "$REDIS_PORT")
    mkdir -p var/redis
    redis_line="redis: $(command -v redis-server || echo /usr/bin/redis-server) --port $REDIS_PORT --bind 127.0.0.1 --dir $PWD/var/redis --save '' --appendonly no"
fi
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/${IOTFLOW_REDIS_DB:-0}}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-$REDIS_URL}"

# The ws process (daphne) serves the pages' live socket on its own port; pages find it through LIVE_WEBSOCKET_URL.
WS_PORT=$(first_free_port "${IOTFLOW_WS_PORT:-8001}")
# (a default with braces inside ${...:-...} would end at the first "}", so it is spelled out first)
default_live_url="ws://{hostname}:$WS_PORT/ws/notifications/"
export LIVE_WEBSOCKET_URL="${LIVE_WEBSOCKET_URL:-$default_live_url}"

# IoTFlow's own broker (its accounts are managed by IoTFlow), on 1883 or the next free port.
MQTT_PORT=$(first_free_port "${IOTFLOW_MQTT_PORT:-1883}")
export MQTT_URL="${MQTT_URL:-mqtt://127.0.0.1:$MQTT_PORT}"
broker_user=""
[ "$(id -u)" -eq 0 ] && broker_user="--user root"
.venv/bin/python manage.py broker_config --port "$MQTT_PORT" --data-dir var/mosquitto $broker_user >/dev/null

.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py collectstatic --no-input -v 0
.venv/bin/python manage.py seed_demo --base-url "http://127.0.0.1:${IOTFLOW_PORT}"

sed -e "s|@MOSQUITTO@|$(command -v mosquitto || echo /usr/sbin/mosquitto)|" deploy/Procfile.template > var/Procfile
[ -n "$redis_line" ] && echo "$redis_line" >> var/Procfile
grep -q '^ws:' var/Procfile || echo "ws: .venv/bin/daphne -b 127.0.0.1 -p $WS_PORT iotflow.asgi:application" >> var/Procfile
if [ "${IOTFLOW_SIMULATE:-1}" = "1" ] && .venv/bin/python manage.py shell -c "from accounts.models import User; raise SystemExit(0 if User.objects.filter(username='demo').exists() else 1)"; then
    echo "simulator: .venv/bin/python manage.py simulate_devices --owner demo --count ${IOTFLOW_SIMULATED_DEVICES:-3} --interval ${IOTFLOW_SIMULATOR_INTERVAL:-5} --wait-for-broker 30" >> var/Procfile
fi

echo
echo "IoTFlow: http://127.0.0.1:${IOTFLOW_PORT}/  (admin /admin/, API docs /api/docs/)"
echo "MQTT broker: $MQTT_URL   Redis: $REDIS_URL   Ctrl-C stops everything."
exec .venv/bin/honcho -f var/Procfile -d . start
