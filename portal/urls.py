from django.contrib import admin
from django.urls import path

from portal import views

admin.site.site_header = "Integration portal: WooCommerce ↔ Hogia Smart"
admin.site.site_title = "Integration portal"
admin.site.index_title = "Support"

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("admin/", admin.site.urls),
]
