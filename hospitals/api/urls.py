from django.urls import path

from hospitals.api import views

hospital = "hospitals/<slug:slug>/"

urlpatterns = [
    path("auth/token/", views.AuthTokenView.as_view(), name="api-auth-token"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("hospitals/", views.MyHospitalsView.as_view(), name="api-hospitals"),
    path(hospital + "members/", views.MemberListView.as_view(), name="api-members"),
    path(hospital + "members/<str:member_id>/", views.MemberDetailView.as_view(), name="api-member"),
    path(hospital + "patients/", views.PatientListView.as_view(), name="api-patients"),
    path(hospital + "patients/<str:patient_id>/", views.PatientDetailView.as_view(), name="api-patient"),
    path(hospital + "settings/", views.HospitalSettingsView.as_view(), name="api-hospital-settings"),
    path(hospital + "invitations/", views.InvitationListView.as_view(), name="api-invitations"),
    path(hospital + "invitations/<str:invitation_id>/", views.InvitationDetailView.as_view(), name="api-invitation"),
    path(hospital + "audit/", views.AuditEventListView.as_view(), name="api-audit"),
    path("invitations/accept/", views.AcceptInvitationView.as_view(), name="api-invitation-accept"),
]
