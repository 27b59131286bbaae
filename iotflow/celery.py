"""The Celery application: workers run tasks and the MQTT consumer; beat runs periodic work."""

import logging
import os
import socket
import threading

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iotflow.settings")

app = Celery("iotflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# How long a starting worker waits for its MQTT consumer's subscription before it reports ready.
CONSUMER_SUBSCRIBE_WAIT_SECONDS = 10


class MqttConsumerStep(bootsteps.StartStopStep):
    """Runs the MQTT consumer inside every worker (unless MQTT_CONSUMER_ENABLED is off)."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.consumer = None

    def start(self, worker) -> None:
        from django.conf import settings

        from telemetry.mqtt import Consumer, consumer_client_id

        if not settings.MQTT_CONSUMER_ENABLED:
            return
        # A stable identity per worker keeps its broker session (and unacked messages) across restarts;
        # a worker replaced under another identity leaves a session behind (manage.py drain_consumer).
        identity = settings.MQTT_CONSUMER_ID or worker.hostname or socket.gethostname()
        self.consumer = Consumer(consumer_client_id(identity))
        self.consumer.start()
        # A fresh session receives nothing before its first subscription: acknowledgements of commands that
        # this worker's tasks send right away would have no receiver. A broker that is away delays startup
        # by this wait only.
        if not self.consumer.subscribed.wait(CONSUMER_SUBSCRIBE_WAIT_SECONDS):
            logging.getLogger(__name__).warning("Worker ready before its MQTT consumer subscribed; it keeps trying")
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
