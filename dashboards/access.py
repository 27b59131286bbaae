"""Who sees which dashboard and chart: owners their own, staff all; anything else is a 404."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Chart, Dashboard


def dashboards_of(user) -> QuerySet[Dashboard]:
    dashboards = Dashboard.objects.select_related("owner")
    return dashboards if user.is_staff else dashboards.filter(owner=user)


def dashboard_for(user, pk: int) -> Dashboard:
    return get_object_or_404(dashboards_of(user), pk=pk)


def chart_for(user, pk: int) -> Chart:
    charts = Chart.objects.select_related("dashboard__owner")
    if not user.is_staff:
        charts = charts.filter(dashboard__owner=user)
    return get_object_or_404(charts, pk=pk)


def move(items: list, item, offset: int) -> None:
    """Move ``item`` by ``offset`` places among ``items`` (in their current order) and renumber them all."""
    order = list(items)
    index = next(i for i, candidate in enumerate(order) if candidate.pk == item.pk)
    target = min(max(index + offset, 0), len(order) - 1)
    order.insert(target, order.pop(index))
    for position, candidate in enumerate(order):
        if candidate.position != position:
            type(candidate).objects.filter(pk=candidate.pk).update(position=position)
