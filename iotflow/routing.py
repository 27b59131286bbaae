"""WebSocket URL patterns served by the ws process."""

websocket_urlpatterns: list = []
