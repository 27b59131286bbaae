"""Celery tasks of telemetry: the rollup pass and retention beat runs, and purging a deleted device's data."""

import logging

from celery import shared_task

from telemetry import retention, rollups
from telemetry.backends import BackendUnavailable, get_backend

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def refresh_rollups() -> dict:
    """Fold new and late points into the 1-minute and 1-hour rollups."""
    try:
        return rollups.refresh()
    except BackendUnavailable:
        log.warning("Telemetry store unavailable; rollups are refreshed on the next run", exc_info=True)
        return {}


@shared_task(ignore_result=True)
def apply_retention() -> dict:
    """Delete raw points, rollups and finished commands past their retention."""
    try:
        result = retention.apply()
    except BackendUnavailable:
        log.warning("Telemetry store unavailable; retention runs again on the next run", exc_info=True)
        return {"commands": retention.purge_commands()}
    log.info("Retention: %s", result)
    return result


@shared_task(ignore_result=True, autoretry_for=(BackendUnavailable,), retry_backoff=True, max_retries=10)
def purge_device(device_id: int) -> None:
    """Delete every tier of a deleted device's telemetry (retried while the store is unreachable)."""
    get_backend().delete_device(device_id)
