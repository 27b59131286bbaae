from django.urls import path

from . import views

app_name = "dashboards"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("dashboards/", views.dashboard_list, name="list"),
    path("dashboards/<int:pk>/", views.dashboard_detail, name="detail"),
    path("dashboards/<int:pk>/edit", views.dashboard_edit, name="edit"),
    path("dashboards/<int:pk>/move", views.dashboard_move, name="move"),
    path("dashboards/<int:pk>/delete", views.dashboard_delete, name="delete"),
    path("dashboards/<int:pk>/charts/new", views.chart_create, name="chart-create"),
    path("dashboards/charts/<int:pk>/edit", views.chart_edit, name="chart-edit"),
    path("dashboards/charts/<int:pk>/move", views.chart_move, name="chart-move"),
    path("dashboards/charts/<int:pk>/delete", views.chart_delete, name="chart-delete"),
    path("dashboards/charts/<int:pk>/data", views.chart_data, name="chart-data"),
    path("dashboards/api/series", views.series, name="series"),
    path("dashboards/api/measurements", views.measurement_options, name="measurements"),
]
