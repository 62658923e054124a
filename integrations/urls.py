from django.urls import path

from integrations import views

urlpatterns = [
    path("hooks/woocommerce/<uuid:token>/", views.woocommerce_webhook, name="woocommerce-webhook"),
]
