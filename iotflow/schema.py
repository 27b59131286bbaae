"""OpenAPI security schemes of IoTFlow's own authentication classes, for drf-spectacular.

Imported once at start-up (from an AppConfig.ready) so spectacular registers the extensions.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension


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


class WallClockTimeField(OpenApiSerializerFieldExtension):
    """DRF time fields read and write a wall-clock ``HH:MM[:SS[.ffffff]]``, without an offset.

    OpenAPI's ``format: time`` is RFC 3339's full-time, which requires an offset: claiming it would
    promise (and make generated clients send) times the API never uses, such as ``22:00:00Z``.
    """

    target_class = "rest_framework.fields.TimeField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema.pop("format", None)
        schema["pattern"] = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"
        schema.setdefault("example", "22:00:00")
        return schema
