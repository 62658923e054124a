from django.contrib import admin
from django.contrib.auth.views import (
    LogoutView,
    PasswordResetCompleteView,
    PasswordResetDoneView,
)
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from portal import views
from portal.lockouts import ThrottledPasswordResetConfirmView, ThrottledPasswordResetView

admin.site.site_header = _("Integration portal: WooCommerce ↔ Hogia Smart")
admin.site.site_title = _("Integration portal")
admin.site.index_title = _("Support")

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("favicon.ico", views.favicon),
    path("", include("integrations.urls")),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="login"), name="logout"),
    # Customers choose their own password: a link by e-mail (Django's views, the portal's pages).
    path("password-reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        ThrottledPasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/", views.account, name="account"),
    path("account/orders/<int:transfer_id>/", views.account_order, name="account-order"),
    # set_language: the Svenska / English switch in the page headers (a POST, then back).
    path("i18n/", include("django.conf.urls.i18n")),
    # Before the admin: its catch-all would otherwise answer these addresses.
    path("admin/billing-reports/", include("billing.urls")),
    path("admin/", admin.site.urls),
]
