"""Pages. Everything about one hospital lives under /h/<slug>/ (DESIGN §2)."""

from django.urls import path

from frontend.views import auth, home

app_name = "frontend"

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/login/", auth.login, name="login"),
    path("accounts/logout/", auth.logout, name="logout"),
    path("accounts/password-reset/", auth.password_reset, name="password-reset"),
    path("accounts/password-reset/sent/", auth.password_reset_done, name="password-reset-done"),
    path("accounts/password-reset/<uidb64>/<token>/", auth.password_reset_confirm, name="password-reset-confirm"),
    path("accounts/password-reset/done/", auth.password_reset_complete, name="password-reset-complete"),
    path("h/<slug:slug>/", home.hospital_home, name="hospital-home"),
]

