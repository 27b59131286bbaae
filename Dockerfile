# syntax=docker/dockerfile:1
# IoTFlow image: one image for every IoTFlow process (web, ws, worker, beat, migrate);
# docker-compose.yml picks the command.

FROM python:3.11-slim AS wheels
# Some pinned requirements build C extensions from source; compile them here, not in the final image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements.txt


FROM node:20-slim AS vendor
# Browser libraries of the pages (package.json), copied into static/vendor/ as `make vendor` does.
WORKDIR /src
COPY package.json package-lock.json ./
COPY deploy/scripts/build-vendor.mjs deploy/scripts/
RUN npm ci --omit=dev --no-audit --no-fund && npm run build


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IOTFLOW_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

RUN groupadd --system iotflow \
    && useradd --system --gid iotflow --home-dir /app --no-create-home --shell /usr/sbin/nologin iotflow

WORKDIR /app

COPY requirements.txt .
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt

COPY . .
COPY --from=vendor /src/static/vendor static/vendor

# Static files are collected into the image. Production mode keeps settings from generating
# local secrets into the image; the key exists only for this build step.
RUN IOTFLOW_PRODUCTION=1 SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --no-input -v 0 \
    && mkdir -p /app/var \
    && chown iotflow:iotflow /app/var

USER iotflow

EXPOSE 8000 8001
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "iotflow.wsgi"]
