#!/usr/bin/env bash
# Start the whole platform in the foreground; Ctrl-C stops every process.
set -euo pipefail
cd "$(dirname "$0")/../.."
export IOTFLOW_PORT="${IOTFLOW_PORT:-8000}"
mkdir -p var
rm -rf var/prometheus && mkdir -p var/prometheus
export PROMETHEUS_MULTIPROC_DIR="$PWD/var/prometheus"
.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py collectstatic --no-input -v 0
.venv/bin/python manage.py seed_demo
echo
echo "IoTFlow is starting on http://127.0.0.1:${IOTFLOW_PORT}/ (admin: /admin/, API docs: /api/docs/). Ctrl-C stops it."
exec .venv/bin/honcho -f deploy/Procfile start
