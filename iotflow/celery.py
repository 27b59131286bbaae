"""The Celery application: workers run tasks and the MQTT consumer; beat runs periodic work."""

import os
import socket
import threading

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")

app = Celery("iotflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class MqttConsumerStep(bootsteps.StartStopStep):
    """Runs the MQTT consumer inside every worker (unless MQTT_CONSUMER_ENABLED is off)."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.consumer = None

    def start(self, worker) -> None:
        from django.conf import settings

        from telemetry.mqtt import Consumer

        if not settings.MQTT_CONSUMER_ENABLED:
            return
        # A stable client id per worker node keeps its broker session (and unacked messages) across restarts.
        node = worker.hostname or socket.gethostname()
        self.consumer = Consumer(f"iotflow-consumer-{node}")
        self.consumer.start()
        if settings.MQTT_MANAGE_ACCOUNTS:
            threading.Thread(target=_reconcile_accounts, name="broker-accounts", daemon=True).start()

    def stop(self, worker) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer = None


def _reconcile_accounts(attempts: int = 30) -> None:
    """Bring device accounts in step with the database once the broker answers (it may start after us)."""
    import logging
    import time

    from devices.broker import BrokerError
    from devices.tasks import reconcile_broker_accounts

    for _ in range(attempts):
        try:
            result = reconcile_broker_accounts()
            logging.getLogger(__name__).info("Broker accounts reconciled: %s", result)
            return
        except (BrokerError, OSError):
            time.sleep(2)


app.steps["worker"].add(MqttConsumerStep)
