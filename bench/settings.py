"""IoTFlow's settings plus the benchmark's URLs (a hello view beside the product's)."""

from iotflow.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
