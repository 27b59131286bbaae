from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"

    def ready(self) -> None:
        import iotflow.schema  # noqa: F401

        from . import signals  # noqa: F401
