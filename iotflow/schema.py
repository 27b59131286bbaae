"""OpenAPI security schemes of IoTFlow's own authentication classes, for drf-spectacular.

Imported once at start-up (from an AppConfig.ready) so spectacular registers the extensions.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Token <personal token>``."""

    target_class = "accounts.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A user's personal API token with the prefix `Token`: `Authorization: Token ift_...`.",
        }


class AdminTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: admin <staff user's personal token>``."""

    target_class = "accounts.authentication.AdminTokenAuthentication"
    name = "adminTokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A staff user's personal API token with the prefix `admin`: `Authorization: admin ift_...`.",
        }


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    """``X-API-Key: <device API key>``."""

    target_class = "devices.authentication.DeviceKeyAuthentication"
    name = "deviceKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The device's API key, returned once by `POST /api/v1/devices/register`.",
        }
