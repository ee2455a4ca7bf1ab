from django.urls import path

from federation.api import views

urlpatterns = [
    path("federation/runs/", views.RunListView.as_view(), name="api-federation-runs"),
    path("federation/runs/<str:run_id>/", views.RunDetailView.as_view(), name="api-federation-run"),
    path("federation/runs/<str:run_id>/stop/", views.RunStopView.as_view(), name="api-federation-run-stop"),
    path("hospitals/<slug:slug>/federation/runs/", views.HospitalRunStartView.as_view(),
         name="api-hospital-federation-runs"),
    path("hospitals/<slug:slug>/federation/cases/", views.HospitalTrainingCasesView.as_view(),
         name="api-hospital-federation-cases"),
    path("federation/runs/<str:run_id>/promote/", views.RunPromoteView.as_view(), name="api-federation-run-promote"),
]
