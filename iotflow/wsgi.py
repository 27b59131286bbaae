"""WSGI entry point: the web process (gunicorn) serves all HTTP through it.

Plain device requests are answered ahead of Django's middleware stack (iotflow/device_lane.py);
everything else goes through Django's handler.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")
django_application = get_wsgi_application()

from iotflow.device_lane import DeviceLane  # noqa: E402  (needs the settings configured above)

application = DeviceLane(django_application)
