"""ASGI entry point: the ws process (daphne) serves WebSockets through it.

WebSockets authenticate with the Django session (``AuthMiddlewareStack``) and must come from a
page of one of ALLOWED_HOSTS (``AllowedHostsOriginValidator``): a session cookie alone, sent by
a foreign site's page, does not open a socket.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from iotflow.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# The ws process lives long and holds thousands of sockets: the collector's full passes over everything
# the application loaded stalled deliveries by tens of milliseconds. What is loaded by now stays for good;
# young collections run less often (a broadcast to a thousand sockets allocates tens of thousands of objects).
gc.freeze()
gc.set_threshold(7_000, 10, 10)
