"""Plain device requests answered ahead of Django's middleware stack.

The device API's direct answers (telemetry/api/direct.py: a device posting readings, a device
reading its own latest values) are most of the web process's traffic. Behind Django's full
stack, they paid for thirteen middleware meant for people's browsers as well: sessions, CSRF,
authentication, the user's time zone, messages, htmx, static files. ``DeviceLane`` sits in
front of Django's WSGI handler and answers such a request with only the middleware that
matters to it: the size limit, the security headers, ``CommonMiddleware``, ``X-Frame-Options``
and the Prometheus request metrics, called as Django calls them, with Django's request
signals, URL resolution and error handling. Everything else, and every request the direct path
hands over (a bad key, invalid data, a refused rate, ...), goes to Django's handler untouched,
body included. The answers are the same bytes and headers and count in the same metrics as
through the full stack (tests/iotflow/test_device_lane.py); what it bought is in
docs/performance.md.

A middleware added to ``settings.MIDDLEWARE`` that is not listed below turns the lane off (every
request then goes through Django's handler) until it is listed: its effect on these requests
has to be decided, not assumed.
"""

import io
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix, set_urlconf
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from django_prometheus.utils import Time

from iotflow.middleware import size_refusal

logger = logging.getLogger(__name__)

RUN = "run"  # called as Django calls it
VARY_ON_COOKIE = "vary on cookie"
# The others, and why a direct device answer does without them.
STANDS_IN_FOR = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware": RUN,
    "django.middleware.security.SecurityMiddleware": RUN,
    "iotflow.middleware.RequestSizeLimitMiddleware": "checked first: a refused size goes to Django, which answers it",
    "whitenoise.middleware.WhiteNoiseMiddleware": "serves static files, and these are API paths",
    # The full stack reads the session on every request (the time zone middleware asks for request.user),
    # so this adds "Vary: Cookie"; the lane adds it too, and hands over requests that carry a session cookie.
    "django.contrib.sessions.middleware.SessionMiddleware": "vary on cookie",
    "django.middleware.common.CommonMiddleware": RUN,
    "django.middleware.csrf.CsrfViewMiddleware": "the device API's views are exempt",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "a device is found by its key, not request.user",
    "accounts.middleware.UserTimeZoneMiddleware": "device answers give UTC times, whoever asks",
    "django.contrib.messages.middleware.MessageMiddleware": "no messages on API answers",
    "django_htmx.middleware.HtmxMiddleware": "no htmx on API answers",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": RUN,
    "django_prometheus.middleware.PrometheusAfterMiddleware": RUN,
}


def _unused(request):  # pragma: no cover - the lane calls middleware hooks, never their chain
    raise AssertionError("the device lane calls middleware hooks only")


class DeviceLane:
    """A WSGI application: Django's ``handler``, with plain device requests answered by the direct path first."""

    def __init__(self, handler: WSGIHandler):
        self.handler = handler
        unknown = [path for path in settings.MIDDLEWARE if path not in STANDS_IN_FOR]
        self.enabled = not unknown
        if unknown:
            logger.warning("Device lane off: no decision for middleware %s", ", ".join(unknown))
        steps = [
            import_string(path)(_unused) if STANDS_IN_FOR[path] == RUN else STANDS_IN_FOR[path]
            for path in settings.MIDDLEWARE
            if STANDS_IN_FOR.get(path) in (RUN, VARY_ON_COOKIE)
        ]
        run = [step for step in steps if not isinstance(step, str)]
        # Hooks that only check and may answer instead of the view: they run before anything is counted.
        self._checks = [m.process_request for m in run if not _counts(m) and hasattr(m, "process_request")]
        self._counting = [m for m in run if _counts(m)]
        self._responses = [
            _vary_on_cookie if step == VARY_ON_COOKIE else step.process_response
            for step in reversed(steps)
            if step == VARY_ON_COOKIE or hasattr(step, "process_response")
        ]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.enabled and "/telemetry" in environ.get("PATH_INFO", ""):
            response = self.answer(environ)
            if response is not None:
                status = f"{response.status_code} {response.reason_phrase}"
                cookies = [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
                start_response(status, [*response.items(), *cookies])
                return response
        return self.handler(environ, start_response)

    def answer(self, environ: dict) -> HttpResponse | None:
        """The direct answer with its middleware applied, or None after putting the body back for Django."""
        started = Time()
        set_script_prefix(get_script_name(environ))
        set_urlconf(settings.ROOT_URLCONF)
        # WSGIRequest rewrites PATH_INFO in the environ it is given; one handed over is read anew from the original.
        request = WSGIRequest(environ.copy())
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        direct = getattr(match.func, "direct", None)
        if direct is None or settings.SESSION_COOKIE_NAME in request.COOKIES:
            return None
        if size_refusal(request) is not None or self._stopped(request):
            return None
        request.resolver_match = match
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            response = direct(request, *match.args, **match.kwargs)
        except Exception as exc:
            response = self._failed(request, exc, started)
        else:
            if response is None:
                if hasattr(request, "_body"):
                    environ["wsgi.input"] = io.BytesIO(request._body)  # read by the direct path: Django reads it again
                return None
            self._count(request, started)
        for process_response in self._responses:
            response = process_response(request, response)
        response._resource_closers.append(request.close)
        response._handler_class = self.__class__  # closing the response sends request_finished from it, as Django does
        return response

    def _stopped(self, request: WSGIRequest) -> bool:
        """Whether a check answers instead of the view (a redirect to HTTPS, say) or raises (a host not allowed)."""
        try:
            return any(check(request) is not None for check in self._checks)
        except Exception:
            return True  # Django's handler raises it again and answers it

    def _count(self, request: WSGIRequest, started: float) -> None:
        """The Prometheus middleware's request hooks, timed from the lane's start as the full stack times them."""
        for middleware in self._counting:
            middleware.process_request(request)
            if hasattr(middleware, "process_view"):
                middleware.process_view(request, request.resolver_match.func, (), {})
        request.prometheus_before_middleware_event = request.prometheus_after_middleware_event = started

    def _failed(self, request: WSGIRequest, exc: Exception, started: float) -> HttpResponse:
        """What Django answers for an exception of the view, counted by the Prometheus middleware as there."""
        self._count(request, started)
        for middleware in self._counting:
            if hasattr(middleware, "process_exception"):
                middleware.process_exception(request, exc)
        return response_for_exception(request, exc)


def _vary_on_cookie(request: WSGIRequest, response: HttpResponse) -> HttpResponse:
    patch_vary_headers(response, ("Cookie",))
    return response


def _counts(middleware) -> bool:
    return type(middleware).__module__.startswith("django_prometheus.")
