"""Retire an MQTT consumer identity whose worker is gone for good, without losing what its session holds."""

from django.core.management.base import BaseCommand, CommandError

from telemetry.mqtt import Consumer, DrainFailed, consumer_client_id


class Command(BaseCommand):
    help = (
        "Connect as a retired worker's MQTT consumer, store every message queued in its broker session, "
        "then end the session so the broker stops routing a share of the stream to it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "consumer_id",
            help="the retired worker's MQTT_CONSUMER_ID, or its Celery node name (celery@host) where none was "
            "set; a full client id as the broker logs it (iotflow-consumer-...) works too",
        )
        parser.add_argument(
            "--timeout", type=float, default=600.0, help="give up (keeping the session) after this many seconds"
        )

    def handle(self, *args, consumer_id: str, timeout: float, **options) -> None:
        client_id = consumer_client_id(consumer_id)
        consumer = Consumer(client_id)
        try:
            handled = consumer.drain(timeout)
        except DrainFailed as exc:
            raise CommandError(f"{client_id}: {exc}; its session is kept") from None
        if consumer.session_present:
            self.stdout.write(f"{client_id}: {handled} queued messages stored; the session has ended.")
        else:
            self.stdout.write(f"{client_id}: the broker held no session under this client id; nothing to drain.")
