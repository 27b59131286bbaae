"""The product's URLs plus ``/bench/hello``: the baseline every HTTP figure is divided by."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def hello(request: HttpRequest) -> JsonResponse:
    """The least a Django view can do: a small JSON answer, no database, no cache."""
    return JsonResponse({"message": "hello", "ok": True})


urlpatterns = [
    path("bench/hello", hello, name="bench-hello"),
    path("", include("iotflow.urls")),
]
