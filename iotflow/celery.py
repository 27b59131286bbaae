"""The Celery application: workers run tasks (and, later, the MQTT consumer); beat runs periodic work."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")

app = Celery("iotflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
