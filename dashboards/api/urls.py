from django.urls import path

from . import views

urlpatterns = [
    path("dashboards", views.DashboardListView.as_view(), name="dashboard-list"),
    path("dashboards/<int:pk>", views.DashboardDetailView.as_view(), name="dashboard-detail"),
    path("charts", views.ChartListView.as_view(), name="chart-list"),
    path("charts/<int:pk>", views.ChartDetailView.as_view(), name="chart-detail"),
    path("charts/<int:pk>/data", views.ChartDataView.as_view(), name="chart-data"),
]
