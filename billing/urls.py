"""Billing pages, included by ``portal.urls`` under ``/admin/billing-reports/``."""

from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("", views.reports, name="reports"),
    path("export.csv", views.reports_csv, name="reports_csv"),
    path("statement/", views.statement_pick, name="statement_pick"),
    path("statement/<int:customer_id>/<str:month>/", views.statement, name="statement"),
]
