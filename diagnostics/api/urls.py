from django.urls import include, path

from diagnostics.api import views

app_name = "diagnostics-api"

scan_urls = [
    path("", views.ScanListView.as_view(), name="scan-list"),
    path("search/", views.ScanSearchView.as_view(), name="scan-search"),
    path("<str:scan_id>/", views.ScanDetailView.as_view(), name="scan-detail"),
    path("<str:scan_id>/review/", views.ScanReviewView.as_view(), name="scan-review"),
    path("<str:scan_id>/image.png", views.ScanImageView.as_view(), name="scan-image"),
    path("<str:scan_id>/mask.png", views.ScanMaskView.as_view(), name="scan-mask"),
    path("<str:scan_id>/heatmap.png", views.ScanHeatmapView.as_view(), name="scan-heatmap"),
]

urlpatterns = [path("hospitals/<slug:slug>/scans/", include(scan_urls))]
