"""``/dashboards`` and ``/charts``: the owner's own (staff: all); anyone else's read as 404."""

from django.db.models import Max
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ..access import dashboards_of
from ..models import Chart, Dashboard
from ..series import chart_body
from .serializers import ChartSerializer, DashboardSerializer


def charts_of(user):
    charts = Chart.objects.select_related("dashboard").prefetch_related("devices")
    return charts if user.is_staff else charts.filter(dashboard__owner=user)


class DashboardListView(generics.ListCreateAPIView):
    serializer_class = DashboardSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Dashboard.objects.none()
        return dashboards_of(self.request.user).prefetch_related("charts")

    def perform_create(self, serializer) -> None:
        last = Dashboard.objects.filter(owner=self.request.user).aggregate(m=Max("position"))["m"]
        position = serializer.validated_data.get("position", (last or 0) + 1)
        serializer.save(owner=self.request.user, position=position)


class DashboardDetailView(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = DashboardSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Dashboard.objects.none()
        return dashboards_of(self.request.user).prefetch_related("charts")


class ChartListView(generics.ListCreateAPIView):
    """``/charts``: filter by ``?dashboard=<id>``."""

    serializer_class = ChartSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["dashboard", "chart_type"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Chart.objects.none()
        return charts_of(self.request.user)


class ChartDetailView(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = ChartSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Chart.objects.none()
        return charts_of(self.request.user)


class ChartDataView(generics.GenericAPIView):
    """``/charts/{id}/data``: the chart's series, at most CHART_MAX_POINTS buckets each."""

    permission_classes = [IsAuthenticated]
    serializer_class = ChartSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Chart.objects.none()
        return charts_of(self.request.user)

    @extend_schema(responses={200: inline_serializer("ChartData", {"series": serializers.ListField()})})
    def get(self, request: Request, pk: int) -> Response:
        return Response(chart_body(self.get_object()))
