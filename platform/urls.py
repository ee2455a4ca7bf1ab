from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.models import TokenProxy

from frontend.forms import OperatorSignInForm
from neurofed.api_errors import api_not_found

# DRF's token admin lists every user's API token in clear: whoever opens it can act as any doctor of
# any hospital. Tokens are issued and revoked by their owners through the API; nobody reads them here.
admin.site.unregister(TokenProxy)
admin.site.login_form = OperatorSignInForm

api_v1 = [
    path("", include("hospitals.api.urls")),
    path("", include("diagnostics.api.urls")),
    path("", include("federation.api.urls")),
]

urlpatterns = [
    # Pages name their icon; browsers still ask /favicon.ico of pages that do not (the Django admin).
    path("favicon.ico", RedirectView.as_view(url=static("frontend/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    re_path(r"^api/v1/", api_not_found, name="api-not-found"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's start-up script from its own URL (?script), not inline: the Content-Security-Policy
    # runs no inline script (neurofed/csp.py).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", template_name="frontend/api_docs.html"), name="api-docs"),
    path("", include("frontend.urls")),
]
