"""``/health`` for load balancers and monitoring; ``?detailed=true`` reports each dependency."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from telemetry.backends import get_backend

VERSION = "1.0.0"


def _timed(check) -> dict:
    started = time.perf_counter()
    result = check()
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {"status": "unhealthy", "error": str(exc).strip()}
    return {"status": "healthy", "vendor": connection.vendor}


def check_cache() -> dict:
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    try:
        cache.set("health:probe", 1, 5)
        ok = cache.get("health:probe") == 1
    except Exception as exc:  # any cache client error means the cache is down
        return {"status": "unhealthy", "backend": backend, "error": str(exc)}
    return {"status": "healthy" if ok else "unhealthy", "backend": backend}


def check_telemetry() -> dict:
    return get_backend().health()


CHECKS = {"database": check_database, "cache": check_cache, "telemetry": check_telemetry}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    detailed = request.GET.get("detailed", "").lower() in {"1", "true", "yes"}
    include = [name for name in request.GET.get("include", "").split(",") if name in CHECKS]
    names = list(CHECKS) if detailed else include or ["database"]
    results = {name: _timed(CHECKS[name]) for name in names}
    healthy = all(result["status"] == "healthy" for result in results.values())
    body = {"status": "healthy" if healthy else "unhealthy", "version": VERSION, "timestamp": timezone.now()}
    if detailed or include:
        body["checks"] = results
    return JsonResponse(body, status=200 if healthy else 503)
