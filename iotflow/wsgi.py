"""WSGI entry point: the web process (gunicorn) serves all HTTP through it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")
application = get_wsgi_application()
